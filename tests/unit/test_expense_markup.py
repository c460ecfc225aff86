"""The expense markup: cost x (1 + markup/100), rounded half-even to cents once, checked against exact fractions."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from process_apis.expenses.billing import billed_amount

costs = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000.00"), places=2)
markups = st.decimals(min_value=Decimal(0), max_value=Decimal(100), places=4)


def exact_cents(cost: Decimal, markup: Decimal) -> Decimal:
    """The oracle, in exact rational arithmetic: the marked-up amount in cents, rounded half to even once."""
    cents = Fraction(cost) * 100 * (1 + Fraction(markup) / 100)
    whole, rest = divmod(cents.numerator, cents.denominator)
    twice = 2 * rest
    if twice > cents.denominator or (twice == cents.denominator and whole % 2 == 1):
        whole += 1
    return Decimal(whole).scaleb(-2)


@given(costs, markups)
def test_a_marked_up_expense_is_the_exact_amount_rounded_once(cost: Decimal, markup: Decimal) -> None:
    billed = billed_amount(cost, markup)
    assert billed == exact_cents(cost, markup)
    assert billed.as_tuple().exponent == -2
    assert cost <= billed <= 2 * cost


@given(costs, markups, markups)
def test_a_larger_markup_never_bills_less(cost: Decimal, a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    assert billed_amount(cost, low) <= billed_amount(cost, high)


@given(costs)
def test_without_a_markup_an_expense_is_billed_at_cost(cost: Decimal) -> None:
    assert billed_amount(cost, None) == cost == billed_amount(cost, Decimal(0))


def test_a_half_cent_rounds_to_even_not_up() -> None:
    assert billed_amount(Decimal("189.00"), Decimal("12.5")) == Decimal("212.62")  # 212.625
    assert billed_amount(Decimal("189.20"), Decimal("12.5")) == Decimal("212.85")  # 212.85 exactly
    assert billed_amount(Decimal("0.01"), Decimal("50")) == Decimal("0.02")  # 0.015 -> 0.02 (even)
