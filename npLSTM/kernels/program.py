"""A whole training step of any model the layers build, compiled: the model
as a program, an op per layer, run batch after batch with no Python
between the layers or the steps (npLSTM.executor makes the program).

    op          forward                              backward
    LSTM        x W, the recurrence (lstm_loops)     the recurrence back; dW, dU, db, dx
    DENSE       z = x W + b, a = act(z)              dz = act'(a) da; dW, db, dx
    ACTIVATION  a = act(x)                           dx = act'(a) da
    REPEAT      a[:, t] = x, t < n                   dx = sum over t of da[:, t]
    RESHAPE     the same memory, other shape         the same memory
    MASKING     keep = any(x != value), a = x keep   dx = da keep

then the loss (fused with the head's sigmoid or softmax, or MSE on its
outputs), and the optimizer (Adam or SGD, with Keras's clipping) on the
flat parameters, when the loss and every gradient are finite. The pieces
are those the layers call: lstm_loops.py, head_math.py, jit.py's Adam.

Memory. An op reads and writes slices of three flat buffers laid out per
sample: `work` (values), `grad` (their gradients, the same layout) and
`keep` (masks). A slice at per-sample offset o of size s is, for a batch
of n samples, buffer[n o : n (o + s)], C-ordered (n, ...). An op's output
is its successor's input, the same slice; a Reshape's output is its input's
slice, and an LSTM with return_sequences outputs its hs. The fields of an
op are the columns below; TimeDistributed folds its steps into the rows
(ROWS, the rows per sample).
"""
import numpy as np
from numba import njit

from .gate_math import KERNEL, _copy
from .head_math import (_activation_backward_into, _activation_into, _bce_with_logits,
                        _cce_with_logits, _squared_error, dense_rows, dense_rows_backward)
from .jit import adam_coefficients, adam_update, all_finite
from .lstm_loops import _backward_loop, _forward_loop, _weight_grads_loop

# Op kinds
LSTM, DENSE, ACTIVATION, REPEAT, RESHAPE, MASKING = range(6)
# Columns of an op (int64). Sizes are per row; an op runs on n * ROWS rows.
(KIND,       # one of the kinds above
 ROWS,       # rows per sample (TimeDistributed's steps, folded; else 1)
 STEPS,      # LSTM, MASKING: timesteps T; REPEAT: n; DENSE, ACTIVATION: vectors per row
 IN_F,       # features of the input's last axis (D, F)
 OUT_F,      # of the output's (H, K)
 FLAG,       # LSTM: return_sequences; DENSE, ACTIVATION: activation code (head_math)
 IN_AT,      # the input's slice (its size: ROWS STEPS IN_F, REPEAT: ROWS IN_F)
 OUT_AT,     # the output's slice
 AUX_AT,     # LSTM: gates (T 4H), cs (T H), hs (T H) in a row; DENSE: z
 W_AT,       # offsets in the flat parameters: kernel W, then LSTM's U, then the bias
 U_AT,
 B_AT,
 STATE_AT,   # stateful LSTM: its (h, c) in the states buffer, (n H) each; else -1
 KEEP_IN,    # the slice of keep of the input's mask, or -1: none
 KEEP_OUT,   # MASKING: the slice it writes
 FIELDS) = range(16)
# Losses; optimizers; clipping (settings, a float array, by these indices)
BCE, CCE, MSE = range(3)
(LOSS, FIRST, OUTPUT_KEEP, HEAD) = range(4)       # the fields of `head`
ADAM, SGD = range(2)
NO_CLIP, CLIP_VALUE, CLIP_GLOBAL_NORM, CLIP_NORM = range(4)
(OPTIMIZER, LEARNING_RATE, BETA_1, BETA_2, EPSILON, PYTORCH_FORM, MOMENTUM, NESTEROV,
 CLIP, CLIP_BY, SETTINGS) = range(11)




@njit(**KERNEL)
def _slice(buffer, n, at, count):
    """count entries of a buffer from per-sample offset `at`, for n samples."""
    return buffer[n * at:n * at + count]


@njit(**KERNEL)
def _param(params, at, size):
    return params[at:at + size]


@njit(**KERNEL)
def _keep(keep, op, n, kept):
    """The mask of an LSTM op's steps (rows, T); without one, from `kept`,
    all True."""
    rows, T = n * op[ROWS], op[STEPS]
    if op[KEEP_IN] < 0:
        return kept[:rows * T].reshape(rows, T)
    return _slice(keep, n, op[KEEP_IN], rows * T).reshape(rows, T)


@njit(**KERNEL)
def _lstm_arrays(op, n, params, work):
    """An LSTM op's W, U, b and the gates, cs, hs of its last forward."""
    m, T, D, H = op[ROWS], op[STEPS], op[IN_F], op[OUT_F]
    rows = n * m
    W = _param(params, op[W_AT], D * 4 * H).reshape(D, 4 * H)
    U = _param(params, op[U_AT], H * 4 * H).reshape(H, 4 * H)
    b = _param(params, op[B_AT], 4 * H)
    at = op[AUX_AT]
    gates = _slice(work, n, at, rows * T * 4 * H).reshape(rows, T, 4 * H)
    cs = _slice(work, n, at + m * T * 4 * H, rows * T * H).reshape(rows, T, H)
    hs = _slice(work, n, at + m * T * 5 * H, rows * T * H).reshape(rows, T, H)
    return W, U, b, gates, cs, hs


@njit(**KERNEL)
def _initial_states(op, n, states, zeros):
    """(h0, c0) of an LSTM op: its carried state when stateful (never
    under TimeDistributed: a row a sample), else from `zeros`."""
    H, at = op[OUT_F], op[STATE_AT]
    if at < 0:
        zero = zeros[:n * op[ROWS] * H].reshape(n * op[ROWS], H)
        return zero, zero
    return _slice(states, n, at, n * H).reshape(n, H), \
        _slice(states, n, at + H, n * H).reshape(n, H)


@njit(**KERNEL)
def _masked(a, mask, out):
    """out = a where the mask says the step counts, else 0 (rows, T, F)."""
    for r in range(a.shape[0]):
        for t in range(a.shape[1]):
            for f in range(a.shape[2]):
                out[r, t, f] = a[r, t, f] if mask[r, t] else 0.0


@njit(inline="always")
def forward(ops, values, fused, n, params, work, grad, keep, states, kept, zeros):
    """Every op forward on a batch of n samples, whose input is in work's
    first slice; the carried states are read, not written (commit_states).
    An op runs on n * ROWS rows (TimeDistributed's steps folded in). fused:
    the loss computes the head's activation. kept and zeros: all True and
    all 0, read only; an LSTM's x W goes in grad's slice of its gates,
    unused until backward."""
    last = ops.shape[0] - 1
    for k in range(ops.shape[0]):
        op = ops[k]
        rows, T, F, K = n * op[ROWS], op[STEPS], op[IN_F], op[OUT_F]
        kind = op[KIND]
        if kind == LSTM:
            x = _slice(work, n, op[IN_AT], rows * T * F).reshape(rows * T, F)
            W, U, b, gates, cs, hs = _lstm_arrays(op, n, params, work)
            h0, c0 = _initial_states(op, n, states, zeros)
            XW = _slice(grad, n, op[AUX_AT], rows * T * 4 * K).reshape(rows, T, 4 * K)
            dense_rows(x, W, zeros[:4 * K], XW.reshape(rows * T, 4 * K))  # b joins in the gates
            _forward_loop(XW, b, h0, c0, U, _keep(keep, op, n, kept), gates, cs, hs)
            if not op[FLAG]:                                 # the last h alone
                out = _slice(work, n, op[OUT_AT], rows * K).reshape(rows, K)
                for r in range(rows):
                    _copy(hs[r, T - 1], out[r])
        elif kind == DENSE:
            x = _slice(work, n, op[IN_AT], rows * T * F).reshape(rows * T, F)
            z = _slice(work, n, op[AUX_AT], rows * T * K).reshape(rows * T, K)
            dense_rows(x, _param(params, op[W_AT], F * K).reshape(F, K),
                       _param(params, op[B_AT], K), z)
            if not (fused and k == last):
                _activation_into(op[FLAG], z, _slice(work, n, op[OUT_AT], rows * T * K)
                                 .reshape(rows * T, K))
        elif kind == ACTIVATION and not (fused and k == last):
            _activation_into(op[FLAG],
                             _slice(work, n, op[IN_AT], rows * T * F).reshape(rows * T, F),
                             _slice(work, n, op[OUT_AT], rows * T * F).reshape(rows * T, F))
        elif kind == REPEAT:
            x = _slice(work, n, op[IN_AT], rows * F).reshape(rows, F)
            out = _slice(work, n, op[OUT_AT], rows * T * F).reshape(rows, T, F)
            for r in range(rows):
                for t in range(T):
                    _copy(x[r], out[r, t])
        elif kind == MASKING:
            x = _slice(work, n, op[IN_AT], rows * T * F).reshape(rows, T, F)
            out = _slice(work, n, op[OUT_AT], rows * T * F).reshape(rows, T, F)
            mask = _slice(keep, n, op[KEEP_OUT], rows * T).reshape(rows, T)
            for r in range(rows):
                for t in range(T):
                    counts = False
                    for f in range(F):
                        counts = counts or x[r, t, f] != values[k]
                    mask[r, t] = counts
            _masked(x, mask, out)
        # RESHAPE: its output is its input's slice


@njit(inline="always")
def backward(ops, first, fused, n, params, grads, work, grad, keep, states, kept, zeros,
             spare):
    """Every op back from the gradient on the last one's output (in grad),
    down to op `first`, the first with weights, which computes no input
    gradient; the weights' gradients go into grads at the weights' offsets.
    fused: the loss gave the head's dz (a Dense head's, at its z; an
    Activation head's, at its input) rather than its output's gradient.
    kept, zeros: as forward's; spare: scratch for dh0 and dc0. An LSTM's dZ
    goes in grad's slice of its gates."""
    last = ops.shape[0] - 1
    for k in range(last, first - 1, -1):
        op = ops[k]
        rows, T, F, K = n * op[ROWS], op[STEPS], op[IN_F], op[OUT_F]
        with_dx = k > first
        kind = op[KIND]
        if kind == LSTM:
            x = _slice(work, n, op[IN_AT], rows * T * F).reshape(rows, T, F)
            W, U, _, gates, cs, hs = _lstm_arrays(op, n, params, work)
            h0, c0 = _initial_states(op, n, states, zeros)
            zero = zeros[:rows * K].reshape(rows, K)
            if op[FLAG]:       # every h's gradient
                dhs = _slice(grad, n, op[OUT_AT], rows * T * K).reshape(rows, T, K)
                dh_T = zero
            else:              # the last h's alone; hs stands in for dhs, unread
                dhs, dh_T = hs, _slice(grad, n, op[OUT_AT], rows * K).reshape(rows, K)
            dZ = _slice(grad, n, op[AUX_AT], rows * T * 4 * K).reshape(rows, T, 4 * K)
            dh0 = spare[:rows * K].reshape(rows, K)
            dc0 = spare[rows * K:2 * rows * K].reshape(rows, K)
            _backward_loop(dhs, op[FLAG] != 0, dh_T, zero, gates, cs, c0, U,
                           _keep(keep, op, n, kept), dZ, dh0, dc0)
            dx = _slice(grad, n, op[IN_AT], rows * T * F).reshape(rows, T, F)
            # W^T for dx, a row per gate unit (W itself stands in without dx, unread)
            _weight_grads_loop(dZ, x, h0, hs, np.ascontiguousarray(W.T) if with_dx else W, dx,
                               _param(grads, op[W_AT], F * 4 * K).reshape(F, 4 * K),
                               _param(grads, op[U_AT], K * 4 * K).reshape(K, 4 * K),
                               _param(grads, op[B_AT], 4 * K), with_dx)
        elif kind == DENSE:
            dz = _slice(grad, n, op[AUX_AT], rows * T * K).reshape(rows * T, K)
            if not (fused and k == last):
                _activation_backward_into(
                    op[FLAG], _slice(work, n, op[OUT_AT], rows * T * K).reshape(rows * T, K),
                    _slice(grad, n, op[OUT_AT], rows * T * K).reshape(rows * T, K), dz)
            dense_rows_backward(
                dz, _slice(work, n, op[IN_AT], rows * T * F).reshape(rows * T, F),
                _param(params, op[W_AT], F * K).reshape(F, K),
                _slice(grad, n, op[IN_AT], rows * T * F).reshape(rows * T, F),
                _param(grads, op[W_AT], F * K).reshape(F, K), _param(grads, op[B_AT], K), with_dx)
        elif kind == ACTIVATION and not (fused and k == last):
            _activation_backward_into(
                op[FLAG], _slice(work, n, op[OUT_AT], rows * T * F).reshape(rows * T, F),
                _slice(grad, n, op[OUT_AT], rows * T * F).reshape(rows * T, F),
                _slice(grad, n, op[IN_AT], rows * T * F).reshape(rows * T, F))
        elif kind == REPEAT:
            da = _slice(grad, n, op[OUT_AT], rows * T * F).reshape(rows, T, F)
            dx = _slice(grad, n, op[IN_AT], rows * F).reshape(rows, F)
            for r in range(rows):
                _copy(da[r, 0], dx[r])
                for t in range(1, T):
                    for f in range(F):
                        dx[r, f] += da[r, t, f]
        elif kind == MASKING:
            da = _slice(grad, n, op[OUT_AT], rows * T * F).reshape(rows, T, F)
            dx = _slice(grad, n, op[IN_AT], rows * T * F).reshape(rows, T, F)
            _masked(da, _slice(keep, n, op[KEEP_OUT], rows * T).reshape(rows, T), dx)


@njit(inline="always")
def commit_states(ops, n, params, work, states, zeros):
    """Each stateful LSTM's last (h, c) becomes its carried state."""
    for k in range(ops.shape[0]):
        op = ops[k]
        if op[KIND] == LSTM and op[STATE_AT] >= 0:
            _, _, _, _, cs, hs = _lstm_arrays(op, n, params, work)
            h, c = _initial_states(op, n, states, zeros)      # the carried state's views
            for r in range(n):
                _copy(hs[r, op[STEPS] - 1], h[r])
                _copy(cs[r, op[STEPS] - 1], c[r])


@njit(inline="always")
def loss_and_gradient(ops, head, n, y, row_weights, work, grad):
    """The loss of a batch's outputs against y (rows x K); its gradient goes
    where backward takes it. A fused loss writes the head's outputs too."""
    op = ops[ops.shape[0] - 1]
    rows, K = y.shape
    a = _slice(work, n, op[OUT_AT], rows * K).reshape(rows, K)
    if head[LOSS] == MSE:
        return _squared_error(a, y, row_weights,
                              _slice(grad, n, op[OUT_AT], rows * K).reshape(rows, K))
    at = op[AUX_AT] if op[KIND] == DENSE else op[IN_AT]  # where the logits are
    z = _slice(work, n, at, rows * K).reshape(rows, K)
    dz = _slice(grad, n, at, rows * K).reshape(rows, K)
    if head[LOSS] == CCE:
        return _cce_with_logits(z, y, row_weights, dz, a)
    return _bce_with_logits(z, y, row_weights, dz, a)


@njit(inline="always")
def clip(grads, segments, settings):
    """Keras's clipping of the flat gradients, in place (optimizers.Optimizer.clip)."""
    kind, most = settings[CLIP], settings[CLIP_BY]
    real = grads.dtype.type
    if kind == CLIP_VALUE:
        for k in range(grads.size):
            grads[k] = min(max(grads[k], real(-most)), real(most))
        return
    if kind == NO_CLIP:
        return
    parts = segments
    if kind == CLIP_GLOBAL_NORM:                        # one part: all of them
        parts = np.empty((1, 2), dtype=np.int64)
        parts[0, 0], parts[0, 1] = 0, grads.size
    for s in range(parts.shape[0]):
        part = grads[parts[s, 0]:parts[s, 1]]
        total = 0.0
        for k in range(part.size):
            total += float(part[k]) * float(part[k])
        norm = np.sqrt(total)
        if norm > most:
            scale = real(most / norm)
            for k in range(part.size):
                part[k] *= scale


@njit(inline="always")
def update(params, grads, segments, settings, slot_1, slot_2, step):
    """Step number `step` of the optimizer, after clipping: Adam (slots m,
    v) or SGD (slot velocity), as optimizers.py computes them."""
    clip(grads, segments, settings)
    if settings[OPTIMIZER] == ADAM:
        alpha, eps = adam_coefficients(float(step), settings[LEARNING_RATE], settings[BETA_1],
                                       settings[BETA_2], settings[EPSILON],
                                       settings[PYTORCH_FORM] != 0.0)
        adam_update(params, grads, slot_1, slot_2, alpha, settings[BETA_1], settings[BETA_2], eps)
        return
    real = params.dtype.type
    rate, momentum = real(settings[LEARNING_RATE]), real(settings[MOMENTUM])
    for k in range(params.size):
        slot_1[k] = slot_1[k] * momentum - rate * grads[k]
        if settings[NESTEROV] != 0.0:
            params[k] += momentum * slot_1[k] - rate * grads[k]
        else:
            params[k] += slot_1[k]


@njit(**KERNEL)
def train_batches(ops, values, head, X, y, sample_weights, order, batch_size, params, grads,
                  segments, settings, slot_1, slot_2, first_step, work, grad, keep, states,
                  outputs, output_keep, losses):
    """One optimizer step per batch: rows order[:batch_size], then the next
    batch_size, and so on, len(losses) batches.

    X (N, input entries per sample); y, outputs (N, R, K) and sample_weights
    (N, R), R output rows per sample; output_keep (N, R), which rows count
    (a mask on the output, else all). Within a batch a row weighs its sample
    weight over the batch's rows, or, under a mask, over the rows that
    count, as losses.row_weights. Stateful LSTMs start each batch from the
    states buffer and leave their last state there.

    Fills outputs (before each update) and losses; stops at a batch whose
    loss or gradients are not finite, without applying it (its loss is
    kept). Returns (batches applied, the sum of their losses times their
    samples).
    """
    N, S = X.shape
    R, K = y.shape[1], y.shape[2]
    fused = head[LOSS] != MSE
    # Made once for all batches: the steps of a small model take about as
    # long as a few allocations. kept, zeros: read only (no mask; no state,
    # no bias in x W, no gradient from beyond the last step).
    most_steps, most_units = 1, 1
    for op in ops:
        if op[KIND] == LSTM:
            most_steps = max(most_steps, op[ROWS] * op[STEPS])
            most_units = max(most_units, op[ROWS] * op[OUT_F])
    kept = np.ones(batch_size * most_steps, dtype=np.bool_)
    zeros = np.zeros(4 * batch_size * most_units, dtype=work.dtype)
    spare = np.empty(2 * batch_size * most_units, dtype=work.dtype)
    targets = np.empty(batch_size * R * K, dtype=work.dtype)
    weights = np.empty(batch_size * R, dtype=work.dtype)
    loss_sum = 0.0
    for k in range(len(losses)):
        rows = order[k * batch_size:(k + 1) * batch_size]
        n = len(rows)
        # Gathered by loops: NumPy-style indexing by rows compiles its
        # error messages, seconds at a first run.
        x = _slice(work, n, 0, n * S).reshape(n, S)
        batch_y = targets[:n * R * K].reshape(n * R, K)
        for i in range(n):
            _copy(X[rows[i]], x[i])
            for r in range(R):
                _copy(y[rows[i], r], batch_y[i * R + r])
        forward(ops, values, fused, n, params, work, grad, keep, states, kept, zeros)
        row_weights = weights[:n * R]
        counted = 0
        for i in range(n):
            for r in range(R):
                counts = head[OUTPUT_KEEP] < 0 or keep[n * head[OUTPUT_KEEP] + i * R + r]
                output_keep[rows[i], r] = counts
                row_weights[i * R + r] = sample_weights[rows[i], r] if counts else 0.0
                counted += counts
        for j in range(n * R):
            row_weights[j] = row_weights[j] / counted if counted else 0.0
        losses[k] = loss_and_gradient(ops, head, n, batch_y, row_weights, work, grad)
        backward(ops, head[FIRST], fused, n, params, grads, work, grad, keep, states, kept, zeros,
                 spare)
        if not (np.isfinite(losses[k]) and all_finite(grads)):
            return k, loss_sum
        update(params, grads, segments, settings, slot_1, slot_2, first_step + k)
        commit_states(ops, n, params, work, states, zeros)
        loss_sum += losses[k] * n
        op = ops[ops.shape[0] - 1]
        a = _slice(work, n, op[OUT_AT], n * R * K).reshape(n, R, K)
        for i in range(n):
            for r in range(R):
                _copy(a[i, r], outputs[rows[i], r])
    return len(losses), loss_sum
