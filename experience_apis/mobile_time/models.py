"""Payloads of mobile time entry: v1 (contracts/experience/mobile-time/v1.yaml) speaks decimal hours and a
billable flag; v2 (v2.yaml) speaks integer minutes and a work type; v3 (v3.yaml) is v2 with a third work type,
``travel``: one set of shapes serves v2 and v3, each named with its version's work types. Short, flat,
phone-sized."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeAlias, TypeVar

import msgspec

from contracts.canonical import Page

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


MyAssignments: TypeAlias = Page[MyAssignment]


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


# -- v2 and v3: minutes + work type ------------------------------------------------------------------------
# One shape for both versions, parameterised by the version's work types (``W``): v3's is v2's with travel.

W = TypeVar("W", bound=str)


class MyEntry(msgspec.Struct, Generic[W], kw_only=True):
    time_entry_id: str
    client_ref: str | None
    project_id: str
    task_id: str | None
    work_date: dt.date
    minutes: int
    work_type: W
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


class MyWeek(msgspec.Struct, Generic[W], kw_only=True):
    week_start: dt.date
    week_end: dt.date
    entries: list[MyEntry[W]]
    days: list[DayTotalV2]
    projects: list[ProjectTotalV2]
    total_minutes: int
    submittable_entries: int


class NewEntry(msgspec.Struct, Generic[W], kw_only=True, forbid_unknown_fields=True):
    project_id: Id
    task_id: Id | None = None
    work_date: dt.date
    minutes: Minutes
    work_type: W
    notes: Notes = ""
    client_ref: ClientRef | None = None


class EntryChanges(msgspec.Struct, Generic[W], kw_only=True, forbid_unknown_fields=True):
    task_id: Id | None = None
    work_date: dt.date | None = None
    minutes: Minutes | None = None
    work_type: W | None = None
    notes: Notes | None = None


class SyncItemV2(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Structure only, on v2 and v3 alike: the work type is checked per item against the version's."""

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


class SyncResult(msgspec.Struct, Generic[W], kw_only=True):
    client_ref: str
    status: Literal["created", "existing", "updated", "deleted", "error"]
    entry: MyEntry[W] | None = None
    problem: dict[str, Any] | None = None


class SyncResponse(msgspec.Struct, Generic[W], kw_only=True):
    items: list[SyncResult[W]]


MyEntryV2: TypeAlias = MyEntry[WorkType]
MyWeekV2: TypeAlias = MyWeek[WorkType]
NewEntryV2: TypeAlias = NewEntry[WorkType]
EntryChangesV2: TypeAlias = EntryChanges[WorkType]
SyncResponseV2: TypeAlias = SyncResponse[WorkType]

MyEntryV3: TypeAlias = MyEntry[WorkTypeV3]
MyWeekV3: TypeAlias = MyWeek[WorkTypeV3]
NewEntryV3: TypeAlias = NewEntry[WorkTypeV3]
EntryChangesV3: TypeAlias = EntryChanges[WorkTypeV3]
SyncResponseV3: TypeAlias = SyncResponse[WorkTypeV3]


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
