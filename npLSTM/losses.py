"""Losses by name, each paired with the head activation it is fused with.

Cross-entropies are computed from the head's logits z, never from its
probabilities: the fused gradient is (a - y) / N and stays exact and finite
for any z (see kernels.reference). A model compiled with a cross-entropy
therefore needs the matching head: BCE a sigmoid Dense, categorical CE a
softmax Dense. MSE works on the outputs of any last layer.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class Loss:
    name: str
    head_activation: Optional[str]   # the activation it is fused with; None: any head
    kernel: str                      # its function in npLSTM.kernels: (logits or outputs,
                                     # targets) -> (loss, gradient)

    @property
    def is_classification(self):
        return self.head_activation is not None

    def compute(self, kernels, values, targets, weights=None):
        """(loss, gradient) with a backend's kernels (a module of npLSTM.kernels);
        weights: each row's share of the loss (row_weights), None for the mean."""
        loss, grad = getattr(kernels, self.kernel)(values, targets, weights)
        return float(loss), grad


def row_weights(rows, mask=None, sample_weight=None, dtype="float64"):
    """Each output row's share of the loss, as Keras divides it, or None for
    the plain mean (neither mask nor sample weights).

    rows           the shape of the rows: the output's shape without its last axis
    mask           (rows) of bool, True where the step counts, or None
    sample_weight  (batch,) or (rows), or None: ones

    Without a mask, L = sum_r w_r l_r / R over all R rows; with one,
    L = sum_r m_r w_r l_r / sum_r m_r: masked rows weigh nothing, and the
    mean is over the rows that count (0 when none does).
    """
    if mask is None and sample_weight is None:
        return None
    w = np.ones(rows, dtype=dtype)
    if sample_weight is not None:
        w = w * sample_weight.reshape(sample_weight.shape + (1,) * (len(rows) - sample_weight.ndim))
    if mask is None:
        return w / w.size
    counted = int(mask.sum())
    return w * mask / counted if counted else np.zeros(rows, dtype=dtype)


LOSSES = {
    loss.name: loss
    for loss in (
        Loss("binary_crossentropy", "sigmoid", "binary_crossentropy_with_logits"),
        Loss("categorical_crossentropy", "softmax", "categorical_crossentropy_with_logits"),
        Loss("mse", None, "mean_squared_error"),
    )
}
ALIASES = {"mean_squared_error": "mse"}


def get(loss):
    """The Loss of a name (or the Loss itself)."""
    if isinstance(loss, Loss):
        return loss
    name = ALIASES.get(loss, loss)
    if name not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; known: {sorted(LOSSES) + sorted(ALIASES)}")
    return LOSSES[name]
