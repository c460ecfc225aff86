"""Payloads of the staffing process API v1 (contracts/process/staffing/v1.yaml)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec

from contracts.canonical import AssignmentStatus, BillingModel, ProjectStatus


class ProjectSummary(msgspec.Struct, kw_only=True):
    id: str
    name: str
    status: ProjectStatus
    billing_model: BillingModel
    customer_id: str


class StaffedAssignment(msgspec.Struct, kw_only=True):
    id: str
    worker_id: str
    role: str
    planned_hours_per_week: Decimal
    start_date: dt.date
    end_date: dt.date | None
    status: AssignmentStatus
    project: ProjectSummary


class StaffedAssignmentPage(msgspec.Struct, kw_only=True):
    items: list[StaffedAssignment]
    next_cursor: str | None = None


class WorkerAvailability(msgspec.Struct, kw_only=True):
    """Hours over ``from_date`` .. ``to_date``: ``capacity_hours`` while employed, ``leave_hours`` of it on leave,
    ``available_hours`` the rest; ``planned_hours`` what confirmed assignments plan on the available days and
    ``planned_utilization`` that as a percentage of available (null when nothing is available)."""

    worker_id: str
    from_date: dt.date
    to_date: dt.date
    capacity_hours: Decimal
    leave_hours: Decimal
    available_hours: Decimal
    planned_hours: Decimal
    planned_utilization: Decimal | None
    leave_days: list[dt.date]
    termination_date: dt.date | None
