"""Go's math.Log, Log2, Log10 and Pow, bit for bit, so ln()/log2()/log10()/`^` agree with
Prometheus to the last digit (the C library's results differ in the last bit for some inputs).

Log is the classic fdlibm algorithm that Go uses (reduce to [sqrt(2)/2, sqrt(2)), then a
polynomial in s = f/(2+f)); Log2/Log10 are Go's formulas over it; Pow is Go's: special cases,
then repeated squaring for the integer part of the exponent and exp(yf*log(x)) for the rest.
Exp itself is left to the C library: Go's amd64 Exp is assembly with its own rounding, so
exp() and a fractional `^` may still differ from Prometheus in the last bit.
"""

import math

_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_L1 = 6.666666666666735130e-01
_L2 = 3.999999999940941908e-01
_L3 = 2.857142874366239149e-01
_L4 = 2.222219843214978396e-01
_L5 = 1.818357216161805012e-01
_L6 = 1.531383769920937332e-01
_L7 = 1.479819860511658591e-01
_SQRT2_HALF = math.sqrt(2) / 2
# Go folds 1/Ln2 and 1/Ln10 as exact constants before rounding to float64.
_INV_LN2 = 1.4426950408889634
_INV_LN10 = 0.4342944819032518


def log(x: float) -> float:
    if math.isnan(x) or x == math.inf:
        return x
    if x < 0:
        return math.nan
    if x == 0:
        return -math.inf
    f1, ki = math.frexp(x)
    if f1 < _SQRT2_HALF:
        f1 *= 2
        ki -= 1
    f = f1 - 1
    k = float(ki)
    s = f / (2 + f)
    s2 = s * s
    s4 = s2 * s2
    t1 = s2 * (_L1 + s4 * (_L3 + s4 * (_L5 + s4 * _L7)))
    t2 = s4 * (_L2 + s4 * (_L4 + s4 * _L6))
    r = t1 + t2
    hfsq = 0.5 * f * f
    return k * _LN2_HI - ((hfsq - (s * (hfsq + r) + k * _LN2_LO)) - f)


def log2(x: float) -> float:
    if math.isnan(x) or math.isinf(x) or x <= 0:
        return log(x)
    frac, exp = math.frexp(x)
    if frac == 0.5:  # exact powers of two
        return float(exp - 1)
    return log(frac) * _INV_LN2 + float(exp)


def log10(x: float) -> float:
    return log(x) * _INV_LN10


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _is_odd_int(y: float) -> bool:
    return abs(y) < 2**53 and y == math.floor(y) and int(y) % 2 == 1


def pow(x: float, y: float) -> float:  # noqa: A001 - Go's name
    if y == 0 or x == 1:
        return 1.0
    if y == 1:
        return x
    if math.isnan(x) or math.isnan(y):
        return math.nan
    if x == 0:
        if y < 0:
            return -math.inf if math.copysign(1, x) < 0 and _is_odd_int(y) else math.inf
        return x if math.copysign(1, x) < 0 and _is_odd_int(y) else 0.0
    if math.isinf(y):
        if x == -1:
            return 1.0
        return 0.0 if (abs(x) < 1) == (y > 0) else math.inf
    if math.isinf(x):
        if x < 0:
            return pow(1 / x, -y)
        return 0.0 if y < 0 else math.inf
    if y == 0.5:
        return _sqrt(x)
    if y == -0.5:
        return 1 / _sqrt(x)
    yf, yi = math.modf(abs(y))
    if yf != 0 and x < 0:
        return math.nan
    if yi >= 2**63:
        # The exponent is an even integer this large: only |x| against 1 matters.
        if x == -1:
            return 1.0
        return 0.0 if (abs(x) < 1) == (y > 0) else math.inf
    a1 = 1.0
    ae = 0
    if yf != 0:
        if yf > 0.5:
            yf -= 1
            yi += 1
        a1 = _exp(yf * log(x))
    x1, xe = math.frexp(x)
    i = int(yi)
    while i != 0:
        if xe < -(1 << 12) or (1 << 12) < xe:
            # Catastrophic over/underflow: let ldexp saturate.
            ae += xe
            break
        if i & 1:
            a1 *= x1
            ae += xe
        x1 *= x1
        xe <<= 1
        if x1 < 0.5:
            x1 += x1
            xe -= 1
        i >>= 1
    if y < 0:
        a1 = 1 / a1
        ae = -ae
    return _ldexp(a1, ae)


def _sqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0 else math.nan


def _ldexp(frac: float, exp: int) -> float:
    try:
        return math.ldexp(frac, exp)
    except OverflowError:
        return math.copysign(math.inf, frac)


# Go's float64 arithmetic where Python's differs: division by zero and a NaN in max/min.


def div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def mod(a: float, b: float) -> float:
    try:
        return math.fmod(a, b)
    except (ValueError, ZeroDivisionError):
        return math.nan


def go_max(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return a if a > b else b


def go_min(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return a if a < b else b
