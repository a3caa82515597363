"""Masking: mark padded timesteps so that the LSTMs skip them."""
import math

import numpy as np

from .base import Layer


class Masking(Layer):
    """Mask every timestep whose features all equal mask_value, as Keras does.

    The mask (B, T), True where a step counts, goes down the model: an LSTM
    skips the masked steps (its state passes through them unchanged, and
    so does its output), and with return_sequences it hands the mask on, so
    that masked steps add nothing to the loss or the accuracy. The output is
    x with the masked steps set to 0 (as Keras's Masking outputs).
    """

    def __init__(self, mask_value=0.0, input_shape=None, batch_input_shape=None):
        super().__init__(input_shape=input_shape, batch_input_shape=batch_input_shape)
        if isinstance(mask_value, bool) or not isinstance(mask_value, (int, float)) \
                or not math.isfinite(mask_value):
            raise ValueError(f"mask_value must be a finite number, got {mask_value!r}")
        self.mask_value = float(mask_value)

    def get_config(self):
        return {"mask_value": self.mask_value, **super().get_config()}

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError("Masking expects samples of shape (timesteps, features), "
                             f"got per-sample shape {tuple(input_shape)}")
        return input_shape

    def forward(self, x, mask=None):
        self._keep = np.any(x != self.mask_value, axis=-1)
        return x * self._keep[..., None]

    def output_mask(self, mask):
        return self._keep

    def backward(self, dy, input_grad=True):
        return dy * self._keep[..., None]
