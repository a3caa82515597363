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
    if script == "memory.py":
        assert len(lines) == 8
    else:
        assert len(lines) == 22 and lines[-1].startswith("Accuracy: ")
