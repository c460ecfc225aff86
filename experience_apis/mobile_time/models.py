"""Payloads of mobile time entry: v1 (contracts/experience/mobile-time/v1.yaml) speaks decimal hours and a
billable flag; v2 (v2.yaml) speaks integer minutes and a work type; v3 (v3.yaml) is v2 with a third work type,
``travel``. Short, flat, phone-sized."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
# The phone's own id for an entry; stored namespaced by worker, so it is unique per person, not firm-wide.
ClientRef = Annotated[str, msgspec.Meta(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._:\-]+$")]
Notes = Annotated[str, msgspec.Meta(max_length=2000)]
HoursText = Annotated[str, msgspec.Meta(pattern=r"^\d{1,2}(\.\d{1,2})?$")]
Minutes = Annotated[int, msgspec.Meta(ge=1, le=1440)]
WorkType = Literal["billable_delivery", "non_billable_internal"]
# v3 widens the response enum (breaking for v2's generated clients, hence a new major version).
WorkTypeV3 = Literal["billable_delivery", "non_billable_internal", "travel"]


class MyAssignment(msgspec.Struct, kw_only=True, omit_defaults=True):
    assignment_id: str
    project_id: str
    project_name: str
    role: str
    planned_hours_per_week: Decimal
    start_date: dt.date
    end_date: dt.date | None = None
    can_log_time: bool


class MyAssignments(msgspec.Struct, kw_only=True):
    items: list[MyAssignment]
    next_cursor: str | None = None


# -- v1: hours + billable ------------------------------------------------------------------------------------

class MyEntryV1(msgspec.Struct, kw_only=True):
    time_entry_id: str
    client_ref: str | None
    project_id: str
    task_id: str | None
    work_date: dt.date
    hours: Decimal
    billable: bool
    notes: str
    state: str
    rejection_reason: str | None


class DayTotalV1(msgspec.Struct, kw_only=True):
    work_date: dt.date
    hours: Decimal


class ProjectTotalV1(msgspec.Struct, kw_only=True):
    project_id: str
    project_name: str | None
    hours: Decimal


class MyWeekV1(msgspec.Struct, kw_only=True):
    week_start: dt.date
    week_end: dt.date
    entries: list[MyEntryV1]
    days: list[DayTotalV1]
    projects: list[ProjectTotalV1]
    total_hours: Decimal
    submittable_entries: int


class NewEntryV1(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    project_id: Id
    task_id: Id | None = None
    work_date: dt.date
    hours: HoursText
    billable: bool = True
    notes: Notes = ""
    client_ref: ClientRef | None = None


class EntryChangesV1(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    task_id: Id | None = None
    work_date: dt.date | None = None
    hours: HoursText | None = None
    billable: bool | None = None
    notes: Notes | None = None


class SyncItemV1(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Structure only: each item's values are checked on their own, so one bad item fails alone."""

    client_ref: ClientRef
    op: Literal["upsert", "delete"] = "upsert"
    time_entry_id: str | None = None
    project_id: str | None = None
    task_id: str | None = None
    work_date: str | None = None
    hours: str | None = None
    billable: bool | None = None
    notes: str | None = None


class SyncRequestV1(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    items: Annotated[list[SyncItemV1], msgspec.Meta(min_length=1, max_length=200)]


class SyncResultV1(msgspec.Struct, kw_only=True):
    client_ref: str
    status: Literal["created", "existing", "updated", "deleted", "error"]
    entry: MyEntryV1 | None = None
    problem: dict[str, Any] | None = None


class SyncResponseV1(msgspec.Struct, kw_only=True):
    items: list[SyncResultV1]


# -- v2: minutes + work type ---------------------------------------------------------------------------------

class MyEntryV2(msgspec.Struct, kw_only=True):
    time_entry_id: str
    client_ref: str | None
    project_id: str
    task_id: str | None
    work_date: dt.date
    minutes: int
    work_type: WorkType
    notes: str
    state: str
    rejection_reason: str | None


class DayTotalV2(msgspec.Struct, kw_only=True):
    work_date: dt.date
    minutes: int


class ProjectTotalV2(msgspec.Struct, kw_only=True):
    project_id: str
    project_name: str | None
    minutes: int


class MyWeekV2(msgspec.Struct, kw_only=True):
    week_start: dt.date
    week_end: dt.date
    entries: list[MyEntryV2]
    days: list[DayTotalV2]
    projects: list[ProjectTotalV2]
    total_minutes: int
    submittable_entries: int


class NewEntryV2(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    project_id: Id
    task_id: Id | None = None
    work_date: dt.date
    minutes: Minutes
    work_type: WorkType
    notes: Notes = ""
    client_ref: ClientRef | None = None


class EntryChangesV2(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    task_id: Id | None = None
    work_date: dt.date | None = None
    minutes: Minutes | None = None
    work_type: WorkType | None = None
    notes: Notes | None = None


class SyncItemV2(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    client_ref: ClientRef
    op: Literal["upsert", "delete"] = "upsert"
    time_entry_id: str | None = None
    project_id: str | None = None
    task_id: str | None = None
    work_date: str | None = None
    minutes: int | None = None
    work_type: str | None = None
    notes: str | None = None


class SyncRequestV2(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    items: Annotated[list[SyncItemV2], msgspec.Meta(min_length=1, max_length=200)]


class SyncResultV2(msgspec.Struct, kw_only=True):
    client_ref: str
    status: Literal["created", "existing", "updated", "deleted", "error"]
    entry: MyEntryV2 | None = None
    problem: dict[str, Any] | None = None


class SyncResponseV2(msgspec.Struct, kw_only=True):
    items: list[SyncResultV2]


# -- v3: v2 with travel --------------------------------------------------------------------------------------

class MyEntryV3(msgspec.Struct, kw_only=True):
    time_entry_id: str
    client_ref: str | None
    project_id: str
    task_id: str | None
    work_date: dt.date
    minutes: int
    work_type: WorkTypeV3
    notes: str
    state: str
    rejection_reason: str | None


class MyWeekV3(msgspec.Struct, kw_only=True):
    week_start: dt.date
    week_end: dt.date
    entries: list[MyEntryV3]
    days: list[DayTotalV2]
    projects: list[ProjectTotalV2]
    total_minutes: int
    submittable_entries: int


class NewEntryV3(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    project_id: Id
    task_id: Id | None = None
    work_date: dt.date
    minutes: Minutes
    work_type: WorkTypeV3
    notes: Notes = ""
    client_ref: ClientRef | None = None


class EntryChangesV3(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    task_id: Id | None = None
    work_date: dt.date | None = None
    minutes: Minutes | None = None
    work_type: WorkTypeV3 | None = None
    notes: Notes | None = None


class SyncRequestV3(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    items: Annotated[list[SyncItemV2], msgspec.Meta(min_length=1, max_length=200)]


class SyncResultV3(msgspec.Struct, kw_only=True):
    client_ref: str
    status: Literal["created", "existing", "updated", "deleted", "error"]
    entry: MyEntryV3 | None = None
    problem: dict[str, Any] | None = None


class SyncResponseV3(msgspec.Struct, kw_only=True):
    items: list[SyncResultV3]


# -- both: submitting a week ---------------------------------------------------------------------------------

class WeekSubmissionItem(msgspec.Struct, kw_only=True):
    time_entry_id: str
    result: str
    state: str | None
    detail: str | None


class WeekSubmission(msgspec.Struct, kw_only=True):
    week_start: dt.date
    week_end: dt.date
    submitted: int
    unchanged: int
    refused: int
    items: list[WeekSubmissionItem]


class CorrectionRequestV2(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Ask the approver to correct my approved, posted or invoiced entry: corrected minutes, date or notes, and why."""

    minutes: Minutes | None = None
    work_date: dt.date | None = None
    notes: Notes | None = None
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class MyCorrectionV2(msgspec.Struct, kw_only=True):
    correction_id: str
    time_entry_id: str
    minutes: int | None
    work_date: dt.date | None
    notes: str | None
    reason: str
    state: Literal["requested", "rejected", "approved", "applied"]
    new_time_entry_id: str | None
