"""The compiled loops of the heads: sigmoid and softmax into an array, and
the losses fused with their activation (and the squared error), one pass
each over rows x outputs. jit.py's activation and loss functions call them;
the compiled batches (lstm_dense.py) too.

Element-wise work on small arrays: in NumPy each of the several passes is a
call of a microsecond or two; compiled, each function is one call and one
pass. Every exp here is of a number <= 0 (gate_math._exp_neg); sums may be
reordered ("reassoc"), so that their loops vectorise too.
"""
import math

from numba import njit

from .gate_math import KERNEL, _exp_neg, _sig, _sig_from

HEAD = dict(KERNEL, fastmath={"contract", "reassoc"})


@njit(**HEAD)
def _sigmoid_into(z, a):
    for k in range(z.size):
        a.flat[k] = _sig(z.flat[k])


@njit(inline="always")
def _softmax_row(z, a):
    """a = softmax(z) of one row; returns log(sum(exp(z))), from exp(z - max z)."""
    m = z[0]
    for k in range(1, z.size):      # a loop compiles in a fraction of z.max()'s 0.8 s
        m = max(m, z[k])
    total = z.dtype.type(0.0)
    for k in range(z.size):
        a[k] = _exp_neg(z[k] - m)
        total += a[k]
    for k in range(z.size):
        a[k] /= total
    return m + math.log(total)


@njit(**HEAD)
def _softmax_into(z, a):
    """Row by row over the last axis (z, a as 2-D, rows x classes)."""
    for r in range(z.shape[0]):
        _softmax_row(z[r], a[r])


@njit(**HEAD)
def _bce_with_logits(z, y, w, grad, a):
    """z, y, grad as 2-D, rows x outputs; w the row weights. The head's
    outputs sigmoid(z) come on the way, into a: one exp per logit."""
    rows, K = z.shape
    total = 0.0
    for r in range(rows):
        wk = w[r] / z.dtype.type(K)
        for k in range(K):
            zk, yk = z[r, k], y[r, k]
            e = _exp_neg(-abs(zk))
            a[r, k] = _sig_from(zk, e)
            total += wk * (max(zk, 0.0) - zk * yk + math.log1p(e))
            grad[r, k] = wk * (a[r, k] - yk)
    return total


@njit(**HEAD)
def _cce_with_logits(z, y, w, grad, a):
    """z, y, grad as 2-D, rows x classes; w the row weights. The head's
    outputs softmax(z) come on the way, into a: one exp per logit."""
    rows, classes = z.shape
    total = 0.0
    for r in range(rows):
        log_sum = _softmax_row(z[r], a[r])
        y_sum = y.dtype.type(0.0)
        for k in range(classes):
            y_sum += y[r, k]
        for k in range(classes):
            total -= w[r] * y[r, k] * (z[r, k] - log_sum)
            grad[r, k] = w[r] * (a[r, k] * y_sum - y[r, k])
    return total


@njit(**HEAD)
def _squared_error(a, y, w, grad):
    """a, y, grad as 2-D, rows x outputs; w the row weights. One pass where
    NumPy makes four."""
    rows, K = a.shape
    two = a.dtype.type(2.0)
    total = 0.0
    for r in range(rows):
        wk = w[r] / a.dtype.type(K)
        for k in range(K):
            d = a[r, k] - y[r, k]
            total += wk * d * d
            grad[r, k] = wk * two * d
    return total
