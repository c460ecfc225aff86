"""Billable expenses on a time-and-materials invoice: the hook invoicing calls when it drafts a period.

An expense is billed at cost, a line per expense, in the contract's currency (capture refuses any other), once:
the invoice reserves its source ``("expense", id)`` like every other line, so a later draft skips it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Set
from decimal import Decimal

import sqlalchemy as sa

from contracts.canonical import InvoiceLine
from process_apis.expenses.store import expenses
from runtime.storage import Database

Source = tuple[str, str]


async def expense_lines(
    db: Database, contract_id: str, window: tuple[dt.date, dt.date], billed: Set[Source]
) -> tuple[list[InvoiceLine], list[Source]]:
    """The contract's posted, billable expenses dated in ``window`` and not billed yet."""
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
    lines = [
        InvoiceLine(
            description=f"Expense, {r.category}, {r.project_id}, {r.expense_date.isoformat()}",
            quantity=Decimal(1),
            unit_price=r.amount,
            amount=r.amount,
            source_type="expense",
            source_ids=[r.id],
        )
        for r in fresh
    ]
    return lines, [("expense", r.id) for r in fresh]


async def billable_expenses(db: Database, contract_id: str) -> frozenset[str]:
    """The contract's billable expenses, for reconciliation to tell a cost from an unbilled expense."""
    async with db.read() as conn:
        ids = await conn.execute(
            sa.select(expenses.c.id).where(expenses.c.contract_id == contract_id, expenses.c.billable.is_(True))
        )
    return frozenset(ids.scalars())
