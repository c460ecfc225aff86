"""What expenses offers the rest of the tier about its table (process_apis/store.py, ``OWNERS``)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from process_apis.expenses.store import expenses


async def billable_expense_ids(conn: AsyncConnection) -> frozenset[str]:
    """The expenses this tier captured as billable (the ERP posting of an expense does not say)."""
    return frozenset((await conn.execute(sa.select(expenses.c.id).where(expenses.c.billable.is_(True)))).scalars())
