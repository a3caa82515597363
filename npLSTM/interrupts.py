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

try:    # the C functions behind the signal module: its enum wrapping costs
    import _signal as _handlers         # more than a tenth of a tutorial model's fit
except ImportError:                     # (Pythons without it)
    _handlers = signal

_held = 0             # how many held() blocks are open (they nest: a task's loop, fit)
_pending = False      # a Ctrl-C arrived and waits for the next step boundary


def _hold(signum, frame):
    global _pending
    _pending = True


def _in_main_thread():
    return threading.current_thread() is threading.main_thread()


class held:
    """Hold Ctrl-C until the next step_boundary() inside this block, or its
    end (which then raises the KeyboardInterrupt). A class rather than a
    generator-based context manager: it is entered once per fit call,
    whose Python around a tutorial model's steps is microseconds."""

    def __enter__(self):
        global _held, _pending
        self.holds = _held > 0 or (
            _in_main_thread()
            and _handlers.getsignal(signal.SIGINT) is signal.default_int_handler)
        if self.holds:
            if _held == 0:
                _pending = False
                _handlers.signal(signal.SIGINT, _hold)
            _held += 1
        return self

    def __exit__(self, *exception):
        global _held, _pending
        if not self.holds:
            return False
        _held -= 1
        if _held == 0:
            _handlers.signal(signal.SIGINT, signal.default_int_handler)
            interrupted, _pending = _pending, False
            if interrupted:
                raise KeyboardInterrupt
        return False


def step_boundary():
    """Raise the KeyboardInterrupt of a Ctrl-C held since the last boundary."""
    global _pending
    if _pending and _in_main_thread():
        _pending = False
        raise KeyboardInterrupt
