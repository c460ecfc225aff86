"""The one wire form of a decimal: fixed point, never an exponent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from contracts.canonical import decimal_text, plain_decimal


@pytest.mark.parametrize(("value", "text"), [
    (Decimal(600) / 60, "10"), (Decimal(1200) / 60, "20"), (Decimal(6000) / 60, "100"), (Decimal(30) / 60, "0.5"),
    (Decimal(1440) / 60, "24"), (Decimal("1E+1"), "10"), (Decimal("7.50"), "7.5"), (Decimal("-0"), "0"),
    (Decimal("0.05"), "0.05"), (Decimal("-8.00"), "-8")])
def test_plain_decimals_are_written_without_exponent_or_trailing_zeros(value: Decimal, text: str) -> None:
    assert decimal_text(plain_decimal(value)) == text
    assert str(plain_decimal(value)) == text  # what msgspec writes for the Decimal


def test_money_keeps_its_scale() -> None:
    assert decimal_text(Decimal("1360.00")) == "1360.00"
    assert decimal_text(Decimal("1.36E+3")) == "1360"


def test_a_non_finite_decimal_is_never_written() -> None:
    with pytest.raises(ValueError):
        decimal_text(Decimal("NaN"))
