"""Input checks: what every public entry point takes, checked before anything
changes (weights, optimizer moments, recurrent state), each error naming
what was expected and what came.

The scans of an array's values (any NaN or infinity? the targets' range)
are kernels, `all_finite` and `value_range`: NumPy's in kernels/reference.py,
and compiled in kernels/jit.py, where a training step of the tutorials'
models is microseconds and NumPy's reductions would be a good part of it.
A model checks with its own backend's.
"""
import numpy as np


def positive_int(value, name):
    """Return value as an int, or raise if it is not a positive whole number."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def shape_tuple(shape, name, allow_none=False):
    """Check a user-given shape: a tuple of positive ints (None where allowed)."""
    if shape is None:
        return None
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"{name} must be a tuple of integers, got {shape!r}")
    return tuple(
        None if (allow_none and dim is None) else positive_int(dim, f"each entry of {name}")
        for dim in shape
    )


def real_array(a, name, dtype, kernels):
    """a as an array of dtype, or a clear error for non-numbers, NaN and infinity."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":            # bool, signed, unsigned, floating
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(dtype, copy=False)
    if not kernels.all_finite(arr.ravel()):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def batch_input(X, input_shape, name="X"):
    """X (checked by real_array) against a model's per-sample input shape,
    whose entries may be None (any length)."""
    if X.shape[1:] != input_shape and (X.ndim != len(input_shape) + 1 or any(
            e is not None and e != got for e, got in zip(input_shape, X.shape[1:]))):
        shown = ("batch",) + tuple("any" if e is None else e for e in input_shape)
        raise ValueError(f"{name} must have shape {shown}, got {X.shape}")
    return X


def targets(y, X, output_shape, loss, dtype, kernels):
    """y as the model's outputs for X must be: its shape, and for a
    cross-entropy, values it can take."""
    y = real_array(y, "y", dtype, kernels)
    expected = (len(X),) + tuple(output_shape)
    if y.shape != expected:
        raise ValueError(f"y must have shape {expected} to match X and the model's output, "
                         f"got {y.shape}")
    if loss not in ("binary_crossentropy", "categorical_crossentropy") or not y.size:
        return y
    low, high = kernels.value_range(y.ravel())
    if loss == "binary_crossentropy" and (low < 0 or high > 1):
        raise ValueError("binary_crossentropy needs targets in [0, 1], got values from "
                         f"{low:g} to {high:g}")
    if loss == "categorical_crossentropy":
        sums = y.sum(axis=-1)
        if low < 0 or np.abs(sums - 1).max() > 1e-3:
            raise ValueError("categorical_crossentropy needs targets that are distributions "
                             "over the last axis (non-negative, summing to 1, e.g. one-hot), "
                             f"got values from {low:g} and sums from {sums.min():g} "
                             f"to {sums.max():g}")
    return y


def sample_weights(weights, X, output_shape, dtype, kernels):
    """None, or weights of shape (samples,) or (samples,) + the output's
    steps: finite and not negative."""
    if weights is None:
        return None
    w = real_array(weights, "sample_weight", dtype, kernels)
    per_step = (len(X),) + tuple(output_shape[:-1])
    if w.shape not in ((len(X),), per_step):
        raise ValueError(f"sample_weight must have shape {(len(X),)} (one weight per sample)"
                         + (f" or {per_step} (one per output step)" if len(per_step) > 1
                            else "") + f", got {w.shape}")
    low = kernels.value_range(w.ravel())[0] if w.size else 0.0
    if low < 0:
        raise ValueError(f"sample_weight must not be negative, got {low:g}")
    return w


def batch_size(n, batch_size, fixed):
    """The batch size to use for n samples, checked against a model's fixed
    one (None: any)."""
    if batch_size is None:
        batch_size = fixed or min(n, 32)
    batch_size = positive_int(batch_size, "batch_size")
    if fixed is not None:
        if batch_size != fixed:
            raise ValueError(f"this model has a fixed batch size of {fixed} "
                             f"(batch_input_shape), got batch_size={batch_size}")
        if n % batch_size:
            raise ValueError(
                f"{n} samples do not split into whole batches of {batch_size}: a "
                f"model with a fixed batch size (needed for stateful layers) "
                f"cannot take a last partial batch; give a multiple of {batch_size}")
    return batch_size
