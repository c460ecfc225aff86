"""Request payloads of the PSA system API (responses are canonical entities from contracts.canonical)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from contracts.canonical import BillingModel, ProjectStatus, TimeActivity, TimeEntry, TimeEntryState
from system_apis.checks import NON_NEGATIVE, Checked, DecimalRange

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=2000)]
Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
HOURS = DecimalRange(Decimal(0), exclusive=True, maximum=Decimal(24))
WEEKLY_HOURS = DecimalRange(Decimal(0), exclusive=True, maximum=Decimal(80))
ClientRef = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
# Time entry state changes per batch call (as many as the ERP takes postings per batch: one call each way).
MAX_TRANSITION_BATCH = 500


class ProjectCreate(Checked, kw_only=True):
    name: Name
    contract_id: Ref
    customer_id: Ref
    legal_entity_id: Ref
    billing_model: BillingModel
    status: ProjectStatus = "planned"
    budget_hours: Decimal | None = None

    ranges = {"budget_hours": NON_NEGATIVE}
    manager_id: Ref | None = None
    business_unit_id: Ref | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None


class ProjectPatch(Checked, kw_only=True):
    name: Name | UnsetType = UNSET
    status: ProjectStatus | UnsetType = UNSET
    budget_hours: Decimal | UnsetType | None = UNSET
    manager_id: Ref | UnsetType | None = UNSET
    business_unit_id: Ref | UnsetType | None = UNSET
    start_date: dt.date | UnsetType | None = UNSET
    end_date: dt.date | UnsetType | None = UNSET

    ranges = {"budget_hours": NON_NEGATIVE}


class TaskCreate(Checked, kw_only=True):
    name: Name
    billable: bool = True


class AssignmentCreate(Checked, kw_only=True):
    worker_id: Ref
    project_id: Ref
    role: Name
    planned_hours_per_week: Decimal
    start_date: dt.date
    end_date: dt.date | None = None
    status: Literal["proposed", "confirmed"] = "proposed"

    ranges = {"planned_hours_per_week": WEEKLY_HOURS}


class AssignmentTransition(Checked, kw_only=True):
    to_status: Literal["confirmed", "ended"]


class TimeEntryCreate(Checked, kw_only=True):
    worker_id: Ref
    project_id: Ref
    task_id: Ref | None = None
    work_date: dt.date
    hours: Decimal
    billable: bool = True
    notes: Text = ""
    client_ref: ClientRef | None = None
    activity: TimeActivity = "work"

    ranges = {"hours": HOURS}


class TimeEntryPatch(Checked, kw_only=True):
    task_id: Ref | UnsetType | None = UNSET
    work_date: dt.date | UnsetType = UNSET
    hours: Decimal | UnsetType = UNSET
    billable: bool | UnsetType = UNSET
    notes: Text | UnsetType = UNSET
    activity: TimeActivity | UnsetType = UNSET

    ranges = {"hours": HOURS}


class TimeEntryTransition(Checked, kw_only=True):
    to_state: TimeEntryState
    actor_id: Ref | None = None
    reason: Text | None = None


class TimeEntryTransitionItem(Checked, kw_only=True):
    """One entry's state change in a batch: the body of the single transition plus the entry's id."""

    time_entry_id: Ref
    to_state: TimeEntryState
    actor_id: Ref | None = None
    reason: Text | None = None


class TimeEntryTransitionBatch(Checked, kw_only=True):
    items: Annotated[list[TimeEntryTransitionItem], msgspec.Meta(min_length=1, max_length=MAX_TRANSITION_BATCH)]


class TimeEntryTransitionResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One item's outcome: ``changed`` now, ``unchanged`` (in that state already: a repeat is harmless), or
    ``refused`` with the problem the single transition would have answered (404, 409, 422)."""

    time_entry_id: str
    status: Literal["changed", "unchanged", "refused"]
    time_entry: TimeEntry | None = None
    problem: dict[str, Any] | None = None


class TimeEntryTransitionBatchResult(msgspec.Struct, kw_only=True):
    items: list[TimeEntryTransitionResult]


class MilestoneTransition(Checked, kw_only=True):
    to_state: Literal["completed", "accepted", "invoiced"]


class TimeEntryFilter(msgspec.Struct, kw_only=True, frozen=True):
    worker_id: str | None = None
    project_id: str | None = None
    state: TimeEntryState | None = None
    from_date: dt.date | None = None
    to_date: dt.date | None = None
    updated_since: dt.datetime | None = None


MONEY = DecimalRange(Decimal(0), exclusive=True, maximum=Decimal(10) ** 9)


class ExpenseCreate(Checked, kw_only=True):
    """An expense captured and decided elsewhere (the expenses process API), written to the PSA so that the PSA
    holds what the ERP books; ``source_ref`` (its id there) makes the write idempotent."""

    source_ref: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    worker_id: Ref
    project_id: Ref
    expense_date: dt.date
    amount: Decimal
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
    category: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    billable: bool = True
    receipt_ref: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    state: Literal["submitted", "approved", "posted"] = "approved"

    ranges = {"amount": MONEY}
