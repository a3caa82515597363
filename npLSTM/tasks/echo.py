"""echo and echo-partial: echo a window of random symbols (TASKS.md, tasks 2, 3).

A random sequence of `length` integers in [0, alphabet) is cut into sliding
windows of n_in; the target of each window is its first n_out symbols. Each
epoch draws a new sequence and fits it in one pass, in order, the stateful
LSTM carrying its state across batches (row j of one batch continues row j
of the last), then resets the state.

topology (TASKS.md, "Alternate topologies")
  many-to-many     LSTM(return_sequences) -> TimeDistributed(Dense): echo (n_out = n_in)
  encoder-decoder  LSTM -> RepeatVector(n_out) -> LSTM(return_sequences)
                   -> TimeDistributed(Dense): echo-partial
  many-to-one      LSTM -> Dense(n_out * width) -> Reshape((n_out, width)) -> Activation
  one-to-one       the window as one timestep of n_in * width features, then as many-to-one
encoding
  one-hot          width = alphabet, softmax head, categorical cross-entropy
  linear           width = 1: integers scaled to [0, 1], linear head, mean squared
                   error; a prediction is rounded to the nearest integer
masking            keep the windows that run past the end of the sequence: their
                   missing steps are MASK_VALUE, a Masking layer makes the LSTM skip
                   them, and the missing targets weigh 0 (sample_weight)
"""
import dataclasses

import numpy as np

from .. import data
from ..layers import LSTM, Activation, Dense, Masking, RepeatVector, Reshape, TimeDistributed
from ..model import Sequential
from ..optimizers import Adam
from .common import Probe, Result, Task, decayed, seeded, train

TOPOLOGIES = ("many-to-many", "encoder-decoder", "many-to-one", "one-to-one")
ENCODINGS = ("one-hot", "linear")
MASK_VALUE = -1.0     # a padded step's features: never a one-hot or a scaled symbol


@dataclasses.dataclass(frozen=True)
class Settings:
    units: int = 20                  # LSTM units (each LSTM)
    epochs: int = 500                # one epoch: a new sequence, one pass, reset
    n_in: int = 5                    # window length (timesteps per sample)
    n_out: int = 5                   # symbols to echo: the first n_out of the window
    length: int = 25                 # random sequence length: length - n_in + 1 samples
                                     # (length with masking)
    alphabet: int = 100              # symbols are integers in [0, alphabet)
    batch_size: int = 7              # fixed batch size; divides the samples
    topology: str = "many-to-many"   # see the module docstring: TOPOLOGIES
    encoding: str = "one-hot"        # "one-hot" or "linear" (regression)
    masking: bool = False            # keep the windows past the end, padded and masked
    stateful: bool = True            # carry the state across the batches of a sequence;
                                     # False: every batch starts from zeros
    shuffle: bool = False            # shuffle the batches of each epoch
    learning_rate: float = 0.001     # Adam's, Keras default
    lr_decay: float = 1.0            # the learning rate decays exponentially to
                                     # learning_rate * lr_decay by the last epoch
    eval_sequences: int = 20         # fresh sequences the accuracy is averaged over
    solved_at: float = 1.0           # mean accuracy that counts as solved

    @property
    def width(self):
        """Features per symbol."""
        return self.alphabet if self.encoding == "one-hot" else 1

    @property
    def samples(self):
        return self.length if self.masking else self.length - self.n_in + 1

    def check(self):
        """Raise a ValueError naming the first setting that cannot work."""
        if self.topology not in TOPOLOGIES:
            raise ValueError(f"topology must be one of {list(TOPOLOGIES)}, got {self.topology!r}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {list(ENCODINGS)}, got {self.encoding!r}")
        if not 1 <= self.n_out <= self.n_in:
            raise ValueError(f"need 1 <= n_out <= n_in, got n_in={self.n_in}, n_out={self.n_out}")
        if self.topology == "many-to-many" and self.n_out != self.n_in:
            raise ValueError(f"the many-to-many topology outputs all n_in={self.n_in} steps, so "
                             f"n_out must equal it (got n_out={self.n_out}); choose "
                             "topology=encoder-decoder, many-to-one or one-to-one to echo a part")
        if self.masking and self.topology == "one-to-one":
            raise ValueError("masking skips timesteps, and the one-to-one topology has a "
                             "single one: choose another topology or masking=false")
        if self.samples < 1 or self.samples % self.batch_size:
            raise ValueError(f"the {self.samples} windows of a sequence of {self.length} must "
                             f"split into whole batches of batch_size={self.batch_size}")


def build_model(settings, seed, dtype):
    s = settings
    s.check()
    one_step = s.topology == "one-to-one"
    shape = (s.batch_size,) + ((1, s.n_in * s.width) if one_step else (s.n_in, s.width))
    activation = "softmax" if s.encoding == "one-hot" else "linear"
    layers = [Masking(MASK_VALUE, batch_input_shape=shape)] if s.masking else []
    lstm = dict(stateful=s.stateful) if s.masking else dict(stateful=s.stateful,
                                                            batch_input_shape=shape)
    if s.topology == "many-to-many":
        layers += [LSTM(s.units, return_sequences=True, **lstm),
                   TimeDistributed(Dense(s.width, activation=activation))]
    elif s.topology == "encoder-decoder":
        layers += [LSTM(s.units, **lstm), RepeatVector(s.n_out),
                   LSTM(s.units, return_sequences=True, stateful=s.stateful),
                   TimeDistributed(Dense(s.width, activation=activation))]
    else:
        layers += [LSTM(s.units, **lstm), Dense(s.n_out * s.width),
                   Reshape((s.n_out, s.width)), Activation(activation)]
    model = Sequential(layers, seed=seed, dtype=dtype)
    model.compile(loss="categorical_crossentropy" if s.encoding == "one-hot" else "mse",
                  optimizer=Adam(s.learning_rate))
    return model


def encode(symbols, settings, dtype):
    """Integers as the model's features: one-hot or scaled to [0, 1]. With
    masking, data.PAD (past the end) may come too and becomes MASK_VALUE
    features; without, there is none to look for (framed pads only then)."""
    s = settings
    real = np.maximum(symbols, 0) if s.masking else symbols
    if s.encoding == "one-hot":
        values = data.one_hot(real, s.alphabet, dtype)
    else:
        values = (real / (s.alphabet - 1)).astype(dtype)[..., None]
    if s.masking:
        values[symbols == data.PAD] = MASK_VALUE
    return values


def decode(outputs, settings):
    """The symbols the model's outputs stand for."""
    if settings.encoding == "one-hot":
        return data.one_hot_decode(outputs)
    scaled = np.rint(outputs[..., 0] * (settings.alphabet - 1))
    return np.clip(scaled, 0, settings.alphabet - 1).astype(int)


def framed(settings, rng, dtype):
    """A new random sequence as windows: X in the model's framing, y
    (samples, n_out, width) and the targets that count, (samples, n_out)."""
    s = settings
    sequence = data.random_sequence(rng, s.length, s.alphabet)
    windows, targets = data.window_symbols(sequence, s.n_in, s.n_out, pad=s.masking)
    X = encode(windows, s, dtype)
    if s.topology == "one-to-one":
        X = X.reshape(len(X), 1, -1)
    counted = targets != data.PAD
    y = encode(targets, s, dtype)
    if s.masking:
        y[~counted] = encode(np.zeros(1, int), s, dtype)    # any valid target: it weighs 0
    return X, y, counted


def evaluate(model, settings, rng, dtype):
    """Mean accuracy over eval_sequences fresh sequences, each predicted from
    a reset state; the tutorial's printout for the first of them."""
    accuracies, report = [], []
    for k in range(settings.eval_sequences):
        X, y, counted = framed(settings, rng, dtype)
        predicted = decode(model.predict(X, batch_size=settings.batch_size), settings)
        model.reset_states()
        expected = decode(y, settings)
        accuracies.append(float(np.mean((predicted == expected)[counted])))
        if k == 0:
            report = [f"Expected: {e[c].tolist()} Predicted {p[c].tolist()}"
                      for e, p, c in zip(expected, predicted, counted)]
    accuracy = float(np.mean(accuracies))
    report.append(f"Accuracy: {accuracies[0]:.2%} on this sequence, "
                  f"{accuracy:.2%} mean over {settings.eval_sequences} fresh sequences")
    return report, accuracy


def run(name, settings, seed, dtype, config, progress):
    model_seed, rng = seeded(seed)
    model = build_model(settings, model_seed, dtype)
    s = settings
    X0, y0, _ = framed(s, np.random.default_rng(0), dtype)    # not the task's stream
    model.warm_up(X0[:s.batch_size], y0[:s.batch_size])     # compiles before the clock

    def one_epoch(epoch):
        model.optimizer.learning_rate = decayed(s.learning_rate, s.lr_decay, epoch, s.epochs)
        X, y, counted = framed(s, rng, dtype)
        history = model.fit(X, y, epochs=1, batch_size=s.batch_size, shuffle=s.shuffle,
                            verbose=0, sample_weight=counted if s.masking else None)
        model.reset_states()
        return history.history["loss"][0], history.history.get("accuracy", [np.nan])[0]

    history, seconds, interrupted = train(s.epochs, one_epoch, progress)
    report, accuracy = evaluate(model, s, rng, dtype)
    return Result(name, config, seed, dtype, dataclasses.asdict(s), s.epochs,
                  model.optimizer.iterations, seconds, accuracy,
                  accuracy >= s.solved_at, report, history, interrupted=interrupted), model


def probes(settings, rng, dtype, shown=3):
    """The windows of one fresh sequence; the first `shown` are looked at."""
    X, y, _ = framed(settings, rng, dtype)
    windows = decode(X[:shown].reshape(shown, settings.n_in, -1), settings)
    echoes = decode(y[:shown], settings)
    labels = [[str(s) for s in w] for w in windows]
    if settings.topology == "one-to-one":           # the whole window is one step
        labels = [[" ".join(steps)] for steps in labels]
    return [Probe(X, [f"window {k + 1}: {' '.join(map(str, w))} -> {' '.join(map(str, e))}"
                      for k, (w, e) in enumerate(zip(windows, echoes))], labels)]


ECHO_TUTORIAL = Settings()
# In both echo tasks the context is the cell state after the last step: what
# the layer hands on (in echo-partial, the encoder's to the decoder).
PARTIAL_TUTORIAL = Settings(units=150, epochs=5000, n_out=2, batch_size=21,
                            topology="encoder-decoder", solved_at=0.995)

# solved_in: seeds solved of 20, measured with `nplstm sweep TASK --seeds 20
# [--config tutorial]`; docs/experiments.md says why each default differs.
ECHO = Task("echo", {"tutorial": ECHO_TUTORIAL,
                     "default": dataclasses.replace(ECHO_TUTORIAL, learning_rate=0.003)},
            run, probes, context_step=-1, solved_in={"tutorial": (12, 20), "default": (20, 20)})
ECHO_PARTIAL = Task("echo-partial", {
    "tutorial": PARTIAL_TUTORIAL,
    "default": dataclasses.replace(PARTIAL_TUTORIAL, epochs=10000, lr_decay=0.1)},
    run, probes, context_step=-1, solved_in={"tutorial": (16, 20), "default": (20, 20)})
