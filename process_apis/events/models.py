"""Payloads of the events process API v1 (contracts/process/events/v1.yaml) and the event envelope."""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from contracts.canonical import Instant

EventType = Literal[
    "opportunity.closed_won", "project.provisioned", "assignment.confirmed", "time.submitted", "time.approved",
    "time.rejected", "time.posted", "milestone.completed", "contract.amended", "invoice.drafted",
    "invoice.posted", "exception.raised", "exception.resolved",
]
EVENT_TYPES: Final[tuple[EventType, ...]] = (
    "opportunity.closed_won", "project.provisioned", "assignment.confirmed", "time.submitted", "time.approved",
    "time.rejected", "time.posted", "milestone.completed", "contract.amended", "invoice.drafted",
    "invoice.posted", "exception.raised", "exception.resolved",
)
# The schema version of each event type's ``data``; bumped (and documented) when a type changes.
SCHEMA_VERSION: Final = 1


class Event(msgspec.Struct, kw_only=True):
    """One domain event. ``position`` is its offset in the stream (gap-free, in commit order)."""

    id: str
    type: EventType
    version: int
    occurred_at: Instant
    correlation_id: str | None
    subject: dict[str, str]
    data: dict[str, Any]
    position: int


class EventPage(msgspec.Struct, kw_only=True):
    """``last_position`` is where to continue from (``after``); ``next_cursor`` is null once caught up."""

    items: list[Event]
    next_cursor: str | None
    last_position: int
