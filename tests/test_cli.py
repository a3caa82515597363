"""The nplstm command, run as a user runs it."""
import json
import os
import subprocess
import sys

import pytest

from npLSTM import cli


def nplstm(*args):
    return subprocess.run([sys.executable, "-m", "npLSTM.cli", *args],
                          capture_output=True, text=True, timeout=300)


def test_run_memory_prints_the_tutorial_output_and_json():
    out = nplstm("run", "memory", "--epochs", "5", "--json")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("X=3.0 y=0.0, yhat=")
    assert "memory [default, epochs=5] seed 0" in lines[8]
    record = json.loads(lines[-1])
    assert {"task", "seed", "epochs", "updates", "train_seconds", "accuracy", "solved"} <= set(record)
    assert (record["task"], record["epochs"], record["updates"]) == ("memory", 5, 10)


def test_run_shows_progress_unless_quiet():
    out = nplstm("run", "memory", "--epochs", "3", "--config", "tutorial")
    assert "memory:" in out.stderr and "3/3" in out.stderr
    quiet = nplstm("run", "memory", "--epochs", "3", "--quiet")
    assert quiet.stderr == "" and len(quiet.stdout.splitlines()) == 1


def test_run_all_runs_every_task_in_turn():
    out = nplstm("run", "all", "--epochs", "1", "--quiet", "--json")
    assert out.returncode == 0, out.stderr
    records = json.loads(out.stdout.splitlines()[-1])
    assert [r["task"] for r in records] == ["memory", "echo", "echo-partial", "longlag-2a",
                                            "longlag-2b", "longlag-2c", "adding"]
    assert [r["updates"] for r in records] == [2, 3, 1, 1, 1, 1, 1]


def test_sweep_reports_a_success_rate(capsys):
    assert cli.main(["sweep", "memory", "--seeds", "2", "--jobs", "1", "--epochs", "2",
                     "--config", "tutorial", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["seed", "accuracy", "solved", "updates", "seconds"]
    assert lines[-2].startswith("solved ")
    record = json.loads(lines[-1])
    assert record["seeds"] == 2 and len(record["runs"]) == 2


def test_sweep_over_a_grid_reports_each_combination(capsys):
    assert cli.main(["sweep", "memory", "--seeds", "2", "--jobs", "1", "--epochs", "2",
                     "--grid", "units=3,4", "--grid", "batch_size=1,2", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("memory [default, epochs=2] Settings(") and \
        "full_sequence=True" in lines[0] and "stateful=False" in lines[0]   # as it is built
    assert lines[1].split() == ["setting", "solved", "median", "accuracy", "median", "s"]
    assert [line.split()[:2] for line in lines[2:6]] == [
        ["units=3", "batch_size=1"], ["units=3", "batch_size=2"],
        ["units=4", "batch_size=1"], ["units=4", "batch_size=2"]]
    records = json.loads(lines[-1])
    assert [(r["settings"]["units"], r["settings"]["batch_size"]) for r in records] == \
        [(3, 1), (3, 2), (4, 1), (4, 2)]
    assert [r["runs"][0]["updates"] for r in records] == [4, 2, 4, 2]


@pytest.mark.parametrize("args,message", [
    (["sweep", "memory", "--grid", "units"], "--grid takes key=value1,value2"),
    (["sweep", "memory", "--grid", "colour=red,blue"], "unknown setting 'colour'"),
    (["run", "memory", "--set", "units"], "key=value"),
    (["run", "memory", "--set", "colour=red"], "unknown setting 'colour'"),
    (["run", "memory", "--epochs", "0"], "--epochs must be a positive integer"),
    (["run", "nosuch"], "invalid choice"),
])
def test_bad_arguments_exit_with_a_message(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(args)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_help_describes_every_command():
    out = nplstm("--help").stdout
    assert "run" in out and "sweep" in out
    run_help = nplstm("run", "--help").stdout
    for option in ("--config", "--seed", "--epochs", "--dtype", "--set", "--json", "--quiet"):
        assert option in run_help


def test_run_saves_the_model_and_draws_its_curves_for_inspect(tmp_path):
    model, curves = tmp_path / "m.npz", tmp_path / "curves.png"
    out = nplstm("run", "memory", "--epochs", "4", "--quiet", "--save", str(model),
                 "--plot", str(curves))
    assert out.returncode == 0, out.stderr
    assert curves.read_bytes()[:4] == b"\x89PNG" and model.exists()
    out = nplstm("inspect", "memory", "--model", str(model), "--quiet", "--json",
                 "--csv", str(tmp_path / "s.csv"), "--plot", str(tmp_path / "g.png"), "--mark", "2")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"model loaded from {model}"
    assert lines[1].startswith("lstm: the units whose cell state differs most across the 2 "
                               "sequences after step 2 (counting from 0; input 1)")
    record = json.loads(lines[-1])
    assert record["layers"][0]["context_step"] == 2
    assert len(record["layers"][0]["context_units"]) == 2
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    assert len((tmp_path / "s.csv").read_text().splitlines()) == 1 + 2 * 4 * 20


def test_inspect_trains_and_prints_the_summary_and_context_units():
    out = nplstm("inspect", "echo", "--epochs", "2", "--set", "eval_sequences=1")
    assert out.returncode == 0, out.stderr
    assert "echo [default, epochs=2, eval_sequences=1] seed 0" in out.stdout and "Total params: 11,780" in out.stdout
    assert "sequences: window 1: " in out.stdout


def test_inspect_names_a_model_that_does_not_fit_the_task(tmp_path):
    nplstm("run", "memory", "--epochs", "1", "--quiet", "--save", str(tmp_path / "m.npz"))
    out = nplstm("inspect", "echo", "--model", str(tmp_path / "m.npz"))
    assert out.returncode == 2
    assert "does not take echo's data with these settings" in out.stderr


def test_run_all_cannot_save_one_model(tmp_path):
    out = nplstm("run", "all", "--save", str(tmp_path / "m.npz"))
    assert out.returncode == 2 and "--save keeps one model" in out.stderr


def test_a_run_that_is_not_solved_says_so_and_what_solves_it():
    out = nplstm("run", "memory", "--config", "tutorial", "--quiet")   # seed 0: 7 of 8 right
    assert out.stdout.startswith("memory [tutorial] seed 0: not solved")
    out = nplstm("run", "memory", "--config", "tutorial")
    lines = out.stdout.splitlines()
    assert lines[8].startswith("memory [tutorial] seed 0: not solved")
    assert lines[9:] == [
        "Not solved.",
        "The tutorial configuration solves memory in 9 of 20 seeds (float64; `nplstm sweep "
        "memory --config tutorial --seeds 20` measures it).",
        "`nplstm run memory`, the default configuration, solves it in 20 of 20 seeds."]
    changed = nplstm("run", "memory", "--config", "tutorial", "--epochs", "3").stdout
    assert "memory [tutorial, epochs=3] seed 0: not solved" in changed
    assert changed.splitlines()[-1].startswith("`nplstm run memory`, the default")
    solved = nplstm("run", "memory").stdout
    assert "SOLVED" in solved and "Not solved" not in solved


def test_a_first_run_says_it_compiles_before_the_progress_bar_starts(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))        # an empty cache
    first = subprocess.run([sys.executable, "-m", "npLSTM.cli", "run", "memory", "--epochs", "2"],
                           capture_output=True, text=True, timeout=300, env=env)
    assert first.returncode == 0, first.stderr
    notice = first.stderr.index("npLSTM compiles its kernels for this machine first")
    assert notice < first.stderr.index("memory:")
    assert str(tmp_path) in first.stderr
    again = subprocess.run([sys.executable, "-m", "npLSTM.cli", "run", "memory", "--epochs", "2"],
                           capture_output=True, text=True, timeout=300, env=env)
    assert "compiles" not in again.stderr and "memory:" in again.stderr
