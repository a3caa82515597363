"""The BLAS thread setting: it takes effect, it is refused when nonsense, and
the command line passes it on."""
import pytest

import npLSTM as nl
from npLSTM import cli


@pytest.fixture
def restore_blas_threads():
    before = nl.blas_threads()
    yield
    nl.set_blas_threads(before)


def test_set_blas_threads_takes_effect(restore_blas_threads):
    nl.set_blas_threads(1)
    assert nl.blas_threads() == 1
    nl.set_blas_threads(2)
    assert nl.blas_threads() == 2


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None])
def test_nonsense_thread_counts_are_refused(bad, restore_blas_threads):
    before = nl.blas_threads()
    with pytest.raises(ValueError, match="the number of BLAS threads must be a positive integer"):
        nl.set_blas_threads(bad)
    assert nl.blas_threads() == before


def test_the_command_line_sets_blas_threads(restore_blas_threads, capsys):
    nl.set_blas_threads(2)
    assert cli.main(["run", "memory", "--epochs", "1", "--quiet", "--blas-threads", "1"]) == 0
    assert nl.blas_threads() == 1
    with pytest.raises(SystemExit):
        cli.main(["run", "memory", "--blas-threads", "0"])
    assert "--blas-threads must be a positive integer, got 0" in capsys.readouterr().err
