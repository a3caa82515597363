"""The kernels compiled with Numba: same functions, same results as
reference.py (held equal to 1e-12 in float64 by tests/test_jit.py).

Dimension legend and conventions: see reference.py, whose docstrings hold
the equations. This module is the backend the layers call: the LSTM's
forward and backward (dispatching to the loops of lstm_loops.py, whose gate
math is gate_math.py's, by the route they are given: a routes.Route, made
by the model's plan for each batch, npLSTM.plan), Dense, the heads
and losses (their loops in head_math.py), Adam and the scans of the input
checks.

Two shapes of the same recurrence, chosen by size (Route.whole_loop):
  small  the whole time loop in one compiled call: the product h U written
         out as loops, no Python per step. Where batch and units are small,
         a BLAS call per step costs more than it saves.
  large  per step one BLAS GEMM (h U, dz U^T) around a compiled
         element-wise gate kernel, with NumPy's BLAS, which needs no
         SciPy as Numba's np.dot would. Where a batch has rows enough
         for several threads (Route.threads, Route.blocks), each thread takes a block
         of rows and calls that BLAS itself from compiled code (blas.py),
         steps and weight gradients alike; else the products are NumPy
         calls from Python, on BLAS's own threads.
In both, x W for all steps is one GEMM before the loop, and dX, dW, dU are
one GEMM each after the backward loop (loops where that work is tiny:
routes.loop_weight_grads), as in reference.py; the cache is reference.py's
LSTMCache.
Unlike reference.py, b joins in the gate math and db is summed in the large
path's backward step, each a pass of its own over a (B, T, 4H) array saved.
"""
import contextlib
import math

import numba
import numpy as np
from numba import njit

from . import blas, reference, routes
from .gate_math import KERNEL
from .head_math import (HEAD, _bce_with_logits, _cce_with_logits, _sigmoid_into,
                        _softmax_into, _squared_error)
from .lstm_loops import (_backward_blocks, _backward_loop, _backward_loop_threaded,
                         _forward_blocks, _forward_loop, _forward_loop_threaded, _gates_step,
                         _gates_step_backward, _weight_blocks, _weight_grads_loop)
from .reference import ACTIVATIONS, activation_backward  # noqa: F401  (as fast in NumPy)


def route_for(B, H=0, loop_threads=1, whole_loop=None, **thresholds):
    """The Route of a batch of B rows (through an LSTM of H units) with this
    process's thread counts and BLAS (routes.route, whose arguments the rest
    are): what the kernels below take when given none, and what a model's
    plan asks for (npLSTM.plan)."""
    return routes.route(B, H, loop_threads, blas.threads(), numba.config.NUMBA_NUM_THREADS,
                        blas.GEMM is not None, whole_loop, **thresholds)


def _step_products(B, n, k, route):
    """Where the per-step products (B, k) @ (k, n) of the large path, from
    Python, are to run: BLAS held to one thread, or as BLAS decides
    (routes.product_threads, as for any product of the batch)."""
    threads = routes.product_threads(B, n, k, route)
    return blas.one_blas_thread() if threads == 1 else contextlib.nullcontext()


def _run_loop(serial, threaded, route, *args):
    """A compiled loop over a batch's rows: its threaded build on the
    route's threads, else the serial one on the calling thread."""
    if route.threads < 2:
        return serial(*args)
    with blas.on_threads(route.threads):
        return threaded(*args)


def _run_blocks(kernel, blocks, dtype, *args):
    """One of the block kernels above over its blocks of rows, a thread a
    block, with BLAS's gemm of precision dtype."""
    with blas.on_threads(len(blocks) - 1):
        kernel(blas.GEMM[dtype.type], blas.BLAS_INT, blocks, *args)


# Dense ----------------------------------------------------------------------------------
# BLAS-bound: NumPy's products as reference.py, their rows on npLSTM's
# threads where large (blas.matmul).


def dense_forward(X, W, b, route=None):
    """As reference.dense_forward."""
    F, K = W.shape
    route = route or route_for(len(X) if X.ndim > 1 else 1)
    return blas.matmul(X.reshape(-1, F), W, route).reshape(X.shape[:-1] + (K,)) + b


def dense_backward(dZ, X, W, with_dX=True, route=None):
    """As reference.dense_backward."""
    F, K = W.shape
    route = route or route_for(len(X) if X.ndim > 1 else 1)
    dZ2 = dZ.reshape(-1, K)
    dX = blas.matmul(dZ2, W.T, route).reshape(X.shape) if with_dX else None
    return dX, blas.matmul(X.reshape(-1, F).T, dZ2, route), dZ2.sum(axis=0)


# The head: activations and the losses fused with them (their loops in head_math.py) ---------

# The arrays written below are made C-ordered whatever z's layout (np.empty,
# not empty_like): a reshaped view of them must be the array itself, not a
# copy that the kernel would fill in vain.
def sigmoid(z):
    """As reference.sigmoid."""
    a = np.empty(z.shape, dtype=z.dtype)
    _sigmoid_into(np.ascontiguousarray(z), a)
    return a


def softmax(z):
    """As reference.softmax."""
    a = np.empty(z.shape, dtype=z.dtype)
    _softmax_into(np.ascontiguousarray(z).reshape(-1, z.shape[-1]), a.reshape(-1, z.shape[-1]))
    return a


def activation_forward(name, z):
    """As reference.activation_forward."""
    if name == "sigmoid":
        return sigmoid(z)
    if name == "softmax":
        return softmax(z)
    return reference.activation_forward(name, z)


def _row_loss(kernel, z, y, weights, *outputs):
    """Call a compiled loss on z, y (and the head's outputs, when it makes
    them) as rows x outputs, with the row weights: (L, dL/dz)."""
    K = z.shape[-1]
    w = reference.mean_weights(z) if weights is None else weights
    grad = np.empty(z.shape, dtype=z.dtype)
    loss = kernel(np.ascontiguousarray(z).reshape(-1, K), np.ascontiguousarray(y).reshape(-1, K),
                  np.ascontiguousarray(w, dtype=z.dtype).reshape(-1), grad.reshape(-1, K),
                  *(a.reshape(-1, K) for a in outputs))
    return loss, grad


def binary_crossentropy_with_logits(z, y, weights=None):
    """As reference.binary_crossentropy_with_logits: (L, dL/dz)."""
    return _row_loss(_bce_with_logits, z, y, weights, np.empty(z.shape, dtype=z.dtype))  # unused


def categorical_crossentropy_with_logits(z, y, weights=None):
    """As reference.categorical_crossentropy_with_logits: (L, dL/dz)."""
    return _row_loss(_cce_with_logits, z, y, weights, np.empty(z.shape, dtype=z.dtype))


def mean_squared_error(a, y, weights=None):
    """As reference.mean_squared_error: (L, dL/da)."""
    return _row_loss(_squared_error, a, y, weights)


# Adam ------------------------------------------------------------------------------------


# The same equation compiled, for the compiled batches to compute each
# step's coefficients themselves (a Python call per step would cost more
# than the tutorials' whole step).
adam_coefficients = njit(inline="always")(reference.adam_coefficients)


@njit(cache=True, error_model="numpy")
def adam_update(p, g, m, v, alpha, beta_1, beta_2, eps):
    """As reference.adam_update, one pass over flat arrays (NumPy's
    error model lets LLVM vectorise the division). The coefficients
    take the parameters' precision, as NumPy's Python scalars do there:
    float32 then runs 8 to a vector instruction, not 4 as float64."""
    real = p.dtype.type
    rate_1, rate_2, alpha, eps = real(1.0 - beta_1), real(1.0 - beta_2), real(alpha), real(eps)
    for k in range(p.size):
        m[k] += rate_1 * (g[k] - m[k])
        v[k] += rate_2 * (g[k] * g[k] - v[k])
        p[k] -= alpha * m[k] / (math.sqrt(v[k]) + eps)


@njit(**HEAD)
def all_finite(a):
    """Whether every entry of the flat array a is finite, in one pass that
    vectorises: x * 0 is 0 for a finite x, NaN for NaN and infinities (no
    array of booleans, as np.isfinite(a).all() makes)."""
    zero = a.dtype.type(0.0)
    total = zero
    for k in range(a.size):
        total += a[k] * zero
    return total == zero


@njit(**KERNEL)
def value_range(a):
    """(smallest, largest) entry of the flat, non-empty, finite array a, in
    one call where a.min() and a.max() are two (the input checks of a
    tutorial model's step are a good part of its time)."""
    low = high = a[0]
    for k in range(1, a.size):
        low = min(low, a[k])
        high = max(high, a[k])
    return low, high


# The LSTM kernels ------------------------------------------------------------------------


def _weight_products(dZ, X, h0, hs, W, with_dX, route):
    """dX (None without with_dX), dW, dU of reference.lstm_weight_grads, one
    GEMM each, dU without its (B, T, H) array of every h_{t-1}: in hs's rows
    (b, t), row r - 1 holds the h_{t-1} of row r, except at t = 0, where it
    holds the row before's last h (nothing for r = 0) in place of h0. So
    one product over hs and dZ shifted by a row, mended at t = 0 by one
    product of B rows."""
    B, T, D = X.shape
    H = h0.shape[1]
    dZ2 = dZ.reshape(B * T, 4 * H)
    dX = blas.matmul(dZ2, W.T, route).reshape(B, T, D) if with_dX else None
    dW = blas.matmul(X.reshape(B * T, D).T, dZ2, route)
    hs2 = hs.reshape(B * T, H)
    dU = blas.matmul(hs2[:-1].T, dZ2[1:], route)
    taken = np.zeros_like(h0)               # what the shifted product took at t = 0
    taken[1:] = hs[:-1, -1]
    dU += blas.matmul((h0 - taken).T, dZ[:, 0], route)
    return dX, dW, dU


def _weight_products_blocks(blocks, dZ, X, h0, hs, W, with_dX):
    """As _weight_products, each thread the products of its block of rows
    (_weight_blocks), the blocks' dW and dU then summed."""
    B, T, D = X.shape
    H4 = dZ.shape[2]
    X, W = np.ascontiguousarray(X), np.ascontiguousarray(W)
    dX = np.empty_like(X) if with_dX else X          # without dX, X stands in, unwritten
    dW = np.empty((len(blocks) - 1, D, H4), dtype=X.dtype)
    dU = np.empty((len(blocks) - 1, H4 // 4, H4), dtype=X.dtype)
    _run_blocks(_weight_blocks, blocks, X.dtype, with_dX, dZ, X, h0, hs, W, dX, dW, dU,
                np.empty_like(h0))
    return (dX if with_dX else None), dW.sum(axis=0), dU.sum(axis=0)


def lstm_weight_grads(dZ, X, h0, hs, W, with_dX=True, route=None):
    """As reference.lstm_weight_grads: (dX, dW, dU, db)."""
    B, T, D = X.shape
    H = h0.shape[1]
    if not routes.loop_weight_grads(B, T, D, H):
        return _weight_products(dZ, X, h0, hs, W, with_dX, route or route_for(B, H)) + \
            (dZ.reshape(B * T, 4 * H).sum(axis=0),)
    X = np.ascontiguousarray(X)
    dX, dW = np.empty_like(X) if with_dX else None, np.empty_like(W)
    dU = np.empty((h0.shape[1], W.shape[1]), dtype=W.dtype)
    db = np.empty(W.shape[1], dtype=W.dtype)
    _weight_grads_loop(dZ, X, h0, hs, np.ascontiguousarray(W.T), X if dX is None else dX,
                       dW, dU, db, with_dX)       # without dX, X stands in, unwritten
    return dX, dW, dU, db


def _keep(mask, B, T):
    """The mask as the compiled loops take it: every step kept when None."""
    return np.ones((B, T), dtype=np.bool_) if mask is None else np.ascontiguousarray(mask)


def lstm_forward(X, h0, c0, W, U, b, mask=None, route=None):
    """As reference.lstm_forward: (hs, h_T, c_T, cache); route: how this
    batch runs (routes.Route; None: route_for its size)."""
    B, T, D = X.shape
    H = h0.shape[1]
    route = route or route_for(B, H)
    blocks = route.blocks
    if blocks is None:
        XW = blas.matmul(X.reshape(B * T, D), W, route).reshape(B, T, 4 * H)  # b joins in the gates
    else:
        XW = np.empty((B, T, 4 * H), dtype=X.dtype)             # each thread makes its rows'
    h0, c0, b = np.ascontiguousarray(h0), np.ascontiguousarray(c0), np.ascontiguousarray(b)
    keep = _keep(mask, B, T)
    gates = np.empty((B, T, 4 * H), dtype=X.dtype)
    cs = np.empty((B, T, H), dtype=X.dtype)
    hs = np.empty((B, T, H), dtype=X.dtype)
    if route.whole_loop:
        _run_loop(_forward_loop, _forward_loop_threaded, route, XW, b, h0, c0, U, keep, gates,
                  cs, hs)
    else:
        # z is the one buffer of every step's product (a new array per step
        # cost page faults).
        z = np.empty((B, 4 * H), dtype=X.dtype)
        if blocks is not None:
            X, W, U = (np.ascontiguousarray(a) for a in (X, W, U))
            _run_blocks(_forward_blocks, blocks, X.dtype, X, W, U, b, h0, c0, keep, XW, gates, cs,
                        hs, z)
        else:
            # hs[:, t - 1] is a strided view (rows T steps apart) that BLAS
            # reads in place, and the gate kernel takes whole arrays and t.
            with _step_products(B, 4 * H, H, route):
                for t in range(T):
                    np.matmul(hs[:, t - 1] if t > 0 else h0, U, out=z)
                    _gates_step(t, z, XW, b, h0, c0, keep, gates, cs, hs)
    return hs, hs[:, -1].copy(), cs[:, -1].copy(), reference.LSTMCache(X, h0, c0, gates, cs, hs,
                                                                      mask)


def lstm_backward(dhs, dh_T, dc_T, cache, W, U, with_dX=True, route=None):
    """As reference.lstm_backward: (dX, dW, dU, db, dh0, dc0); route: as
    lstm_forward's, the same for a pass and its backward."""
    X, h0, c0, gates, cs, hs, mask = cache
    B, T, _ = X.shape
    route = route or route_for(*h0.shape)
    keep = _keep(mask, B, T)
    dh_T, dc_T = np.ascontiguousarray(dh_T), np.array(dc_T, copy=True)
    has_dhs = dhs is not None
    dhs = np.ascontiguousarray(dhs) if has_dhs else np.zeros((1, 1, 1), dtype=X.dtype)  # unread
    dZ = np.empty_like(gates)
    U = np.ascontiguousarray(U)
    if route.whole_loop:
        dh0, dc0 = np.empty_like(h0), np.empty_like(c0)
        _run_loop(_backward_loop, _backward_loop_threaded, route, dhs, has_dhs, dh_T, dc_T,
                  gates, cs, c0, U, keep, dZ, dh0, dc0)
        return lstm_weight_grads(dZ, X, h0, hs, W, with_dX, route) + (dh0, dc0)
    # dc is updated in place; dh and dh_prev are two buffers, swapped each step
    dh, dh_prev, dc = dh_T.copy(), np.empty_like(dh_T), dc_T
    blocks = route.blocks
    if blocks is not None:
        db = np.zeros((len(blocks) - 1, gates.shape[2]), dtype=X.dtype)    # a row per block
        _run_blocks(_backward_blocks, blocks, X.dtype, dhs, has_dhs, dh, dh_prev, dc, gates, cs,
                    c0, keep, U, dZ, db)
        dh = dh if T % 2 == 0 else dh_prev
        return _weight_products_blocks(blocks, dZ, X, h0, hs, W, with_dX) + (db.sum(axis=0), dh, dc)
    db = np.zeros(gates.shape[2], dtype=X.dtype)
    with _step_products(B, h0.shape[1], gates.shape[2], route):
        for t in reversed(range(T)):
            _gates_step_backward(t, dhs, has_dhs, dh, dc, gates, cs, c0, keep, dZ, db)
            np.matmul(dZ[:, t], U.T, out=dh_prev)
            if mask is not None:        # masked rows pass dh through
                np.copyto(dh_prev, dh, where=~keep[:, t, None])
            dh, dh_prev = dh_prev, dh
    return _weight_products(dZ, X, h0, hs, W, with_dX, route) + (db, dh, dc)
