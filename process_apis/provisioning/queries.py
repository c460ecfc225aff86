"""What provisioning offers the rest of the tier about its tables (process_apis/store.py, ``OWNERS``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from process_apis.store import OutboxGauge, outbox_gauge, provisionings


async def provisionings_outbox(conn: AsyncConnection) -> OutboxGauge:
    """How the provisionings stand: pending, running or failed ones are due (a failed one is also given up)."""
    return await outbox_gauge(conn, provisionings, pending=("pending", "running", "failed"), given_up=("failed",),
                              tries=provisionings.c.runs, retrying=provisionings.c.runs > 1)
