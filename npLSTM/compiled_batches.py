"""When training runs as compiled batches (kernels/lstm_dense.py).

The tutorials' models are one LSTM under a Dense head (on the last h, or
on every h) with the cross-entropy fused with the head's sigmoid or
softmax, trained with Adam. At their sizes, calling the layers one by one
from Python costs more than their math, so such a model's batches (all of
a fit's epoch, or train_on_batch's one) run in one compiled call, when:

  - the backend is "numba", the LSTM's size takes the compiled loop and a
    step's work is small (kernels.routes.compiled_batches), where the
    kernel's loops beat the BLAS calls of the layer-by-layer step. (It runs
    on the calling thread: loop threads pay off only for larger work.)
  - Adam clips nothing.

Any other model, and batches of another size, go layer by layer. Both
compute the same steps, to rounding (tests/test_compiled_batches.py).
"""
import numpy as np

from .kernels import jit, lstm_dense, routes
from .layers import LSTM, Dense, TimeDistributed
from .optimizers import Adam

class CompiledBatches:
    """The compiled training of one model (see compiled_batches_for)."""

    def __init__(self, model):
        self.model = model
        self.lstm = model.layers[0]
        self.every_step = self.lstm.return_sequences        # the head on every h
        self.softmax = model.loss.head_activation == "softmax"
        self.params = model.parameters.views
        # The gradients in one flat array laid out as the parameters.
        self.grads, self.grad_views = model.parameters.gradient_buffer()

    def takes(self, X, batch_size):
        """Whether batches of X (N, T, D) of batch_size rows take this path."""
        B, H = batch_size, self.lstm.units
        _, T, D = X.shape
        return routes.compiled_batches(B, T, D, H)

    def run(self, X, y, batch_size, order=None, sample_weight=None):
        """One Adam step per batch, in order or in the given permutation:
        (the loss of each batch, their mean over the samples with batches
        weighted by their rows, the outputs before each update, the number
        of steps applied). The steps stop before the first batch whose loss
        or gradients are not finite: its loss is the last one given, and the
        mean sums the applied batches' only."""
        model, lstm, optimizer = self.model, self.lstm, self.model.optimizer
        dtype = model.dtype
        N, T, _ = X.shape
        R = T if self.every_step else 1                      # output rows per sample
        K = model.output_shape[-1]
        batches = -(-N // batch_size)
        # At the tutorials' sizes this setup is as long as the compiled steps:
        # each NumPy call below costs a microsecond or two, so there are few.
        order = np.arange(N) if order is None else np.asarray(order, dtype=np.int64)
        if sample_weight is None:
            weights = np.ones((N, R), dtype=dtype)
        else:                                                # per sample, or per step
            weights = sample_weight.reshape(N, -1)
            if weights.shape[1] != R:                        # per sample, each of its steps
                weights = np.repeat(weights, R, axis=1)
        h0, c0 = lstm.initial_states(batch_size, dtype)
        slots = optimizer.slots_for([model.parameters.flat])
        outputs = np.empty((N, R, K), dtype=dtype)
        losses = np.empty(batches)
        applied, h, c, loss_sum = lstm_dense.lstm_dense_fit(
            np.ascontiguousarray(X), np.ascontiguousarray(y).reshape(N, R, K),
            np.ascontiguousarray(weights), order,
            batch_size, np.ascontiguousarray(h0), np.ascontiguousarray(c0), lstm.stateful,
            *self.params, self.every_step, self.softmax, model.parameters.flat, self.grads,
            *self.grad_views, slots["m"][0], slots["v"][0], optimizer.iterations + 1,
            optimizer.learning_rate, optimizer.beta_1, optimizer.beta_2, optimizer.epsilon,
            optimizer.epsilon_form == "pytorch", outputs, losses)
        optimizer.iterations += applied
        if lstm.stateful and applied:
            lstm.states = (h, c)
        return losses[:applied + (applied < batches)], loss_sum / N, \
            outputs.reshape((N,) + model.output_shape), applied


def compiled_batches_for(model):
    """A CompiledBatches when the model is an LSTM under a Dense head with a
    fused cross-entropy, Adam without clipping and the numba backend; else None."""
    if model.kernels is not jit or model.loss.head_activation is None or \
            len(model.layers) != 2:
        return None
    lstm, head = model.layers
    dense = head.layer if isinstance(head, TimeDistributed) else head
    optimizer = model.optimizer
    if not isinstance(lstm, LSTM) or type(dense) is not Dense or \
            type(optimizer) is not Adam or optimizer.clips:
        return None
    return CompiledBatches(model)
