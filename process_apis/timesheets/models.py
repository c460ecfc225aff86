"""Payloads of the timesheets process API v1 (contracts/process/timesheets/v1.yaml)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

from contracts.canonical import Instant, TimeActivity, TimeEntry, decimal_text
from process_apis.billing.models import Settlement

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
# msgspec cannot bound Decimals: ``entry_rules.hours_errors`` checks 0 < hours <= 24 and points at the bad field.
Hours = Decimal
Notes = Annotated[str, msgspec.Meta(max_length=2000)]
ClientRef = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:\-]+$")]


class NewTimeEntry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    worker_id: Id
    project_id: Id
    task_id: Id | None = None
    work_date: dt.date
    hours: Hours
    billable: bool = True
    notes: Notes = ""
    client_ref: ClientRef | None = None
    activity: TimeActivity = "work"


class TimeEntryChanges(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    task_id: Id | None = None
    work_date: dt.date | None = None
    hours: Hours | None = None
    billable: bool | None = None
    notes: Notes | None = None
    activity: TimeActivity | None = None


class TimeEntryPage(msgspec.Struct, kw_only=True):
    items: list[TimeEntry]
    next_cursor: str | None = None


class SyncItem(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One offline change: ``upsert`` creates (by ``client_ref``) or, with ``time_entry_id``, updates a draft;
    ``delete`` removes a draft."""

    client_ref: ClientRef
    op: Literal["upsert", "delete"] = "upsert"
    time_entry_id: Id | None = None
    worker_id: Id | None = None
    project_id: Id | None = None
    task_id: Id | None = None
    work_date: dt.date | None = None
    hours: Hours | None = None
    billable: bool | None = None
    notes: Notes | None = None
    activity: TimeActivity | None = None


class SyncRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    items: Annotated[list[SyncItem], msgspec.Meta(min_length=1, max_length=200)]


class SyncResult(msgspec.Struct, kw_only=True):
    client_ref: str
    status: Literal["created", "existing", "updated", "deleted", "error"]
    time_entry: TimeEntry | None = None
    problem: dict[str, Any] | None = None


class SyncResponse(msgspec.Struct, kw_only=True):
    items: list[SyncResult]


class SubmissionRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Submit a worker's week (every draft or rejected entry from ``week_start`` to six days later), or just the
    entries named."""

    worker_id: Id
    week_start: dt.date
    time_entry_ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=200)] | None = None


class EntryOutcome(msgspec.Struct, kw_only=True):
    time_entry_id: str
    result: Literal["submitted", "approved", "rejected", "unchanged", "refused", "not_found", "pending"]
    state: str | None = None
    detail: str | None = None
    settlement: Settlement | None = None


class SubmissionResult(msgspec.Struct, kw_only=True):
    worker_id: str
    week_start: dt.date
    week_end: dt.date
    items: list[EntryOutcome]
    total_hours: Decimal


class ApprovalRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    time_entry_ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=500)]
    approver_id: Id
    decision: Literal["approve", "reject"]
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class Approval(msgspec.Struct, kw_only=True):
    """A recorded decision. ``state`` is ``applied`` once every entry was decided in the PSA and settled for
    billing; ``recorded`` means part of it waits on a system that is unavailable and completes by itself."""

    id: str
    approver_id: str
    decision: Literal["approve", "reject"]
    reason: str | None
    state: Literal["recorded", "applied"]
    created_at: Instant
    applied_at: Instant | None
    entries: list[EntryOutcome]


class CorrectionRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A consultant's request to correct their approved or posted entry: the corrected values and why."""

    time_entry_id: Id
    worker_id: Id
    hours: Hours | None = None
    work_date: dt.date | None = None
    notes: Notes | None = None
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]

    def changes(self) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if self.hours is not None:
            changes["hours"] = decimal_text(self.hours)
        if self.work_date is not None:
            changes["work_date"] = self.work_date.isoformat()
        if self.notes is not None:
            changes["notes"] = self.notes
        return changes


class CorrectionDecision(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    approver_id: Id
    decision: Literal["approve", "reject"]
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class Correction(msgspec.Struct, kw_only=True):
    """A correction request. ``applied``: the new version (``new_time_entry_id``) is approved and settled, and
    the old version's ERP posting is queued for reversal."""

    id: str
    time_entry_id: str
    worker_id: str
    project_id: str
    hours: Decimal | None
    work_date: dt.date | None
    notes: str | None
    reason: str
    state: Literal["requested", "rejected", "approved", "applied"]
    approver_id: str | None
    decision_reason: str | None
    new_time_entry_id: str | None
    settlement: Settlement | None
    created_at: Instant
    decided_at: Instant | None
    applied_at: Instant | None


class CorrectionPage(msgspec.Struct, kw_only=True):
    items: list[Correction]
    next_cursor: str | None = None


class CorrectionOutcome(msgspec.Struct, kw_only=True):
    """What a decision did: ``unchanged`` when the request was decided that way already (nothing happens again)."""

    result: Literal["approved", "rejected", "unchanged"]
    correction: Correction


def entry_subject(entry: TimeEntry) -> dict[str, str]:
    """The subject of a time entry's events."""
    return {"time_entry_id": entry.id, "worker_id": entry.worker_id, "project_id": entry.project_id}
