"""Payloads of mobile time entry v1 (contracts/experience/mobile-time/v1.yaml): short, flat, phone-sized."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec


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
