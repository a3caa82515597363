"""The compiled executor: a model's training steps, all of a fit's batches,
in one compiled call (kernels/program.py), for any model of npLSTM's layers.

A Sequential's layers become a program, an op per layer (TimeDistributed
folds its steps into the rows of the layer it wraps), laid out in flat
buffers of values, gradients and masks. The executor reads what it needs
through public faces only: the layers' configuration, the parameter
buffer (npLSTM.params: flat, segments), the optimizer's settings and
slots, the LSTMs' states; it writes back the optimizer's step count and
slots and the LSTMs' states. The layers stay the owners.

Where it runs: the numba backend, and models whose layers are npLSTM's
own; kernels.routes.compiled_executor decides by size (small layers, where
calling the layers from Python costs more than their math). Otherwise, and
for a plan that says "layers", training goes layer by layer (npLSTM.steps).
Both compute the same steps, to rounding (tests/test_executor.py).
"""
import math

import numpy as np

from .kernels import jit, program, routes
from .kernels.head_math import ACTIVATION_CODES
from .layers import LSTM, Activation, Dense, Masking, RepeatVector, Reshape, TimeDistributed
from .optimizers import SGD, Adam

LOSS_CODES = {"binary_crossentropy": program.BCE, "categorical_crossentropy": program.CCE,
              "mse": program.MSE}


class Layout:
    """Per-sample offsets handed out in one flat buffer."""

    def __init__(self, start=0):
        self.size = start

    def take(self, size):
        at, self.size = self.size, self.size + size
        return at


def _op(kind, **fields):
    op = np.full(program.FIELDS, -1, dtype=np.int64)
    op[program.KIND] = kind
    op[program.ROWS] = 1
    for name, value in fields.items():
        op[getattr(program, name)] = value
    return op


# The layers a program knows, under TimeDistributed too.
KNOWN_LAYERS = (LSTM, Dense, Activation, RepeatVector, Reshape, Masking)


class Program:
    """A model's layers as ops (see kernels/program.py), with the sizes of
    the buffers they need per sample."""

    def __init__(self, model, ops, values, work, keep, states, output_keep, first):
        self.ops, self.values = ops, values
        self.work, self.keep, self.states = work, keep, states   # per-sample sizes
        self.output_keep = output_keep    # the keep slice of the output's mask, or -1
        # The loss, the first op with weights and the output's mask, for the kernel.
        self.head = np.array([LOSS_CODES[model.loss.name], first, output_keep], dtype=np.int64)
        # The stateful LSTMs: (layer, units, its state's offset in the states buffer)
        self.stateful = [(k, op[program.OUT_F], op[program.STATE_AT])
                         for k, op in enumerate(ops) if op[program.STATE_AT] >= 0]
        # What routes.compiled_executor weighs, per sample: each LSTM's rows
        # and units, and the multiply-adds of the weight gradients.
        self.lstms, self.work_per_sample = [], 0
        for op in ops:
            rows, T, F, K = op[program.ROWS], op[program.STEPS], op[program.IN_F], \
                op[program.OUT_F]
            if op[program.KIND] == program.LSTM:
                self.lstms.append((rows, K))
                self.work_per_sample += rows * T * (F + K + 1) * 4 * K
            elif op[program.KIND] == program.DENSE:
                self.work_per_sample += rows * T * (F + 1) * K
        self._buffers, self._takes = {}, {}

    def takes(self, batch_size):
        """Whether batches of batch_size samples take the compiled executor
        (routes.compiled_executor), decided once per batch size."""
        if batch_size not in self._takes:
            self._takes[batch_size] = routes.compiled_executor(
                [(batch_size * rows, H) for rows, H in self.lstms],
                batch_size * self.work_per_sample)
        return self._takes[batch_size]

    def buffers(self, n, dtype):
        """work, grad, keep and states for batches of up to n samples, and
        each stateful LSTM's (layer, h, c), views of states: made once, as a
        tutorial's fit call of a few steps takes about as long as making them."""
        if n not in self._buffers:
            states = np.empty(n * self.states, dtype=dtype)
            carried = [(k, states[n * at:n * (at + H)].reshape(n, H),
                        states[n * (at + H):n * (at + 2 * H)].reshape(n, H))
                       for k, H, at in self.stateful]
            self._buffers[n] = (np.empty(n * self.work, dtype=dtype),
                                np.empty(n * self.work, dtype=dtype),
                                np.empty(n * self.keep, dtype=np.bool_), states, carried)
        return self._buffers[n]

    @classmethod
    def of(cls, model, sample_shape):
        """The program of a model for inputs of this per-sample shape (a
        model built with a free time axis has one per length)."""
        segments = iter(model.parameters.segments)
        shape = tuple(sample_shape)
        work, keep, states = Layout(math.prod(shape)), Layout(), Layout()
        at, mask = 0, -1                 # the input's slice; the mask on it (a keep slice)
        ops, values, first = [], [], None
        for k, layer in enumerate(model.layers):
            rows, inner, inner_shape = 1, layer, shape
            while isinstance(inner, TimeDistributed):
                rows *= inner_shape[0]
                inner, inner_shape = inner.layer, inner_shape[1:]
            op = cls._layer_op(inner, inner_shape, rows, at, mask if rows == 1 else -1,
                               work, keep, states, segments)
            if layer.params and first is None:
                first = k
            values.append(float(getattr(inner, "mask_value", 0.0)))
            ops.append(op)
            at = op[program.OUT_AT]
            if isinstance(inner, Masking) and rows == 1:
                mask = op[program.KEEP_OUT]
            elif isinstance(inner, (RepeatVector, Reshape)) or \
                    (isinstance(inner, LSTM) and not inner.return_sequences):
                mask = -1
            shape = tuple(layer.compute_output_shape(shape))
        return cls(model, np.array(ops), np.array(values), work.size, keep.size, states.size,
                   mask, len(ops) if first is None else first)

    @staticmethod
    def _layer_op(layer, shape, rows, at, mask, work, keep, states, segments):
        """The op of one layer (unwrapped, of KNOWN_LAYERS) on inputs of
        per-row shape `shape`, in the input's slice `at`."""
        size = math.prod(shape)
        if type(layer) is LSTM:
            (T, D), H = shape, layer.units
            aux = work.take(rows * T * 6 * H)             # gates, cs, hs
            W, U, b = (start for start, _ in (next(segments) for _ in range(3)))
            return _op(program.LSTM, ROWS=rows, STEPS=T, IN_F=D, OUT_F=H,
                       FLAG=layer.return_sequences, IN_AT=at, AUX_AT=aux,
                       OUT_AT=aux + rows * T * 5 * H if layer.return_sequences else
                       work.take(rows * H), W_AT=W, U_AT=U, B_AT=b, KEEP_IN=mask,
                       STATE_AT=states.take(2 * H) if layer.stateful else -1)
        if type(layer) is Dense:
            F, K = shape[-1], layer.units
            W, b = (start for start, _ in (next(segments) for _ in range(2)))
            vectors = size // F
            return _op(program.DENSE, ROWS=rows, STEPS=vectors, IN_F=F, OUT_F=K,
                       FLAG=ACTIVATION_CODES[layer.activation], IN_AT=at,
                       AUX_AT=work.take(rows * vectors * K), OUT_AT=work.take(rows * vectors * K),
                       W_AT=W, B_AT=b)
        if type(layer) is Activation:
            F = shape[-1]
            return _op(program.ACTIVATION, ROWS=rows, STEPS=size // F, IN_F=F, OUT_F=F,
                       FLAG=ACTIVATION_CODES[layer.activation], IN_AT=at,
                       OUT_AT=work.take(rows * size))
        if type(layer) is RepeatVector:
            return _op(program.REPEAT, ROWS=rows, STEPS=layer.n, IN_F=size, OUT_F=size,
                       IN_AT=at, OUT_AT=work.take(rows * layer.n * size))
        if type(layer) is Reshape:
            return _op(program.RESHAPE, ROWS=rows, IN_AT=at, OUT_AT=at)
        T, D = shape                                      # Masking
        return _op(program.MASKING, ROWS=rows, STEPS=T, IN_F=D, OUT_F=D, IN_AT=at,
                   OUT_AT=work.take(rows * size), KEEP_OUT=keep.take(rows * T))


def optimizer_settings(optimizer):
    """The optimizer's kind and settings as kernels/program.py reads them,
    or None for one it does not know."""
    settings = np.zeros(program.SETTINGS)
    if type(optimizer) is Adam:
        settings[[program.OPTIMIZER, program.BETA_1, program.BETA_2, program.EPSILON,
                  program.PYTORCH_FORM]] = (program.ADAM, optimizer.beta_1, optimizer.beta_2,
                                            optimizer.epsilon,
                                            optimizer.epsilon_form == "pytorch")
    elif type(optimizer) is SGD:
        settings[[program.OPTIMIZER, program.MOMENTUM, program.NESTEROV]] = \
            (program.SGD, optimizer.momentum, optimizer.nesterov)
    else:
        return None
    settings[program.LEARNING_RATE] = optimizer.learning_rate
    for kind, name in ((program.CLIP_VALUE, "clipvalue"),
                       (program.CLIP_GLOBAL_NORM, "global_clipnorm"),
                       (program.CLIP_NORM, "clipnorm")):
        if getattr(optimizer, name) is not None:
            settings[[program.CLIP, program.CLIP_BY]] = kind, getattr(optimizer, name)
    return settings


class CompiledExecutor:
    """The compiled training of one model (see executor_for)."""

    def __init__(self, model, settings):
        self.model, self.settings = model, settings
        self.programs = {}           # by per-sample input shape
        self.grads = np.empty_like(model.parameters.flat)
        self.segments = np.array(model.parameters.segments, dtype=np.int64).reshape(-1, 2)

    def program(self, sample_shape):
        """The program for inputs of this per-sample shape."""
        if sample_shape not in self.programs:
            self.programs[sample_shape] = Program.of(self.model, sample_shape)
        return self.programs[sample_shape]

    def takes(self, X, batch_size):
        """Whether batches of batch_size samples of X take this path."""
        return self.program(X.shape[1:]).takes(batch_size)

    def run(self, X, y, batch_size, order=None, sample_weight=None):
        """One optimizer step per batch, in order or in the given
        permutation: (the loss of each batch, their mean over the samples
        with batches weighted by their rows, the outputs before each update,
        the mask of the outputs or None, the number of steps applied). The
        steps stop before the first batch whose loss or gradients are not
        finite: its loss is the last one given, and the mean sums the
        applied batches' only."""
        model, optimizer, prog = self.model, self.model.optimizer, self.program(X.shape[1:])
        dtype = model.dtype
        N = len(X)
        output_shape = y.shape[1:]
        K = output_shape[-1]
        R = math.prod(output_shape) // K                   # output rows per sample
        batches = -(-N // batch_size)
        order = np.arange(N) if order is None else np.asarray(order, dtype=np.int64)
        if sample_weight is None:
            weights = np.ones((N, R), dtype=dtype)
        else:                                              # per sample, or per step
            weights = sample_weight.reshape(N, -1)
            if weights.shape[1] != R:                      # per sample, each of its rows
                weights = np.repeat(weights, R, axis=1)
        n = min(batch_size, N)
        slots = optimizer.slots_for([model.parameters.flat])
        slot_1, slot_2 = _slots(optimizer, slots)
        work, grad, keep, states, carried = prog.buffers(n, dtype)
        for k, h, c in carried:                  # the state carried in, or zeros
            carried_in = model.layers[k].states
            h[...], c[...] = (0.0, 0.0) if carried_in is None else carried_in
        outputs = np.empty((N, R, K), dtype=dtype)
        output_keep = np.empty((N, R), dtype=np.bool_)
        losses = np.empty(batches)
        applied, loss_sum = program.train_batches(
            prog.ops, prog.values, prog.head, np.ascontiguousarray(X).reshape(N, -1),
            np.ascontiguousarray(y).reshape(N, R, K), np.ascontiguousarray(weights), order,
            batch_size, model.parameters.flat, self.grads, self.segments, self.settings, slot_1,
            slot_2, optimizer.iterations + 1, work, grad, keep, states, outputs, output_keep,
            losses)
        optimizer.iterations += applied
        if applied:
            for k, h, c in carried:
                model.layers[k].states = (h.copy(), c.copy())
        return (losses[:applied + (applied < batches)], loss_sum / N,
                outputs.reshape(y.shape),
                output_keep.reshape(y.shape[:-1]) if prog.output_keep >= 0 else None, applied)


def _slots(optimizer, slots):
    """The optimizer's two slot arrays as the kernel takes them (SGD's
    second is unused: its velocity stands in)."""
    first = slots[optimizer.slot_names[0]][0]
    return first, slots[optimizer.slot_names[-1]][0]


def unknown_parts(layers, optimizer):
    """What of a model the program does not know (its layers, and its
    optimizer when it has one), said for an error message; "" for none."""
    parts = []
    for layer in layers:
        while isinstance(layer, TimeDistributed):
            layer = layer.layer
        if type(layer) not in KNOWN_LAYERS:
            parts.append(f"a layer {type(layer).__name__}")
    if optimizer is not None and optimizer_settings(optimizer) is None:
        parts.append(f"an optimizer {type(optimizer).__name__}")
    return " and ".join(parts)


def refuse_uncompiled(layers, optimizer):
    """A clear error where executor="compiled" is asked of a model whose
    parts the program does not know."""
    unknown = unknown_parts(layers, optimizer)
    if unknown:
        raise ValueError("executor='compiled' runs models of npLSTM's own layers trained by "
                         f"Adam or SGD; this one has {unknown}")


def executor_for(model):
    """A CompiledExecutor for a model on the numba backend whose layers and
    optimizer the program knows; else None."""
    if model.kernels is not jit or unknown_parts(model.layers, model.optimizer):
        return None
    return CompiledExecutor(model, optimizer_settings(model.optimizer))
