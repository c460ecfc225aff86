"""What the exception queue offers the rest of the tier about its tables (process_apis/store.py, ``OWNERS``); raising
and resolving items are process_apis/exceptions/service.py's ``raise_exception`` and ``resolve_open``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from process_apis.store import exceptions


async def held_entries(conn: AsyncConnection, project_ids: Sequence[str]) -> list[str]:
    """The time entries with an open billing hold on one of the projects."""
    return list((await conn.execute(sa.select(exceptions.c.source_id).where(
        exceptions.c.kind == "billing_hold", exceptions.c.open_key.is_not(None),
        exceptions.c.project_id.in_(list(project_ids))))).scalars())


async def unresolved(conn: AsyncConnection) -> Sequence[Any]:
    """Every item not resolved: kind, business_unit_id, reason_codes, created_at."""
    return (await conn.execute(sa.select(
        exceptions.c.kind, exceptions.c.business_unit_id, exceptions.c.reason_codes, exceptions.c.created_at,
    ).where(exceptions.c.state != "resolved"))).all()


async def open_or_assigned(conn: AsyncConnection) -> Sequence[Any]:
    """Every open or assigned item: business_unit_id, kind, reason_codes."""
    return (await conn.execute(sa.select(exceptions.c.business_unit_id, exceptions.c.kind,
                                         exceptions.c.reason_codes)
                               .where(exceptions.c.state.in_(("open", "assigned"))))).all()
