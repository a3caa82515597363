"""The LSTM layer: owns W, U, b and the recurrent state; the math is in kernels."""
from dataclasses import dataclass

import numpy as np

from ..checks import positive_int
from .base import Layer, glorot_uniform, orthogonal


@dataclass
class LSTMTrace:
    """What one LSTM layer computed at every step of a pass (Sequential.trace).

    Every array is (B, T, H): sample, step, unit. With i, f, g, o read from
    these arrays, the layer's equations hold as the kernels computed them:
        cell[:, t]   = f * cell[:, t-1] + i * g      (before step 0: initial_cell)
        hidden[:, t] = o * tanh(cell[:, t])
    """
    layer: str                # the layer's name in the model (as summary() prints it)
    input_gate: np.ndarray    # i: how much of the candidate enters the cell
    forget_gate: np.ndarray   # f: how much of the old cell state is kept
    candidate: np.ndarray     # g: the new content offered to the cell, in (-1, 1)
    output_gate: np.ndarray   # o: how much of tanh(cell) is shown as the output
    cell: np.ndarray          # c: the cell state after each step, the memory
    hidden: np.ndarray        # h: the output after each step
    initial_hidden: np.ndarray  # h0 (B, H): the state before the first step
    initial_cell: np.ndarray    # c0 (B, H)

    QUANTITIES = ("input_gate", "forget_gate", "candidate", "output_gate", "cell", "hidden")


class LSTM(Layer):
    """Long short-term memory layer with Keras's defaults and weight layout.

    units             H, the size of the hidden and cell state
    return_sequences  output every step's h (B, T, H), or only the last (B, H)
    stateful          carry the final (h, c) of one call into the next, row j
                      to row j (Keras semantics); gradients stop at the call
                      boundary. Needs a fixed batch size (batch_input_shape).
    forget_bias       the forget gate's initial bias: 1.0 is Keras's "unit
                      forget bias"; larger values start the cell remembering
                      over longer lags (f = sig(5) = 0.993 keeps half of a
                      memory for ~100 steps)
    input_bias        the input gate's initial bias: 0.0 as Keras; negative
                      values start the gate mostly shut, so that noise does
                      not wash a memory out (the 1997 paper's initialisation)

    Parameters, as Keras orders them: kernel W (D, 4H), recurrent_kernel
    U (H, 4H), bias b (4H,), gate order i, f, c, o. Initialised Glorot-uniform,
    orthogonal, and zeros but the input slice at input_bias and the forget
    slice at forget_bias ("unit forget bias" at 1: a fresh cell starts out
    remembering).
    """

    param_names = ("kernel", "recurrent_kernel", "bias")

    def __init__(self, units, return_sequences=False, stateful=False,
                 batch_input_shape=None, input_shape=None, forget_bias=1.0, input_bias=0.0):
        super().__init__(input_shape=input_shape, batch_input_shape=batch_input_shape)
        self.units = positive_int(units, "LSTM units")
        for name, value in (("forget_bias", forget_bias), ("input_bias", input_bias)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not np.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        self.forget_bias, self.input_bias = float(forget_bias), float(input_bias)
        self.return_sequences = bool(return_sequences)
        self.stateful = bool(stateful)
        self.states = None        # (h, c) carried between calls; None means zeros
        self.state_grads = None   # (dh0, dc0) of the last backward pass

    def get_config(self):
        return {"units": self.units, "return_sequences": self.return_sequences,
                "stateful": self.stateful, "forget_bias": self.forget_bias,
                "input_bias": self.input_bias,
                **super().get_config()}

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(
                "LSTM expects samples of shape (timesteps, features), "
                f"got per-sample shape {tuple(input_shape)}")
        timesteps = input_shape[0]
        return (timesteps, self.units) if self.return_sequences else (self.units,)

    def build(self, input_shape, rng, dtype, kernels):
        output_shape = super().build(input_shape, rng, dtype, kernels)
        D, H = input_shape[1], self.units
        bias = np.zeros(4 * H, dtype=dtype)
        bias[:H] = self.input_bias
        bias[H:2 * H] = self.forget_bias
        self.params = [glorot_uniform(rng, (D, 4 * H), dtype),
                       orthogonal(rng, (H, 4 * H), dtype),
                       bias]
        return output_shape

    def initial_states(self, batch, dtype):
        """(h0, c0) of the next pass: the carried state, or zeros."""
        if self.states is not None:
            return self.states
        zeros = np.zeros((batch, self.units), dtype=dtype)
        return zeros, zeros

    def forward(self, x, mask=None):
        h0, c0 = self.initial_states(len(x), x.dtype)
        self._route = self.plan.route(len(x), self.units)
        hs, h, c, self._cache = self.kernels.lstm_forward(x, h0, c0, *self.params, mask=mask,
                                                          route=self._route)
        if self.stateful:
            self.states = (h, c)
        return hs if self.return_sequences else h

    def output_mask(self, mask):
        return mask if self.return_sequences else None

    def trace(self, name):
        """The gates and states of the last forward pass, as an LSTMTrace."""
        cache = self._cache
        i, f, g, o = np.split(cache.gates, 4, axis=2)
        return LSTMTrace(name, i, f, g, o, cache.cs, cache.hs, cache.h0, cache.c0)

    def backward(self, dy, input_grad=True):
        """As every layer's (layers.base): without input_grad, dL/dx is not
        computed (a GEMM as large as dW's) and None is returned."""
        W, U, _ = self.params
        zeros = np.zeros((len(dy), self.units), dtype=dy.dtype)
        if self.return_sequences:
            dhs, dh_T = dy, zeros
        else:
            dhs, dh_T = None, dy     # the last output is the final h
        dX, dW, dU, db, dh0, dc0 = self.kernels.lstm_backward(dhs, dh_T, zeros, self._cache, W, U,
                                                              input_grad, self._route)
        self.grads = [dW, dU, db]
        self.state_grads = (dh0, dc0)
        return dX

    # Recurrent state -------------------------------------------------------

    def get_states(self):
        """A copy of the carried (h, c), or None when it is all zeros."""
        return None if self.states is None else tuple(s.copy() for s in self.states)

    def reset_states(self, states=None):
        """Zero the carried state or, like Keras, set it to states = (h, c)."""
        if states is None:
            self.states = None
            return
        if not self.stateful:
            raise ValueError("reset_states(states) needs a stateful LSTM; this one is stateless")
        if len(states) != 2:
            raise ValueError(f"states must be a pair (h, c), got {len(states)} arrays")
        dtype = self.params[0].dtype
        shape = (self.batch_size, self.units)
        checked = []
        for name, s in zip("hc", states):
            s = np.asarray(s, dtype=dtype)
            if self.batch_size is not None and s.shape != shape:
                raise ValueError(f"state {name} must have shape {shape}, got {s.shape}")
            if not np.all(np.isfinite(s)):
                raise ValueError(f"state {name} contains NaN or infinity")
            checked.append(s.copy())
        self.states = tuple(checked)
