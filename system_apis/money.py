"""Money across dialects: canonical Decimal amounts <-> vendors' integer minor units, never through float."""

from __future__ import annotations

from decimal import Decimal

from runtime.problems import FieldError, Unprocessable

# ISO 4217 minor-unit exponents that are not 2.
_EXPONENTS = {"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0, "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3}


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


def to_minor(amount: Decimal, currency: str, pointer: str) -> int:
    """An exact amount in minor units; an amount finer than the currency allows is refused, never rounded away."""
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise Unprocessable(f"{pointer[1:]} has more decimals than {currency} allows", slug="validation-failed",
                            errors=[FieldError(pointer=pointer,
                                               detail=f"at most {exponent(currency)} decimals in {currency}")])
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    places = exponent(currency)
    return Decimal(minor).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def plain(number: Decimal) -> Decimal:
    """A quantity without trailing zeros and never in exponent notation (10, not 1E+1; 7.5, not 7.50)."""
    return number.quantize(Decimal(1)) if number == number.to_integral_value() else number.normalize()
