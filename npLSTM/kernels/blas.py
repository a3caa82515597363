"""NumPy's BLAS product (gemm), called from compiled code.

The large LSTM path calls BLAS once per step. From Python that is a
NumPy call, and the rows of a batch can only be shared out between threads
that each hold the GIL between their calls. Called from a compiled loop,
each of Numba's threads runs its rows' steps with no Python at all: the
rows of a batch are independent through time, so the threads need not
wait for each other (jit, large path). The other large products share
their rows out in the same way (matmul).

NumPy's wheels carry OpenBLAS under their own symbol names; threadpoolctl
(already npLSTM's way of setting BLAS's threads) names the library file.
Other BLAS builds (MKL, Accelerate) are not looked for: GEMM is then None
and the large path and the products keep calling BLAS from Python.
"""
import contextlib
import ctypes
import threading

import numba
import numpy as np
import threadpoolctl
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from . import routes

# (symbol prefix, suffix) of OpenBLAS builds: NumPy's 64-bit-integer wheels,
# its 32-bit ones, a plain OpenBLAS.
OPENBLAS_NAMES = (("scipy_", "64_"), ("scipy_", ""), ("", ""))
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112


def _find_openblas():
    """({dtype: address of cblas_?gemm}, BLAS's integer as a NumPy scalar,
    (get, set) of its thread count) from the OpenBLAS NumPy loaded, or
    (None, None, None)."""
    for pool in threadpoolctl.threadpool_info():
        if pool.get("internal_api") != "openblas":
            continue
        try:
            library = ctypes.CDLL(pool["filepath"])
        except OSError:
            continue
        for prefix, suffix in OPENBLAS_NAMES:
            try:
                config = getattr(library, f"{prefix}openblas_get_config{suffix}")
                found = {dtype: getattr(library, f"{prefix}cblas_{letter}gemm{suffix}")
                         for dtype, letter in ((np.float32, "s"), (np.float64, "d"))}
                threads = tuple(getattr(library, f"{prefix}openblas_{verb}_num_threads{suffix}")
                                for verb in ("get", "set"))
            except AttributeError:
                continue
            config.restype = ctypes.c_char_p
            integer = np.int64(0) if b"USE64BITINT" in config() else np.int32(0)
            return ({dtype: ctypes.cast(f, ctypes.c_void_p).value for dtype, f in found.items()},
                    integer, threads)
    return None, None, None


GEMM, BLAS_INT, _THREADS = _find_openblas()


def threads():
    """The threads OpenBLAS may use now, 1 when it was not found (its own
    setting, the one threadpoolctl sets: read in a fraction of a
    microsecond, where threadpoolctl takes milliseconds to find it)."""
    return 1 if _THREADS is None else _THREADS[0]()


# How many holds of one_blas_thread are open, and BLAS's setting before the
# first: Python threads may hold it at once, and leave in any order.
_holds = {"open": 0, "before": None}
_holds_lock = threading.Lock()


@contextlib.contextmanager
def one_blas_thread():
    """BLAS at one thread inside; its setting before put back when the last
    hold open, of any Python thread, ends. Nothing to hold where
    npLSTM found no OpenBLAS (it then calls no BLAS from threads)."""
    if _THREADS is None:
        yield
        return
    with _holds_lock:
        if _holds["open"] == 0:
            _holds["before"] = _THREADS[0]()
            _THREADS[1](1)
        _holds["open"] += 1
    try:
        yield
    finally:
        with _holds_lock:
            _holds["open"] -= 1
            if _holds["open"] == 0:
                _THREADS[1](_holds["before"])


@contextlib.contextmanager
def on_threads(n):
    """Inside, n of Numba's threads, each calling BLAS for itself, BLAS at
    one thread (on more, two threads' calls queue for its threads, and a
    product takes many times as long); both settings as before after."""
    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        with one_blas_thread():
            yield
    finally:
        numba.set_num_threads(before)


@intrinsic
def gemm(typingctx, function, trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc, blas_int):
    """C = op(A) op(B) + beta C, row-major, op transposing where trans_a or
    trans_b: cblas_?gemm at the address function. A is m x k, B k x n, C
    m x n (as op leaves them); a, b, c are the addresses of their first
    entries (address below), lda, ldb, ldc their row strides in entries;
    beta's type picks the precision, blas_int's the integers BLAS takes."""
    def codegen(context, builder, signature, args):
        function_, trans_a_, trans_b_ = args[:3]
        integer = context.get_value_type(signature.args[-1])
        real = context.get_value_type(signature.args[10])
        int32, pointer = ir.IntType(32), real.as_pointer()

        def as_int(index):
            return context.cast(builder, args[index], signature.args[index], signature.args[-1])

        def as_pointer(index):
            return builder.inttoptr(args[index], pointer)

        def transposed(flag):
            return builder.select(builder.icmp_unsigned("!=", flag, ir.Constant(flag.type, 0)),
                                  ir.Constant(int32, TRANS), ir.Constant(int32, NO_TRANS))
        function_type = ir.FunctionType(ir.VoidType(), [int32] * 3 + [integer] * 3 + [
            real, pointer, integer, pointer, integer, real, pointer, integer])
        builder.call(builder.inttoptr(function_, function_type.as_pointer()), [
            ir.Constant(int32, ROW_MAJOR), transposed(trans_a_), transposed(trans_b_),
            as_int(3), as_int(4), as_int(5), ir.Constant(real, 1.0), as_pointer(6), as_int(7),
            as_pointer(8), as_int(9), args[10], as_pointer(11), as_int(12)])
        return context.get_dummy_value()
    signature = types.void(function, trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc,
                           blas_int)
    return signature, codegen


@njit(inline="always")
def address(a, offset):
    """The address of a's entry offset entries past its first, as gemm takes it."""
    return np.int64(a.ctypes.data) + offset * a.itemsize


# Products shared among threads ----------------------------------------------------------


def _operand(a):
    """(transposed, row stride) with which gemm reads the 2-D array a in
    place, or None when it cannot (neither its rows nor its columns lie
    one entry apart). NumPy's flags come first: they pass an axis of one
    entry whatever its stride, which gemm never takes either."""
    rows, columns = a.shape
    if a.flags.c_contiguous:
        return False, max(columns, 1)
    if a.flags.f_contiguous:
        return True, max(rows, 1)
    row, column = (stride // a.itemsize for stride in a.strides)
    if column == 1 and row >= columns:
        return False, row
    if row == 1 and column >= rows:
        return True, column
    return None


@njit(cache=True, parallel=True)
def _row_products(gemm_at, blas_int, blocks, trans_a, a_at, lda, trans_b, b_at, ldb, k, c):
    """c = op(a) op(b), a thread the rows blocks[i] to blocks[i + 1] - 1 of
    c; a_at and b_at are the operands' addresses (address), op as gemm."""
    n = c.shape[1]
    zero = c.dtype.type(0.0)
    for i in prange(len(blocks) - 1):
        lo, hi = blocks[i], blocks[i + 1]
        rows_at = a_at + (lo if trans_a else lo * lda) * c.itemsize
        gemm(gemm_at, trans_a, trans_b, hi - lo, n, k, rows_at, lda, b_at, ldb, zero,
             address(c, lo * n), n, blas_int)


def matmul(a, b, route):
    """a @ b for 2-D arrays a, b of a batch on this route (routes.Route),
    as routes.product_threads says: NumPy's product, or
    on the calling thread with BLAS held to one, or its rows shared among
    Numba's threads, each calling BLAS at one thread (in float32 or float64
    with GEMM found; else NumPy's product)."""
    (m, k), n = a.shape, b.shape[1]
    if (GEMM is None or a.dtype != b.dtype or a.dtype.type not in GEMM
            or k != b.shape[0]):
        return a @ b
    shared = routes.product_threads(m, n, k, route)
    if shared == 0:
        return a @ b
    if shared == 1:
        with one_blas_thread():
            return a @ b
    a, b = (x if _operand(x) else np.ascontiguousarray(x) for x in (a, b))
    (trans_a, lda), (trans_b, ldb) = _operand(a), _operand(b)
    c = np.empty((m, n), dtype=a.dtype)
    blocks = np.linspace(0, m, shared + 1).astype(np.int64)
    with on_threads(shared):
        _row_products(GEMM[a.dtype.type], BLAS_INT, blocks, trans_a, np.int64(a.ctypes.data), lda,
                      trans_b, np.int64(b.ctypes.data), ldb, k, c)
    return c
