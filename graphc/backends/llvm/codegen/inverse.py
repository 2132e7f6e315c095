"""The inverse trigonometric functions atan, asin, acos and atan2 emitted as plain
arithmetic (so loops over them vectorize and vector and scalar code agree bit for bit):
each reduces to atan of a ratio in [0, 1], from there to |u| <= tan(pi/8) by
atan(t) = pi/4 + atan((t - 1) / (t + 1)), and sums atan's odd series there. A mixin of
ExpressionEmitter (expr.py), whose number, intrinsic and horner it uses.
"""

from __future__ import annotations

import math

from llvmlite import ir

TAN_PI_8 = math.tan(math.pi / 8)
# Terms of atan's series in u**2 <= tan(pi/8)**2 = 0.1716: the first omitted one is below
# 2e-18 (float64) or 2e-9 (float32) of the sum.
_ATAN_TERMS = {8: 22, 4: 10}


def _split(value: float) -> tuple[float, float]:
    """value as hi + lo, hi with 20 bits of mantissa (hi - r is exact for r near hi)."""
    hi = float.fromhex(value.hex()[:9] + "p" + value.hex().split("p")[1])
    return hi, value - hi


class InverseFunctions:
    """atan, asin, acos and atan2 of an expression emitter's compute dtype (a float)."""

    def _constant_minus(self, value: float, r: ir.Value) -> ir.Value:
        """value - r with value's rounding error put back (value in two parts)."""
        b = self.b
        if self.dtype.itemsize == 4:
            return b.fsub(self.number(value), r)
        hi, lo = _split(value)
        return b.fadd(b.fsub(self.number(hi), r), self.number(lo))

    def _atan_unit(self, t: ir.Value) -> ir.Value:
        """atan(t) for t in [0, 1] (NaN propagates)."""
        b = self.b
        one = self.number(1)
        reduced = b.fcmp_ordered(">", t, self.number(TAN_PI_8))
        u = b.select(reduced, b.fdiv(b.fsub(t, one), b.fadd(t, one)), t)
        terms = _ATAN_TERMS[self.dtype.itemsize]
        poly = self.horner([(-1) ** k / (2 * k + 1) for k in range(terms)], b.fmul(u, u))
        series = b.fmul(u, poly)
        return b.select(reduced, b.fadd(self.number(math.pi / 4), series), series)

    def _angle(self, above: ir.Value, beside: ir.Value) -> ir.Value:
        """atan2(above, beside) for above, beside >= 0 (or NaN): the angle in [0, pi/2],
        from the smaller over the larger. Both 0 gives 0, both inf pi/4."""
        b = self.b
        steep = b.fcmp_ordered(">", above, beside)
        larger = b.select(steep, above, beside)
        smaller = b.select(steep, beside, above)
        ratio = b.fdiv(smaller, larger)
        inf = self.number(math.inf)
        ratio = b.select(b.fcmp_ordered("==", larger, self.number(0)), self.number(0), ratio)
        ratio = b.select(b.and_(b.fcmp_ordered("==", smaller, inf),
                                b.fcmp_ordered("==", larger, inf)), self.number(1), ratio)
        angle = self._atan_unit(ratio)
        return b.select(steep, self._constant_minus(math.pi / 2, angle), angle)

    def _unit_circle(self, x: ir.Value) -> tuple[ir.Value, ir.Value]:
        """(|x|, sqrt((1 - |x|)(1 + |x|))): the sides of the right triangle whose
        hypotenuse is 1, accurate near |x| = 1 (1 - |x| is exact there). NaN for |x| > 1."""
        b = self.b
        one = self.number(1)
        a = self.intrinsic("fabs", x)
        return a, self.intrinsic("sqrt", b.fmul(b.fsub(one, a), b.fadd(one, a)))

    def atan(self, x: ir.Value) -> ir.Value:
        """atan(x) with x's sign: atan(|x|), or pi/2 - atan(1/|x|) above 1."""
        b = self.b
        a = self.intrinsic("fabs", x)
        big = b.fcmp_ordered(">", a, self.number(1))
        angle = self._atan_unit(b.select(big, b.fdiv(self.number(1), a), a))
        angle = b.select(big, self._constant_minus(math.pi / 2, angle), angle)
        return self.intrinsic("copysign", angle, x)

    def asin(self, x: ir.Value) -> ir.Value:
        """asin(x) = atan2(x, sqrt(1 - x**2)) with x's sign; NaN outside [-1, 1]."""
        a, side = self._unit_circle(x)
        return self.intrinsic("copysign", self._angle(a, side), x)

    def acos(self, x: ir.Value) -> ir.Value:
        """acos(x) = atan2(sqrt(1 - x**2), |x|), or pi minus it for negative x (-0.0 and 0
        both give pi/2); NaN outside [-1, 1]."""
        b = self.b
        a, side = self._unit_circle(x)
        angle = self._angle(side, a)
        negative = b.fcmp_ordered("<", x, self.number(0))
        return b.select(negative, self._constant_minus(math.pi, angle), angle)

    def atan2(self, y: ir.Value, x: ir.Value) -> ir.Value:
        """C's atan2(y, x), zeros' and infinities' signs included: the angle of (|x|, |y|),
        mirrored to x's side (x's sign bit: -0.0 gives pi) and given y's sign. NaN in
        either gives NaN."""
        b = self.b
        angle = self._angle(self.intrinsic("fabs", y), self.intrinsic("fabs", x))
        left = b.fcmp_ordered("<", self.intrinsic("copysign", self.number(1), x),
                              self.number(0))
        angle = b.select(left, self._constant_minus(math.pi, angle), angle)
        value = self.intrinsic("copysign", angle, y)
        return b.select(b.fcmp_unordered("uno", x, y), b.fadd(x, y), value)
