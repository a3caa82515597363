"""Which way the Numba backend runs a step: the one table of measured
thresholds, and every decision made from it.

Each decision is a plain function of the sizes and of the thread counts it
is given, so that what a step will do can be read, and tested, here; a
batch's decisions travel to the kernels as a Route, an argument:

    route(B, H, ...)          the Route of a batch: the three below
    compiled_loop(B, H)       the whole time loop compiled (small layers), or
                              one BLAS product per step around compiled gates
    row_threads(B, ...)       how many threads share a batch's rows, in the
                              loops and in the products around them
    row_blocks(B, ...)        the large path's blocks of rows, a thread each,
                              each thread calling BLAS for its own rows
    loop_weight_grads(...)    dX, dW, dU, db as loops, or a GEMM each
    product_threads(...)      how a product of a batch runs (blas.matmul)
    compiled_executor(...)    whether a small model's batches train in one
                              compiled call (npLSTM.executor)

The thresholds come from `python benchmarks/kernels.py` (--crossover,
--compiled-executor, the tables); docs/performance.md gives the figures
behind each, and why the routes are shaped as they are. Nothing else in
the kernels reads a threshold. Where a batch's rows are independent, the
threads do not change the compiled loops' results.
"""
from typing import NamedTuple, Optional

import numpy as np

# The compiled loop beats BLAS per step up to 128 units while batch x units
# stays within 512, and at up to 16 units at any batch.
SMALL_UNITS = 128     # most units for the compiled loop
SMALL_WORK = 512      # most batch x units for it
TINY_UNITS = 16       # the compiled loop at any batch
# The weight gradients are one pass over every row and step, with no
# recurrence: loops beat BLAS's call overhead only while the work,
# B*T*(D+H+1)*4H multiply-adds, is tiny (the tutorials' memory model).
SMALL_GRAD_WORK = 40_000
# A batch's rows go on npLSTM's own threads with at least this many rows a
# thread: the per-step products are then big enough to run well on one BLAS
# thread each; below it BLAS's own threads win.
MIN_THREAD_ROWS = 16
# OpenBLAS runs a product of at most this much work (m n k) on one thread
# (65536 x GEMM_MULTITHREAD_THRESHOLD, 4 unless built otherwise); on more
# it hands it to its own threads, which then spin for a while on the cores
# npLSTM's threads need.
ONE_THREAD_WORK = 65536 * 4
# Each thread's least share of a product worth starting threads for; less,
# and the product runs on the calling thread, BLAS held to one thread.
THREAD_WORK = 4 * 2**20
# A batch that runs on the calling thread hands a product (the per-step
# h U and dz U^T included) to BLAS's own threads only from this much work:
# smaller ones run on one thread. BLAS's threads wait for each other at
# every product, and beside another busy process a small product's half
# waits for a core: echo-partial's steps took several times as long on two
# threads as on one, and many times as long beside another such process.
BLAS_THREADS_WORK = 16 * 2**20
# The most work (multiply-adds of a step's weight gradients, all layers) for
# the compiled executor: below it, it beats layer by layer at every size
# measured; above it layer by layer wins with few inputs.
COMPILED_WORK = 3_000_000


class Route(NamedTuple):
    """How the numba backend runs one batch: jit.py's kernels take it as
    their `route` argument. route() below makes it for a batch of a model
    (npLSTM.plan.Plan.route); tests make it by hand to take each way."""
    whole_loop: bool                    # the LSTM's time loop compiled whole (compiled_loop);
                                        # else a BLAS product per step
    threads: int = 1                    # threads sharing the batch's rows (row_threads);
                                        # 1: the calling thread
    blocks: Optional[np.ndarray] = None  # the large path's rows in blocks, a thread each
                                        # calling BLAS itself (row_blocks), or None
    blas_threads: int = 1               # the threads BLAS may use
    most: int = 1                       # the threads Numba started
    one_thread_work: int = ONE_THREAD_WORK   # the products' thresholds (product_threads)
    thread_work: int = THREAD_WORK


def route(B, H, loop_threads, blas_threads, most, blas_callable, whole_loop=None,
          **thresholds):
    """The Route of a batch of B rows through an LSTM of H units (H = 0:
    a batch with no LSTM, its products alone), with `loop_threads` asked
    for (1: by the batch), BLAS's and Numba's thread counts, and whether
    npLSTM found a BLAS it can call from compiled code. whole_loop: the
    loop shape asked for (None: compiled_loop decides); thresholds: the
    products' (one_thread_work, thread_work), else the table's."""
    whole = compiled_loop(B, H) if whole_loop is None else whole_loop
    threads = row_threads(B, loop_threads, blas_threads, most)
    return Route(whole, threads, row_blocks(B, whole, threads, blas_callable), blas_threads,
                 most, **thresholds)


def compiled_loop(B, H):
    """Whether the whole-loop kernels serve a batch of B rows of H units."""
    return H <= TINY_UNITS or (H <= SMALL_UNITS and B * H <= SMALL_WORK)


def row_threads(B, loop_threads, blas_threads, most):
    """The threads that share a batch of B rows in the LSTM loops, both
    shapes, and in the products around them (1: none, the loops run on the
    calling thread and BLAS's own threads take the products): the loop
    threads when asked for above 1, else BLAS's thread count while each gets
    MIN_THREAD_ROWS rows; at most a thread a row, and `most` (the threads
    Numba started)."""
    threads = loop_threads if loop_threads > 1 else min(blas_threads, B // MIN_THREAD_ROWS)
    return max(1, min(threads, B, most))


def row_blocks(B, whole_loop, threads, blas_callable):
    """Where the large path shares a batch's rows among `threads` threads
    that call BLAS themselves (blas_callable: npLSTM found a BLAS it can
    call from compiled code), the first row of each thread's block and,
    last, B; else None."""
    if whole_loop or not blas_callable or threads < 2:
        return None
    return np.linspace(0, B, threads + 1).astype(np.int64)


def loop_weight_grads(B, T, D, H):
    """Whether dX, dW, dU, db are computed as loops rather than GEMMs."""
    return B * T * (D + H + 1) * 4 * H <= SMALL_GRAD_WORK


def product_threads(m, n, k, route):
    """How a product (m, k) @ (k, n) of a batch on this route is computed
    (the per-step products h U and dz U^T of the large path from Python too):
        0  NumPy's call, BLAS deciding its threads: BLAS runs it on one
           thread anyway, or the batch is on the calling thread and the
           product has BLAS_THREADS_WORK or more
        1  NumPy's call on the calling thread, BLAS held to one thread
        n  its rows on n of Numba's threads, each calling BLAS at one thread
    Threads only for products worth them (BLAS_THREADS_WORK, thread_work),
    and BLAS's own threads never left spinning beside npLSTM's."""
    work = m * n * k
    if work <= route.one_thread_work or route.blas_threads < 2:
        return 0
    if route.threads < 2:
        return 0 if work >= BLAS_THREADS_WORK else 1
    shared = min(route.threads, m, route.most, work // route.thread_work)
    return shared if shared >= 2 else 1


def compiled_executor(lstms, work):
    """Whether a model's batches train in the compiled executor: every LSTM,
    (rows, units), takes the compiled loop, and a step's work (multiply-adds
    of its weight gradients) is within COMPILED_WORK."""
    return all(compiled_loop(B, H) for B, H in lstms) and work <= COMPILED_WORK
