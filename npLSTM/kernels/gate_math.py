"""The gate math of the compiled LSTM kernels, written so that LLVM
vectorises it: exp, sigmoid and tanh without calls into the C library, each
gate's function in a loop of its own over a contiguous run of units.

One row's step forward (_gates_row) and back (_gates_row_backward) serve
every loop shape (lstm_loops.py). docs/performance.md, "Why the gate math
vectorises", gives the figures.
"""
import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload


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
def _add(source, target):
    """target += source for 1-D arrays of one size, as a loop (see _copy)."""
    for k in range(target.size):
        target[k] += source[k]


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
