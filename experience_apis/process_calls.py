"""The process and system APIs as the experience tier reads them: decoded loosely, so additive changes pass.

A list is the contracts' one page shape (``contracts.canonical.Page``: items and next_cursor), named here per item."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal, TypeAlias

import msgspec

from contracts.canonical import Page

TIMESHEETS = "/process/timesheets/v1"
STAFFING = "/process/staffing/v1"
INSIGHTS = "/process/insights/v1"
PSA = "/system/psa/v1"
HR = "/system/hr/v1"


class ProcessTimeEntry(msgspec.Struct, kw_only=True):
    id: str
    worker_id: str
    project_id: str
    task_id: str | None = None
    work_date: dt.date
    hours: Decimal
    billable: bool = True
    notes: str = ""
    state: str
    version: int = 1
    submitted_at: dt.datetime | None = None
    rejection_reason: str | None = None
    client_ref: str | None = None
    superseded_by_id: str | None = None
    minutes: int | None = None  # authoritative where given; hours derive from it
    activity: str = "work"  # "work" or "travel" (an older process tier sends none: work)

    @property
    def whole_minutes(self) -> int:
        return self.minutes if self.minutes is not None else int(
            (self.hours * 60).to_integral_value(rounding=ROUND_HALF_EVEN))


ProcessTimeEntryPage: TypeAlias = Page[ProcessTimeEntry]


class ProcessSyncResult(msgspec.Struct, kw_only=True):
    client_ref: str
    status: str
    time_entry: ProcessTimeEntry | None = None
    problem: dict[str, Any] | None = None


class ProcessSyncResponse(msgspec.Struct, kw_only=True):
    items: list[ProcessSyncResult]


class ProcessSettlement(msgspec.Struct, kw_only=True):
    disposition: str
    reasons: list[str] = []
    amount: Decimal | None = None
    currency: str | None = None
    exception_id: str | None = None


class ProcessEntryOutcome(msgspec.Struct, kw_only=True):
    time_entry_id: str
    result: str
    state: str | None = None
    detail: str | None = None
    settlement: ProcessSettlement | None = None


class ProcessSubmission(msgspec.Struct, kw_only=True):
    worker_id: str
    week_start: dt.date
    week_end: dt.date
    items: list[ProcessEntryOutcome]
    total_hours: Decimal


class ProcessApproval(msgspec.Struct, kw_only=True):
    id: str
    approver_id: str
    decision: str
    reason: str | None = None
    state: str
    entries: list[ProcessEntryOutcome]


class StaffedProject(msgspec.Struct):
    id: str
    name: str
    status: str


class StaffedAssignment(msgspec.Struct):
    id: str
    role: str
    planned_hours_per_week: Any
    start_date: Any
    end_date: Any
    status: str
    project: StaffedProject


StaffedPage: TypeAlias = Page[StaffedAssignment]


class PsaProject(msgspec.Struct, kw_only=True):
    id: str
    name: str
    status: str
    manager_id: str | None = None


PsaProjectPage: TypeAlias = Page[PsaProject]


class HrWorker(msgspec.Struct, kw_only=True):
    id: str
    name: str


class ProcessCorrection(msgspec.Struct, kw_only=True):
    id: str
    time_entry_id: str
    worker_id: str
    project_id: str
    hours: Decimal | None = None
    work_date: dt.date | None = None
    notes: str | None = None
    reason: str
    state: str
    new_time_entry_id: str | None = None
    created_at: dt.datetime


ProcessCorrectionPage: TypeAlias = Page[ProcessCorrection]


class ProcessCorrectionOutcome(msgspec.Struct, kw_only=True):
    result: str
    correction: ProcessCorrection


EXPENSES = "/process/expenses/v1/expenses"


class ProcessExpense(msgspec.Struct, kw_only=True):
    id: str
    worker_id: str
    project_id: str
    category: str
    amount: Decimal
    currency: str
    expense_date: dt.date
    country: str
    billable: bool
    receipt_ref: str | None
    description: str
    state: str
    reason_codes: list[str]


ProcessExpensePage: TypeAlias = Page[ProcessExpense]


EXPENSE_SYNCS = "/process/expenses/v1/expense-syncs"


class ProcessExpenseSyncResult(msgspec.Struct, kw_only=True):
    client_ref: str
    status: Literal["created", "existing", "error"]
    expense: ProcessExpense | None = None
    problem: dict[str, Any] | None = None


class ProcessExpenseSyncResponse(msgspec.Struct, kw_only=True):
    items: list[ProcessExpenseSyncResult]
