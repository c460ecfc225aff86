"""What billing offers the rest of the tier about its tables (process_apis/store.py, ``OWNERS``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from process_apis.store import OutboxGauge, billing_postings, outbox_gauge


async def done_postings_by_day(conn: AsyncConnection) -> Sequence[Any]:
    """Postings done in the ERP and the PSA: contract_id, currency, work_date, ``n`` postings and their ``amount``."""
    return (await conn.execute(
        sa.select(billing_postings.c.contract_id, billing_postings.c.currency, billing_postings.c.work_date,
                  sa.func.count().label("n"),
                  sa.func.sum(sa.cast(billing_postings.c.amount, sa.Numeric(18, 2))).label("amount"))
        .where(billing_postings.c.state == "done")
        .group_by(billing_postings.c.contract_id, billing_postings.c.currency, billing_postings.c.work_date))).all()


async def postings_outbox(conn: AsyncConnection) -> OutboxGauge:
    """How the posting outbox stands: rows queued or in the ERP, and rejected ones given up."""
    return await outbox_gauge(conn, billing_postings, pending=("queued", "in_erp"), given_up=("rejected",),
                              tries=billing_postings.c.attempts, retrying=billing_postings.c.attempts > 0)
