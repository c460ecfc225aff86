"""What revenue offers the rest of the tier about its tables (process_apis/store.py, ``OWNERS``)."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from process_apis.store import revenue_write_offs


async def written_off_by_project(conn: AsyncConnection) -> dict[str, Decimal]:
    """Revenue written off per project (revenue v2 records write-offs in this tier's database)."""
    rows = await conn.execute(sa.select(revenue_write_offs.c.project_id, sa.func.sum(revenue_write_offs.c.amount))
                              .group_by(revenue_write_offs.c.project_id))
    return {project: Decimal(total) for project, total in rows}
