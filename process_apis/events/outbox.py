"""Writing events: inside the caller's transaction, so an event exists exactly when its change does."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from process_apis.events.models import SCHEMA_VERSION, EventType
from process_apis.store import events
from runtime import correlation
from runtime.storage import utcnow


async def record_event(conn: AsyncConnection, type_: EventType, subject: Mapping[str, str],
                       data: Mapping[str, Any] | None = None) -> str:
    """Add an event to the outbox in the open transaction; the relay publishes it after commit."""
    event_id = "evt_" + uuid.uuid4().hex
    await conn.execute(events.insert().values(
        id=event_id, type=type_, version=SCHEMA_VERSION, occurred_at=utcnow(),
        correlation_id=correlation.current_correlation_id(), subject=dict(subject), data=dict(data or {}),
    ))
    return event_id
