"""The LSTM kernels compiled with Numba: same functions, same results as
reference.py (held equal to 1e-12 in float64 by tests/test_jit.py).

Dimension legend and conventions: see reference.py, whose docstrings hold
the equations; this file only says how the loops are shaped for speed.

Two shapes of the same recurrence, chosen by size (compiled_loop):
  small  the whole time loop in one compiled call: the product h U written
         out as loops, gate math fused, no Python per step. Where batch and
         units are small, a BLAS call per step costs more than it saves.
  large  per step one BLAS GEMM from NumPy (h U, dz U^T) around a compiled
         element-wise gate kernel; NumPy's BLAS needs no SciPy, which
         Numba's np.dot would.
In both, x W + b for all steps is one GEMM before the loop, and dX, dW, dU
are one GEMM each after the backward loop (loops where that work is tiny:
SMALL_GRAD_WORK), as in reference.py; the cache is laid out as reference.py's.
"""
import math

import numpy as np
from numba import njit

from . import reference
from .reference import input_projection
from .reference import (  # noqa: F401  (BLAS-bound: NumPy is as fast)
    ACTIVATIONS, activation_backward, dense_backward, dense_forward, mean_squared_error)

# Where the compiled loop beats BLAS per step, measured with `python
# benchmarks/kernels.py --crossover` (float64, T = 5, 100, 1000, D = 32; load
# below 1.4): up to 64 units while batch x units stays within 512. At
# (B, T, H) = (16, 1000, 32) 74 ms against 89, at (4, 100, 64) 4.9 against
# 6.1; BLAS wins at (16, 100, 64), 15 against 17, and with 128 units from
# batch 1 at T = 5. (Running the rows on Numba's threads (prange) gained
# 1.2-1.9x alone but lost 4x beside NumPy's BLAS threads, which spin
# waiting for work: not used.)
SMALL_UNITS = 64      # most units for the compiled loop
SMALL_WORK = 512      # most batch x units for it
# The weight gradients are one pass over every row and step, with no
# recurrence: loops beat BLAS's call overhead only while the work is tiny.
# Measured (float64): loops 8.8 us vs BLAS 12.6 at (B,T,D,H) = (1,5,20,20),
# 12.6 vs 14.2 at (1,10,20,20), 23 vs 19 at (2,5,50,20), 192 ms vs 49 at
# (8,1000,1004,16). The work counted is B*T*(D+H+1)*4H multiply-adds.
SMALL_GRAD_WORK = 40_000


def compiled_loop(B, H):
    """Whether the whole-loop kernels serve a batch of B rows of H units."""
    return H <= SMALL_UNITS and B * H <= SMALL_WORK


@njit(cache=True, inline="always")
def _sig(x):
    # exp(-|x|) never overflows
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@njit(cache=True, inline="always")
def _tanh(x):
    # tanh from one exp: 1.7x faster than Numba's math.tanh (a libm call),
    # within 2.2e-16 of it in absolute terms.
    e = math.exp(-2.0 * abs(x))
    t = (1.0 - e) / (1.0 + e)
    return t if x >= 0.0 else -t


@njit(cache=True, inline="always")
def _cell(z_i, z_f, z_c, z_o, c_prev):
    """One unit's gates and new cell: (i, f, g, o, c, h)."""
    i, f, g, o = _sig(z_i), _sig(z_f), _tanh(z_c), _sig(z_o)
    c = f * c_prev + i * g
    return i, f, g, o, c, o * _tanh(c)


@njit(cache=True, inline="always")
def _cell_backward(i, f, g, o, c, c_prev, dh, dc_next):
    """dz of one unit's four gates and dc towards c_prev."""
    tc = _tanh(c)
    dc = dc_next + dh * o * (1.0 - tc * tc)
    return (dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f), dc * i * (1.0 - g * g),
            dh * tc * o * (1.0 - o), dc * f)


# Small: the whole loop compiled ------------------------------------------------------------


@njit(cache=True)
def _forward_loop(XW, h0, c0, U, keep, gates, cs, hs):
    """Fill gates, cs, hs (B, T, .) from XW = X W + b; rows are independent.
    Where keep[b, t] is False the row carries its state through the step."""
    B, T, H4 = XW.shape
    H = H4 // 4
    z = np.empty(H4, dtype=XW.dtype)
    for b in range(B):
        h_prev, c_prev = h0[b], c0[b]
        for t in range(T):
            z[:] = XW[b, t]
            for k in range(H):              # z += h_prev U: an axpy per row of U
                hk = h_prev[k]
                for j in range(H4):
                    z[j] += hk * U[k, j]
            for j in range(H):
                i, f, g, o, c, h = _cell(z[j], z[H + j], z[2 * H + j], z[3 * H + j], c_prev[j])
                gates[b, t, j], gates[b, t, H + j] = i, f
                gates[b, t, 2 * H + j], gates[b, t, 3 * H + j] = g, o
                cs[b, t, j], hs[b, t, j] = c, h
            if not keep[b, t]:
                cs[b, t], hs[b, t] = c_prev, h_prev
            h_prev, c_prev = hs[b, t], cs[b, t]


@njit(cache=True)
def _backward_loop(dhs, has_dhs, dh_T, dc_T, gates, cs, c0, UT, keep, dZ, dh0, dc0):
    """Fill dZ (B, T, 4H), dh0, dc0 going back in time; rows are independent.
    UT = U^T, so that dz U^T is an axpy per row of UT. A masked step passes
    dh and dc through and gets dz = 0."""
    B, T, H4 = gates.shape
    H = H4 // 4
    dh_next = np.empty(H, dtype=gates.dtype)
    dc_next = np.empty(H, dtype=gates.dtype)
    for b in range(B):
        dh_next[:] = dh_T[b]
        dc_next[:] = dc_T[b]
        for t in range(T - 1, -1, -1):
            if not keep[b, t]:
                dZ[b, t] = 0.0
                if has_dhs:
                    dh_next += dhs[b, t]
                continue
            for j in range(H):
                dh = dh_next[j] + dhs[b, t, j] if has_dhs else dh_next[j]
                c_prev = cs[b, t - 1, j] if t > 0 else c0[b, j]
                dZ[b, t, j], dZ[b, t, H + j], dZ[b, t, 2 * H + j], dZ[b, t, 3 * H + j], \
                    dc_next[j] = _cell_backward(gates[b, t, j], gates[b, t, H + j],
                                                gates[b, t, 2 * H + j], gates[b, t, 3 * H + j],
                                                cs[b, t, j], c_prev, dh, dc_next[j])
            dh_next[:] = 0.0                # dh_next = dz U^T: an axpy per row of U^T
            for j in range(H4):
                dz = dZ[b, t, j]
                for k in range(H):
                    dh_next[k] += dz * UT[j, k]
        dh0[b] = dh_next
        dc0[b] = dc_next


# Large: BLAS per step, compiled gates ----------------------------------------------------


@njit(cache=True)
def _gates_step(z, c_prev, h_prev, keep, gates, c, h):
    """One step's gate math for all rows: z (B, 4H) -> gates, c, h; a row
    whose keep is False carries c_prev, h_prev through."""
    B, H4 = z.shape
    H = H4 // 4
    for b in range(B):
        for j in range(H):
            i, f, g, o, cj, hj = _cell(z[b, j], z[b, H + j], z[b, 2 * H + j], z[b, 3 * H + j],
                                       c_prev[b, j])
            gates[b, j], gates[b, H + j], gates[b, 2 * H + j], gates[b, 3 * H + j] = i, f, g, o
            c[b, j], h[b, j] = (cj, hj) if keep[b] else (c_prev[b, j], h_prev[b, j])


@njit(cache=True)
def _gates_step_backward(dh, dc_next, gates, c, c_prev, keep, dz):
    """One step back for all rows: dz (B, 4H); dc_next becomes dc towards
    c_prev (a row whose keep is False gets dz = 0 and keeps its dc_next)."""
    B, H4 = gates.shape
    H = H4 // 4
    for b in range(B):
        if not keep[b]:
            dz[b] = 0.0
            continue
        for j in range(H):
            dz[b, j], dz[b, H + j], dz[b, 2 * H + j], dz[b, 3 * H + j], dc_next[b, j] = \
                _cell_backward(gates[b, j], gates[b, H + j], gates[b, 2 * H + j],
                               gates[b, 3 * H + j], c[b, j], c_prev[b, j], dh[b, j],
                               dc_next[b, j])


# The head: activations and the losses fused with them ---------------------------------------
# Element-wise work on small arrays: in NumPy each of the several passes is a
# call of a microsecond or two; compiled, each function is one call and one pass.


@njit(cache=True)
def _sigmoid_into(z, a):
    for k in range(z.size):
        a.flat[k] = _sig(z.flat[k])


@njit(cache=True)
def _softmax_into(z, a):
    """Row by row over the last axis (z, a as 2-D, rows x classes)."""
    for r in range(z.shape[0]):
        m = z[r].max()
        total = 0.0
        for k in range(z.shape[1]):
            a[r, k] = math.exp(z[r, k] - m)
            total += a[r, k]
        for k in range(z.shape[1]):
            a[r, k] /= total


def sigmoid(z):
    """As reference.sigmoid."""
    a = np.empty_like(z)
    _sigmoid_into(np.ascontiguousarray(z), a)
    return a


def softmax(z):
    """As reference.softmax."""
    a = np.empty_like(z)
    _softmax_into(np.ascontiguousarray(z).reshape(-1, z.shape[-1]), a.reshape(-1, z.shape[-1]))
    return a


def activation_forward(name, z):
    """As reference.activation_forward."""
    if name == "sigmoid":
        return sigmoid(z)
    if name == "softmax":
        return softmax(z)
    return reference.activation_forward(name, z)


@njit(cache=True)
def _bce_with_logits(z, y, w, grad):
    """z, y, grad as 2-D, rows x outputs; w the row weights."""
    rows, K = z.shape
    total = 0.0
    for r in range(rows):
        wk = w[r] / K
        for k in range(K):
            zk, yk = z[r, k], y[r, k]
            total += wk * (max(zk, 0.0) - zk * yk + math.log1p(math.exp(-abs(zk))))
            grad[r, k] = wk * (_sig(zk) - yk)
    return total


@njit(cache=True)
def _cce_with_logits(z, y, w, grad):
    """z, y, grad as 2-D, rows x classes; w the row weights."""
    rows, classes = z.shape
    total = 0.0
    for r in range(rows):
        m = z[r].max()
        log_sum = 0.0
        for k in range(classes):
            log_sum += math.exp(z[r, k] - m)
        log_sum = math.log(log_sum)
        y_sum = 0.0
        for k in range(classes):
            y_sum += y[r, k]
        for k in range(classes):
            log_a = z[r, k] - m - log_sum
            total -= w[r] * y[r, k] * log_a
            grad[r, k] = w[r] * (math.exp(log_a) * y_sum - y[r, k])
    return total


def _fused_loss(kernel, z, y, weights):
    """Call a compiled loss on z, y as rows x classes, with the row weights."""
    K = z.shape[-1]
    w = reference.mean_weights(z) if weights is None else weights
    grad = np.empty_like(z)
    loss = kernel(np.ascontiguousarray(z).reshape(-1, K), np.ascontiguousarray(y).reshape(-1, K),
                  np.ascontiguousarray(w, dtype=z.dtype).reshape(-1), grad.reshape(-1, K))
    return loss, grad


def binary_crossentropy_with_logits(z, y, weights=None):
    """As reference.binary_crossentropy_with_logits: (L, dL/dz)."""
    return _fused_loss(_bce_with_logits, z, y, weights)


def categorical_crossentropy_with_logits(z, y, weights=None):
    """As reference.categorical_crossentropy_with_logits: (L, dL/dz)."""
    return _fused_loss(_cce_with_logits, z, y, weights)


# Adam ------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def adam_update(p, g, m, v, alpha, beta_1, beta_2, eps):
    """As reference.adam_update, one fused pass over flat arrays (NumPy's
    error model lets LLVM vectorise the division: 2x)."""
    for k in range(p.size):
        m[k] += (1.0 - beta_1) * (g[k] - m[k])
        v[k] += (1.0 - beta_2) * (g[k] * g[k] - v[k])
        p[k] -= alpha * m[k] / (math.sqrt(v[k]) + eps)


# The LSTM kernels ------------------------------------------------------------------------


@njit(cache=True)
def _weight_grads_loop(dZ, X, h0, hs, WT, dX, dW, dU, db):
    """reference.lstm_weight_grads written as loops, for small sizes. Every
    inner loop runs along a contiguous row (an axpy), which LLVM vectorises;
    WT = W^T makes dX one too."""
    B, T, H4 = dZ.shape
    D, H = X.shape[2], h0.shape[1]
    dW[:] = 0.0
    dU[:] = 0.0
    db[:] = 0.0
    dX[:] = 0.0
    for b in range(B):
        for t in range(T):
            dz = dZ[b, t]
            h_prev = hs[b, t - 1] if t > 0 else h0[b]
            for j in range(H4):
                db[j] += dz[j]
            for d in range(D):                  # dW += x_t^T dz_t
                x = X[b, t, d]
                for j in range(H4):
                    dW[d, j] += x * dz[j]
            for k in range(H):                  # dU += h_{t-1}^T dz_t
                h = h_prev[k]
                for j in range(H4):
                    dU[k, j] += h * dz[j]
            for j in range(H4):                 # dX_t = dz_t W^T
                dzj = dz[j]
                for d in range(D):
                    dX[b, t, d] += dzj * WT[j, d]


def lstm_weight_grads(dZ, X, h0, hs, W):
    """As reference.lstm_weight_grads: (dX, dW, dU, db)."""
    B, T, D = X.shape
    H = h0.shape[1]
    if B * T * (D + H + 1) * 4 * H > SMALL_GRAD_WORK:
        return reference.lstm_weight_grads(dZ, X, h0, hs, W)
    dX, dW = np.empty_like(X), np.empty_like(W)
    dU = np.empty((h0.shape[1], W.shape[1]), dtype=W.dtype)
    db = np.empty(W.shape[1], dtype=W.dtype)
    _weight_grads_loop(dZ, np.ascontiguousarray(X), h0, hs, np.ascontiguousarray(W.T),
                       dX, dW, dU, db)
    return dX, dW, dU, db


def _keep(mask, B, T):
    """The mask as the compiled loops take it: every step kept when None."""
    return np.ones((B, T), dtype=np.bool_) if mask is None else np.ascontiguousarray(mask)


def lstm_forward(X, h0, c0, W, U, b, mask=None):
    """As reference.lstm_forward: (hs, h_T, c_T, cache)."""
    B, T, _ = X.shape
    H = h0.shape[1]
    XW = input_projection(X, W, b)
    h0, c0 = np.ascontiguousarray(h0), np.ascontiguousarray(c0)
    keep = _keep(mask, B, T)
    gates = np.empty((B, T, 4 * H), dtype=X.dtype)
    cs = np.empty((B, T, H), dtype=X.dtype)
    hs = np.empty((B, T, H), dtype=X.dtype)
    if compiled_loop(B, H):
        _forward_loop(XW, h0, c0, U, keep, gates, cs, hs)
    else:
        # [:, t] are strided views (rows T steps apart): BLAS and the gate
        # kernel read and write them in place, no copies.
        h, c = h0, c0
        for t in range(T):
            _gates_step(XW[:, t] + h @ U, c, h, keep[:, t], gates[:, t], cs[:, t], hs[:, t])
            h, c = hs[:, t], cs[:, t]
    return hs, hs[:, -1].copy(), cs[:, -1].copy(), (X, h0, c0, gates, cs, hs, mask)


def lstm_backward(dhs, dh_T, dc_T, cache, W, U):
    """As reference.lstm_backward: (dX, dW, dU, db, dh0, dc0)."""
    X, h0, c0, gates, cs, hs, mask = cache
    B, T, _ = X.shape
    keep = _keep(mask, B, T)
    dh_T, dc_T = np.ascontiguousarray(dh_T), np.array(dc_T, copy=True)
    dZ = np.empty_like(gates)
    if compiled_loop(*h0.shape):
        dh0, dc0 = np.empty_like(h0), np.empty_like(c0)
        has_dhs = dhs is not None
        _backward_loop(dhs if has_dhs else np.zeros((1, 1, 1), dtype=X.dtype), has_dhs,
                       dh_T, dc_T, gates, cs, c0, np.ascontiguousarray(U.T), keep, dZ, dh0, dc0)
    else:
        dh, dc = dh_T, dc_T                         # dc is updated in place
        for t in reversed(range(T)):
            if dhs is not None:
                dh = dh + dhs[:, t]
            _gates_step_backward(dh, dc, gates[:, t], cs[:, t], cs[:, t - 1] if t > 0 else c0,
                                 keep[:, t], dZ[:, t])
            dh_prev = dZ[:, t] @ U.T
            if mask is not None:        # masked rows pass dh through
                dh_prev = np.where(keep[:, t, None], dh_prev, dh)
            dh = dh_prev
        dh0, dc0 = dh, dc
    return lstm_weight_grads(dZ, X, h0, hs, W) + (dh0, dc0)
