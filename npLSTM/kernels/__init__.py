"""The math as plain functions on arrays, in two implementations with the
same functions and signatures:

    numpy  reference.py, readable NumPy with the equations: the book
    numba  jit.py, the LSTM loops compiled with Numba, held equal to it

jit.py's loops stand in lstm_loops.py (the LSTM), gate_math.py (the gates)
and head_math.py (activations, losses, Dense as loops). Compiled only:
program.py, whole training steps of any model, its layers as a program
(npLSTM.executor); blas.py, BLAS called from compiled code;
routes.py, the one table of thresholds that decides which way a step runs;
cache.py, where Numba keeps the compiled code.
"""
from . import cache  # noqa: F401  (first: where Numba keeps the compiled kernels)
from . import jit, reference

BACKENDS = {"numba": jit, "numpy": reference}


def get(name):
    """The kernel module of a backend name."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known: {sorted(BACKENDS)}")
    return BACKENDS[name]


__all__ = ["BACKENDS", "get", "jit", "reference"]
