"""Payloads of the revenue process API v1 (contracts/process/revenue/v1.yaml)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

from contracts.canonical import BillingModel, Currency, Period

# recognized: in the ERP; due: earned (delivered, accepted, or its period has come) and not yet recognised;
# planned: a later period's share, re-planned whenever the terms or what is recognised change.
LineState = Literal["recognized", "due", "planned"]
Method = Literal["as_billed", "milestone", "straight_line", "ratable"]


class ScheduleLine(msgspec.Struct, kw_only=True):
    period: Period
    amount: Decimal
    state: LineState
    erp_schedule_id: str | None = None


class RevenueSchedule(msgspec.Struct, kw_only=True):
    """A contract's revenue by period. ``total_value`` is the most it recognises (null: uncapped time and
    materials); the lines never add up to more."""

    contract_id: str
    billing_model: BillingModel
    method: Method
    currency: Currency
    total_value: Decimal | None
    recognized_to_date: Decimal
    scheduled_total: Decimal
    lines: list[ScheduleLine]


class RecognitionRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Recognise everything due up to and including this period (not after the current month)."""

    through_period: Period


class Recognition(msgspec.Struct, kw_only=True):
    """What this call recognised (periods recognised before are not repeated) and the schedule after it."""

    contract_id: str
    through_period: Period
    recognized: list[ScheduleLine]
    schedule: RevenueSchedule
