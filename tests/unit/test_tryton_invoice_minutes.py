"""Tryton computes an invoice line's amount itself (float quantity as text x unit price, rounded half-even to the
cent): what the Tryton connector sends must make that computation give exactly the amounts invoicing drafted.

The property finance relies on: for any entries in whole minutes at any hourly rate, each priced once (minutes x
rate / 60, half-even to the cent, ``time_amount``), the Tryton lines of a time line add up to exactly its amount,
and each Tryton line of one entry to exactly that entry's amount.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.canonical import display_hours
from process_apis.billing.eligibility import time_amount
from system_apis.erp.connectors.tryton import hours_for, tryton_amount, tryton_lines
from system_apis.erp.models import InvoiceLineCreate

RATES = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("2000"), places=2)


def line_of(minutes: list[int], rate: Decimal) -> tuple[InvoiceLineCreate, list[str], dict[str, tuple[int, Decimal]]]:
    refs = [f"TC-{n}" for n in range(len(minutes))]
    booked = {ref: (m, time_amount(m, rate)) for ref, m in zip(refs, minutes, strict=True)}
    total = sum(minutes)
    line = InvoiceLineCreate(
        description="Professional services",
        quantity=display_hours(total),
        unit_price=rate,
        amount=sum((a for _, a in booked.values()), Decimal(0)),
        source_type="time_entry",
        source_ids=[f"te_{n}" for n in range(len(minutes))],
        minutes=total,
    )
    return line, refs, booked


def test_twenty_minutes_are_never_priced_as_the_hours_shown() -> None:
    line, refs, booked = line_of([20, 50], Decimal("175"))
    assert line.amount == Decimal("204.16")  # 58.33 + 145.83
    assert tryton_amount(float(line.quantity), line.unit_price) == Decimal("204.75")  # 1.17 h: what Tryton billed
    sent = tryton_lines(line, refs, booked)
    assert [refs for _, refs in sent] == [["TC-0"], ["TC-1"]]
    assert [tryton_amount(q, line.unit_price) for q, _ in sent] == [Decimal("58.33"), Decimal("145.83")]


@settings(max_examples=400)
@given(minutes=st.lists(st.integers(1, 24 * 60), min_size=1, max_size=12), rate=RATES)
def test_the_tryton_lines_of_a_time_line_bill_exactly_its_postings(minutes: list[int], rate: Decimal) -> None:
    line, refs, booked = line_of(minutes, rate)

    sent = tryton_lines(line, refs, booked)

    assert sum((tryton_amount(q, rate) for q, _ in sent), Decimal(0)) == line.amount
    assert sorted(r for _, rs in sent for r in rs) == sorted(refs)
    for quantity, line_refs in sent:
        if len(line_refs) == 1:
            assert tryton_amount(quantity, rate) == booked[line_refs[0]][1]


@given(minutes=st.integers(1, 100_000), rate=RATES)
def test_hours_for_one_entry_reproduce_its_amount_to_the_minute(minutes: int, rate: Decimal) -> None:
    quantity = hours_for(minutes, rate, time_amount(minutes, rate))
    assert quantity is not None
    assert round(quantity * 60) == minutes
