"""Deterministic, vectorisable ``exp``, ``log`` and ``x**a`` for the hot loops of the kernels.

A libm call in a loop keeps LLVM from vectorising it, and libm's results may differ between
library versions. These are straight-line IEEE arithmetic (Cody-Waite range reduction, Taylor
and atanh series by Estrin's scheme, exponent bits set directly), no calls and no branches, so
a loop over them vectorises and gives the same bits on every machine (no fast-math: nothing is
reassociated or contracted). In a vectorised loop ``exp`` costs ~1/6 of libm's; in a scalar
dependency chain it is ~1.5x slower (longer latency), so serial code such as the chemistry's
sub-step loop keeps libm. Accuracy against the correctly rounded result: ``exp`` and ``log``
within 2 ulp, ``pow_pos`` within ~2 ulp times ``|a log x|`` (the product rounds in its
argument).

Special values: ``exp`` gives +inf above 709.78, 0 below -708.39 (no subnormal results) and
NaN for NaN; ``log`` gives NaN for x < 0 or NaN, -inf at 0, +inf at +inf and is exact in its
exponent for subnormal x.
"""

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

__all__ = ["exp", "log", "pow_pos"]

_INL = {"cache": True, "inline": "always", "error_model": "numpy"}

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # trailing zeros: k * _LN2_HI is exact for |k| < 2^11
_LN2_LO = 1.90821492927058770002e-10
_ROUND = 6755399441055744.0  # 1.5 * 2^52: adding it rounds to an integer (nearest even)
_ROUND_BITS = 0x4338000000000000
_EXP_MAX = 709.782712893384  # log(largest double)
_EXP_MIN = -708.3964185322641  # log(smallest normal double)
_SQRT2 = 1.4142135623730951
_TINY = 2.2250738585072014e-308  # smallest normal double
_TWO52 = 4503599627370496.0


@intrinsic
def _bits(typingctx, x):
    """The IEEE bits of a float64 as an int64."""
    if x != types.float64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _from_bits(typingctx, n):
    """The float64 whose IEEE bits are the int64 ``n``."""
    if n != types.int64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@nb.njit(**_INL)
def exp(y: float) -> float:
    """e**y (see the module docstring for accuracy and special values)."""
    t = y * _LOG2E + _ROUND
    k = t - _ROUND  # y/ln2 rounded to an integer
    r = (y - k * _LN2_HI) - k * _LN2_LO  # |r| <= ln2/2
    # Taylor series to r^13 by Estrin's scheme (depth 4, not 13: scalar callers wait on the
    # latency of the chain)
    r2 = r * r
    r4 = r2 * r2
    a0 = 1.0 + r
    a1 = 0.5 + r * (1.0 / 6.0)
    a2 = 1.0 / 24.0 + r * (1.0 / 120.0)
    a3 = 1.0 / 720.0 + r * (1.0 / 5040.0)
    a4 = 1.0 / 40320.0 + r * (1.0 / 362880.0)
    a5 = 1.0 / 3628800.0 + r * (1.0 / 39916800.0)
    a6 = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0)
    b0 = a0 + r2 * a1
    b1 = a2 + r2 * a3
    b2 = a4 + r2 * a5
    p = (b0 + r4 * b1) + (r4 * r4) * (b2 + r4 * a6)
    # 2^k from the rounding's low bits (garbage outside the range, selected away below), in
    # two exact factors: k spans -1022..1024 and 2^1024 is not a double
    kb = _bits(t) - _ROUND_BITS
    kh = kb >> 1
    v = (p * _from_bits((kh + 1023) << 52)) * _from_bits((kb - kh + 1023) << 52)
    v = np.inf if y > _EXP_MAX else v
    return 0.0 if y < _EXP_MIN else v


@nb.njit(**_INL)
def log(x: float) -> float:
    """Natural log of x (see the module docstring for accuracy and special values)."""
    sub = x < _TINY
    xs = x * _TWO52 if sub else x
    b = _bits(xs)
    e = ((b >> 52) & 0x7FF) - 1023 - (52 if sub else 0)
    m = _from_bits((b & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)  # [1, 2)
    big = m > _SQRT2
    m = 0.5 * m if big else m  # [sqrt(1/2), sqrt(2)]: |s| <= 0.1716
    ef = float(e + 1) if big else float(e)
    s = (m - 1.0) / (m + 1.0)
    z = s * s
    # atanh series to s^23 (terms z^0..z^10 of q) by Estrin's scheme
    z2 = z * z
    z4 = z2 * z2
    c0 = 1.0 / 3.0 + z * (1.0 / 5.0)
    c1 = 1.0 / 7.0 + z * (1.0 / 9.0)
    c2 = 1.0 / 11.0 + z * (1.0 / 13.0)
    c3 = 1.0 / 15.0 + z * (1.0 / 17.0)
    c4 = 1.0 / 19.0 + z * (1.0 / 21.0)
    q = (c0 + z2 * c1) + z4 * ((c2 + z2 * c3) + z4 * (c4 + z2 * (1.0 / 23.0)))
    lm = 2.0 * s + 2.0 * s * (z * q)  # log(m) = 2 atanh(s)
    v = ef * _LN2_HI + (ef * _LN2_LO + lm)
    v = np.nan if not (x >= 0.0) else v
    v = -np.inf if x == 0.0 else v
    return np.inf if x == np.inf else v


@nb.njit(**_INL)
def pow_pos(x: float, a: float) -> float:
    """x**a for x > 0 as exp(a log x) (see the module docstring)."""
    return exp(a * log(x))
