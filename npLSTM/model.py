"""Sequential: a stack of layers trained by hand-written backpropagation.

Its public face (build, compile, fit, evaluate, predict, state, weights,
save) is here; how a pass and a training step run is npLSTM.steps.

Stateful LSTMs carry their final state into the next call (Keras semantics);
the gradient stops at each call's boundary (truncated BPTT).
"""
import dataclasses
import re

import numpy as np

from . import checks, interrupts, kernels, losses, optimizers, saving
from .layers import LSTM, Layer, from_config
from .layers.lstm import LSTMTrace
from .params import ParameterBuffer
from .executor import refuse_uncompiled
from .plan import Plan
from .steps import Steps
from .results import Backprop, History, count_correct

DTYPES = ("float32", "float64")


class Sequential:
    """A linear stack of layers.

    layers  the layers, first to last; the first may give input_shape or
            batch_input_shape (needed for stateful layers), otherwise the
            model is built from the first data it sees
    seed    seeds the one random generator behind the initial weights and
            the shuffling in fit: the same seed gives bit-identical runs
    dtype   "float64" (default: exact gradient checks) or "float32" (speed)
    backend "numba" (default: the compiled kernels) or "numpy" (the readable
            reference kernels; same results to rounding)
    executor how fit and train_on_batch run a step on the numba backend
            (npLSTM.executor): "auto" (default) by the model's size,
            "compiled" always all of a fit's batches in one compiled call,
            "layers" always layer by layer from Python; same results to
            rounding
    loop_threads  threads sharing a batch's rows in the LSTM loops: 1 as
            the batch calls for, n > 1 that many at any batch, None
            (default): as npLSTM.set_loop_threads says
    Both make the model's plan (npLSTM.Plan, `model.plan`, where the rest of
    it can be set), which every kernel call follows.
    """

    def __init__(self, layers, seed=None, dtype="float64", backend="numba", executor="auto",
                 loop_threads=None):
        layers = list(layers)
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for layer in layers:
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential takes npLSTM layers, got {type(layer).__name__}")
        if str(dtype) not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.layers = layers
        self.kernels = kernels.get(backend)
        self.backend = backend
        self.plan = Plan(executor, loop_threads)
        self.dtype = np.dtype(str(dtype))
        self.rng = np.random.default_rng(seed)
        self.loss = None
        self.optimizer = None
        self._steps = Steps(self)      # how its passes and steps run
        self.metrics = ()
        self.input_shape = None
        self.parameters = None      # a ParameterBuffer once built
        first = layers[0]
        self.batch_size = first.batch_size          # fixed by batch_input_shape, or None
        if first.input_shape is not None:
            self.build((self.batch_size,) + tuple(first.input_shape))

    @property
    def plan(self):
        """How the model runs its steps (npLSTM.Plan): every layer follows it."""
        return self._plan

    @plan.setter
    def plan(self, plan):
        if not isinstance(plan, Plan):
            raise TypeError(f"a model's plan is an npLSTM.Plan, got {type(plan).__name__}")
        if plan.executor == "compiled":
            if self.backend != "numba":
                raise ValueError(f"the compiled executor runs the numba backend's kernels; "
                                 f"this model's backend is {self.backend!r}")
            refuse_uncompiled(self.layers, getattr(self, "optimizer", None))
        self._plan = plan
        for layer in self.layers:
            layer.set_plan(plan)

    @property
    def executor(self):
        """The plan's executor: "auto", "compiled" or "layers"."""
        return self.plan.executor

    @executor.setter
    def executor(self, executor):
        self.plan = dataclasses.replace(self.plan, executor=executor)

    # Building ---------------------------------------------------------------

    @property
    def built(self):
        return self.input_shape is not None

    def build(self, input_shape):
        """Create every layer's weights for inputs of shape (batch, ...), the
        batch None or a number (as Keras's build); done by the constructor
        when the first layer gives its input shape, else by the first data.
        Every parameter becomes a view of one flat vector (npLSTM.params)."""
        if self.built:
            raise ValueError("this model is built already")
        batch, *sample_shape = checks.shape_tuple(input_shape, "input_shape", allow_none=True)
        if self.batch_size is None and batch is not None and \
                any(layer.stateful for layer in self.layers):
            self.batch_size = batch
        if any(layer.stateful for layer in self.layers) and self.batch_size is None:
            raise ValueError(
                "a stateful layer needs a fixed batch size: give the first layer "
                "batch_input_shape=(batch, timesteps, features)")
        shape = tuple(sample_shape)
        for layer in self.layers:
            shape = layer.build(shape, self.rng, self.dtype, self.kernels)
        self.input_shape = tuple(sample_shape)
        self.output_shape = shape
        self.parameters = ParameterBuffer(self.layers, self.dtype)

    def compile(self, loss, optimizer="adam", metrics=None):
        """Choose the loss (a name in npLSTM.losses), the optimizer ("adam",
        "sgd" or an instance) and metrics (None or ["accuracy"])."""
        loss = losses.get(loss)
        head = getattr(self.layers[-1], "activation", None)
        if loss.head_activation is not None and head != loss.head_activation:
            raise ValueError(
                f"{loss.name} is computed from the logits of a "
                f"{loss.head_activation} head: the last layer must be "
                f"Dense(..., activation={loss.head_activation!r}) (or TimeDistributed "
                f"of it), got {type(self.layers[-1]).__name__} with activation {head!r}")
        metrics = tuple(metrics or ())
        unknown = [m for m in metrics if m not in ("accuracy", "acc")]
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; known: ['accuracy']")
        optimizer = optimizers.get(optimizer)
        if self.executor == "compiled":
            refuse_uncompiled(self.layers, optimizer)
        self.loss = loss
        self.optimizer = optimizer
        self.optimizer.kernels = self.kernels
        self._steps.compiled = None    # decided anew at the first fit
        self.metrics = ("accuracy",) if metrics else ()

    # Looking inside -----------------------------------------------------------

    @property
    def layer_names(self):
        """Keras-style names, in layer order: lstm, lstm_1, dense, time_distributed, ..."""
        names, seen = [], {}
        for layer in self.layers:
            base = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", type(layer).__name__).lower()
            count = seen.get(base, 0)
            seen[base] = count + 1
            names.append(base if count == 0 else f"{base}_{count}")
        return names

    def summary(self, print_fn=print):
        """Print each layer's name and type, output shape and parameter count,
        then the totals, as Keras prints them (npLSTM.inspection.summary)."""
        from .inspection import summary
        print_fn(summary(self))

    def trace(self, X, batch_size=None):
        """Run X forward, batch by batch as predict does, and return what every
        LSTM layer computed at every step: a list of LSTMTrace, one per LSTM
        layer in order, each array (samples, timesteps, units). Stateful layers
        advance their state as in predict: reset_states() first to trace from
        zeros. The outputs of the pass are the same as predict's."""
        X = self._as_input(X)
        batch_size = self._batch_size(len(X), batch_size)
        lstms = [(name, layer) for name, layer in zip(self.layer_names, self.layers)
                 if isinstance(layer, LSTM)]
        if not lstms:
            raise ValueError("trace shows LSTM layers, and this model has none")
        batches = []
        for start in range(0, len(X), batch_size):
            self._steps.forward(X[start:start + batch_size])
            batches.append([layer.trace(name) for name, layer in lstms])
        return [LSTMTrace(per_batch[0].layer, *(
                    np.concatenate([getattr(t, field) for t in per_batch])
                    for field in LSTMTrace.QUANTITIES + ("initial_hidden", "initial_cell")))
                for per_batch in zip(*batches)]

    # Checking input (npLSTM.checks) ------------------------------------------------

    def _as_input(self, X, name="X"):
        X = checks.real_array(X, name, self.dtype, self.kernels)
        if not self.built:
            if X.ndim < 2:
                raise ValueError(f"{name} must have a batch axis and per-sample axes, got "
                                 f"shape {X.shape}")
            self.build((None,) + X.shape[1:])
        return checks.batch_input(X, self.input_shape, name)

    def _checked(self, X, y, sample_weight=None):
        """X, y and the sample weights of a training or evaluating call, checked."""
        X = self._as_input(X)
        y = checks.targets(y, X, self.output_shape, self.loss.name if self.loss else None,
                           self.dtype, self.kernels)
        return X, y, checks.sample_weights(sample_weight, X, self.output_shape, self.dtype,
                                           self.kernels)

    def _batch_size(self, n, batch_size):
        return checks.batch_size(n, batch_size, self.batch_size)

    def _require_compiled(self):
        if self.loss is None:
            raise RuntimeError("compile the model before training or evaluating it: "
                               "model.compile(loss=..., optimizer=...)")

    # Public training and inference --------------------------------------------------

    def fit(self, X, y, epochs=1, batch_size=None, shuffle=True, verbose=1, sample_weight=None):
        """Train for `epochs` passes over (X, y); returns a History.

        One epoch splits the samples into batches (in order, or permuted
        with the model's seeded generator when shuffle) and makes one update
        per batch. Stateful layers carry their state from batch to batch and
        are not reset between epochs: call reset_states() yourself, as in
        Keras. verbose=1 prints one line per epoch. sample_weight, (samples,)
        or (samples, timesteps) for per-step outputs, weighs each sample's (or
        step's) loss, as in Keras: see losses.row_weights.

        Ctrl-C stops it between two steps (npLSTM.interrupts): the
        KeyboardInterrupt leaves the weights, the optimizer's state and the
        recurrent state all as the last completed step left them.
        """
        self._require_compiled()
        X, y, sample_weight = self._checked(X, y, sample_weight)
        epochs = checks.positive_int(epochs, "epochs")
        batch_size = self._batch_size(len(X), batch_size)
        history = History()
        steps = self._steps
        compiled = steps.compiled_executor(X, batch_size)
        with interrupts.held():
            for epoch in range(epochs):
                interrupts.step_boundary()
                order = self.rng.permutation(len(X)) if shuffle else None
                if compiled:
                    _, loss, _, (hits, total) = steps.train_compiled(
                        compiled, X, y, batch_size, order, sample_weight)
                    accuracy = hits / max(total, 1)
                else:
                    loss, accuracy = steps.run_batches(steps.train_step, X, y, batch_size,
                                                       order, sample_weight)
                values = {"loss": loss}
                if self.loss.is_classification:
                    values["accuracy"] = accuracy
                history.record(epoch, **values)
                if verbose:
                    shown = " - ".join(f"{k}: {v:.4f}" for k, v in values.items())
                    print(f"Epoch {epoch + 1}/{epochs} - {shown}")
        return history

    def train_on_batch(self, X, y, sample_weight=None, return_outputs=False):
        """One update on (X, y) as a single batch; returns the loss before it,
        and with return_outputs (loss, outputs): the model's outputs for X
        before the update, from the step's own forward pass."""
        with interrupts.held():            # a Ctrl-C waits for the step to finish
            loss, outputs = self._one_step(X, y, sample_weight)
        return (loss, outputs) if return_outputs else loss

    def _one_step(self, X, y, sample_weight=None):
        """train_on_batch's step: (loss, outputs)."""
        self._require_compiled()
        X, y, sample_weight = self._checked(X, y, sample_weight)
        self._batch_size(len(X), len(X))
        compiled = self._steps.compiled_executor(X, len(X))
        if compiled:
            losses_, _, outputs, _ = self._steps.train_compiled(compiled, X, y, len(X), None,
                                                                sample_weight)
            return float(losses_[0]), outputs
        return self._steps.train_step(X, y, sample_weight)

    def warm_up(self, X, y):
        """One training step on (X, y) as a batch, then undone: Numba compiles
        (or loads from its cache) each kernel at its first call, so a timed
        run after this times training, not compiling. Weights, optimizer
        state and recurrent states are as they were before, also when Ctrl-C
        stops the compiling (which it may at once: the step is undone)."""
        flat, states = self.parameters.flat.copy(), self.states
        optimizer = self.optimizer
        iterations = optimizer.iterations
        slots = None if optimizer.slots is None else \
            {name: [a.copy() for a in arrays] for name, arrays in optimizer.slots.items()}
        try:
            self._one_step(X, y)
        finally:
            with interrupts.held():        # the undoing is not cut short
                self.parameters.flat[...] = flat
                self.states = states
                optimizer.iterations, optimizer.slots = iterations, slots

    def test_on_batch(self, X, y, sample_weight=None):
        """The loss on (X, y) as one batch (and the accuracy, when compiled
        with metrics=["accuracy"]), as Keras's test_on_batch: no update;
        stateful layers advance their state."""
        self._require_compiled()
        X, y, sample_weight = self._checked(X, y, sample_weight)
        self._batch_size(len(X), len(X))
        loss, outputs = self._steps.evaluate_step(X, y, sample_weight)
        if not self.metrics:
            return loss
        hits, total = count_correct(outputs, y, self._steps.output_mask)
        return [loss, hits / max(total, 1)]

    def predict(self, X, batch_size=None):
        """Outputs for X, batch by batch. Stateful layers advance their state."""
        X = self._as_input(X)
        batch_size = self._batch_size(len(X), batch_size)
        return np.concatenate([self._steps.forward(X[s:s + batch_size])
                               for s in range(0, len(X), batch_size)])

    def predict_classes(self, X, batch_size=None):
        """argmax over the last axis of predict(X)."""
        return self.predict(X, batch_size).argmax(axis=-1)

    def evaluate(self, X, y, batch_size=None, sample_weight=None):
        """Mean loss over X (batches weighted by size), and the accuracy too
        when compiled with metrics=["accuracy"]. Stateful layers advance."""
        self._require_compiled()
        X, y, sample_weight = self._checked(X, y, sample_weight)
        batch_size = self._batch_size(len(X), batch_size)
        loss, accuracy = self._steps.run_batches(self._steps.evaluate_step, X, y, batch_size,
                                                 sample_weight=sample_weight)
        return [loss, accuracy] if self.metrics else loss

    def backprop(self, X, y, sample_weight=None):
        """Loss and every gradient for (X, y) as one batch, from the current
        recurrent state; no weight changes and the state is left as it was.
        Returns a Backprop (loss, grads, inputs, states)."""
        self._require_compiled()
        X, y, sample_weight = self._checked(X, y, sample_weight)
        self._batch_size(len(X), len(X))
        states = self.states
        try:
            loss, _, dX = self._steps.loss_and_backward(X, y, sample_weight)
        finally:
            self.states = states
        return Backprop(loss, [g.copy() for layer in self.layers for g in layer.grads], dX,
                        [layer.state_grads for layer in self.layers if layer.stateful])

    def loss_and_grads(self, X, y, sample_weight=None):
        """(loss, gradients in get_weights() order); nothing is updated."""
        result = self.backprop(X, y, sample_weight)
        return result.loss, result.grads

    # Weights and state --------------------------------------------------------

    def get_weights(self):
        """Copies of every parameter, layer by layer (LSTM: kernel,
        recurrent_kernel, bias; Dense: kernel, bias), as Keras orders them."""
        return [p.copy() for p in self.parameters.views] if self.built else []

    def set_weights(self, weights):
        """Replace every parameter; shapes must match get_weights()."""
        params = self.parameters.views if self.built else []
        weights = list(weights)
        if len(weights) != len(params):
            raise ValueError(f"expected {len(params)} weight arrays, got {len(weights)}")
        checked = []
        for k, (p, w) in enumerate(zip(params, weights)):
            w = checks.real_array(w, f"weights[{k}]", self.dtype, self.kernels)
            if w.shape != p.shape:
                raise ValueError(f"weights[{k}] must have shape {p.shape}, got {w.shape}")
            checked.append(w)
        for p, w in zip(params, checked):
            p[...] = w

    def save(self, path):
        """Write the model (config, weights, optimizer and recurrent state) to
        one .npz file, atomically; npLSTM.load_model(path) reads it back."""
        saving.save_model(self, path)

    def reset_states(self):
        """Zero the recurrent state of every stateful layer."""
        for layer in self.layers:
            layer.reset_states()

    @property
    def states(self):
        """Every layer's carried state (None for a layer without), by
        reference: a forward pass replaces a state with new arrays and never
        writes into the old ones, so this snapshot stays valid to restore
        (model.states = snapshot) without copying anything."""
        return [layer.states for layer in self.layers]

    @states.setter
    def states(self, states):
        for layer, s in zip(self.layers, states):
            layer.states = s


def load_model(path):
    """The model saved at path by Sequential.save, compiled as it was, with
    its optimizer state and recurrent state: training it on is
    bit-identical to training that never stopped. Raises ValueError naming
    what is wrong with a file that is not a complete npLSTM model."""
    config, arrays = saving.read(path)
    try:
        layers = [from_config(entry) for entry in config["layers"]]
        model = Sequential(layers, dtype=config["dtype"], backend=config["backend"])
        model.plan = Plan(**config.get("plan", {}))
    except (KeyError, TypeError, AttributeError) as error:
        raise saving.malformed(path, error) from None
    saving.restore(model, config, arrays, path)
    return model
