"""What staffing offers the rest of the tier about its tables (process_apis/store.py, ``OWNERS``)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from process_apis.store import hr_workers


async def last_days(conn: AsyncConnection) -> dict[str, dt.date]:
    """Each terminated worker's last day, as the HR feed last saw it (the timesheet rule refuses time after it)."""
    rows = (await conn.execute(sa.select(hr_workers.c.worker_id, hr_workers.c.termination_date).where(
        hr_workers.c.termination_date.is_not(None)))).all()
    return {row.worker_id: row.termination_date for row in rows}
