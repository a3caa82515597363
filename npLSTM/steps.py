"""The steps of a Sequential: forward through its layers, the loss,
backward, the update, and the batches of a fit or an evaluation.

    forward   x -> layer 1 -> ... -> layer n -> outputs
    loss      L and dL/d(logits) of the head (fused) or dL/d(outputs) (MSE)
    backward  layer n -> ... -> layer 1, each storing its parameter gradients
    update    the optimizer changes every parameter in place

Layer by layer on either backend, or, for a small model on the numba
backend, all of a fit's batches in one compiled call (npLSTM.executor). A Sequential makes its Steps and keeps the
layers, loss, optimizer, parameters and state; the Steps work through
those.
"""
import numpy as np

from . import interrupts, losses
from .executor import executor_for
from .results import TrainingDiverged, count_correct


class Steps:
    """The passes and training steps of one model."""

    def __init__(self, model):
        self.model = model
        self.output_mask = None     # the mask of the last forward's output (losses, accuracy)
        self.compiled = None        # CompiledExecutor, False (layer by layer), None: undecided

    def forward(self, X):
        """Every layer in turn. The mask (which steps count, from a Masking
        layer) goes along; the one that comes out weighs the loss."""
        mask = None
        for layer in self.model.layers:
            X = layer.forward(X, mask)
            mask = layer.output_mask(mask)
        self.output_mask = mask
        return X

    def loss_and_gradient(self, outputs, y, sample_weight=None):
        """(loss, gradient): on the head's logits when the loss is fused with
        its activation, on the outputs otherwise; rows weighed by the mask
        and the sample weights (losses.row_weights)."""
        model = self.model
        fused = model.loss.head_activation is not None
        weights = losses.row_weights(outputs.shape[:-1], self.output_mask, sample_weight,
                                     model.dtype)
        return model.loss.compute(model.kernels, model.layers[-1].logits if fused else outputs,
                                  y, weights)

    def loss_and_backward(self, X, y, sample_weight=None, input_grads=True):
        """Forward, loss, backward: every layer with weights holds its
        gradients afterwards; returns (loss, outputs, dL/dX). Without
        input_grads (training) only the weights' gradients are computed: the
        layers below the first with weights are not run back, that one skips
        its input's gradient (layers.base), and dL/dX is None."""
        outputs = self.forward(X)
        loss, d = self.loss_and_gradient(outputs, y, sample_weight)
        head = len(self.model.layers) - 1
        first = 0 if input_grads else next(
            (k for k, layer in enumerate(self.model.layers) if layer.params), head + 1)
        for k in range(head, first - 1, -1):
            layer = self.model.layers[k]
            fused = k == head and self.model.loss.head_activation is not None
            backward = layer.backward_logits if fused else layer.backward
            d = backward(d) if input_grads or k > first else backward(d, input_grad=False)
        return loss, outputs, d if input_grads else None

    def compiled_executor(self, X, batch_size):
        """The compiled executor (npLSTM.executor), when the model's
        `executor` and its batches of batch_size take it; else None."""
        choice = self.model.executor
        if choice == "layers":
            return None
        if self.compiled is None:                     # decided once per compile
            self.compiled = executor_for(self.model) or False
        if not self.compiled:
            return None
        takes = choice == "compiled" or self.compiled.takes(X, batch_size)
        return self.compiled if takes else None

    def train_compiled(self, executor, X, y, batch_size, order=None, sample_weight=None):
        """Every batch's step in one compiled call: (each batch's loss, their
        mean over the samples, the outputs before each update, the number of
        them that are right), or TrainingDiverged at the first step whose
        loss or gradients are not finite (the steps before it applied)."""
        losses_, mean_loss, outputs, self.output_mask, applied = executor.run(
            X, y, batch_size, order, sample_weight)
        if applied < len(losses_):
            self.diverged(losses_[applied])
        return losses_, mean_loss, outputs, count_correct(outputs, y, self.output_mask)

    def train_step(self, X, y, sample_weight=None):
        model = self.model
        states = model.states
        # Overflow is caught just below, with a clearer message than NumPy's.
        with np.errstate(over="ignore", invalid="ignore"):
            loss, outputs, _ = self.loss_and_backward(X, y, sample_weight, input_grads=False)
        grads = model.parameters.gradients()
        if not (np.isfinite(loss) and model.kernels.all_finite(grads)):
            model.states = states
            self.diverged(loss)
        model.optimizer.step([model.parameters.flat], [grads], [model.parameters.segments])
        return loss, outputs

    def diverged(self, loss):
        raise TrainingDiverged(
            f"training diverged at step {self.model.optimizer.iterations + 1}: the loss is "
            f"{loss} or a gradient is not finite; the step was not applied and the "
            "weights are those of the last good step (try a lower learning rate)")

    def evaluate_step(self, X, y, sample_weight=None):
        outputs = self.forward(X)
        return self.loss_and_gradient(outputs, y, sample_weight)[0], outputs

    def run_batches(self, step, X, y, batch_size, order=None, sample_weight=None):
        """Apply step(X_batch, y_batch, weights_batch) -> (loss, outputs) batch
        by batch, in order or in the given permutation; return the mean loss
        (batches weighted by size, as Keras does) and the accuracy over all
        of X (of the steps that count, under a mask)."""
        loss_sum, correct, count = 0.0, 0, 0
        for start in range(0, len(X), batch_size):
            interrupts.step_boundary()
            rows = slice(start, start + batch_size) if order is None else \
                order[start:start + batch_size]
            weights = None if sample_weight is None else sample_weight[rows]
            loss, outputs = step(X[rows], y[rows], weights)
            loss_sum += loss * len(outputs)
            hits, total = count_correct(outputs, y[rows], self.output_mask)
            correct, count = correct + hits, count + total
        return loss_sum / len(X), correct / max(count, 1)
