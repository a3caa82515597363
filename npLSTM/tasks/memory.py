"""memory: remember the first symbol over a gap (shared/TASKS.md, task 1).

Sequences A = 3 0 1 2 3 and B = 4 0 1 2 4 share their middle: after "2"
the model must answer 3 for A and 4 for B, so it must carry the first
symbol 3 steps.

tutorial  pairs x_t -> x_{t+1}, one timestep per sample; a stateful LSTM
          fits each sequence step by step. The gradient of each update
          stops at the step (truncated BPTT of one step): nothing teaches
          the cell to keep the first symbol, it only happens to.
default   each sequence is one sample of 4 timesteps, so backpropagation
          runs through the whole gap (full_sequence=True).
"""
import dataclasses

import numpy as np

from .. import data
from ..layers import LSTM, Dense, TimeDistributed
from ..model import Sequential
from ..optimizers import Adam
from .common import Probe, Result, Task, seeded, train, warm_up

SEQUENCES = ([3, 0, 1, 2, 3], [4, 0, 1, 2, 4])
N_FEATURES = 5


@dataclasses.dataclass(frozen=True)
class Settings:
    units: int = 20                  # LSTM units
    epochs: int = 250                # one epoch: fit A, reset, fit B, reset
    learning_rate: float = 0.001     # Adam's, Keras default
    full_sequence: bool = False      # one sample of 4 steps per sequence (BPTT through
                                     # the gap) instead of 4 one-step samples


CONFIGS = {
    "tutorial": Settings(),
    # Measured with `nplstm sweep memory`: the tutorial's setup solves 9 of 20
    # seeds, and more epochs do not help (1000: 6 of 20); BPTT through the
    # whole sequence with 500 epochs solves 20 of 20 (and seeds 20-59 too).
    "default": Settings(epochs=500, full_sequence=True),
}


def build_model(settings, seed, dtype):
    if settings.full_sequence:
        layers = [LSTM(settings.units, return_sequences=True, input_shape=(4, N_FEATURES)),
                  TimeDistributed(Dense(N_FEATURES, activation="sigmoid"))]
    else:
        layers = [LSTM(settings.units, stateful=True, batch_input_shape=(1, 1, N_FEATURES)),
                  Dense(N_FEATURES, activation="sigmoid")]
    model = Sequential(layers, seed=seed, dtype=dtype)
    model.compile(loss="binary_crossentropy", optimizer=Adam(settings.learning_rate))
    return model


def framed(settings, dtype):
    """(X, y) of each sequence: pairs X (4, 1, 5), y (4, 5), or with
    full_sequence the same 4 steps as one sample, X (1, 4, 5), y (1, 4, 5)."""
    frames = [data.pairs(seq, N_FEATURES, dtype) for seq in SEQUENCES]
    if settings.full_sequence:
        frames = [(X.reshape(1, 4, N_FEATURES), y.reshape(1, 4, N_FEATURES)) for X, y in frames]
    return frames


def evaluate(model, settings, dtype):
    """Each sequence step by step from a reset state; the tutorial's printout."""
    report, right, total = [], 0, 0
    for X, y in framed(settings, dtype):
        predicted = model.predict_classes(X, batch_size=1).reshape(-1)
        model.reset_states()
        inputs = data.one_hot_decode(X).reshape(-1)
        for x, target, guess in zip(inputs, data.one_hot_decode(y).reshape(-1), predicted):
            report.append(f"X={float(x):.1f} y={float(target):.1f}, yhat={float(guess):.1f}")
            right += int(target == guess)
            total += 1
    return report, right / total


def run(name, settings, seed=0, dtype="float64", config="custom", on_epoch=None):
    model_seed, _ = seeded(seed)
    model = build_model(settings, model_seed, dtype)
    sequences = framed(settings, dtype)
    warm_up(model, sequences[0][0][:1], sequences[0][1][:1])

    def one_epoch(epoch):
        losses, accuracies = [], []
        for X, y in sequences:
            history = model.fit(X, y, epochs=1, batch_size=1, shuffle=False, verbose=0)
            model.reset_states()
            losses.append(history.history["loss"][0])
            accuracies.append(history.history["accuracy"][0])
        return float(np.mean(losses)), float(np.mean(accuracies))

    history, seconds = train(settings.epochs, one_epoch, on_epoch)
    report, accuracy = evaluate(model, settings, dtype)
    return Result(name, config, seed, dtype, dataclasses.asdict(settings), settings.epochs,
                  model.optimizer.iterations, seconds, accuracy, accuracy == 1.0, report,
                  history), model


def probes(settings, rng, dtype):
    """A and B, each one sequence of 4 input steps."""
    return [Probe(X, [f"{name} = {' '.join(map(str, seq))}"], [[str(s) for s in seq[:-1]]],
                  samples_are_steps=True)
            for name, seq, (X, _) in zip("AB", SEQUENCES, framed(settings, dtype))]


# The context: the cell state after the third step ("1"), which the fourth
# step ("2") needs to answer 3 for A and 4 for B.
TASK = Task("memory", CONFIGS, run, probes, context_step=-2)
