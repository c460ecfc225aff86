"""Payloads of the approvals inbox v1 (contracts/experience/approvals/v1.yaml)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal, TypeAlias

import msgspec

from contracts.canonical import Page

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Reason = Annotated[str, msgspec.Meta(max_length=2000)]


class SubmittedEntry(msgspec.Struct, kw_only=True):
    time_entry_id: str
    worker_id: str
    worker_name: str | None
    project_id: str
    project_name: str
    task_id: str | None
    work_date: dt.date
    hours: Decimal
    billable: bool
    notes: str
    submitted_at: dt.datetime | None


SubmittedEntryPage: TypeAlias = Page[SubmittedEntry]


class DecisionRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    time_entry_ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=200)]
    decision: Literal["approve", "reject"]
    reason: Reason | None = None


class SingleDecisionRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    decision: Literal["approve", "reject"]
    reason: Reason | None = None


class Billing(msgspec.Struct, kw_only=True):
    disposition: str
    reasons: list[str]
    amount: Decimal | None
    currency: str | None


class DecisionItem(msgspec.Struct, kw_only=True):
    time_entry_id: str
    result: str
    state: str | None
    detail: str | None
    billing: Billing | None


class Decision(msgspec.Struct, kw_only=True):
    approval_id: str
    decision: Literal["approve", "reject"]
    reason: str | None
    state: Literal["applied", "recorded"]
    approved: int
    rejected: int
    not_decided: int
    items: list[DecisionItem]


class CorrectionRequestItem(msgspec.Struct, kw_only=True):
    """A consultant's request to correct approved or posted time on a project I manage."""

    correction_id: str
    time_entry_id: str
    worker_id: str
    worker_name: str | None
    project_id: str
    project_name: str
    work_date: dt.date
    hours: Decimal
    corrected_hours: Decimal | None
    corrected_work_date: dt.date | None
    corrected_notes: str | None
    reason: str
    requested_at: dt.datetime


CorrectionRequestPage: TypeAlias = Page[CorrectionRequestItem]


class CorrectionDecisionRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    decision: Literal["approve", "reject"]
    reason: Reason | None = None


class CorrectionDecided(msgspec.Struct, kw_only=True):
    """``unchanged``: decided that way before, nothing happened again. ``applied``: the corrected version is
    approved and settled for billing, the old version's posting reversed in the ERP."""

    correction_id: str
    result: Literal["approved", "rejected", "unchanged"]
    state: Literal["requested", "rejected", "approved", "applied"]
    new_time_entry_id: str | None
