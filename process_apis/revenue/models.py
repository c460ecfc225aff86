"""Payloads of the revenue process API (contracts/process/revenue/v1.yaml and v2.yaml)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from contracts.canonical import BillingModel, Currency, Period

# recognized: in the ERP; due: earned (delivered, accepted, or its period has come) and not yet recognised;
# planned: a later period's share, re-planned whenever the terms or what is recognised change.
LineState = Literal["recognized", "due", "planned"]
# percent_complete (a fixed fee's cost to cost) is served by v2 only: v1's method enum is published without it.
Method = Literal["as_billed", "milestone", "straight_line", "ratable", "percent_complete"]


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


Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
ProjectId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class WriteOffRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Revenue that will not be earned on the contract: it comes off what is left to recognise."""

    amount: Decimal  # positive cents below 10^12 (checked by the service: msgspec bounds no Decimal)
    reason: Reason
    period: Period
    project_id: ProjectId | None = None


class WriteOff(msgspec.Struct, kw_only=True):
    id: str
    contract_id: str
    project_id: str
    amount: Decimal
    currency: Currency
    reason: str
    period: Period
    recorded_by: str
    recorded_at: dt.datetime


class RevenueScheduleV2(RevenueSchedule, kw_only=True):
    """v2: the schedule with the write-offs that lowered it (``written_off`` is their total)."""

    written_off: Decimal
    write_offs: list[WriteOff]


class RecognitionV2(msgspec.Struct, kw_only=True):
    contract_id: str
    through_period: Period
    recognized: list[ScheduleLine]
    schedule: RevenueScheduleV2


class WriteOffRecorded(msgspec.Struct, kw_only=True):
    """The write-off and the schedule re-planned with it."""

    write_off: WriteOff
    schedule: RevenueScheduleV2
