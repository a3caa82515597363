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

Variations (TASKS.md, "Extensions"): any alphabet and gap (the first
symbols are the alphabet's two largest, the middle counts through the
others: 0 1 2 0 1 2 ...), a random middle drawn anew for every epoch and
test (then only the last prediction, the one that needs the memory, can be
right and is judged), a heavier loss on that last step (end_weight), the
stateless variant, batches and shuffling.
"""
import dataclasses

import numpy as np

from .. import data
from ..layers import LSTM, Dense, TimeDistributed
from ..model import Sequential
from ..optimizers import Adam
from .common import Probe, Result, Task, seeded, train


@dataclasses.dataclass(frozen=True)
class Settings:
    units: int = 20                  # LSTM units
    epochs: int = 250                # one epoch: fit A, reset, fit B, reset
    learning_rate: float = 0.001     # Adam's, Keras default
    full_sequence: bool = False      # one sample of all steps per sequence (BPTT through
                                     # the gap) instead of one-step samples
    alphabet: int = 5                # symbols 0 .. alphabet-1
    gap: int = 3                     # symbols between the first and its repeat at the end
    random_middle: bool = False      # draw the middle anew each epoch and for each test
    end_weight: float = 1.0          # weight of the last step's loss; the others weigh 1
    stateful: bool = True            # one-step samples: carry the state from step to step
                                     # (full_sequence: each sequence starts from zeros)
    batch_size: int = 1              # one-step samples: steps per batch; full_sequence:
                                     # sequences per batch (of the 2)
    shuffle: bool = False            # shuffle the samples of each fit
    eval_sequences: int = 20         # with random_middle: pairs of fresh sequences judged

    @property
    def steps(self):
        """Input steps per sequence: the first symbol and the middle."""
        return self.gap + 1

    def check(self):
        """Raise a ValueError naming the first setting that cannot work."""
        if self.alphabet < 3:
            raise ValueError(f"memory needs an alphabet of at least 3 (two first symbols and a "
                             f"middle), got {self.alphabet}")
        if self.gap < 1:
            raise ValueError(f"gap must be at least 1, got {self.gap}")
        if self.end_weight < 0:
            raise ValueError(f"end_weight must not be negative, got {self.end_weight}")
        if self.full_sequence and self.stateful:
            raise ValueError("full_sequence feeds each sequence as one sample from a zero "
                             "state, so it takes stateful=false")
        samples = 2 if self.full_sequence else self.steps
        if self.batch_size < 1 or samples % self.batch_size:
            what = "the 2 sequences" if self.full_sequence else f"the {samples} steps"
            raise ValueError(f"batch_size={self.batch_size} must divide {what}")


CONFIGS = {
    "tutorial": Settings(),
    # BPTT through the whole sequence; each sequence one sample from a zero state.
    "default": Settings(epochs=500, full_sequence=True, stateful=False),
}
# Measured with `nplstm sweep memory --seeds 20 [--config tutorial]`
# (docs/experiments.md).
SOLVED_IN = {"tutorial": (9, 20), "default": (20, 20)}


def sequences(settings, rng=None):
    """A and B: the first symbol (alphabet-2 or alphabet-1), the middle, the
    first symbol again. The middle counts 0 1 2 ... through the other
    symbols, or, with random_middle, is drawn from them with rng."""
    s = settings
    middle_symbols = s.alphabet - 2
    middles = [np.arange(s.gap) % middle_symbols] * 2
    if s.random_middle:
        middles = [rng.integers(0, middle_symbols, size=s.gap) for _ in range(2)]
    return [np.concatenate([[first], middle, [first]])
            for first, middle in zip((s.alphabet - 2, s.alphabet - 1), middles)]


def build_model(settings, seed, dtype):
    s = settings
    s.check()
    if s.full_sequence:
        layers = [LSTM(s.units, return_sequences=True, input_shape=(s.steps, s.alphabet)),
                  TimeDistributed(Dense(s.alphabet, activation="sigmoid"))]
    else:
        layers = [LSTM(s.units, stateful=s.stateful,
                       batch_input_shape=(s.batch_size, 1, s.alphabet)),
                  Dense(s.alphabet, activation="sigmoid")]
    model = Sequential(layers, seed=seed, dtype=dtype)
    model.compile(loss="binary_crossentropy", optimizer=Adam(s.learning_rate))
    return model


def framed(settings, dtype, rng=None):
    """(X, y, weights) of each sequence: pairs X (steps, 1, alphabet), y
    (steps, alphabet), or with full_sequence the same steps as one sample,
    X (1, steps, alphabet), y (1, steps, alphabet); weights, the loss
    weight of each step (end_weight for the last)."""
    s = settings
    frames = []
    for seq in sequences(s, rng):
        X, y = data.pairs(seq, s.alphabet, dtype)
        weights = np.ones(s.steps)
        weights[-1] = s.end_weight
        if s.full_sequence:
            X, y, weights = X.reshape(1, s.steps, -1), y[None], weights[None]
        frames.append((X, y, weights))
    return frames


def evaluate(model, settings, dtype, rng):
    """Each sequence step by step from a reset state; the tutorial's printout.
    With a fixed middle every prediction is judged; with a random one, the
    last prediction of each of eval_sequences fresh pairs of sequences."""
    s = settings
    report, right, total = [], 0, 0
    for k in range(s.eval_sequences if s.random_middle else 1):
        for X, y, _ in framed(s, dtype, rng):
            predicted = model.predict_classes(X, batch_size=s.batch_size if not s.full_sequence
                                              else 1).reshape(-1)
            model.reset_states()
            inputs = data.one_hot_decode(X).reshape(-1)
            targets = data.one_hot_decode(y).reshape(-1)
            if k == 0:
                report += [f"X={float(x):.1f} y={float(t):.1f}, yhat={float(p):.1f}"
                           for x, t, p in zip(inputs, targets, predicted)]
            judged = slice(-1, None) if s.random_middle else slice(None)
            right += int(np.sum(targets[judged] == predicted[judged]))
            total += len(targets[judged])
    if s.random_middle:
        report.append(f"last step right in {right} of {total} fresh sequences")
    return report, right / total


def run(name, settings, seed, dtype, config, progress):
    s = settings
    model_seed, rng = seeded(seed)
    model = build_model(s, model_seed, dtype)
    X0, y0, _ = framed(s, dtype, np.random.default_rng(0))[0]     # not the task's stream
    model.warm_up(X0[:s.batch_size], y0[:s.batch_size])     # compiles before the clock
    fixed = None if s.random_middle else framed(s, dtype)

    def one_epoch(epoch):
        frames = fixed or framed(s, dtype, rng)
        if s.full_sequence:        # both sequences as samples of one fit
            frames = [tuple(np.concatenate(parts) for parts in zip(*frames))]
        losses, accuracies = [], []
        for X, y, weights in frames:
            history = model.fit(X, y, epochs=1, batch_size=s.batch_size, shuffle=s.shuffle,
                                verbose=0, sample_weight=weights)
            model.reset_states()
            losses.append(history.history["loss"][0])
            accuracies.append(history.history["accuracy"][0])
        return sum(losses) / len(losses), sum(accuracies) / len(accuracies)

    history, seconds, interrupted = train(s.epochs, one_epoch, progress)
    report, accuracy = evaluate(model, s, dtype, rng)
    return Result(name, config, seed, dtype, dataclasses.asdict(s), s.epochs,
                  model.optimizer.iterations, seconds, accuracy, accuracy == 1.0, report,
                  history, interrupted=interrupted), model


def probes(settings, rng, dtype):
    """A and B, each one sequence; a random middle is drawn once and shared,
    so that the first symbol is all that differs."""
    s = settings
    if s.random_middle:
        middle = rng.integers(0, s.alphabet - 2, size=s.gap)
        s = dataclasses.replace(s, random_middle=False)
        seqs = [np.concatenate([[first], middle, [first]])
                for first in (s.alphabet - 2, s.alphabet - 1)]
    else:
        seqs = sequences(s)
    probes = []
    for name, seq in zip("AB", seqs):
        X, _ = data.pairs(seq, s.alphabet, dtype)
        if s.full_sequence:
            X = X.reshape(1, s.steps, -1)
        probes.append(Probe(X, [f"{name} = {' '.join(map(str, seq))}"],
                            [[str(x) for x in seq[:-1]]], samples_are_steps=True))
    return probes


# The context: the cell state after the second-to-last step (the tutorial:
# after "1"), which the last step ("2") needs to answer 3 for A and 4 for B.
TASK = Task("memory", CONFIGS, run, probes, context_step=-2, solved_in=SOLVED_IN)
