"""The LSTM kernels compiled with Numba: same functions, same results as
reference.py (held equal to 1e-12 in float64 by tests/test_jit.py).

Dimension legend and conventions: see reference.py, whose docstrings hold
the equations; this file only says how the loops are shaped for speed.

Two shapes of the same recurrence, chosen by size (routes.compiled_loop):
  small  the whole time loop in one compiled call: the product h U written
         out as loops, gate math in one loop, no Python per step. Where batch and
         units are small, a BLAS call per step costs more than it saves.
  large  per step one BLAS GEMM (h U, dz U^T) around a compiled
         element-wise gate kernel, with NumPy's BLAS, which needs no
         SciPy as Numba's np.dot would. Where a batch has rows enough
         for several threads (routes.row_threads), each thread takes a block
         of rows and calls that BLAS itself from compiled code (blas.py),
         steps and weight gradients alike; else the products are NumPy
         calls from Python, on BLAS's own threads.
In both, x W for all steps is one GEMM before the loop, and dX, dW, dU are
one GEMM each after the backward loop (loops where that work is tiny:
routes.loop_weight_grads), as in reference.py; the cache is laid out as reference.py's.
Unlike reference.py, b joins in the gate math and db is summed in the large
path's backward step, each a pass of its own over a (B, T, 4H) array saved.
"""
import math
import types as types_module

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from . import blas, reference, routes
from .blas import address, gemm
from .reference import ACTIVATIONS, activation_backward  # noqa: F401  (as fast in NumPy)

def _row_threads(B):
    """routes.row_threads with this process's thread counts."""
    return routes.row_threads(B, blas.threads(), numba.config.NUMBA_NUM_THREADS)


def _matmul(a, b, B):
    """a @ b for 2-D arrays, computed for a batch of B rows (blas.matmul)."""
    return blas.matmul(a, b, _row_threads(B))


# Gate math written so that loops over it vectorise -----------------------------------------
# math.exp is a call into the C library, made one element at a time; LLVM can
# run arithmetic on 4 float64 (AVX2) per instruction, but only in loops
# without such calls and without Python's zero-division checks (hence
# error_model="numpy"). 'contract' lets it fuse a * b + c into one FMA,
# rounded once. (docs/performance.md: "Why the gate math vectorises".)
KERNEL = dict(cache=True, error_model="numpy", fastmath={"contract"})
TAYLOR = tuple(1.0 / math.factorial(n) for n in range(13, -1, -1))        # 1/13!, ..., 1/0!
# Every constant takes the precision of the numbers it meets: a float64
# literal would turn float32 math into float64 (Numba types by operand), 4
# numbers to an AVX2 instruction instead of 8. Per precision: its type, the
# x at and below which exp(x) rounds to 0, ln 2 = HI + LO split so that k HI is
# exact, the exponent's bias and bit position, a shift s that keeps
# 2^(k + s) a normal number where exp(x) is subnormal, and how many Taylor
# terms make exp(r) exact to the precision for |r| <= ln(2) / 2: the first
# left out, r^n / n!, is 4e-18 for n = 14 and 5e-9 for n = 8, below half a
# unit in the last place of 1 (1.1e-16, 6e-8).
EXP_FORMATS = {
    types.float64: (np.float64, -745.2, 6.93147180369123816490e-01, 1.90821492927058770002e-10,
                    1023, 52, 64, 64, 14),
    types.float32: (np.float32, -104.0, 6.93145751953125e-01, 1.42860682030941723212e-06,
                    127, 23, 32, 32, 8),
}


@intrinsic
def _two_to(typingctx, k, like):
    """2^k as a float of like's type (float32 or float64), built from its
    exponent bits; k an int32 within the normal exponents."""
    *_, bias, position, width, _, _ = EXP_FORMATS[like]

    def codegen(context, builder, signature, args):
        bits = ir.IntType(width)
        exponent = builder.add(builder.sext(args[0], bits) if width > 32 else args[0],
                               ir.Constant(bits, bias))
        return builder.bitcast(builder.shl(exponent, ir.Constant(bits, position)),
                               context.get_value_type(like))
    return like(types.int32, like), codegen


def _exp_neg(x):
    """exp(x) for x <= 0, in arithmetic only (the compiled form below, for
    float64 and float32): within 1.01 ulp of the exact exp, subnormal
    results included, 0 below -745.2 (float32: -104), where exp rounds to 0.
    In Python: math.exp."""
    return math.exp(x)


@overload(_exp_neg)
def _exp_neg_compiled(x):
    """exp(x) = 2^k exp(r), k = round(x / ln 2), |r| <= ln(2) / 2, where 14
    Taylor terms of exp(r) are exact to double precision, 8 to single; 2^k is built
    from its bits (from an int32: AVX2 converts floats to int32 in vector
    registers, not to int64), as 2^(k + s) 2^-s: the last product rounds
    once into the subnormal numbers. Below the lowest x, x is taken as the
    lowest, where that product rounds to 0: no test of its own for it.
    NaN stays NaN. Horner's rule starts from the first coefficient, not
    from 0 (0 r + c is an FMA that LLVM may not drop: r may be NaN). That
    and no test below the lowest x: 18% faster in float32, 14% in float64."""
    real, lowest, ln2_hi, ln2_lo, *_, shift, terms = EXP_FORMATS[x]
    lowest, ln2_hi, ln2_lo, shift = real(lowest), real(ln2_hi), real(ln2_lo), real(shift)
    log2_e, half = real(1.4426950408889634), real(0.5)
    shift_back = real(2.0) ** -shift
    first, *rest = (real(c) for c in TAYLOR[-terms:])
    rest = tuple(rest)

    def exp_neg(x):
        y = max(x, lowest)                  # keeps NaN: max keeps its first argument then
        k = np.floor(y * log2_e + half)
        r = (y - k * ln2_hi) - k * ln2_lo
        p = first
        for c in rest:
            p = p * r + c
        return p * _two_to(np.int32(k + shift), x) * shift_back
    return exp_neg


@njit(inline="always")
def _sig_from(x, e):
    """sigmoid(x) from e = exp(-|x|), which never overflows."""
    one = type(e)(1.0)
    return (one if x >= 0.0 else e) / (one + e)


@njit(inline="always")
def _sig(x):
    return _sig_from(x, _exp_neg(-abs(x)))


@njit(inline="always")
def _tanh(x):
    # from one exp: Numba's math.tanh is a library call too
    real = type(x)
    e = _exp_neg(real(-2.0) * abs(x))
    t = (real(1.0) - e) / (real(1.0) + e)
    return t if x >= 0.0 else -t


@njit(inline="always")
def _copy(source, target):
    """target[:] = source for 1-D arrays of one size, written as a loop:
    Numba's array assignment compiles its shape-mismatch error messages
    with it, seconds of string code at a first run, for a check these
    callers never need."""
    for k in range(target.size):
        target[k] = source[k]


@njit(inline="always")
def _blocks(a):
    """a (4H) as its four gates' blocks i, f, g, o: slices, so that the loops
    over them index from 0. An index like 2H + j could be negative as far as
    LLVM knows, and Numba's reading of negative indices from the end then
    loads and stores one number at a time (float32 gate math 2x slower)."""
    H = a.size // 4
    return a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]


@njit(inline="always")
def _gates_row(z, xw, bias, c_prev, gates, c, h):
    """One row's step forward: gates (4H) from z + xw + bias, the step's
    h_{t-1} U, x_t W and b, then c and h (H). The sum is taken inside the
    gates' loops: a pass of its own over z, or adding b to x W beforehand
    (a pass over all steps' (B, T, 4H)), made the large path's step slower.
    One loop per function over a contiguous run: a loop computing a unit's
    four gates together does not vectorise."""
    i, f, g, o = _blocks(gates)
    _, _, z_g, z_o = _blocks(z)
    _, _, xw_g, xw_o = _blocks(xw)
    _, _, bias_g, bias_o = _blocks(bias)
    for j in range(2 * c.size):                 # i, f: one run
        gates[j] = _sig(z[j] + xw[j] + bias[j])
    for j in range(c.size):
        g[j] = _tanh(z_g[j] + xw_g[j] + bias_g[j])
    for j in range(c.size):
        o[j] = _sig(z_o[j] + xw_o[j] + bias_o[j])
    for j in range(c.size):
        c[j] = f[j] * c_prev[j] + i[j] * g[j]
        h[j] = o[j] * _tanh(c[j])


@njit(inline="always")
def _gates_row_backward(gates, c, c_prev, dh, dc, dz):
    """One row's step back: dz (4H) from dh and dc (H), the gradients
    reaching h and c; dc becomes the gradient towards c_prev.

    Two loops, each touching few arrays: LLVM vectorises a loop only after
    checking at run time that the arrays it writes do not overlap the
    others, and gives up beyond 8 such checks: one loop over all of it
    needed 9, these 7 and 5. The first leaves d = dL/dc_t in dc."""
    one = gates.dtype.type(1.0)
    i, f, g, o = _blocks(gates)
    dz_i, dz_f, dz_g, dz_o = _blocks(dz)
    for j in range(c.size):
        tc = _tanh(c[j])
        dz_o[j] = dh[j] * tc * o[j] * (one - o[j])
        dc[j] += dh[j] * o[j] * (one - tc * tc)
    for j in range(c.size):
        d = dc[j]
        dz_i[j] = d * g[j] * i[j] * (one - i[j])
        dz_f[j] = d * c_prev[j] * f[j] * (one - f[j])
        dz_g[j] = d * i[j] * (one - g[j] * g[j])
        dc[j] = d * f[j]


# Small: the whole loop compiled ------------------------------------------------------------


def _forward_rows(XW, bias, h0, c0, U, keep, gates, cs, hs):
    """Fill gates, cs, hs (B, T, .) from XW = X W and the bias b; rows are
    independent. Where keep[b, t] is False the row carries its state
    through the step."""
    B, T, H4 = XW.shape
    H = H4 // 4
    for b in prange(B):                     # range, or rows shared by threads
        z = np.empty(H4, dtype=XW.dtype)
        # c_{t-1} is read from a buffer of its own: read in place from cs,
        # which the step writes, the gate math ran slower (LLVM's
        # vectorised loop does not say why).
        h_prev, c_prev = h0[b], c0[b].copy()
        for t in range(T):
            for j in range(H4):
                z[j] = 0.0
            for k in range(H):              # z = h_prev U: an axpy per row of U
                hk = h_prev[k]
                for j in range(H4):
                    z[j] += hk * U[k, j]
            _gates_row(z, XW[b, t], bias, c_prev, gates[b, t], cs[b, t], hs[b, t])
            if not keep[b, t]:
                _copy(c_prev, cs[b, t])
                _copy(h_prev, hs[b, t])
            h_prev = hs[b, t]
            _copy(cs[b, t], c_prev)


def _backward_rows(dhs, has_dhs, dh_T, dc_T, gates, cs, c0, U, keep, dZ, dh0, dc0):
    """Fill dZ (B, T, 4H), dh0, dc0 going back in time; rows are independent.
    A masked step passes dh and dc through and gets dz = 0."""
    B, T, H4 = gates.shape
    H = H4 // 4
    for b in prange(B):
        dh = dh_T[b].copy()
        dc = dc_T[b].copy()
        for t in range(T - 1, -1, -1):
            if has_dhs:
                dh += dhs[b, t]
            if not keep[b, t]:
                dZ[b, t] = 0.0
                continue
            dz = dZ[b, t]
            _gates_row_backward(gates[b, t], cs[b, t], cs[b, t - 1] if t > 0 else c0[b],
                                dh, dc, dz)
            for k in range(H):              # dh = dz U^T: a dot product along each row of U
                total = U.dtype.type(0.0)   # summed in U's precision (float32: 8 per vector)
                for j in range(H4):
                    total += dz[j] * U[k, j]
                dh[k] = total
        _copy(dh, dh0[b])
        _copy(dc, dc0[b])


# The backward loop's dot products may be summed in any order ("reassoc"),
# so that they vectorise: faster than axpys along U^T, which had to be
# copied out of U each call.
BACKWARD = dict(KERNEL, fastmath={"contract", "reassoc"})


def _threaded_build(rows, flags):
    """rows compiled with its rows shared among Numba's threads (parallel=True
    turns prange into a threaded loop). Compiled from a copy under its own
    name: Numba's cache tells functions apart by name and bytecode, not by
    options, and would hand the serial build to the threaded one."""
    copy = types_module.FunctionType(rows.__code__, rows.__globals__, rows.__name__ + "_threaded")
    copy.__qualname__ = copy.__name__
    return njit(parallel=True, **flags)(copy)


def _run_loop(serial, threaded, B, *args):
    """A compiled loop over a batch of B rows: its threaded build on the
    threads of _row_threads(B), else the serial one on the calling thread."""
    threads = _row_threads(B)
    if threads < 2:
        return serial(*args)
    with blas.on_threads(threads):
        return threaded(*args)


_forward_loop = njit(**KERNEL)(_forward_rows)
_forward_loop_threaded = _threaded_build(_forward_rows, KERNEL)
_backward_loop = njit(**BACKWARD)(_backward_rows)
_backward_loop_threaded = _threaded_build(_backward_rows, BACKWARD)


# Large: BLAS per step, compiled gates ----------------------------------------------------


# The per-step kernels take the whole (B, T, .) arrays and the step t, not
# [:, t] views: a view's rows lie T steps apart, so Numba types it as of any
# layout, and LLVM then does not vectorise along a row. Indexed [b, t]
# inside, a row is known contiguous, and the gate math vectorises.
@njit(inline="always")
def _gates_rows(t, lo, hi, z, XW, bias, h0, c0, keep, gates, cs, hs):
    """Step t's gate math for rows lo to hi - 1: from z (B, 4H) = h_{t-1} U,
    the step's x W and the bias b, gates, cs, hs at t; a row whose keep is
    False carries the previous state through."""
    c_prev = np.empty(cs.shape[2], dtype=cs.dtype)     # see _forward_rows
    for b in range(lo, hi):
        _copy(cs[b, t - 1] if t > 0 else c0[b], c_prev)
        _gates_row(z[b], XW[b, t], bias, c_prev, gates[b, t], cs[b, t], hs[b, t])
        if not keep[b, t]:
            _copy(c_prev, cs[b, t])
            _copy(hs[b, t - 1] if t > 0 else h0[b], hs[b, t])


@njit(**KERNEL)
def _gates_step(t, z, XW, bias, h0, c0, keep, gates, cs, hs):
    """Step t's gate math for all rows (_gates_rows)."""
    _gates_rows(t, 0, z.shape[0], z, XW, bias, h0, c0, keep, gates, cs, hs)


@njit(inline="always")
def _add(source, target):
    """target += source for 1-D arrays of one size, as a loop (see _copy)."""
    for k in range(target.size):
        target[k] += source[k]


@njit(inline="always")
def _gates_rows_backward(t, lo, hi, dhs, has_dhs, dh, dc, gates, cs, c0, keep, dZ, db):
    """Step t back for rows lo to hi - 1: dh (B, H) takes dhs at t when
    has_dhs, then dZ at t (B, 4H) comes from dh and dc, and db sums it; dc
    becomes dc towards c_{t-1} (a row whose keep is False gets dz = 0 and
    keeps its dc). Adding dhs and summing db here, on rows just used, saves
    a pass of their own over (B, T, H) and (B, T, 4H) arrays."""
    for b in range(lo, hi):
        if has_dhs:
            _add(dhs[b, t], dh[b])
        if keep[b, t]:
            _gates_row_backward(gates[b, t], cs[b, t], cs[b, t - 1] if t > 0 else c0[b],
                                dh[b], dc[b], dZ[b, t])
            _add(dZ[b, t], db)
        else:
            dZ[b, t] = 0.0


@njit(**KERNEL)
def _gates_step_backward(t, dhs, has_dhs, dh, dc, gates, cs, c0, keep, dZ, db):
    """Step t back for all rows (_gates_rows_backward)."""
    _gates_rows_backward(t, 0, dh.shape[0], dhs, has_dhs, dh, dc, gates, cs, c0, keep, dZ, db)


# Large, the rows shared among threads: each of Numba's threads takes a
# block of rows and calls BLAS for them itself (blas.gemm, BLAS at one
# thread): the rows are independent through time, so the threads never
# wait for each other, and no Python runs between the steps (the fastest
# route at the large sizes: docs/performance.md).
# Arrays are C-contiguous; a row block's rows of a (B, T, .) array are one
# run of memory, addressed for BLAS by blas.address.
PARALLEL = dict(KERNEL, parallel=True)


@njit(**PARALLEL)
def _forward_blocks(gemm_at, blas_int, blocks, X, W, U, bias, h0, c0, keep, XW, gates, cs, hs,
                    z):
    """The large forward, block k of rows (blocks[k] to blocks[k + 1] - 1)
    on one thread: x W for its rows, then each step h U and the gates."""
    B, T, D = X.shape
    H4 = W.shape[1]
    H = H4 // 4
    zero = X.dtype.type(0.0)
    for k in prange(len(blocks) - 1):
        lo, hi = blocks[k], blocks[k + 1]
        gemm(gemm_at, False, False, (hi - lo) * T, H4, D, address(X, lo * T * D), D,
             address(W, 0), H4, zero, address(XW, lo * T * H4), H4, blas_int)
        for t in range(T):
            if t > 0:                       # rows of hs at t - 1: T steps apart
                h_prev, stride = address(hs, (lo * T + t - 1) * H), T * H
            else:
                h_prev, stride = address(h0, lo * H), H
            gemm(gemm_at, False, False, hi - lo, H4, H, h_prev, stride, address(U, 0), H4, zero,
                 address(z, lo * H4), H4, blas_int)
            _gates_rows(t, lo, hi, z, XW, bias, h0, c0, keep, gates, cs, hs)


@njit(**PARALLEL)
def _backward_blocks(gemm_at, blas_int, blocks, dhs, has_dhs, dh, dh_prev, dc, gates, cs, c0,
                     keep, U, dZ, db_parts):
    """The large backward loop, block k of rows on one thread: each step
    the gates back, then dh_{t-1} = dz_t U^T for its rows; db_parts[k]
    sums its rows' dz. dh and dh_prev are two buffers, swapped each step:
    the last dh is left in dh when T is even, in dh_prev when odd."""
    B, T, H4 = gates.shape
    H = H4 // 4
    zero = gates.dtype.type(0.0)
    for k in prange(len(blocks) - 1):
        lo, hi = blocks[k], blocks[k + 1]
        into, other = dh, dh_prev
        for t in range(T - 1, -1, -1):
            _gates_rows_backward(t, lo, hi, dhs, has_dhs, into, dc, gates, cs, c0, keep, dZ,
                                 db_parts[k])
            gemm(gemm_at, False, True, hi - lo, H, H4, address(dZ, (lo * T + t) * H4), T * H4,
                 address(U, 0), H4, zero, address(other, lo * H), H, blas_int)
            for b in range(lo, hi):
                if not keep[b, t]:          # masked rows pass dh through
                    _copy(into[b], other[b])
            into, other = other, into


@njit(**PARALLEL)
def _weight_blocks(gemm_at, blas_int, blocks, with_dX, dZ, X, h0, hs, W, dX, dW_parts, dU_parts,
                   h_first):
    """dX (with_dX) and block k's share of dW and dU (_weight_products),
    one thread a block; h_first holds, per row, h0 less what the shifted
    product took at t = 0."""
    B, T, D = X.shape
    H4 = dZ.shape[2]
    H = H4 // 4
    zero, one = X.dtype.type(0.0), X.dtype.type(1.0)
    for k in prange(len(blocks) - 1):
        lo, hi = blocks[k], blocks[k + 1]
        rows = (hi - lo) * T
        if with_dX:
            gemm(gemm_at, False, True, rows, D, H4, address(dZ, lo * T * H4), H4, address(W, 0),
                 H4, zero, address(dX, lo * T * D), D, blas_int)
        gemm(gemm_at, True, False, D, H4, rows, address(X, lo * T * D), D,
             address(dZ, lo * T * H4), H4, zero, address(dW_parts, k * D * H4), H4, blas_int)
        gemm(gemm_at, True, False, H, H4, rows - 1, address(hs, lo * T * H), H,
             address(dZ, (lo * T + 1) * H4), H4, zero, address(dU_parts, k * H * H4), H4,
             blas_int)
        for b in range(lo, hi):
            for j in range(H):
                h_first[b, j] = h0[b, j] - (hs[b - 1, T - 1, j] if b > lo else zero)
        gemm(gemm_at, True, False, H, H4, hi - lo, address(h_first, lo * H), H,
             address(dZ, lo * T * H4), T * H4, one, address(dU_parts, k * H * H4), H4, blas_int)


def _run_blocks(kernel, blocks, dtype, *args):
    """One of the block kernels above over its blocks of rows, a thread a
    block, with BLAS's gemm of precision dtype."""
    with blas.on_threads(len(blocks) - 1):
        kernel(blas.GEMM[dtype.type], blas.BLAS_INT, blocks, *args)


# Dense ----------------------------------------------------------------------------------
# BLAS-bound: NumPy's products as reference.py, their rows on npLSTM's
# threads where large (_matmul).


def dense_forward(X, W, b):
    """As reference.dense_forward."""
    F, K = W.shape
    B = len(X) if X.ndim > 1 else 1
    return _matmul(X.reshape(-1, F), W, B).reshape(X.shape[:-1] + (K,)) + b


def dense_backward(dZ, X, W, with_dX=True):
    """As reference.dense_backward."""
    F, K = W.shape
    B = len(X) if X.ndim > 1 else 1
    dZ2 = dZ.reshape(-1, K)
    dX = _matmul(dZ2, W.T, B).reshape(X.shape) if with_dX else None
    return dX, _matmul(X.reshape(-1, F).T, dZ2, B), dZ2.sum(axis=0)


# The head: activations and the losses fused with them ---------------------------------------
# Element-wise work on small arrays: in NumPy each of the several passes is a
# call of a microsecond or two; compiled, each function is one call and one pass.
# Every exp here is of a number <= 0 (_exp_neg); sums may be reordered
# ("reassoc"), so that their loops vectorise too.
HEAD = dict(KERNEL, fastmath={"contract", "reassoc"})


@njit(**HEAD)
def _sigmoid_into(z, a):
    for k in range(z.size):
        a.flat[k] = _sig(z.flat[k])


@njit(inline="always")
def _softmax_row(z, a):
    """a = softmax(z) of one row; returns log(sum(exp(z))), from exp(z - max z)."""
    m = z[0]
    for k in range(1, z.size):      # a loop compiles in a fraction of z.max()'s 0.8 s
        m = max(m, z[k])
    total = z.dtype.type(0.0)
    for k in range(z.size):
        a[k] = _exp_neg(z[k] - m)
        total += a[k]
    for k in range(z.size):
        a[k] /= total
    return m + math.log(total)


@njit(**HEAD)
def _softmax_into(z, a):
    """Row by row over the last axis (z, a as 2-D, rows x classes)."""
    for r in range(z.shape[0]):
        _softmax_row(z[r], a[r])


# The arrays written below are made C-ordered whatever z's layout (np.empty,
# not empty_like): a reshaped view of them must be the array itself, not a
# copy that the kernel would fill in vain.
def sigmoid(z):
    """As reference.sigmoid."""
    a = np.empty(z.shape, dtype=z.dtype)
    _sigmoid_into(np.ascontiguousarray(z), a)
    return a


def softmax(z):
    """As reference.softmax."""
    a = np.empty(z.shape, dtype=z.dtype)
    _softmax_into(np.ascontiguousarray(z).reshape(-1, z.shape[-1]), a.reshape(-1, z.shape[-1]))
    return a


def activation_forward(name, z):
    """As reference.activation_forward."""
    if name == "sigmoid":
        return sigmoid(z)
    if name == "softmax":
        return softmax(z)
    return reference.activation_forward(name, z)


@njit(**HEAD)
def _bce_with_logits(z, y, w, grad, a):
    """z, y, grad as 2-D, rows x outputs; w the row weights. The head's
    outputs sigmoid(z) come on the way, into a: one exp per logit."""
    rows, K = z.shape
    total = 0.0
    for r in range(rows):
        wk = w[r] / z.dtype.type(K)
        for k in range(K):
            zk, yk = z[r, k], y[r, k]
            e = _exp_neg(-abs(zk))
            a[r, k] = _sig_from(zk, e)
            total += wk * (max(zk, 0.0) - zk * yk + math.log1p(e))
            grad[r, k] = wk * (a[r, k] - yk)
    return total


@njit(**HEAD)
def _cce_with_logits(z, y, w, grad, a):
    """z, y, grad as 2-D, rows x classes; w the row weights. The head's
    outputs softmax(z) come on the way, into a: one exp per logit."""
    rows, classes = z.shape
    total = 0.0
    for r in range(rows):
        log_sum = _softmax_row(z[r], a[r])
        y_sum = y.dtype.type(0.0)
        for k in range(classes):
            y_sum += y[r, k]
        for k in range(classes):
            total -= w[r] * y[r, k] * (z[r, k] - log_sum)
            grad[r, k] = w[r] * (a[r, k] * y_sum - y[r, k])
    return total


@njit(**HEAD)
def _squared_error(a, y, w, grad):
    """a, y, grad as 2-D, rows x outputs; w the row weights. One pass where
    NumPy makes four."""
    rows, K = a.shape
    two = a.dtype.type(2.0)
    total = 0.0
    for r in range(rows):
        wk = w[r] / a.dtype.type(K)
        for k in range(K):
            d = a[r, k] - y[r, k]
            total += wk * d * d
            grad[r, k] = wk * two * d
    return total


def _row_loss(kernel, z, y, weights, *outputs):
    """Call a compiled loss on z, y (and the head's outputs, when it makes
    them) as rows x outputs, with the row weights: (L, dL/dz)."""
    K = z.shape[-1]
    w = reference.mean_weights(z) if weights is None else weights
    grad = np.empty(z.shape, dtype=z.dtype)
    loss = kernel(np.ascontiguousarray(z).reshape(-1, K), np.ascontiguousarray(y).reshape(-1, K),
                  np.ascontiguousarray(w, dtype=z.dtype).reshape(-1), grad.reshape(-1, K),
                  *(a.reshape(-1, K) for a in outputs))
    return loss, grad


def binary_crossentropy_with_logits(z, y, weights=None):
    """As reference.binary_crossentropy_with_logits: (L, dL/dz)."""
    return _row_loss(_bce_with_logits, z, y, weights, np.empty(z.shape, dtype=z.dtype))  # unused


def categorical_crossentropy_with_logits(z, y, weights=None):
    """As reference.categorical_crossentropy_with_logits: (L, dL/dz)."""
    return _row_loss(_cce_with_logits, z, y, weights, np.empty(z.shape, dtype=z.dtype))


def mean_squared_error(a, y, weights=None):
    """As reference.mean_squared_error: (L, dL/da)."""
    return _row_loss(_squared_error, a, y, weights)


# Adam ------------------------------------------------------------------------------------


# The same equation compiled, for the compiled batches to compute each
# step's coefficients themselves (a Python call per step would cost more
# than the tutorials' whole step).
adam_coefficients = njit(inline="always")(reference.adam_coefficients)


@njit(cache=True, error_model="numpy")
def adam_update(p, g, m, v, alpha, beta_1, beta_2, eps):
    """As reference.adam_update, one pass over flat arrays (NumPy's
    error model lets LLVM vectorise the division). The coefficients
    take the parameters' precision, as NumPy's Python scalars do there:
    float32 then runs 8 to a vector instruction, not 4 as float64."""
    real = p.dtype.type
    rate_1, rate_2, alpha, eps = real(1.0 - beta_1), real(1.0 - beta_2), real(alpha), real(eps)
    for k in range(p.size):
        m[k] += rate_1 * (g[k] - m[k])
        v[k] += rate_2 * (g[k] * g[k] - v[k])
        p[k] -= alpha * m[k] / (math.sqrt(v[k]) + eps)


@njit(**HEAD)
def all_finite(a):
    """Whether every entry of the flat array a is finite, in one pass that
    vectorises: x * 0 is 0 for a finite x, NaN for NaN and infinities (no
    array of booleans, as np.isfinite(a).all() makes)."""
    zero = a.dtype.type(0.0)
    total = zero
    for k in range(a.size):
        total += a[k] * zero
    return total == zero


@njit(**KERNEL)
def value_range(a):
    """(smallest, largest) entry of the flat, non-empty, finite array a, in
    one call where a.min() and a.max() are two (the input checks of a
    tutorial model's step are a good part of its time)."""
    low = high = a[0]
    for k in range(1, a.size):
        low = min(low, a[k])
        high = max(high, a[k])
    return low, high


# The LSTM kernels ------------------------------------------------------------------------


@njit(**KERNEL)
def _weight_grads_loop(dZ, X, h0, hs, WT, dX, dW, dU, db, with_dX=True):
    """reference.lstm_weight_grads written as loops, for small sizes. Every
    inner loop runs along a contiguous row (an axpy), which LLVM vectorises;
    WT = W^T makes dX one too. Zero inputs are skipped: the tutorials'
    inputs are one-hot. Without with_dX, dX is left alone (a first layer's
    is not needed)."""
    B, T, H4 = dZ.shape
    D, H = X.shape[2], h0.shape[1]
    dW[:] = 0.0
    dU[:] = 0.0
    db[:] = 0.0
    if with_dX:
        dX[:] = 0.0
    for b in range(B):
        for t in range(T):
            dz = dZ[b, t]
            h_prev = hs[b, t - 1] if t > 0 else h0[b]
            for j in range(H4):
                db[j] += dz[j]
            for d in range(D):                  # dW += x_t^T dz_t
                x = X[b, t, d]
                if x != 0.0:
                    for j in range(H4):
                        dW[d, j] += x * dz[j]
            for k in range(H):                  # dU += h_{t-1}^T dz_t
                h = h_prev[k]
                for j in range(H4):
                    dU[k, j] += h * dz[j]
            if with_dX:
                for j in range(H4):             # dX_t = dz_t W^T
                    dzj = dz[j]
                    for d in range(D):
                        dX[b, t, d] += dzj * WT[j, d]


def _weight_products(dZ, X, h0, hs, W, with_dX):
    """dX (None without with_dX), dW, dU of reference.lstm_weight_grads, one
    GEMM each, dU without its (B, T, H) array of every h_{t-1}: in hs's rows
    (b, t), row r - 1 holds the h_{t-1} of row r, except at t = 0, where it
    holds the row before's last h (nothing for r = 0) in place of h0. So
    one product over hs and dZ shifted by a row, mended at t = 0 by one
    product of B rows."""
    B, T, D = X.shape
    H = h0.shape[1]
    dZ2 = dZ.reshape(B * T, 4 * H)
    dX = _matmul(dZ2, W.T, B).reshape(B, T, D) if with_dX else None
    dW = _matmul(X.reshape(B * T, D).T, dZ2, B)
    hs2 = hs.reshape(B * T, H)
    dU = _matmul(hs2[:-1].T, dZ2[1:], B)
    taken = np.zeros_like(h0)               # what the shifted product took at t = 0
    taken[1:] = hs[:-1, -1]
    dU += _matmul((h0 - taken).T, dZ[:, 0], B)
    return dX, dW, dU


def _weight_products_blocks(blocks, dZ, X, h0, hs, W, with_dX):
    """As _weight_products, each thread the products of its block of rows
    (_weight_blocks), the blocks' dW and dU then summed."""
    B, T, D = X.shape
    H4 = dZ.shape[2]
    X, W = np.ascontiguousarray(X), np.ascontiguousarray(W)
    dX = np.empty_like(X) if with_dX else X          # without dX, X stands in, unwritten
    dW = np.empty((len(blocks) - 1, D, H4), dtype=X.dtype)
    dU = np.empty((len(blocks) - 1, H4 // 4, H4), dtype=X.dtype)
    _run_blocks(_weight_blocks, blocks, X.dtype, with_dX, dZ, X, h0, hs, W, dX, dW, dU,
                np.empty_like(h0))
    return (dX if with_dX else None), dW.sum(axis=0), dU.sum(axis=0)


def lstm_weight_grads(dZ, X, h0, hs, W, with_dX=True):
    """As reference.lstm_weight_grads: (dX, dW, dU, db)."""
    B, T, D = X.shape
    H = h0.shape[1]
    if not routes.loop_weight_grads(B, T, D, H):
        return _weight_products(dZ, X, h0, hs, W, with_dX) + (dZ.reshape(B * T, 4 * H).sum(axis=0),)
    X = np.ascontiguousarray(X)
    dX, dW = np.empty_like(X) if with_dX else None, np.empty_like(W)
    dU = np.empty((h0.shape[1], W.shape[1]), dtype=W.dtype)
    db = np.empty(W.shape[1], dtype=W.dtype)
    _weight_grads_loop(dZ, X, h0, hs, np.ascontiguousarray(W.T), X if dX is None else dX,
                       dW, dU, db, with_dX)       # without dX, X stands in, unwritten
    return dX, dW, dU, db


def _keep(mask, B, T):
    """The mask as the compiled loops take it: every step kept when None."""
    return np.ones((B, T), dtype=np.bool_) if mask is None else np.ascontiguousarray(mask)


def _row_blocks(B, H):
    """routes.row_blocks with this process's threads and BLAS."""
    return routes.row_blocks(B, H, _row_threads(B), blas.GEMM is not None)


def lstm_forward(X, h0, c0, W, U, b, mask=None):
    """As reference.lstm_forward: (hs, h_T, c_T, cache)."""
    B, T, D = X.shape
    H = h0.shape[1]
    blocks = _row_blocks(B, H)
    if blocks is None:
        XW = _matmul(X.reshape(B * T, D), W, B).reshape(B, T, 4 * H)  # b joins in the gates
    else:
        XW = np.empty((B, T, 4 * H), dtype=X.dtype)             # each thread makes its rows'
    h0, c0, b = np.ascontiguousarray(h0), np.ascontiguousarray(c0), np.ascontiguousarray(b)
    keep = _keep(mask, B, T)
    gates = np.empty((B, T, 4 * H), dtype=X.dtype)
    cs = np.empty((B, T, H), dtype=X.dtype)
    hs = np.empty((B, T, H), dtype=X.dtype)
    if routes.compiled_loop(B, H):
        _run_loop(_forward_loop, _forward_loop_threaded, B, XW, b, h0, c0, U, keep, gates, cs,
                  hs)
    else:
        # z is the one buffer of every step's product (a new array per step
        # cost page faults).
        z = np.empty((B, 4 * H), dtype=X.dtype)
        if blocks is not None:
            X, W, U = (np.ascontiguousarray(a) for a in (X, W, U))
            _run_blocks(_forward_blocks, blocks, X.dtype, X, W, U, b, h0, c0, keep, XW, gates, cs,
                        hs, z)
        else:
            # hs[:, t - 1] is a strided view (rows T steps apart) that BLAS
            # reads in place, and the gate kernel takes whole arrays and t.
            for t in range(T):
                np.matmul(hs[:, t - 1] if t > 0 else h0, U, out=z)
                _gates_step(t, z, XW, b, h0, c0, keep, gates, cs, hs)
    return hs, hs[:, -1].copy(), cs[:, -1].copy(), reference.LSTMCache(X, h0, c0, gates, cs, hs,
                                                                      mask)


def lstm_backward(dhs, dh_T, dc_T, cache, W, U, with_dX=True):
    """As reference.lstm_backward: (dX, dW, dU, db, dh0, dc0)."""
    X, h0, c0, gates, cs, hs, mask = cache
    B, T, _ = X.shape
    keep = _keep(mask, B, T)
    dh_T, dc_T = np.ascontiguousarray(dh_T), np.array(dc_T, copy=True)
    has_dhs = dhs is not None
    dhs = np.ascontiguousarray(dhs) if has_dhs else np.zeros((1, 1, 1), dtype=X.dtype)  # unread
    dZ = np.empty_like(gates)
    U = np.ascontiguousarray(U)
    if routes.compiled_loop(*h0.shape):
        dh0, dc0 = np.empty_like(h0), np.empty_like(c0)
        _run_loop(_backward_loop, _backward_loop_threaded, B, dhs, has_dhs, dh_T, dc_T, gates,
                  cs, c0, U, keep, dZ, dh0, dc0)
        return lstm_weight_grads(dZ, X, h0, hs, W, with_dX) + (dh0, dc0)
    # dc is updated in place; dh and dh_prev are two buffers, swapped each step
    dh, dh_prev, dc = dh_T.copy(), np.empty_like(dh_T), dc_T
    blocks = _row_blocks(*h0.shape)
    if blocks is not None:
        db = np.zeros((len(blocks) - 1, gates.shape[2]), dtype=X.dtype)    # a row per block
        _run_blocks(_backward_blocks, blocks, X.dtype, dhs, has_dhs, dh, dh_prev, dc, gates, cs,
                    c0, keep, U, dZ, db)
        dh = dh if T % 2 == 0 else dh_prev
        return _weight_products_blocks(blocks, dZ, X, h0, hs, W, with_dX) + (db.sum(axis=0), dh, dc)
    db = np.zeros(gates.shape[2], dtype=X.dtype)
    for t in reversed(range(T)):
        _gates_step_backward(t, dhs, has_dhs, dh, dc, gates, cs, c0, keep, dZ, db)
        np.matmul(dZ[:, t], U.T, out=dh_prev)
        if mask is not None:        # masked rows pass dh through
            np.copyto(dh_prev, dh, where=~keep[:, t, None])
        dh, dh_prev = dh_prev, dh
    return _weight_products(dZ, X, h0, hs, W, with_dX) + (db, dh, dc)
