"""Reading the event log: replay from an offset (a position), for consumers over HTTP."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from process_apis.events.models import Event, EventPage
from process_apis.events.relay import row_to_event
from process_apis.store import events
from runtime.problems import NotFound
from runtime.storage import Database


async def events_after(db: Database, after: int, types: Sequence[str] | None, limit: int) -> EventPage:
    """Events with a position above ``after``, in order; ``next_after`` is where to continue from."""
    query = sa.select(events).where(events.c.position > after)
    if types:
        query = query.where(events.c.type.in_(list(types)))
    async with db.read() as conn:
        rows = (await conn.execute(query.order_by(events.c.position).limit(limit))).all()
    items = [row_to_event(row) for row in rows]
    last = items[-1].position if items else after
    return EventPage(items=items, next_cursor=str(last) if len(items) == limit else None, last_position=last)


async def event_by_id(db: Database, event_id: str) -> Event:
    async with db.read() as conn:
        row = (await conn.execute(sa.select(events).where(events.c.id == event_id,
                                                          events.c.position.is_not(None)))).first()
    if row is None:
        raise NotFound(f"no event {event_id!r}", slug="unknown-id")
    return row_to_event(row)
