"""Ctrl-C at a step boundary.

A KeyboardInterrupt can arrive between any two Python instructions: in the
middle of a training step it would leave the weights updated but not the
optimizer's moments, or the recurrent state of a step whose update never
happened. Inside `held()` a Ctrl-C (SIGINT) only raises a flag, and
`step_boundary()`, called by the training loops between steps, raises the
KeyboardInterrupt there instead: whatever caught it sees a model whose
weights, optimizer state and recurrent state all come from the same last
completed step.

Only the main thread receives signals, and only a SIGINT that would have
raised KeyboardInterrupt (Python's default handler) is held: a program
that installed its own handler keeps it.
"""
import signal
import threading
from contextlib import contextmanager

_held = 0             # how many held() blocks are open (they nest: a task's loop, fit)
_pending = False      # a Ctrl-C arrived and waits for the next step boundary


def _hold(signum, frame):
    global _pending
    _pending = True


def _in_main_thread():
    return threading.current_thread() is threading.main_thread()


@contextmanager
def held():
    """Hold Ctrl-C until the next step_boundary() inside this block, or its
    end (which then raises the KeyboardInterrupt)."""
    global _held, _pending
    if _held == 0:
        if not _in_main_thread() or signal.getsignal(signal.SIGINT) is not \
                signal.default_int_handler:
            yield
            return
        _pending = False
        signal.signal(signal.SIGINT, _hold)
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if _held == 0:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            interrupted, _pending = _pending, False
            if interrupted:
                raise KeyboardInterrupt


def step_boundary():
    """Raise the KeyboardInterrupt of a Ctrl-C held since the last boundary."""
    global _pending
    if _pending and _in_main_thread():
        _pending = False
        raise KeyboardInterrupt
