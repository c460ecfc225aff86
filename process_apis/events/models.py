"""Payloads of the events process API v1 (contracts/process/events/v1.yaml) and the event envelope."""

from __future__ import annotations

from decimal import Decimal
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


class ProjectPostedTime(msgspec.Struct, kw_only=True):
    """Time posted to the ERP on one project, in one currency: each entry counted once, at its latest version."""

    project_id: str
    contract_id: str
    currency: str
    entries: int
    hours: Decimal
    amount: Decimal
    last_posted_at: Instant


class PostedTimePage(msgspec.Struct, kw_only=True):
    """``applied_events`` and ``updated_at`` say how far the projection has got (null: nothing applied yet)."""

    items: list[ProjectPostedTime]
    next_cursor: str | None
    applied_events: int
    updated_at: Instant | None
