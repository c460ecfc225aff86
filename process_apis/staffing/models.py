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
