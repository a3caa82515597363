"""The compiled loops of the heads: sigmoid and softmax into an array, and
the losses fused with their activation (and the squared error), one pass
each over rows x outputs, and Dense as loops. jit.py's activation and loss
functions call them; the compiled executor (program.py) too.

Element-wise work on small arrays: in NumPy each of the several passes is a
call of a microsecond or two; compiled, each function is one call and one
pass. Every exp here is of a number <= 0 (gate_math._exp_neg); sums may be
reordered ("reassoc"), so that their loops vectorise too.
"""
import math

from numba import njit

from .gate_math import KERNEL, _copy, _exp_neg, _sig, _sig_from, _tanh

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


# Activations by code, for the compiled training steps (kernels/program.py),
# which cannot take a name: ACTIVATION_CODES maps reference.ACTIVATIONS' names.
LINEAR, SIGMOID, TANH, SOFTMAX = range(4)
ACTIVATION_CODES = {"linear": LINEAR, "sigmoid": SIGMOID, "tanh": TANH, "softmax": SOFTMAX}


@njit(**HEAD)
def _activation_into(code, z, a):
    """a = act(z) for rows z, a (rows x K), as reference.activation_forward."""
    if code == SOFTMAX:
        _softmax_into(z, a)
    elif code == SIGMOID:
        _sigmoid_into(z, a)
    elif code == TANH:
        for r in range(z.shape[0]):
            for k in range(z.shape[1]):
                a[r, k] = _tanh(z[r, k])
    else:
        for r in range(z.shape[0]):
            _copy(z[r], a[r])


@njit(**HEAD)
def _activation_backward_into(code, a, da, dz):
    """dz from da and a = act(z) (rows x K), as reference.activation_backward."""
    one = a.dtype.type(1.0)
    for r in range(a.shape[0]):
        if code == SOFTMAX:
            total = a.dtype.type(0.0)
            for k in range(a.shape[1]):
                total += a[r, k] * da[r, k]
            for k in range(a.shape[1]):
                dz[r, k] = a[r, k] * (da[r, k] - total)
        elif code == SIGMOID:
            for k in range(a.shape[1]):
                dz[r, k] = da[r, k] * a[r, k] * (one - a[r, k])
        elif code == TANH:
            for k in range(a.shape[1]):
                dz[r, k] = da[r, k] * (one - a[r, k] * a[r, k])
        else:
            _copy(da[r], dz[r])


# Dense as loops: for the compiled training steps' small layers, where a
# BLAS call costs more than the product.
@njit(**KERNEL)
def dense_rows(x, W, b, z):
    """z = x W + b for rows x (N, F): an axpy of a row of W per feature,
    skipped where the feature is 0 (one-hot inputs)."""
    for r in range(x.shape[0]):
        _copy(b, z[r])
        for f in range(x.shape[1]):
            xf = x[r, f]
            if xf != 0.0:
                for k in range(W.shape[1]):
                    z[r, k] += xf * W[f, k]


@njit(**HEAD)
def dense_rows_backward(dz, x, W, dx, dW, db, with_dx):
    """dW = x^T dz, db = the sum of dz's rows and, with_dx, dx = dz W^T
    (reference.dense_backward). dx's sums may be reordered ("reassoc"), so
    that they vectorise too."""
    dW[:] = 0.0
    db[:] = 0.0
    for r in range(x.shape[0]):
        for k in range(W.shape[1]):
            db[k] += dz[r, k]
        for f in range(x.shape[1]):
            xf = x[r, f]
            total = W.dtype.type(0.0)          # in W's precision (float32: 8 per vector)
            for k in range(W.shape[1]):
                dW[f, k] += xf * dz[r, k]
                total += dz[r, k] * W[f, k]
            if with_dx:
                dx[r, f] = total
