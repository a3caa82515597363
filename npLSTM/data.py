"""Data helpers of the tutorial tasks: one-hot coding and framing.

    one_hot([3, 0], 5)  ->  [[0 0 0 1 0], [1 0 0 0 0]]
    pairs (memory):     x_t -> x_{t+1}, one timestep per sample
    windows (echo):     X[i] = seq[i:i+n_in], y[i] = the first n_out of it
                        (window_symbols: as integers, optionally padded)
"""
import numpy as np


def _integers(values, name):
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu":          # not signed or unsigned integers
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            return arr.astype(np.int64)
        raise ValueError(f"{name} must be whole numbers, got dtype {arr.dtype}")
    return arr


def one_hot(values, n_features, dtype="float64"):
    """Integers in [0, n_features) -> vectors of length n_features, one 1.0 each.

    Shape (...) -> (..., n_features).
    """
    values = _integers(values, "values to one-hot encode")
    if not isinstance(n_features, (int, np.integer)) or n_features < 1:
        raise ValueError(f"n_features must be a positive integer, got {n_features!r}")
    if values.size and (values.min() < 0 or values.max() >= n_features):
        outside = values[(values < 0) | (values >= n_features)]
        raise ValueError(f"values must lie in [0, {n_features - 1}] for an alphabet of "
                         f"{n_features}, got {outside.ravel()[:5].tolist()}")
    encoded = np.zeros((values.size, n_features), dtype=dtype)
    encoded[np.arange(values.size), values.ravel()] = 1.0
    return encoded.reshape(values.shape + (n_features,))


def one_hot_decode(vectors):
    """argmax over the last axis: the symbol each vector stands for."""
    return np.asarray(vectors).argmax(axis=-1)


def random_sequence(rng, length, n_features):
    """`length` integers drawn uniformly from [0, n_features) with rng."""
    return rng.integers(0, n_features, size=length)


def pairs(sequence, n_features, dtype="float64"):
    """Frame a sequence as next-symbol pairs x_t -> x_{t+1}.

    Returns X (len-1, 1, n_features), one timestep per sample, and
    y (len-1, n_features).
    """
    encoded = one_hot(sequence, n_features, dtype)
    if len(encoded) < 2:
        raise ValueError(f"a sequence needs at least 2 symbols to make pairs, got {len(encoded)}")
    return encoded[:-1, None, :], encoded[1:]


PAD = -1   # stands for "past the end of the sequence" in window_symbols


def window_symbols(sequence, n_in, n_out, pad=False):
    """Sliding windows of a sequence as integers: X[i] = seq[i:i+n_in] and
    y[i] = seq[i:i+n_out], the first n_out symbols of that window.

    pad=False gives the len-n_in+1 windows that fit in the sequence; pad=True
    one window per start position, len of them, the steps past the end
    being PAD (for masking: TASKS.md's "keep the windows the framing drops").

    Returns X (windows, n_in), y (windows, n_out) of integers.
    """
    sequence = _integers(sequence, "sequence")
    if not 1 <= n_out <= n_in:
        raise ValueError(f"need 1 <= n_out <= n_in, got n_in={n_in}, n_out={n_out}")
    count = len(sequence) if pad else len(sequence) - n_in + 1
    if count < 1:
        raise ValueError(f"a sequence of {len(sequence)} has no window of {n_in}")
    padded = np.concatenate([sequence, np.full(n_in - 1, PAD, dtype=sequence.dtype)])
    X = padded[np.arange(count)[:, None] + np.arange(n_in)]        # X[i, j] = padded[i + j]
    return X, X[:, :n_out].copy()


def windows(sequence, n_in, n_out, n_features, dtype="float64"):
    """window_symbols, one-hot: X (len-n_in+1, n_in, n_features) and
    y (len-n_in+1, n_out, n_features)."""
    X, y = window_symbols(sequence, n_in, n_out)
    return one_hot(X, n_features, dtype), one_hot(y, n_features, dtype)
