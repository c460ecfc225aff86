"""Payloads of the exceptions process API v1 (contracts/process/exceptions/v1.yaml)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from contracts.canonical import Instant

ExceptionState = Literal["open", "assigned", "resolved"]
# billing_hold also holds an invoice draft waiting for its region's tax service (source_type invoice_draft);
# flow_back also holds an e-invoice the network refused or that could not be sent (source_type invoice).
ExceptionKind = Literal["billing_hold", "posting", "provisioning", "flow_back"]
ActorId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class HistoryEntry(msgspec.Struct, kw_only=True):
    at: Instant
    action: str
    actor_id: str | None = None
    detail: str | None = None
    reason_codes: list[str] | None = None
    correlation_id: str | None = None


class ExceptionItem(msgspec.Struct, kw_only=True):
    id: str
    kind: ExceptionKind
    source_type: str
    source_id: str
    state: ExceptionState
    reason_codes: list[str]
    business_unit_id: str | None
    project_id: str | None
    owner_id: str | None
    payload: dict[str, Any]
    correlation_id: str | None
    # The W3C trace id of the request (or background work) that raised the item: find its logs, audit and spans.
    trace_id: str | None
    resolution: str | None
    created_at: Instant
    updated_at: Instant
    resolved_at: Instant | None
    age_days: int
    history: list[HistoryEntry]


class ExceptionPage(msgspec.Struct, kw_only=True):
    items: list[ExceptionItem]
    next_cursor: str | None = None


class AssignRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    owner_id: ActorId
    actor_id: ActorId | None = None


class ResolveRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    actor_id: ActorId
    resolution: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class RetryRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    actor_id: ActorId | None = None


class RetryOutcome(msgspec.Struct, kw_only=True):
    """``resolved``: the retry fixed it (e.g. the entry is now queued for posting); ``still_failing``: the item
    stays open with the reasons found now; ``in_progress``: the retry continues in the background."""

    outcome: Literal["resolved", "still_failing", "in_progress"]
    detail: str
    exception: ExceptionItem
