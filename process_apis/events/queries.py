"""What events offers the rest of the tier about its tables (process_apis/store.py, ``OWNERS``); recording an event
is process_apis/events/outbox.py's ``record_event``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from process_apis.store import events


async def sequenced_after(conn: AsyncConnection, position: int, types: Sequence[str], limit: int) -> Sequence[Any]:
    """Up to ``limit`` events of the types sequenced after ``position``, in order: position, type, occurred_at,
    subject, data."""
    return (await conn.execute(
        sa.select(events.c.position, events.c.type, events.c.occurred_at, events.c.subject, events.c.data)
        .where(events.c.position > position, events.c.type.in_(tuple(types)))
        .order_by(events.c.position).limit(limit))).all()


async def unpublished(conn: AsyncConnection) -> int:
    """Events committed but not yet sequenced for the bus."""
    return int((await conn.execute(sa.select(sa.func.count()).where(events.c.position.is_(None)))).scalar_one())
