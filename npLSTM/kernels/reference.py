"""The math of npLSTM as plain NumPy functions: the book.

Every forward pass, backward pass, activation and loss of the engine is
written here once, readably, with its equations beside the code. The layers
own parameters and state and call these functions; nothing here keeps state.

Dimension legend
    B  batch size              T  timesteps
    D  input features          H  LSTM units
    F  Dense inputs            K  Dense outputs (classes)

The forward and backward functions take a `route` too, and leave it: the
compiled ones (jit.py) run a batch one of several ways, and this one way.

Conventions (shared with Keras, so weights map one to one)
    gate order i, f, c (candidate), o
    W  kernel            (D, 4H)
    U  recurrent kernel  (H, 4H)
    b  bias              (4H,)
"""
import math
from typing import NamedTuple, Optional

import numpy as np

# --------------------------------------------------------------------------
# Activations. Each forward returns a = act(z); each backward turns the
# gradient on a into the gradient on z, using only a (no need to keep z).
# --------------------------------------------------------------------------


def sigmoid(z):
    """sig(z) = 1 / (1 + exp(-z)), computed from exp(-|z|) so it never overflows."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softmax(z):
    """softmax(z)_k = exp(z_k - max z) / sum_j exp(z_j - max z), over the last axis."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


ACTIVATIONS = {
    "linear": lambda z: z,
    "sigmoid": sigmoid,
    "tanh": np.tanh,
    "softmax": softmax,
}


def activation_forward(name, z):
    """a = act(z) for one of ACTIVATIONS."""
    return ACTIVATIONS[name](z)


def activation_backward(name, a, da):
    """dz from da and a = act(z):

    linear   dz = da
    sigmoid  dz = da * a (1 - a)
    tanh     dz = da * (1 - a^2)
    softmax  dz = a * (da - sum_k a_k da_k)     (the Jacobian diag(a) - a a^T)
    """
    if name == "linear":
        return da
    if name == "sigmoid":
        return da * a * (1.0 - a)
    if name == "tanh":
        return da * (1.0 - a * a)
    if name == "softmax":
        return a * (da - (a * da).sum(axis=-1, keepdims=True))
    raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}")


# --------------------------------------------------------------------------
# LSTM
# --------------------------------------------------------------------------


class LSTMCache(NamedTuple):
    """What lstm_forward keeps for lstm_backward (and for looking inside)."""
    X: np.ndarray               # (B, T, D) the inputs
    h0: np.ndarray              # (B, H) the state before the first step
    c0: np.ndarray              # (B, H)
    gates: np.ndarray           # (B, T, 4H) i, f, g, o of every step, activated
    cs: np.ndarray              # (B, T, H) the cell state after every step
    hs: np.ndarray              # (B, T, H) the hidden state after every step
    mask: Optional[np.ndarray]  # (B, T) of bool, or None: every step counts


def lstm_forward(X, h0, c0, W, U, b, mask=None, route=None):
    """Run an LSTM over a batch of sequences.

    For t = 1..T, with x_t = X[:, t] (B, D):

        z_t = x_t W + h_{t-1} U + b                  (B, 4H), split into i f c o
        i_t = sig(z_i)   f_t = sig(z_f)   g_t = tanh(z_c)   o_t = sig(z_o)
        c_t = f_t * c_{t-1} + i_t * g_t
        h_t = o_t * tanh(c_t)

    and where mask[:, t] is False (a masked step, as Keras's Masking makes
    it) the row skips the step: c_t = c_{t-1}, h_t = h_{t-1}, so its output
    there repeats the last one. Its gates are still computed, and unused.

    Parameters: X (B, T, D); h0, c0 (B, H); W (D, 4H); U (H, 4H); b (4H,);
    mask (B, T) of bool, or None: every step counts.

    Returns (hs, h_T, c_T, cache): hs (B, T, H) every hidden output; h_T, c_T
    (B, H) the final state; cache, an LSTMCache of what lstm_backward needs.
    """
    B, T, _ = X.shape
    H = h0.shape[1]
    XW = input_projection(X, W, b)
    gates = np.empty((B, T, 4 * H), dtype=X.dtype)   # i f g o, activated
    cs = np.empty((B, T, H), dtype=X.dtype)
    hs = np.empty((B, T, H), dtype=X.dtype)
    h, c = h0, c0
    for t in range(T):
        z = XW[:, t] + h @ U
        a = sigmoid(z)                        # i, f, o are sigmoids ...
        a[:, 2 * H:3 * H] = np.tanh(z[:, 2 * H:3 * H])   # ... g is a tanh
        i, f, g, o = np.split(a, 4, axis=1)
        keep = True if mask is None else mask[:, t, None]
        c = np.where(keep, f * c + i * g, c)
        h = np.where(keep, o * np.tanh(c), h)
        gates[:, t], cs[:, t], hs[:, t] = a, c, h
    return hs, h, c, LSTMCache(X, h0, c0, gates, cs, hs, mask)


def lstm_backward(dhs, dh_T, dc_T, cache, W, U, with_dX=True, route=None):
    """Backpropagation through time for lstm_forward.

    dhs (B, T, H) is the gradient on every hidden output, or None when only
    the last output is used (its gradient then comes in dh_T: the last output
    is the final hidden state). dh_T, dc_T (B, H) are the gradients on the
    final state. Going back in time, with tc_t = tanh(c_t):

        dh_t  = dhs_t + dh_{t+1 -> t}                (from above + from the future)
        do_t  = dh_t * tc_t
        dc_t  = dc_{t+1 -> t} + dh_t * o_t * (1 - tc_t^2)
        di_t  = dc_t * g_t     dg_t = dc_t * i_t     df_t = dc_t * c_{t-1}
        dz_t  = [di i(1-i), df f(1-f), dg (1-g^2), do o(1-o)]
        dc_{t -> t-1} = dc_t * f_t
        dh_{t -> t-1} = dz_t U^T

    A masked step passed h and c through unchanged, so it passes their
    gradients through unchanged too (dh_t, dc_{t+1 -> t}), and its dz_t is 0.
    Then dX, dW, dU, db come from all the dz_t at once (lstm_weight_grads).

    Returns (dX, dW, dU, db, dh0, dc0), shaped as X, W, U, b, h0, c0 (dX
    None without with_dX: see lstm_weight_grads).
    """
    X, h0, c0, gates, cs, hs, mask = cache
    dZ = np.empty_like(gates)
    dh_next, dc_next = dh_T, dc_T
    for t in reversed(range(X.shape[1])):
        i, f, g, o = np.split(gates[:, t], 4, axis=1)
        c_prev = cs[:, t - 1] if t > 0 else c0
        tc = np.tanh(cs[:, t])
        dh = dh_next if dhs is None else dh_next + dhs[:, t]
        dc = dc_next + dh * o * (1.0 - tc * tc)
        dz = np.concatenate([
            dc * g * i * (1.0 - i),
            dc * c_prev * f * (1.0 - f),
            dc * i * (1.0 - g * g),
            dh * tc * o * (1.0 - o),
        ], axis=1)
        keep = True if mask is None else mask[:, t, None]
        dZ[:, t] = np.where(keep, dz, 0.0)
        dc_next = np.where(keep, dc * f, dc_next)
        dh_next = np.where(keep, dZ[:, t] @ U.T, dh)
    return lstm_weight_grads(dZ, X, h0, hs, W, with_dX) + (dh_next, dc_next)


def input_projection(X, W, b):
    """x_t W + b for all steps at once, (B, T, D) -> (B, T, 4H).

    It does not depend on the recurrence, so it is one matmul, batch and
    time folded into rows: a 2-D GEMM (a stacked 3-D matmul is slower in
    NumPy). b is added in place: a second array of that size can cost more
    than the matmul itself (few inputs, many rows).
    """
    B, T, D = X.shape
    XW = X.reshape(B * T, D) @ W
    XW += b
    return XW.reshape(B, T, W.shape[1])


def lstm_weight_grads(dZ, X, h0, hs, W, with_dX=True):
    """(dX, dW, dU, db) from dZ (B, T, 4H), the gradient on every step's z:

        dX_t = dz_t W^T    dW = sum x_t^T dz_t    dU = sum h_{t-1}^T dz_t    db = sum dz_t

    Once dZ is known they do not depend on the recurrence: one GEMM each,
    over all rows and steps. Without with_dX, dX is None: a model's first
    layer needs no gradient for its inputs, and it is a GEMM as large as dW's.
    """
    B, T, D = X.shape
    H = h0.shape[1]
    h_prev = np.concatenate([h0[:, None], hs[:, :-1]], axis=1)   # h_{t-1}, (B, T, H)
    dZ2 = dZ.reshape(B * T, 4 * H)
    dX = (dZ2 @ W.T).reshape(B, T, D) if with_dX else None
    return (dX, X.reshape(B * T, D).T @ dZ2, h_prev.reshape(B * T, H).T @ dZ2,
            dZ2.sum(axis=0))


# --------------------------------------------------------------------------
# Dense: z = x W + b over the last axis (any leading axes: batch, time).
# --------------------------------------------------------------------------


def dense_forward(X, W, b, route=None):
    """z = x W + b.   X (..., F); W (F, K); b (K,)  ->  z (..., K)."""
    return X @ W + b


def dense_backward(dZ, X, W, with_dX=True, route=None):
    """dX = dz W^T,  dW = sum x^T dz,  db = sum dz  (sums over all leading axes);
    dX is None without with_dX (as in lstm_weight_grads)."""
    F, K = W.shape
    dZ2 = dZ.reshape(-1, K)
    return dZ @ W.T if with_dX else None, X.reshape(-1, F).T @ dZ2, dZ2.sum(axis=0)


# --------------------------------------------------------------------------
# Losses, reduced as Keras reduces them, each with its gradient.
# A row is one output vector (one sample, or one sample at one timestep);
# each row's loss l_r is reduced over its last axis, and L = sum_r w_r l_r
# with row weights w: 1/R each by default (the mean over the R rows), or
# sample weights and masks already divided as Keras divides them
# (npLSTM.losses.row_weights).
# BCE and CCE take the logits z of their natural head (sigmoid, softmax):
# fused, the gradient is simply w_r (a - y) and no log(0) or overflow can
# occur, whatever z is. MSE takes the outputs a of any head.
# --------------------------------------------------------------------------


def mean_weights(z):
    """Row weights of the plain mean: 1/R for each of the R rows of z."""
    rows = z.shape[:-1]
    return np.full(rows, 1.0 / max(math.prod(rows), 1), dtype=z.dtype)


def binary_crossentropy_with_logits(z, y, weights=None):
    """Binary cross-entropy of a = sig(z) against targets y in [0, 1].

        l = -(y log a + (1 - y) log(1 - a)) = max(z, 0) - z y + log(1 + exp(-|z|))
        l_r = mean of l over the K output units of row r
        L = sum_r w_r l_r,      dL/dz = w_r (sig(z) - y) / K

    Returns (L, dL/dz).
    """
    w = (mean_weights(z) if weights is None else weights)[..., None] / z.shape[-1]
    loss = np.sum(w * (np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))))
    return loss, w * (sigmoid(z) - y)


def categorical_crossentropy_with_logits(z, y, weights=None):
    """Categorical cross-entropy of a = softmax(z) against distributions y.

        log a = z - m - log sum_k exp(z_k - m),     m = max_k z_k
        l_r = -sum_k y_k log a_k                     (summed over classes)
        L = sum_r w_r l_r
        dL/dz = w_r (a sum_k y_k - y) = w_r (a - y) when y sums to 1

    Returns (L, dL/dz).
    """
    w = (mean_weights(z) if weights is None else weights)[..., None]
    shifted = z - z.max(axis=-1, keepdims=True)
    log_a = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    loss = -np.sum(w * y * log_a)
    return loss, w * (np.exp(log_a) * y.sum(axis=-1, keepdims=True) - y)


def mean_squared_error(a, y, weights=None):
    """l_r = mean over the K outputs of row r of (a - y)^2;  L = sum_r w_r l_r;
    dL/da = w_r 2 (a - y) / K.

    Returns (L, dL/da).
    """
    w = (mean_weights(a) if weights is None else weights)[..., None] / a.shape[-1]
    diff = a - y
    return np.sum(w * diff * diff), 2.0 * w * diff


def adam_coefficients(t, learning_rate, beta_1, beta_2, epsilon, pytorch_form):
    """(alpha_t, eps_t) of Adam's step t, the first being 1 (see
    npLSTM.optimizers.Adam): alpha_t = lr sqrt(1 - b2^t) / (1 - b1^t), and
    eps_t = eps, or eps sqrt(1 - b2^t) in PyTorch's form. t is a float, so
    that b^t is the C library's pow in Python and in compiled code alike."""
    correction_2 = math.sqrt(1.0 - beta_2 ** t)
    alpha = learning_rate * correction_2 / (1.0 - beta_1 ** t)
    return alpha, (epsilon * correction_2 if pytorch_form else epsilon)


def adam_update(p, g, m, v, alpha, beta_1, beta_2, eps):
    """One Adam step, in place (see npLSTM.optimizers.Adam for alpha and eps):

        m = b1 m + (1 - b1) g
        v = b2 v + (1 - b2) g^2
        p -= alpha m / (sqrt(v) + eps)
    """
    m += (1.0 - beta_1) * (g - m)
    v += (1.0 - beta_2) * (g * g - v)
    p -= alpha * m / (np.sqrt(v) + eps)



# --------------------------------------------------------------------------
# Scans for the input checks (npLSTM.checks) and the divergence check.
# --------------------------------------------------------------------------

def all_finite(a):
    """Whether every entry of the flat array a is finite (no NaN, no infinity)."""
    return bool(np.isfinite(a).all())


def value_range(a):
    """(smallest, largest) entry of the flat, non-empty, finite array a."""
    return a.min(), a.max()
