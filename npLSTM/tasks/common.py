"""What the tasks share: settings from the command line, timing, results."""
import dataclasses
import time
from typing import Callable

import numpy as np

from .. import interrupts


@dataclasses.dataclass
class Result:
    """The outcome of one run of a task."""
    task: str
    config: str            # "tutorial" or "default", then the settings changed from it:
                           # "tutorial, epochs=100"; "custom" for settings made in code
    seed: int
    dtype: str
    settings: dict         # every setting used
    epochs: int
    updates: int           # weight updates made in training
    train_seconds: float
    accuracy: float        # on fresh data (see each task's evaluate)
    solved: bool
    report: list           # the tutorial-style printout, line by line
    history: dict          # per epoch: loss, accuracy (on the training data)
    extra: dict = dataclasses.field(default_factory=dict)   # task-specific figures
    interrupted: bool = False   # Ctrl-C stopped training: the figures are the model's then

    @property
    def epochs_done(self):
        """The epochs completed (fewer than `epochs` when stopped early)."""
        return len(self.history["loss"])

    def summary(self):
        epochs = f"{self.epochs_done} of {self.epochs}" if self.interrupted else self.epochs
        return (f"{self.task} [{self.config}] seed {self.seed}: "
                f"{'SOLVED' if self.solved else 'not solved'}, accuracy {self.accuracy:.2%}, "
                f"{epochs} epochs, {self.updates} updates in {self.train_seconds:.2f} s "
                f"({1e6 * self.train_seconds / max(self.updates, 1):.0f} us per update)")

    def to_json(self):
        """The machine-readable fields (no printout, no per-epoch history);
        `extra` holds a task's own figures (the paper tasks: sequences seen)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("report", "history")}


@dataclasses.dataclass(frozen=True)
class Probe:
    """Inputs to look inside a trained model with (npLSTM.inspection).

    X is fed in the model's own framing and batch size from a reset state;
    the first len(titles) sequences of it are shown. When samples_are_steps,
    the samples of X are the successive steps of one sequence (the memory
    tutorial's one-step samples), so they are joined into one.
    """
    X: np.ndarray
    titles: list           # one per sequence shown
    step_labels: list      # per sequence shown: one label per input step
    samples_are_steps: bool = False


class Progress:
    """What a task's training loop reports to: start(epochs) once the model
    is built and its kernels compiled, then epoch(epoch, loss, accuracy)
    after each epoch. This one reports nothing; the CLI draws a bar."""

    def start(self, epochs):
        pass

    def epoch(self, epoch, loss, accuracy):
        pass


@dataclasses.dataclass(frozen=True)
class Task:
    """A reference problem: its configurations, the function that trains and
    evaluates it, runner(name, settings, seed, dtype, config, progress) ->
    (Result, model), and what to look inside the trained model with:
    probes(settings, rng, dtype) -> [Probe], and the step of each LSTM layer
    where the cell state must carry the context (an index, negative from
    the end)."""
    name: str
    configs: dict          # "tutorial" and "default" -> settings dataclass
    runner: Callable
    probes: Callable
    context_step: int
    # Per configuration, (seeds solved, seeds run) as `nplstm sweep` measured
    # it: what a user whose run was not solved can expect.
    solved_in: dict = dataclasses.field(default_factory=dict)

    def train(self, settings, seed=0, dtype="float64", config="custom", progress=None):
        """Train and evaluate: (Result, the trained model). Ctrl-C ends the
        training between two steps; the model is then evaluated as it
        stands and the Result says `interrupted`."""
        return self.runner(self.name, settings, seed, dtype, config, progress or Progress())

    def run(self, settings, seed=0, dtype="float64", config="custom", progress=None):
        """Train and evaluate: the Result."""
        return self.train(settings, seed, dtype, config, progress)[0]

    def advice(self, config):
        """Plain words for a run that was not solved, given its config label
        ("tutorial", "default", "tutorial, epochs=100", ...): how often the
        configuration solves the task, and the command that solves it."""
        name, _, changed = config.partition(", ")
        lines = []
        if name in self.solved_in and not changed:
            solved, seeds = self.solved_in[name]
            lines.append(f"The {name} configuration solves {self.name} in {solved} of {seeds} "
                         f"seeds (float64; `nplstm sweep {self.name} --config {name} "
                         f"--seeds {seeds}` measures it).")
        if "default" in self.solved_in and (name != "default" or changed):
            solved, seeds = self.solved_in["default"]
            lines.append(f"`nplstm run {self.name}`, the default configuration, solves it in "
                         f"{solved} of {seeds} seeds.")
        return lines


def apply_overrides(settings, overrides):
    """A copy of a settings dataclass with {"field": "text value"} applied,
    each value converted to the field's type; unknown fields are named."""
    fields = {f.name: f for f in dataclasses.fields(settings)}
    changes = {}
    for key, text in overrides.items():
        if key not in fields:
            raise ValueError(f"unknown setting {key!r}; known: {sorted(fields)}")
        kind = type(getattr(settings, key))
        try:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                changes[key] = text.lower() in ("true", "1", "yes")
            else:
                changes[key] = kind(text)
        except ValueError:
            raise ValueError(f"setting {key} takes a {kind.__name__}, got {text!r}") from None
    return dataclasses.replace(settings, **changes)


def decayed(learning_rate, decay, epoch, epochs):
    """Exponential decay from learning_rate at the first epoch to
    learning_rate * decay at the last (decay = 1: constant)."""
    return learning_rate * decay ** (epoch / max(epochs - 1, 1))


def seeded(seed):
    """The model's seed and the data generator for one run: independent
    streams of one seed, so the data does not depend on the model's draws."""
    model_seed, data_seed = np.random.SeedSequence(seed).spawn(2)
    return model_seed, np.random.default_rng(data_seed)


class StopTraining(Exception):
    """Raised by one_epoch to end training after its epoch (a task solved
    early), with that epoch's loss and accuracy."""

    def __init__(self, loss, accuracy):
        super().__init__("training stopped early")
        self.loss, self.accuracy = loss, accuracy


def train(epochs, one_epoch, progress, time_limit=None):
    """Call one_epoch(epoch) -> (loss, accuracy) for each epoch, timing it, and
    report each epoch to progress (its own time is not counted); one_epoch
    may end training early by raising StopTraining, and training ends after
    the epoch that brings the time past time_limit seconds, when given.

    Ctrl-C ends training between two steps (npLSTM.interrupts), the epoch
    under way left unfinished. Returns (history, seconds, interrupted)."""
    history = {"loss": [], "accuracy": []}
    seconds, interrupted = 0.0, False
    try:
        with interrupts.held():
            progress.start(epochs)
            for epoch in range(epochs):
                interrupts.step_boundary()
                start = time.perf_counter()
                stop = None
                try:
                    loss, accuracy = one_epoch(epoch)
                except StopTraining as stopped:
                    stop, loss, accuracy = stopped, stopped.loss, stopped.accuracy
                finally:
                    seconds += time.perf_counter() - start
                history["loss"].append(loss)
                history["accuracy"].append(accuracy)
                progress.epoch(epoch, loss, accuracy)
                if stop is not None or (time_limit is not None and seconds >= time_limit):
                    break
    except KeyboardInterrupt:
        interrupted = True
    return history, seconds, interrupted
