"""How many threads npLSTM's work runs on: NumPy's BLAS, and the compiled loops.

BLAS (OpenBLAS in NumPy's wheels) starts with one thread per core. The
large kernels spend their time in its products, and on an idle machine two
threads beat one. On a machine busy with other work one thread can win:
the threads of one product wait for each other while the others' processes
hold the cores (measured by a prototype on a loaded 2-core machine: one
thread 1.7x faster than two). threadpoolctl does the setting, on every BLAS
library NumPy loaded.

The LSTM loops run on the calling thread unless set_loop_threads gives
them more: then the rows of a batch are shared out among Numba's threads.
In the compiled loops (the smaller layers: up to 128 units while batch x
units is at most 512, or up to 16 at any batch; kernels.jit.compiled_loop)
that made the adding task's loops 1.9x faster with two. In the larger
layers each thread also calls BLAS for its own rows (kernels.blas, where
NumPy's BLAS is an OpenBLAS: NumPy's wheels), with no Python between the
steps: at (64, 100, 128, 256) a forward+backward at 81% of the GEMM rate
against 69% with BLAS's two threads (float32; float64 79% against 61%).
Hold BLAS to one thread when you do: after a product its idle threads
spin, waiting for more work, on the cores the loops need (a training step
took 60-80 ms instead of 30). Rows are independent: the loop threads do
not change the compiled loops' results. They change the last bits of the
larger layers' dU and db, summed per block of rows; and OpenBLAS's float32
products change in their last bits with its thread count. The same
settings and seed give the same bits.
"""
import numba
import threadpoolctl

from .kernels import jit
from .layers.base import positive_int


def set_blas_threads(n):
    """Let BLAS use n threads from now on (n >= 1; more than the cores gains nothing)."""
    n = positive_int(n, "the number of BLAS threads")
    threadpoolctl.threadpool_limits(n, user_api="blas")


def blas_threads():
    """The threads BLAS uses now (the largest over its libraries)."""
    return max(pool["num_threads"] for pool in threadpoolctl.threadpool_info()
               if pool["user_api"] == "blas")


def set_loop_threads(n):
    """Share the rows of a batch in the LSTM loops among n threads from now
    on (1: the calling thread only, the default; at most the threads Numba
    started, one per core unless NUMBA_NUM_THREADS says otherwise). Hold
    BLAS to one thread (set_blas_threads(1)) when n is above 1: with BLAS
    on two threads as well, a step at (64, 100, 128, 256) took 1.6x as
    long as with the defaults."""
    n = positive_int(n, "the number of loop threads")
    most = numba.config.NUMBA_NUM_THREADS
    if n > most:
        raise ValueError(f"the number of loop threads must be at most {most}, the threads "
                         f"Numba started (NUMBA_NUM_THREADS), got {n}")
    numba.set_num_threads(n)
    jit.loop_threads = n


def loop_threads():
    """The threads the LSTM loops share a batch's rows among now."""
    return jit.loop_threads
