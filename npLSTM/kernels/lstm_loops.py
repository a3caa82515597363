"""The compiled LSTM loops, in two shapes (routes.compiled_loop chooses):

  small  the whole time loop in one compiled call, h U written out as
         loops, rows independent (a serial build, and a threaded one that
         shares the rows among Numba's threads);
  large  per step, the gate math of all rows around one BLAS product
         called from Python, or blocks of rows a thread each, each thread
         calling BLAS for its own rows from compiled code (blas.gemm).

jit.py calls them (lstm_forward, lstm_backward) with the threads and
blocks that routes.py decides; the equations are reference.py's.
"""
import types as types_module

import numpy as np
from numba import njit, prange

from .blas import address, gemm
from .gate_math import KERNEL, _add, _copy, _gates_row, _gates_row_backward


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
