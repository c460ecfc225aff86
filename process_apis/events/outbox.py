"""Writing events: inside the caller's transaction, so an event exists exactly when its change does."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from process_apis.events.models import SCHEMA_VERSION, EventType
from process_apis.store import events
from process_apis.unit_of_work import Outbox, note_written
from runtime import correlation
from runtime.storage import utcnow

# A payload part: its type's Struct (process_apis/events/models.py), or a plain mapping of the same shape.
Part = Mapping[str, Any] | msgspec.Struct


async def record_event(conn: AsyncConnection, type_: EventType, subject: Part, data: Part | None = None) -> str:
    """Add an event to the outbox in the open transaction; the relay publishes it after commit."""
    return (await record_events(conn, type_, [(subject, data)]))[0]


async def record_events(conn: AsyncConnection, type_: EventType,
                        items: Sequence[tuple[Part, Part | None]]) -> list[str]:
    """Add events of one type (``(subject, data)`` each) to the outbox in the open transaction, in one
    statement; they get their positions in this order, as the same calls of :func:`record_event` would."""
    if not items:
        return []
    occurred_at, correlation_id = utcnow(), correlation.current_correlation_id()
    rows: list[dict[str, Any]] = [
        {"id": "evt_" + uuid.uuid4().hex, "type": type_, "version": SCHEMA_VERSION, "occurred_at": occurred_at,
         "correlation_id": correlation_id, "subject": _plain(subject), "data": _plain(data)}
        for subject, data in items]
    await conn.execute(events.insert(), rows)
    note_written(conn, Outbox.EVENTS)
    return [row["id"] for row in rows]


def _plain(part: Part | None) -> dict[str, Any]:
    """The JSON object stored: a Struct encoded as on the wire (dates as ISO strings, Decimals in fixed point:
    msgspec alone would write a normalized 10 as "1E+1", which the AsyncAPI schemas refuse)."""
    if part is None:
        return {}
    if isinstance(part, msgspec.Struct):
        return _fixed_point(msgspec.to_builtins(part, builtin_types=(Decimal,)))
    return dict(part)


def _fixed_point(value: Any) -> Any:
    if isinstance(value, Decimal):
        text = format(value, "f")
        return "0" if text == "-0" else text
    if isinstance(value, dict):
        return {key: _fixed_point(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_fixed_point(item) for item in value]
    return value
