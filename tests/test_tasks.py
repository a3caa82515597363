"""The reference tasks run as TASKS.md specifies them."""
import dataclasses

import numpy as np
import pytest

from npLSTM import tasks
from npLSTM.tasks import memory
from npLSTM.tasks.common import apply_overrides


def test_memory_tutorial_framing_and_model():
    X, y = memory.framed(memory.TASK.configs["tutorial"], "float64")[0]
    assert X.shape == (4, 1, 5) and y.shape == (4, 5)
    model = memory.build_model(memory.TASK.configs["tutorial"], seed=0, dtype="float64")
    lstm, dense = model.layers
    assert (lstm.units, lstm.stateful, lstm.batch_size) == (20, True, 1)
    assert (dense.units, dense.activation, model.loss.name) == (5, "sigmoid", "binary_crossentropy")
    assert model.optimizer.learning_rate == 0.001


def test_memory_tutorial_makes_eight_updates_per_epoch():
    settings = dataclasses.replace(memory.TASK.configs["tutorial"], epochs=3)
    result = memory.TASK.run(settings, seed=0)
    assert result.updates == 3 * 8
    assert len(result.history["loss"]) == 3
    assert len(result.report) == 8
    assert result.report[0] == "X=3.0 y=0.0, yhat=" + result.report[0].split("yhat=")[1]


def test_memory_default_solves_with_a_fixed_seed():
    result = memory.TASK.run(memory.TASK.configs["default"], seed=0)
    assert result.updates == 500 * 2
    assert result.solved and result.accuracy == 1.0
    assert result.report[3] == "X=2.0 y=3.0, yhat=3.0"
    assert result.report[7] == "X=2.0 y=4.0, yhat=4.0"


def test_memory_tutorial_solves_with_a_fixed_seed():
    """Seed 4 is one of the 9 in 20 that the tutorial's setup solves (README)."""
    result = memory.TASK.run(memory.TASK.configs["tutorial"], seed=4)
    assert result.solved


def test_runs_are_reproducible():
    settings = dataclasses.replace(memory.TASK.configs["default"], epochs=20)
    a, b = memory.TASK.run(settings, seed=5), memory.TASK.run(settings, seed=5)
    assert a.history == b.history and a.report == b.report


def test_overrides_are_typed_and_checked():
    settings = apply_overrides(memory.TASK.configs["tutorial"],
                               {"units": "8", "learning_rate": "0.01", "full_sequence": "true"})
    assert (settings.units, settings.learning_rate, settings.full_sequence) == (8, 0.01, True)
    with pytest.raises(ValueError, match="unknown setting 'unit'.*units"):
        apply_overrides(settings, {"unit": "8"})
    with pytest.raises(ValueError, match="units takes a int, got 'x'"):
        apply_overrides(settings, {"units": "x"})
    with pytest.raises(ValueError, match="full_sequence takes a bool"):
        apply_overrides(settings, {"full_sequence": "maybe"})


def test_unknown_task():
    with pytest.raises(ValueError, match="known"):
        tasks.get("copy")
