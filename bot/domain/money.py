"""Money arithmetic: exact fractions inside, Decimal cents outside, rounded half-up per line."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

CENT = Decimal("0.01")


def round_half_up(value: Fraction, places: int = 2) -> Decimal:
    """Round a non-negative or negative exact value half-up (away from zero) to `places` decimals."""
    scale = 10**places
    scaled = value * scale
    sign = -1 if scaled < 0 else 1
    q, r = divmod(abs(scaled.numerator), scaled.denominator)
    if 2 * r >= scaled.denominator:
        q += 1
    return (Decimal(sign * q) / Decimal(scale)).quantize(Decimal(1).scaleb(-places))


def decimal_places(value: Decimal) -> int:
    """Digits after the point as written: 1.50 -> 2, 15 -> 0, 1.5E+1 -> 0. Finite values only."""
    exponent = value.as_tuple().exponent
    # as_tuple() names NaN and the infinities by a letter where a finite value has its exponent.
    if not isinstance(exponent, int):
        raise ValueError(f"not a finite number: {value}")
    return max(0, -exponent)


def format_multiplier(multiplier: Decimal) -> str:
    """1 -> '1.0', 1.5 -> '1.5', 1.25 -> '1.25' (as the quote contract prints them)."""
    normal = multiplier.normalize()
    if decimal_places(normal) == 0:
        return str(normal.quantize(Decimal("0.1")))
    return str(normal)


def percent(multiplier: Decimal) -> str:
    """1.5 -> '150', 1.25 -> '125', 1.125 -> '112.5'."""
    return f"{(multiplier * 100).normalize():f}"
