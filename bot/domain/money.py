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


def format_multiplier(multiplier: Decimal) -> str:
    """1 -> '1.0', 1.5 -> '1.5', 1.25 -> '1.25' (as the quote contract prints them)."""
    normal = multiplier.normalize()
    if normal.as_tuple().exponent >= 0:
        return str(normal.quantize(Decimal("0.1")))
    return str(normal)


def percent(multiplier: Decimal) -> str:
    """1.5 -> '150', 1.25 -> '125', 1.125 -> '112.5'."""
    return f"{(multiplier * 100).normalize():f}"
