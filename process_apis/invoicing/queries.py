"""What invoicing offers the rest of the tier about its tables (process_apis/store.py, ``OWNERS``)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from process_apis.store import invoice_sources, invoices


async def invoice_of_source(conn: AsyncConnection, source_type: str, source_id: str) -> str | None:
    """The invoice that billed the source (``"expense"``, its id), if one did."""
    return (await conn.execute(sa.select(invoice_sources.c.invoice_id).where(
        invoice_sources.c.source_type == source_type, invoice_sources.c.source_id == source_id))).scalar()


async def drafted_periods(conn: AsyncConnection) -> set[tuple[str, str]]:
    """(contract id, period ``YYYY-MM``) of every invoice drafted and not voided."""
    return {(r.contract_id, r.period) for r in (await conn.execute(
        sa.select(invoices.c.contract_id, invoices.c.period).where(invoices.c.state != "void"))).all()}
