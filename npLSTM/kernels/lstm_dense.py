"""Training steps of an LSTM under a Dense head, compiled: a fit's batches
in one call.

For the tutorials' tiny models (batch 1-7, 20 units) the math of a step is a
few microseconds; called layer by layer from Python, with NumPy's small
calls around the compiled loops, a step costs many times that. Here the same pieces
of jit.py run back to back inside one compiled function, batch after batch:

    x W, the recurrence (b in it)   jit._forward_loop
    head z = h Wd + bd              dense_rows (below)
    outputs, loss and dL/dz, fused  jit._bce_with_logits / jit._cce_with_logits
    head backward                   dense_rows_backward (below)
    the recurrence backward         jit._backward_loop
    dW, dU, db                      jit._weight_grads_loop
    every gradient finite? then     jit.adam_update on the flat parameters

npLSTM.compiled_batches decides when a model takes this path; the results match
the layer-by-layer steps to rounding (tests/test_compiled_batches.py).
"""
import numpy as np
from numba import njit

from .gate_math import KERNEL, _copy
from .head_math import _bce_with_logits, _cce_with_logits
from .jit import adam_coefficients, adam_update, all_finite
from .lstm_loops import _backward_loop, _forward_loop, _weight_grads_loop


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


@njit(**dict(KERNEL, fastmath={"contract", "reassoc"}))
def dense_rows_backward(dz, x, W, dx, dW, db):
    """dx = dz W^T, dW = x^T dz, db = sum of dz's rows (reference.dense_backward).
    dx's sums may be reordered ("reassoc"), so that they vectorise too."""
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
            dx[r, f] = total


@njit(inline="always")     # compiled inside lstm_dense_fit only: one compile, not two
def lstm_dense_train_step(X, y, row_weights, h0, c0, W, U, b, Wd, bd, every_step, softmax,
                          params, grads, dW, dU, db, dWd, dbd, m, v, alpha, beta_1, beta_2,
                          eps, outputs, h_T, c_T, no_bias):
    """One Adam step of LSTM -> Dense(softmax or sigmoid) with its cross-entropy.

    X (B, T, D); y and outputs (rows, K), the rows B*T with every_step (a
    TimeDistributed head on every h) or B (a head on the last h);
    row_weights (rows,), each row's share of the loss. W .. bd the
    weights, each a view of the flat params; dW .. dbd views of the flat
    grads in the same places; m, v Adam's moments of params; alpha and eps
    this step's (optimizers.Adam.coefficients). no_bias: zeros shaped as b,
    for dense_rows to compute x W alone (b joins in the gate math).

    Fills outputs (before the update), grads, and h_T, c_T; applies the
    update only when the loss and every gradient are finite. Returns
    (loss, whether it was applied).
    """
    B, T, D = X.shape
    H = h0.shape[1]
    XW = np.empty((B, T, 4 * H), dtype=X.dtype)
    dense_rows(X.reshape(B * T, D), W, no_bias, XW.reshape(B * T, 4 * H))
    gates = np.empty_like(XW)
    cs = np.empty((B, T, H), dtype=X.dtype)
    hs = np.empty_like(cs)
    keep = np.ones((B, T), dtype=np.bool_)
    _forward_loop(XW, b, h0, c0, U, keep, gates, cs, hs)
    for r in range(B):
        _copy(hs[r, -1], h_T[r])
        _copy(cs[r, -1], c_T[r])

    top = hs.reshape(B * T, H) if every_step else h_T      # what the head sees
    z = np.empty(outputs.shape, dtype=X.dtype)
    dense_rows(top, Wd, bd, z)
    dz = np.empty_like(z)
    if softmax:
        loss = _cce_with_logits(z, y, row_weights, dz, outputs)
    else:
        loss = _bce_with_logits(z, y, row_weights, dz, outputs)
    d_top = np.empty_like(top)
    dense_rows_backward(dz, top, Wd, d_top, dWd, dbd)

    zeros = np.zeros((B, H), dtype=X.dtype)
    dZ = np.empty_like(gates)
    dh0, dc0 = np.empty_like(zeros), np.empty_like(zeros)
    # the head's gradient reaches every h, or only the last (hs then stands in, unread)
    dhs, dh_T = (d_top.reshape(B, T, H), zeros) if every_step else (hs, d_top)
    _backward_loop(dhs, every_step, dh_T, zeros, gates, cs, c0, U, keep, dZ, dh0, dc0)
    _weight_grads_loop(dZ, X, h0, hs, W.T, X, dW, dU, db, False)       # no dX: X stands in

    finite = np.isfinite(loss) and all_finite(grads)
    if finite:
        adam_update(params, grads, m, v, alpha, beta_1, beta_2, eps)
    return loss, finite


@njit(**KERNEL)
def lstm_dense_fit(X, y, sample_weights, order, batch_size, h0, c0, stateful, W, U, b, Wd, bd,
                   every_step, softmax, params, grads, dW, dU, db, dWd, dbd, m, v, first_step,
                   learning_rate, beta_1, beta_2, epsilon, pytorch_form, outputs, losses):
    """lstm_dense_train_step over batches: rows order[:batch_size], then the
    next batch_size, and so on, one step each (len(losses) of them).

    X (N, T, D); y, outputs (N, R, K) and sample_weights (N, R), with R = T
    under a head on every h, else 1. Within a batch each row weighs its
    sample weight over the batch's number of rows, as losses.row_weights
    divides them. (h0, c0) is the state before the first batch; stateful,
    each batch starts from the state the last one ended in, else from zeros.
    first_step .. pytorch_form: the first batch's Adam step number and
    Adam's settings (jit.adam_coefficients).

    Fills outputs at each sample's place and losses, one per batch; stops
    at a batch whose loss or gradients are not finite, without applying it
    (its loss is kept). Returns (batches applied, h, c: the state after
    them, the sum of the applied batches' losses times their rows, in
    order, as Sequential._run_batches sums them).
    """
    _, T, D = X.shape
    H = h0.shape[1]
    R, K = y.shape[1], y.shape[2]
    h, c = h0, c0
    loss_sum = 0.0
    no_bias = np.zeros_like(b)                  # made once, not per step
    for k in range(len(losses)):
        rows = order[k * batch_size:(k + 1) * batch_size]
        n = len(rows)
        # The batch's rows gathered by loops (_copy): NumPy-style indexing
        # by rows compiles its error messages, seconds at a first run.
        batch_X = np.empty((n, T, D), dtype=X.dtype)
        batch_y = np.empty((n * R, K), dtype=X.dtype)
        row_weights = np.empty(n * R, dtype=X.dtype)
        for i in range(n):
            for t in range(T):
                _copy(X[rows[i], t], batch_X[i, t])
            for r in range(R):
                _copy(y[rows[i], r], batch_y[i * R + r])
                row_weights[i * R + r] = sample_weights[rows[i], r] / (n * R)
        if stateful:
            start_h, start_c = h, c
        else:
            start_h = start_c = np.zeros((n, H), dtype=X.dtype)
        h_T, c_T = np.empty((n, H), dtype=X.dtype), np.empty((n, H), dtype=X.dtype)
        batch_outputs = np.empty((n * R, K), dtype=X.dtype)
        alpha, eps = adam_coefficients(float(first_step + k), learning_rate, beta_1, beta_2,
                                       epsilon, pytorch_form)
        losses[k], applied = lstm_dense_train_step(
            batch_X, batch_y, row_weights, start_h, start_c, W, U, b, Wd, bd, every_step,
            softmax, params, grads, dW, dU, db, dWd, dbd, m, v, alpha, beta_1, beta_2,
            eps, batch_outputs, h_T, c_T, no_bias)
        if not applied:
            return k, h, c, loss_sum
        loss_sum += losses[k] * n
        for i in range(n):
            for r in range(R):
                _copy(batch_outputs[i * R + r], outputs[rows[i], r])
        h, c = h_T, c_T
    return len(losses), h, c, loss_sum
