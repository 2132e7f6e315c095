"""The math functions exp, log, tanh, erf, log1p, expm1, sinh and cosh emitted as plain
arithmetic (polynomials, range reduction and exponent bits), so loops over them vectorize
(LLVM's intrinsics become one libm call per element) and vector and scalar code agree bit
for bit. A mixin of ExpressionEmitter (expr.py), whose number, intrinsic and _extremum it
uses.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import sympy
from llvmlite import ir

from graphc.backends.llvm.runtime import target

TANH_SERIES_BELOW = 0.3
ERF_SERIES_BELOW = 2.0
# float64 erf: terms measured (against math.erf) to keep each branch's relative error at
# float64 rounding: the series to 2 (30 terms, 6e-16), the continued fraction from 2
# (depth 40, 2e-16).
ERF64_TERMS, ERF64_DEPTH = 30, 40
_LOG_TERMS = {4: 5, 8: 10}  # atanh series in s**2 <= 0.0295: below 2e-9 / 3e-17
ERF32_ONE_FROM = 4.0  # float32 erf rounds to 1 from here on
# float32 erf: x * P(x**2) below 2, 1 - Q(x) from 2 to 4, each a Chebyshev interpolant of the
# degree that keeps it below 1e-8 (measured against math.erf: 8.9e-9 relative, 1.0e-8
# absolute).
ERF32_SPLIT = 2.0
ERF32_DEGREES = (9, 10)
# ln 2 = hi + lo, hi with trailing zero bits (n * hi is exact for the n exp and log meet)
# and lo to full precision: math.log(2) - hi would carry math.log(2)'s own rounding
# (2e-17), n times over: 150 ulps of exp(700) (float64 values: fdlibm's).
_LN2_PARTS = {True: (6.93147180369123816490e-01, 1.90821492927058770002e-10),
              False: (0.693359375, -2.12194440054690582e-4)}
HYPERBOLIC_LARGE = 20.0  # sinh, cosh: e**-x is below float64's rounding of e**x from here


def _chebyshev_power(f, degree: int, lo: float, hi: float) -> list[float]:
    """Power-basis coefficients, in u = (2v - lo - hi) / (hi - lo), of the Chebyshev
    interpolant of f over v in [lo, hi]. Plain arithmetic on math.cos and f's values, so
    the coefficients (and the IR) are the same everywhere."""
    n = degree + 1
    nodes = [math.cos(math.pi * (k + 0.5) / n) for k in range(n)]
    values = [f(lo + (u + 1) * (hi - lo) / 2) for u in nodes]
    cheb = [2 / n * sum(v * math.cos(j * math.pi * (k + 0.5) / n)
                        for k, v in enumerate(values)) for j in range(n)]
    cheb[0] /= 2
    return [float(c) for c in np.polynomial.chebyshev.cheb2poly(cheb)]


def _erf_over_x(t: float) -> float:
    """erf(x) / x as a function of t = x**2."""
    return math.erf(math.sqrt(t)) / math.sqrt(t) if t else 2 / math.sqrt(math.pi)


# float32 erf's two polynomials: erf(x) / x in x**2 - 2 (x below 2) and erfc(x) in x - 3
# (x in [2, 4]). Each well conditioned where it is used (the earlier single polynomial over
# [0, 4] in x**2 cancelled 4.5-fold at 4 and needed degree 16 in one chain). The first
# interpolant's variable is u = x**2 / 2 - 1: taking 2u (one fma, no 1/2 constant) with
# coefficients scaled by 2**-k gives the same bits, the scale being a power of 2.
_ERF32_HALF_T = ERF32_SPLIT ** 2 / 2  # 2.0: x**2 - 2 = 2u
_ERF32_SMALL = [c / _ERF32_HALF_T ** k for k, c in enumerate(
    _chebyshev_power(_erf_over_x, ERF32_DEGREES[0], 0.0, ERF32_SPLIT ** 2))]
_ERF32_LARGE = _chebyshev_power(math.erfc, ERF32_DEGREES[1], ERF32_SPLIT, ERF32_ONE_FROM)


@functools.cache
def _tanh_coefficients(terms: int) -> list[float]:
    """Taylor coefficients of tanh at 0 (odd powers 1, 3, 5, ...), from Bernoulli numbers
    (computed on first use: sympy's Bernoulli numbers cost tens of ms at import)."""
    out = []
    for n in range(1, terms + 1):
        c = 2 ** (2 * n) * (2 ** (2 * n) - 1) * sympy.bernoulli(2 * n) / sympy.factorial(2 * n)
        out.append(float(c))
    return out


_TANH_TERMS = {4: 6, 8: 12}


def _host_scales() -> bool:
    """Whether the target has AVX-512, where llvm.ldexp is one vector instruction
    (vscalef); elsewhere it may become a libm call per element."""
    return target.current().avx512


class MathFunctions:
    """exp, log, tanh and erf of an expression emitter's compute dtype (a float)."""

    def horner(self, coefficients: list[float], x: ir.Value) -> ir.Value:
        """sum of coefficients[k] * x**k by Horner's rule with fused multiply-adds (one
        rounding per step, half the latency of multiply then add; vectorizes)."""
        poly = self.number(coefficients[-1])
        for c in reversed(coefficients[:-1]):
            poly = self.intrinsic("fma", poly, x, self.number(c))
        return poly

    def exp(self, x: ir.Value) -> ir.Value:
        """e**x in plain arithmetic, so loops over it vectorize (LLVM's exp intrinsic
        becomes one libm call per element) and vector and scalar code agree bit for bit:
        x = n*ln2 + r with |r| <= ln2/2, e**r by its Taylor polynomial (within a few ulps:
        measured 1 ulp float32, 12 ulps float64), times 2**n (see _times_power_of_two).
        NaN propagates."""
        b = self.b
        f64 = self.dtype.itemsize == 8
        int_type = ir.IntType(64 if f64 else 32)
        bits, bias, low, high = (52, 1023, -746.0, 710.0) if f64 else (23, 127, -104.0, 89.0)
        terms = 13 if f64 else 7
        # ln 2 in two parts, the first with trailing zero bits so n * ln2_hi is exact.
        ln2_hi, ln2_lo = _LN2_PARTS[f64]
        # Clamped so 2**n stays in range; a NaN passes the clamps (both comparisons are
        # false) and is put back at the end, so plain min/max instructions do.
        x_in = x
        x = b.select(b.fcmp_ordered("<", x, self.number(low)), self.number(low), x)
        x = b.select(b.fcmp_ordered(">", x, self.number(high)), self.number(high), x)
        n = self.intrinsic("rint", b.fmul(x, self.number(1 / math.log(2))))
        r = self.intrinsic("fma", n, self.number(-ln2_hi), x)  # exact: n * ln2_hi is
        r = self.intrinsic("fma", n, self.number(-ln2_lo), r)
        poly = self.horner([1 / math.factorial(k) for k in range(terms + 1)], r)
        value = self._times_power_of_two(poly, b.fptosi(n, int_type), bits, bias)
        return b.select(b.fcmp_unordered("uno", x_in, x_in), x_in, value)

    def _times_power_of_two(self, x: ir.Value, n: ir.Value, bits: int, bias: int) -> ir.Value:
        """x * 2**n rounded once (x near 1, n an exponent exp can need: overflow gives
        inf, underflow subnormals or 0). With AVX-512, llvm.ldexp (one vscalef); else
        2**n from exponent bits in two halves, each a normal number, so the first product
        is exact and the second rounds once: the same bits."""
        b = self.b
        if _host_scales():
            i32 = ir.IntType(32)
            exponent = b.trunc(n, i32) if n.type != i32 else n
            suffix = "f64" if self.dtype.itemsize == 8 else "f32"
            ldexp = self.mc.function(f"llvm.ldexp.{suffix}.i32", self.type, [self.type, i32])
            return b.call(ldexp, [x, exponent])
        int_type = n.type
        half = b.ashr(n, ir.Constant(int_type, 1))
        scale = []
        for part in (half, b.sub(n, half)):
            field = b.shl(b.add(part, ir.Constant(int_type, bias)), ir.Constant(int_type, bits))
            scale.append(b.bitcast(field, self.type))
        return b.fmul(b.fmul(x, scale[0]), scale[1])

    def tanh(self, x: ir.Value) -> ir.Value:
        """tanh in plain arithmetic (vectorizes): its odd Taylor series below |x| = 0.3,
        else sign(x) * (1 - 2 / (e**(2|x|) + 1)), which has no cancellation there."""
        b = self.b
        magnitude = self.intrinsic("fabs", x)
        square = b.fmul(x, x)
        coefficients = _tanh_coefficients(_TANH_TERMS[self.dtype.itemsize])
        poly = self.horner(coefficients, square)
        small = b.fmul(poly, x)
        e = self.exp(b.fmul(magnitude, self.number(2)))
        large = b.fsub(self.number(1), b.fdiv(self.number(2), b.fadd(e, self.number(1))))
        large = self.intrinsic("copysign", large, x)
        return b.select(b.fcmp_ordered("<", magnitude, self.number(TANH_SERIES_BELOW)), small,
                        large)

    def log(self, x: ir.Value) -> ir.Value:
        """The natural log in plain arithmetic (vectorizes): x = m * 2**e with m in
        [sqrt(1/2), sqrt(2)) from the exponent bits (subnormals scaled up first), then
        log(m) = 2 atanh(s), s = (m - 1) / (m + 1), by its series in s**2. 0 gives -inf,
        negatives NaN, inf inf; NaN propagates."""
        b = self.b
        f64 = self.dtype.itemsize == 8
        int_type = ir.IntType(64 if f64 else 32)
        bits, bias, scale_bits = (52, 1023, 54) if f64 else (23, 127, 25)
        smallest_normal = float(np.finfo(self.dtype).tiny)
        ln2_hi, ln2_lo = _LN2_PARTS[f64]

        def integer(v):
            return ir.Constant(int_type, v)

        subnormal = b.fcmp_ordered("<", x, self.number(smallest_normal))
        scaled = b.select(subnormal, b.fmul(x, self.number(2.0 ** scale_bits)), x)
        word = b.bitcast(scaled, int_type)
        exponent = b.sub(b.lshr(word, integer(bits)), integer(bias))
        exponent = b.sub(exponent, b.select(subnormal, integer(scale_bits), integer(0)))
        mantissa = b.or_(b.and_(word, integer((1 << bits) - 1)), integer(bias << bits))
        m = b.bitcast(mantissa, self.type)
        high = b.fcmp_ordered(">", m, self.number(math.sqrt(2.0)))
        m = b.select(high, b.fmul(m, self.number(0.5)), m)
        exponent = b.add(exponent, b.zext(high, int_type))
        f = b.fsub(m, self.number(1))
        s = b.fdiv(f, b.fadd(f, self.number(2)))
        z = b.fmul(s, s)
        terms = _LOG_TERMS[self.dtype.itemsize]
        poly = self.horner([1 / (2 * n + 1) for n in range(terms + 1)], z)
        e = b.sitofp(exponent, self.type)
        tail = b.fadd(b.fmul(e, self.number(ln2_lo)), b.fmul(b.fmul(s, self.number(2)), poly))
        value = b.fadd(b.fmul(e, self.number(ln2_hi)), tail)
        value = b.select(b.fcmp_ordered("==", x, self.number(math.inf)), x, value)
        value = b.select(b.fcmp_ordered("==", x, self.number(0)), self.number(-math.inf), value)
        value = b.select(b.fcmp_ordered("<", x, self.number(0)), self.number(math.nan), value)
        return b.select(b.fcmp_unordered("uno", x, x), x, value)

    def erf(self, x: ir.Value) -> ir.Value:
        """erf in plain arithmetic (vectorizes), on |x| with x's sign. float32: two
        polynomials (_erf32). float64: below 2 the series
        exp(-x**2) * 2x/sqrt(pi) * sum (2x**2)**n / (2n+1)!! (positive terms, no
        cancellation), from 2 on 1 - erfc(x) by erfc's continued fraction, evaluated
        backwards from a fixed depth. NaN propagates."""
        b = self.b
        if self.dtype.itemsize == 4:
            return self._erf32(x)
        series_terms, depth = ERF64_TERMS, ERF64_DEPTH
        a = self.intrinsic("fabs", x)
        square = b.fmul(a, a)
        twice = b.fmul(square, self.number(2))
        coefficients = [1.0]
        for n in range(1, series_terms + 1):
            coefficients.append(coefficients[-1] / (2 * n + 1))
        poly = self.horner(coefficients, twice)
        gauss = self.exp(b.fneg(square))
        series = b.fmul(b.fmul(gauss, b.fmul(a, self.number(2 / math.sqrt(math.pi)))), poly)
        t = a
        for k in range(depth, 0, -1):
            t = b.fadd(a, b.fdiv(self.number(k / 2), t))
        tail = b.fsub(self.number(1),
                      b.fdiv(gauss, b.fmul(t, self.number(math.sqrt(math.pi)))))
        value = b.select(b.fcmp_ordered("<", a, self.number(ERF_SERIES_BELOW)), series, tail)
        value = self.intrinsic("copysign", value, x)
        return b.select(b.fcmp_unordered("uno", x, x), x, value)

    def _erf32(self, x: ir.Value) -> ir.Value:
        """float32 erf: |x| * P(x**2 - 2) below |x| = 2, else 1 - Q(min(|x|, 4) - 3)
        (Q(1) is below half an ulp of 1, so 1 from 4 on), with x's sign. Both branches
        are computed (two independent chains of 9 and 10 fused multiply-adds: half the
        latency of one of 16) and one selected; both arguments are exact but for the one
        rounding of x**2 - 2. Measured 1.6e-7 relative over every float32 (the single
        degree-16 polynomial before: 2.6e-7). NaN propagates."""
        b = self.b
        a = self.intrinsic("fabs", x)
        u = self.intrinsic("fma", a, a, self.number(-_ERF32_HALF_T))
        small = b.fmul(a, self.horner(_ERF32_SMALL, u))
        # The clamp lets NaN through (the comparison is false): one min instruction.
        one_from = self.number(ERF32_ONE_FROM)
        clamped = b.select(b.fcmp_ordered(">", a, one_from), one_from, a)
        v = b.fsub(clamped, self.number((ERF32_SPLIT + ERF32_ONE_FROM) / 2))
        large = b.fsub(self.number(1), self.horner(_ERF32_LARGE, v))
        value = b.select(b.fcmp_ordered("<", a, self.number(ERF32_SPLIT)), small, large)
        value = self.intrinsic("copysign", value, x)
        return b.select(b.fcmp_unordered("uno", x, x), x, value)

    # ----- log1p, expm1, sinh, cosh (float dtypes) ------------------------------------------
    def log1p(self, x: ir.Value) -> ir.Value:
        """log(1 + x) accurate near 0 (Goldberg's form): u = 1 + x rounded, then
        log(u) * x / (u - 1), whose two roundings cancel; x itself where u is 1, inf at
        inf. -1 gives -inf, below it NaN; NaN propagates."""
        b = self.b
        one = self.number(1)
        u = b.fadd(one, x)
        value = b.fmul(self.log(u), b.fdiv(x, b.fsub(u, one)))
        value = b.select(b.fcmp_ordered("==", u, one), x, value)
        return b.select(b.fcmp_ordered("==", x, self.number(math.inf)), x, value)

    def expm1(self, x: ir.Value) -> ir.Value:
        """exp(x) - 1 accurate near 0: x * (its Taylor series / x) where |x| < ln(2)/2,
        else exp(x) - 1 (exp(x) is at least sqrt(2) or at most 1/sqrt(2) there: the
        subtraction loses at most 2 bits). -0.0 stays -0.0; NaN propagates."""
        b = self.b
        terms = 15 if self.dtype.itemsize == 8 else 8
        poly = self.horner([1 / math.factorial(k + 1) for k in range(terms)], x)
        small = b.fmul(x, poly)
        large = b.fsub(self.exp(x), self.number(1))
        near_zero = b.fcmp_ordered("<", self.intrinsic("fabs", x),
                                   self.number(math.log(2) / 2))
        return b.select(near_zero, small, large)

    def _exp_large(self, magnitude: ir.Value) -> ir.Value:
        """e**a / 2 for a large a >= 0, as (e**(a/2) / 2) * e**(a/2): finite wherever
        sinh and cosh are (e**a alone overflows first)."""
        half = self.exp(self.b.fmul(magnitude, self.number(0.5)))
        return self.b.fmul(self.b.fmul(half, self.number(0.5)), half)

    def sinh(self, x: ir.Value) -> ir.Value:
        """sinh with x's sign: (E + E / (E + 1)) / 2 with E = expm1(|x|) (no cancellation,
        accurate near 0) below |x| = 20, e**|x| / 2 from there (e**-|x| is below the
        rounding). NaN propagates."""
        b = self.b
        magnitude = self.intrinsic("fabs", x)
        e = self.expm1(magnitude)
        small = b.fmul(b.fadd(e, b.fdiv(e, b.fadd(e, self.number(1)))), self.number(0.5))
        large = self._exp_large(magnitude)
        value = b.select(b.fcmp_ordered("<", magnitude, self.number(HYPERBOLIC_LARGE)), small,
                         large)
        return self.intrinsic("copysign", value, x)

    def cosh(self, x: ir.Value) -> ir.Value:
        """cosh: e**|x| / 2 + e**-|x| / 2 (both positive) below |x| = 20, e**|x| / 2 from
        there. NaN propagates."""
        b = self.b
        magnitude = self.intrinsic("fabs", x)
        e = self.exp(magnitude)
        half = self.number(0.5)
        small = b.fadd(b.fmul(e, half), b.fdiv(half, e))
        large = self._exp_large(magnitude)
        return b.select(b.fcmp_unordered("<", magnitude, self.number(HYPERBOLIC_LARGE)), small,
                        large)
