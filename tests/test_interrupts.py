"""Ctrl-C stops training between two steps: the model left behind is, to
the bit, the model of a run of exactly that many steps."""
import _thread
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import npLSTM as nl
from npLSTM import interrupts
from npLSTM.tasks import memory
from npLSTM.tasks.common import Progress

pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                reason="signals reach the main thread only")


@pytest.fixture(autouse=True)
def ctrl_c_raises():
    """Python's own SIGINT handler, whatever the test runner inherited (a
    shell's background job starts with SIGINT ignored)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def nplstm(*args):
    """The CLI in a process of its own, as a terminal starts it: Ctrl-C raises."""
    return subprocess.Popen([sys.executable, "-m", "npLSTM.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def interrupted_output(process, after):
    """Wait for `after` on the process's stderr, send it Ctrl-C, and return
    (exit status, stdout, stderr)."""
    try:
        seen = read_until(process.stderr, after)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    return process.returncode, out.decode(), seen + err.decode()


def stateful_model(seed=0):
    """Two stateful LSTMs and a Dense head: trained layer by layer."""
    model = nl.Sequential([
        nl.LSTM(6, return_sequences=True, stateful=True, batch_input_shape=(2, 3, 4)),
        nl.LSTM(5, stateful=True),
        nl.Dense(3, activation="softmax"),
    ], seed=seed, executor="layers")
    model.compile(loss="categorical_crossentropy", optimizer=nl.Adam(0.01))
    return model


def one_lstm_model(seed=0):
    """One LSTM under a Dense head: its batches run as one compiled call."""
    model = nl.Sequential([nl.LSTM(5, input_shape=(3, 4)), nl.Dense(2, activation="sigmoid")],
                          seed=seed)
    model.compile(loss="binary_crossentropy", optimizer="adam")
    return model


def data(rows):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(rows, 3, 4))
    return X, np.eye(3)[rng.integers(0, 3, rows)]


def assert_same_model(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert a.optimizer.iterations == b.optimizer.iterations
    for name in a.optimizer.slots:
        for sa, sb in zip(a.optimizer.slots[name], b.optimizer.slots[name]):
            np.testing.assert_array_equal(sa, sb)
    for la, lb in zip(a.layers, b.layers):
        for sa, sb in zip(la.get_states() or (), lb.get_states() or ()):
            np.testing.assert_array_equal(sa, sb)


def test_a_ctrl_c_in_the_middle_of_a_step_stops_fit_after_that_step(monkeypatch):
    X, y = data(20)                                     # 10 batches of 2
    model = stateful_model()
    step = model.optimizer.step

    def step_then_signal(*args):                       # Ctrl-C arrives inside step 4
        if model.optimizer.iterations == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return step(*args)

    monkeypatch.setattr(model.optimizer, "step", step_then_signal)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y, epochs=1, batch_size=2, shuffle=False, verbose=0)
    assert model.optimizer.iterations == 4
    exactly = stateful_model()
    exactly.fit(X[:8], y[:8], epochs=1, batch_size=2, shuffle=False, verbose=0)
    assert_same_model(model, exactly)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    model.fit(X, y, epochs=1, batch_size=2, shuffle=False, verbose=0)   # and it goes on


@pytest.mark.parametrize("build", [stateful_model, one_lstm_model])
def test_ctrl_c_from_another_thread_leaves_the_model_of_a_whole_number_of_steps(build):
    X, y = data(2)
    y = y[:, :2] if build is one_lstm_model else y
    model = build()
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y, epochs=300_000, batch_size=2, shuffle=False, verbose=0)
    timer.join()
    steps = model.optimizer.iterations
    assert 0 < steps < 300_000
    exactly = build()
    exactly.fit(X, y, epochs=steps, batch_size=2, shuffle=False, verbose=0)
    assert_same_model(model, exactly)


def test_train_on_batch_finishes_its_step_before_the_interrupt():
    X, y = data(2)
    model, exactly = stateful_model(), stateful_model()
    with pytest.raises(KeyboardInterrupt):
        with interrupts.held():
            os.kill(os.getpid(), signal.SIGINT)
            model.train_on_batch(X, y)
            model.train_on_batch(X, y)
            interrupts.step_boundary()
            model.train_on_batch(X, y)               # never reached
    exactly.train_on_batch(X, y)
    exactly.train_on_batch(X, y)
    assert_same_model(model, exactly)


class InterruptAfter(Progress):
    def __init__(self, epochs):
        self.epochs = epochs

    def epoch(self, epoch, loss, accuracy):
        if epoch + 1 == self.epochs:
            os.kill(os.getpid(), signal.SIGINT)


def test_a_task_interrupted_reports_the_epochs_and_updates_done():
    settings = dataclasses.replace(memory.TASK.configs["default"], epochs=50)
    result, model = memory.TASK.train(settings, seed=3, progress=InterruptAfter(7))
    assert result.interrupted and result.epochs_done == 7 and result.updates == 14
    assert "7 of 50 epochs" in result.summary()
    whole, _ = memory.TASK.train(dataclasses.replace(settings, epochs=7), seed=3)
    assert not whole.interrupted and whole.history == result.history
    assert whole.accuracy == result.accuracy and whole.report == result.report


def read_until(stream, text, seconds=120):
    """Read stream (bytes) until text has come: everything read."""
    seen, end = b"", time.monotonic() + seconds
    while text.encode() not in seen and time.monotonic() < end:
        chunk = os.read(stream.fileno(), 4096)
        if not chunk:
            break
        seen += chunk
    return seen.decode()


def test_the_cli_stops_on_ctrl_c_saves_what_it_has_and_exits_130(tmp_path):
    saved = tmp_path / "m.npz"
    process = nplstm("run", "echo-partial", "--epochs", "1000000", "--set", "eval_sequences=2",
                     "--save", str(saved))
    code, out, err = interrupted_output(process, after="echo-partial:")   # the bar has started
    assert code == 130, err
    assert "Traceback" not in err
    interrupted = [line for line in out.splitlines() if line.startswith("interrupted after ")]
    assert len(interrupted) == 1
    epochs = int(interrupted[0].split()[2])
    updates = int(interrupted[0].split("(")[1].split()[0])
    assert 0 <= epochs <= updates
    assert f"{epochs} of 1000000 epochs" in out and "Expected: [" in out
    assert "Not solved." not in out           # the configuration was not run through
    assert f"model saved to {saved}" in out
    assert nl.load_model(saved).optimizer.iterations == updates


def test_a_sweep_stopped_by_ctrl_c_prints_the_runs_that_finished():
    process = nplstm("sweep", "memory", "--seeds", "1", "--jobs", "2",
                     "--grid", "epochs=2,100000000")
    code, out, err = interrupted_output(process, after="1/2")   # the short run has finished
    assert code == 130, err
    assert "Traceback" not in err
    lines = out.splitlines()
    assert lines[2].split()[:2] == ["epochs=2", "0/1"]           # solved of finished
    assert lines[3].split()[:2] == ["epochs=100000000", "0/0"]
    assert "solved 0 of the 1 runs that finished;" in out
    assert "interrupted: 1 of 2 runs finished" in out


def test_ctrl_c_while_warming_up_stops_at_once_and_leaves_the_model_as_it_was(monkeypatch):
    """Compiling can take seconds: a Ctrl-C there is not held to a step's
    end, and the step under way is undone all the same."""
    X, y = data(2)
    model, untouched = stateful_model(), stateful_model()
    model.train_on_batch(X, y)
    untouched.train_on_batch(X, y)
    forward = model._steps.forward

    def interrupted_forward(batch):             # Ctrl-C in the middle of the step
        forward(batch)
        os.kill(os.getpid(), signal.SIGINT)
        raise AssertionError("the Ctrl-C was held")

    monkeypatch.setattr(model._steps, "forward", interrupted_forward)
    with pytest.raises(KeyboardInterrupt):
        model.warm_up(X, y)
    assert_same_model(model, untouched)
