"""How many threads npLSTM's work runs on: NumPy's BLAS, and the compiled loops.

BLAS (OpenBLAS in NumPy's wheels) starts with one thread per core. On a
machine busy with other work one thread can win: the threads of one
product wait for each other while the others' processes hold the cores.
threadpoolctl does the setting, on every BLAS library NumPy loaded.

The LSTM loops share a batch's rows among as many of Numba's threads as
BLAS may use, where each thread gets 16 rows or more
(kernels.routes.row_threads). In the larger layers (kernels.routes.compiled_loop
says which) each thread calls BLAS for its own rows, at one thread, from
compiled code (kernels.blas, where NumPy's BLAS is an OpenBLAS: NumPy's
wheels), with no Python between the steps: the fastest route at the
large sizes (docs/performance.md). The products around them (x W, the
weight gradients, a Dense head's) stay off BLAS's own threads too, which
spin for a while after a product waiting for more, on the cores the
loops need. Smaller batches run the loops on the calling thread and
hand the products to BLAS's threads.

A model's plan may ask for n loop threads (npLSTM.Plan, Sequential(...,
loop_threads=n)); set_loop_threads(n) asks for the models whose plan does
not: the rows go on n threads at any batch instead (the adding task's 16
rows, about twice as fast on two). Rows are
independent: the threads do not change the compiled loops' results. The
number of threads of the larger layers changes the last bits of their dU
and db, summed per block of rows, and OpenBLAS's float32 products change
in their last bits with its thread count. The same settings and seed
give the same bits.
"""
import numba
import threadpoolctl

from .checks import positive_int


def set_blas_threads(n):
    """Let BLAS use n threads from now on (n >= 1; more than the cores gains
    nothing), and the LSTM loops as many on batches of 16 rows a thread."""
    n = positive_int(n, "the number of BLAS threads")
    threadpoolctl.threadpool_limits(n, user_api="blas")


def blas_threads():
    """The threads BLAS uses now (the largest over its libraries)."""
    return max(pool["num_threads"] for pool in threadpoolctl.threadpool_info()
               if pool["user_api"] == "blas")


# The loop threads of models whose plan leaves them to this process's setting.
_loop_threads = [1]


def check_loop_threads(n):
    """n, checked as a number of loop threads: at least 1, at most the
    threads Numba started (one per core unless NUMBA_NUM_THREADS says otherwise)."""
    n = positive_int(n, "the number of loop threads")
    most = numba.config.NUMBA_NUM_THREADS
    if n > most:
        raise ValueError(f"the number of loop threads must be at most {most}, the threads "
                         f"Numba started (NUMBA_NUM_THREADS), got {n}")
    return n


def set_loop_threads(n):
    """Share the rows of a batch in the LSTM loops among n threads from now
    on, at any batch, in models whose plan does not say (npLSTM.Plan's
    loop_threads). 1, the default: as many as BLAS's threads on batches of
    16 rows a thread, else the calling thread."""
    n = check_loop_threads(n)
    numba.set_num_threads(n)
    _loop_threads[0] = n


def loop_threads():
    """The threads the LSTM loops share a batch's rows among now, in models
    whose plan does not say."""
    return _loop_threads[0]


def set_threads(blas, loop):
    """Set BLAS's threads and the loop threads, each when given (None: left
    as it is): what --blas-threads and --loop-threads do."""
    if loop:
        set_loop_threads(loop)
    if blas:
        set_blas_threads(blas)
