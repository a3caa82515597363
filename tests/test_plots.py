"""The pictures: training curves and heat maps, with and without matplotlib."""
import dataclasses
import sys

import numpy as np
import pytest
from matplotlib.image import imread

from npLSTM import cli, inspection, plots, tasks
from npLSTM.layers.lstm import LSTMTrace

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def short_run(name="memory", epochs=5, **changes):
    task = tasks.get(name)
    settings = dataclasses.replace(task.configs["default"], epochs=epochs, **changes)
    result, model = task.train(settings, seed=0)
    return task, settings, result, model


def test_history_plot_draws_loss_and_accuracy_per_epoch(tmp_path):
    _, _, result, _ = short_run(epochs=7)
    other = short_run("echo", epochs=3, eval_sequences=1)[2]
    fig = plots.plot_history([result, other], tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG_MAGIC
    loss_ax, acc_ax, echo_loss, _ = fig.axes
    np.testing.assert_array_equal(loss_ax.lines[0].get_ydata(), result.history["loss"])
    np.testing.assert_array_equal(acc_ax.lines[0].get_xdata(), np.arange(1, 8))
    np.testing.assert_array_equal(echo_loss.lines[0].get_ydata(), other.history["loss"])
    assert "memory [custom], seed 0" in loss_ax.get_title()
    assert (loss_ax.get_xlabel(), acc_ax.get_ylabel()) == ("epoch", "training accuracy")
    assert loss_ax.get_yscale() == "log"
    image = imread(tmp_path / "curves.png")
    assert image.shape[:2] == (640, 1100)        # 11 x 6.4 inches at 100 dpi
    assert image[..., :3].std() > 0.05           # something is drawn


def test_inspection_plot_has_a_heat_map_per_quantity_and_sequence(tmp_path):
    task, settings, _, model = short_run("echo-partial", epochs=1, units=6, eval_sequences=1)
    seen = inspection.inspect(task, model, settings, np.random.default_rng(0))
    fig = plots.plot_inspection(seen, tmp_path / "gates.png")
    assert (tmp_path / "gates.png").read_bytes()[:8] == PNG_MAGIC
    heat_maps = [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]
    assert len(heat_maps) == 2 * 6 * 3           # layers x quantities x sequences
    for k, layer in enumerate(seen.layers):
        for q, quantity in enumerate(LSTMTrace.QUANTITIES):
            for s in range(3):
                ax = heat_maps[(k * 6 + q) * 3 + s]
                # units down the side, steps along the bottom
                np.testing.assert_array_equal(ax.images[0].get_array(),
                                              layer.arrays[quantity][s].T)
                assert layer.name in ax.get_title() and ax.get_title()
                assert [int(t) for t in ax.get_yticks()] == layer.context_units
                assert "context: " + ", ".join(map(str, layer.context_units)) in ax.get_ylabel()
    first = heat_maps[0]
    assert seen.titles[0] in first.get_title()
    assert [t.get_text() for t in first.get_xticklabels()] == seen.step_labels[0]
    assert heat_maps[5 * 3].get_xlabel() == "input at each step"
    assert len([ax for ax in fig.axes if ax.get_label() == "<colorbar>"]) == 2 * 6
    assert "context units" in fig.get_suptitle()


@pytest.fixture
def no_matplotlib(monkeypatch):
    """As if matplotlib were not installed."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)


def test_without_matplotlib_plotting_says_how_to_install_it(no_matplotlib):
    with pytest.raises(ImportError, match=r'pip install "npLSTM\[plot\]"'):
        plots.plot_history([], None)


def test_without_matplotlib_the_commands_stop_before_training(no_matplotlib, capsys, tmp_path):
    for command in (["run", "memory"], ["inspect", "memory"]):
        with pytest.raises(SystemExit) as stop:
            cli.main([*command, "--epochs", "100000", "--plot", str(tmp_path / "p.png")])
        assert stop.value.code == 2
        assert 'pip install "npLSTM[plot]"' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_without_matplotlib_the_csv_is_still_written(no_matplotlib, capsys, tmp_path):
    assert cli.main(["inspect", "memory", "--epochs", "3", "--quiet",
                     "--csv", str(tmp_path / "s.csv")]) == 0
    assert len((tmp_path / "s.csv").read_text().splitlines()) == 1 + 2 * 4 * 20
