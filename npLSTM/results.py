"""What training and backpropagation hand back, and how accuracy is counted."""
from dataclasses import dataclass, field

import numpy as np


class TrainingDiverged(FloatingPointError):
    """A training step produced a non-finite loss or gradient.

    The step was not applied: weights, optimizer moments and recurrent
    state are as they were after the last good step.
    """


@dataclass
class History:
    """What fit recorded: history["loss"] (and "accuracy") per epoch."""
    epoch: list = field(default_factory=list)
    history: dict = field(default_factory=dict)

    def record(self, epoch, **values):
        self.epoch.append(epoch)
        for key, value in values.items():
            self.history.setdefault(key, []).append(value)


@dataclass
class Backprop:
    """One forward and backward pass, nothing updated (Sequential.backprop)."""
    loss: float
    grads: list           # parameter gradients, in get_weights() order
    inputs: np.ndarray    # dL/dX
    states: list          # dL/d(h0, c0) of each stateful LSTM, in layer order


def count_correct(outputs, targets, mask=None):
    """Correct predictions and their number: argmax over classes when there
    are several outputs per step, a 0.5 threshold when there is one; only
    the steps that count under the mask."""
    if outputs.shape[-1] > 1:
        hits = outputs.argmax(axis=-1) == targets.argmax(axis=-1)
    else:
        hits = ((outputs > 0.5) == (targets > 0.5))[..., 0]
    if mask is not None:
        return int(np.count_nonzero(hits[mask])), int(np.count_nonzero(mask))
    return int(np.count_nonzero(hits)), hits.size
