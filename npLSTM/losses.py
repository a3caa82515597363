"""Losses by name, each paired with the head activation it is fused with.

Cross-entropies are computed from the head's logits z, never from its
probabilities: the fused gradient is (a - y) / N and stays exact and finite
for any z (see kernels.reference). A model compiled with a cross-entropy
therefore needs the matching head: BCE a sigmoid Dense, categorical CE a
softmax Dense. MSE works on the outputs of any last layer.
"""
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Loss:
    name: str
    head_activation: Optional[str]   # the activation it is fused with; None: any head
    kernel: str                      # its function in npLSTM.kernels: (logits or outputs,
                                     # targets) -> (loss, gradient)

    @property
    def is_classification(self):
        return self.head_activation is not None

    def compute(self, kernels, values, targets):
        """(loss, gradient) with a backend's kernels (a module of npLSTM.kernels)."""
        loss, grad = getattr(kernels, self.kernel)(values, targets)
        return float(loss), grad


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
