"""NumPy's BLAS product (gemm), called from compiled code.

The large LSTM path calls BLAS once per step. From Python that is a
NumPy call, and the rows of a batch can only be shared out between threads
that each hold the GIL between their calls. Called from a compiled loop,
each of Numba's threads runs its rows' steps with no Python at all: the
rows of a batch are independent through time, so the threads need not
wait for each other (jit, large path, set_loop_threads).

NumPy's wheels carry OpenBLAS under their own symbol names; threadpoolctl
(already npLSTM's way of setting BLAS's threads) names the library file.
Other BLAS builds (MKL, Accelerate) are not looked for: GEMM is then None
and the large path keeps calling BLAS from Python.
"""
import ctypes

import numpy as np
import threadpoolctl
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

# (symbol prefix, suffix) of OpenBLAS builds: NumPy's 64-bit-integer wheels,
# its 32-bit ones, a plain OpenBLAS.
OPENBLAS_NAMES = (("scipy_", "64_"), ("scipy_", ""), ("", ""))
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112


def _find_gemm():
    """({dtype: address of cblas_?gemm}, BLAS's integer as a NumPy scalar)
    from the OpenBLAS NumPy loaded, or (None, None)."""
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
            except AttributeError:
                continue
            config.restype = ctypes.c_char_p
            integer = np.int64(0) if b"USE64BITINT" in config() else np.int32(0)
            return ({dtype: ctypes.cast(f, ctypes.c_void_p).value for dtype, f in found.items()},
                    integer)
    return None, None


GEMM, BLAS_INT = _find_gemm()


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
