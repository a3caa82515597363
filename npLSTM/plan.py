"""How a model runs its steps: chosen when the model is made, and handed
down to every kernel call (npLSTM.Plan).

For each batch the layers ask the plan's route(B, H) for the kernels'
Route (kernels/routes.py): the loop shape, the threads, the row blocks,
made from the one table of thresholds with this machine's thread counts,
and pass it to the kernels as an argument. The kernels decide nothing else.
"""
from dataclasses import dataclass
from typing import Optional

from . import threads
from .kernels import jit, routes

EXECUTORS = ("auto", "compiled", "layers")
LSTM_LOOPS = {"auto": None, "whole": True, "steps": False}     # routes.route's whole_loop


@dataclass(frozen=True)
class Plan:
    """How a model runs its steps (Sequential's `plan`; the numba backend's:
    the numpy backend has one way).

    executor         how fit and train_on_batch run a step (npLSTM.executor):
                     "auto" by the model's size, "compiled" all of a fit's
                     batches in one compiled call, on the calling thread,
                     "layers" layer by layer
    loop_threads     how many threads share a batch's rows in the LSTM loops
                     and the products around them, when layer by layer
                     (and in predict and evaluate): 1 as the batch calls
                     for (BLAS's threads at 16 rows a thread or more, else
                     the calling thread), n > 1 that many at any batch;
                     None (default): as npLSTM.set_loop_threads says (1
                     unless set)
    lstm_loop        the LSTM loop's shape: "auto" by size
                     (routes.compiled_loop), "whole" the time loop compiled
                     whole, "steps" a BLAS product per step
    one_thread_work  the products' thresholds (routes.product_threads): the
    thread_work      table's by default; tests set them low to send the
                     smallest products to threads
    """
    executor: str = "auto"
    loop_threads: Optional[int] = None
    lstm_loop: str = "auto"
    one_thread_work: int = routes.ONE_THREAD_WORK
    thread_work: int = routes.THREAD_WORK

    def __post_init__(self):
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {self.executor!r}")
        if self.lstm_loop not in LSTM_LOOPS:
            raise ValueError(f"lstm_loop must be one of {tuple(LSTM_LOOPS)}, "
                             f"got {self.lstm_loop!r}")
        if self.loop_threads is not None:
            threads.check_loop_threads(self.loop_threads)
        for name, least in (("one_thread_work", 0), ("thread_work", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer of at least {least}, got {value!r}")

    def route(self, B, H=0):
        """The Route of a batch of B rows (through an LSTM of H units; 0: a
        layer without one) on this machine now."""
        loop = threads.loop_threads() if self.loop_threads is None else self.loop_threads
        return jit.route_for(B, H, loop, LSTM_LOOPS[self.lstm_loop],
                             one_thread_work=self.one_thread_work, thread_work=self.thread_work)


DEFAULT = Plan()
