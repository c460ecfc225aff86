"""Billable expenses on an invoice of any billing model: the hook invoicing calls when it drafts a period (time and
materials, fixed fee, milestone and retainer alike; a retainer's fee does not cover them).

An expense is billed a line per expense, in the contract's currency (capture refuses any other), at cost or with
the contract's markup (``Contract.expense_markup_percent``): cost x (1 + markup / 100), rounded half-even to
cents once per line (never a rounded rate times a cost). It is billed once: the invoice reserves its source
``("expense", id)`` like every other line, so a later draft skips it. The ERP books the cost (the posting); the
markup is revenue the invoice adds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Set
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

import sqlalchemy as sa

from contracts.canonical import InvoiceLine, decimal_text
from process_apis.expenses.store import expenses
from runtime.storage import Database

Source = tuple[str, str]
CENT: Final = Decimal("0.01")
HUNDRED: Final = Decimal(100)


def billed_amount(cost: Decimal, markup_percent: Decimal | None) -> Decimal:
    """What the customer is billed for an expense of ``cost``: at cost without a markup, else cost x (1 + markup
    / 100) rounded half-even to cents, once (the product is exact first: cents x a percent with few digits)."""
    if not markup_percent:
        return cost
    return (cost * (HUNDRED + markup_percent) / HUNDRED).quantize(CENT, rounding=ROUND_HALF_EVEN)


def describe(category: str, project_id: str, day: dt.date, cost: Decimal, markup_percent: Decimal | None) -> str:
    text = f"Expense, {category}, {project_id}, {day.isoformat()}"
    return f"{text}, cost {decimal_text(cost)} + {decimal_text(markup_percent)}%" if markup_percent else text


async def expense_lines(
    db: Database,
    contract_id: str,
    window: tuple[dt.date, dt.date],
    billed: Set[Source],
    markup_percent: Decimal | None = None,
) -> tuple[list[InvoiceLine], list[Source]]:
    """The contract's posted, billable expenses dated in ``window`` and not billed yet, with its markup."""
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(expenses)
                .where(
                    expenses.c.contract_id == contract_id,
                    expenses.c.state == "posted",
                    expenses.c.billable.is_(True),
                    expenses.c.expense_date.between(*window),
                )
                .order_by(expenses.c.expense_date, expenses.c.id)
            )
        ).all()
    fresh = [r for r in rows if ("expense", r.id) not in billed]
    lines = []
    for r in fresh:
        amount = billed_amount(r.amount, markup_percent)
        lines.append(
            InvoiceLine(
                description=describe(r.category, r.project_id, r.expense_date, r.amount, markup_percent),
                quantity=Decimal(1),
                unit_price=amount,
                amount=amount,
                source_type="expense",
                source_ids=[r.id],
            )
        )
    return lines, [("expense", r.id) for r in fresh]


async def unwritten_to_psa(db: Database, contract_id: str) -> frozenset[str]:
    """The contract's expenses booked in the ERP whose PSA write is still queued (reconciliation awaits them)."""
    async with db.read() as conn:
        ids = await conn.execute(
            sa.select(expenses.c.id).where(
                expenses.c.contract_id == contract_id,
                expenses.c.erp_posting_id.is_not(None),
                expenses.c.psa_expense_id.is_(None),
            )
        )
    return frozenset(ids.scalars())


async def billable_expenses(db: Database, contract_id: str) -> frozenset[str]:
    """The contract's billable expenses, for reconciliation to tell a cost from an unbilled expense."""
    async with db.read() as conn:
        ids = await conn.execute(
            sa.select(expenses.c.id).where(expenses.c.contract_id == contract_id, expenses.c.billable.is_(True))
        )
    return frozenset(ids.scalars())
