"""The BLAS and loop thread settings: they take effect, they are refused when
nonsense, the command line passes them on, and the loop threads change no
bit of a result."""
import numba
import numpy as np
import pytest

import npLSTM as nl
from npLSTM import cli


SETTINGS = {"BLAS": (nl.set_blas_threads, nl.blas_threads),
            "loop": (nl.set_loop_threads, nl.loop_threads)}


@pytest.fixture
def restore_threads():
    before = {name: get() for name, (_, get) in SETTINGS.items()}
    yield
    for name, (set_threads, _) in SETTINGS.items():
        set_threads(before[name])


@pytest.mark.parametrize("name", SETTINGS)
def test_thread_settings_take_effect(name, restore_threads):
    set_threads, threads = SETTINGS[name]
    for n in (1, 2, 1):
        set_threads(n)
        assert threads() == n


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None])
def test_nonsense_thread_counts_are_refused(bad, restore_threads):
    before = nl.blas_threads()
    with pytest.raises(ValueError, match="the number of BLAS threads must be a positive integer"):
        nl.set_blas_threads(bad)
    assert nl.blas_threads() == before


def test_the_command_line_sets_blas_threads(restore_threads, capsys):
    nl.set_blas_threads(2)
    assert cli.main(["run", "memory", "--epochs", "1", "--quiet", "--blas-threads", "1"]) == 0
    assert nl.blas_threads() == 1
    with pytest.raises(SystemExit):
        cli.main(["run", "memory", "--blas-threads", "0"])
    assert "--blas-threads must be a positive integer, got 0" in capsys.readouterr().err


@pytest.mark.parametrize("bad, message", [
    (0, "must be a positive integer, got 0"), (1.5, "must be a positive integer, got 1.5"),
    (True, "must be a positive integer, got True"),
    (numba.config.NUMBA_NUM_THREADS + 1, "must be at most"),
])
def test_nonsense_loop_thread_counts_are_refused(bad, message, restore_threads):
    nl.set_loop_threads(1)
    with pytest.raises(ValueError, match=f"the number of loop threads {message}"):
        nl.set_loop_threads(bad)
    assert nl.loop_threads() == 1 and numba.get_num_threads() == 1


def train(threads, dtype, mask):
    """Weights after three updates of a masked many-to-many model, batch 5,
    its rows on `threads` loop threads (its plan's)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5, 30, 3)).astype(dtype)
    if mask:
        X[1, :7] = 0.0                              # a masked prefix, as padding
        X[3, 20:] = 0.0
    y = rng.random(size=(5, 30, 2)).astype(dtype)
    layers = ([nl.Masking(0.0, input_shape=(30, 3))] if mask else []) + [
        nl.LSTM(16, return_sequences=True, input_shape=(30, 3)),
        nl.TimeDistributed(nl.Dense(2))]
    model = nl.Sequential(layers, seed=0, dtype=dtype, executor="layers", loop_threads=threads)
    model.compile(loss="mse", optimizer="adam")
    for _ in range(3):
        model.train_on_batch(X, y)
    return model.get_weights()


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two cores")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mask", [False, True])
def test_loop_threads_change_no_bit_of_the_result(dtype, mask, restore_threads):
    for serial, threaded in zip(train(1, dtype, mask), train(2, dtype, mask)):
        np.testing.assert_array_equal(serial, threaded)


def test_the_command_line_sets_loop_threads(restore_threads, capsys):
    nl.set_blas_threads(2)
    assert cli.main(["run", "memory", "--epochs", "1", "--quiet", "--loop-threads", "2"]) == 0
    assert nl.loop_threads() == 2 and nl.blas_threads() == 2    # BLAS left as it was
    assert cli.main(["run", "memory", "--epochs", "1", "--quiet", "--loop-threads", "1",
                     "--blas-threads", "1"]) == 0
    assert nl.loop_threads() == 1 and nl.blas_threads() == 1
    with pytest.raises(SystemExit):
        cli.main(["run", "memory", "--loop-threads", "0"])
    assert "--loop-threads must be a positive integer, got 0" in capsys.readouterr().err
