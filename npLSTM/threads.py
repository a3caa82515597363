"""How many threads NumPy's BLAS gives npLSTM's matrix products.

BLAS (OpenBLAS in NumPy's wheels) starts with one thread per core. The
large kernels spend their time in its products, and on an idle machine two
threads beat one. On a machine busy with other work one thread can win:
the threads of one product wait for each other while the others' processes
hold the cores (measured by a prototype on a loaded 2-core machine: one
thread 1.7x faster than two). Numba's compiled loops run on the calling
thread whatever this says. threadpoolctl does the setting, on every BLAS
library NumPy loaded.
"""
import threadpoolctl

from .layers.base import positive_int


def set_blas_threads(n):
    """Let BLAS use n threads from now on (n >= 1; more than the cores gains nothing)."""
    n = positive_int(n, "the number of BLAS threads")
    threadpoolctl.threadpool_limits(n, user_api="blas")


def blas_threads():
    """The threads BLAS uses now (the largest over its libraries)."""
    return max(pool["num_threads"] for pool in threadpoolctl.threadpool_info()
               if pool["user_api"] == "blas")
