"""The example scripts run, top to bottom, as a learner runs them."""
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("script,epochs,first", [
    ("memory.py", "250", "X=3.0 y=0.0, yhat="),
    ("echo.py", "3", "Expected: ["),
    ("echo_partial.py", "2", "Expected: ["),
])
def test_example_runs(script, epochs, first):
    out = subprocess.run([sys.executable, str(EXAMPLES / script), epochs],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(first)
    printout = 8 if script == "memory.py" else 22
    assert script == "memory.py" or lines[printout - 1].startswith("Accuracy: ")
    verdict = lines[printout:]
    if verdict[0].startswith("Solved: "):       # and the printout shows it
        assert len(verdict) == 1
    else:                                       # says so, and what solves it
        assert verdict[0].startswith("Not solved: ") and "of 20 seeds" in verdict[-1]
