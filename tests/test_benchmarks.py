"""The benchmark scripts run, each mode at its smallest: their figures are
not checked (speed is measured there, never asserted), only that a script
still gets to its table."""
import pathlib
import subprocess
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).parent.parent / "benchmarks"


@pytest.mark.parametrize("args, row", [
    (["kernels.py", "--size", "1,1,5,20", "--dtype", "float32", "--rounds", "1"], "(1, 1, 5, 20)"),
    (["kernels.py", "--crossover", "--size", "4,5,32,16", "--dtype", "float64", "--rounds", "1"],
     "compiled loop"),
    (["tasks.py", "--tasks", "memory", "--epochs-scale", "0.004", "--rounds", "1", "--no-keras"],
     "memory"),
])
def test_a_benchmark_script_runs(args, row):
    done = subprocess.run([sys.executable, *args], cwd=BENCHMARKS, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert row in done.stdout.split("load average after")[0]
