"""Payloads of the billing process API v1 (contracts/process/billing/v1.yaml)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from contracts.canonical import Instant, Period

EntryId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Disposition = Literal["queued_for_posting", "held", "cost_only", "already_posted"]
PostingState = Literal["queued", "in_erp", "done", "rejected", "psa_refused"]


class EvaluationRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Exactly one of ``time_entry_ids``, ``project_id`` or ``period`` selects the entries."""

    time_entry_ids: Annotated[list[EntryId], msgspec.Meta(min_length=1, max_length=2000)] | None = None
    project_id: EntryId | None = None
    period: Period | None = None
    # with project_id or period: which entries (default: approved, the ones waiting to be billed)
    state: Literal["submitted", "approved", "posted", "invoiced"] = "approved"


class SettlementRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Exactly one of ``time_entry_ids``, ``project_id`` or ``period`` selects the approved entries to settle."""

    time_entry_ids: Annotated[list[EntryId], msgspec.Meta(min_length=1, max_length=2000)] | None = None
    project_id: EntryId | None = None
    period: Period | None = None


class EligibleItem(msgspec.Struct, kw_only=True):
    time_entry_id: str
    worker_id: str
    project_id: str
    contract_id: str
    work_date: dt.date
    hours: Decimal
    role: str | None
    rate: Decimal
    amount: Decimal
    currency: str


class HeldItem(msgspec.Struct, kw_only=True):
    time_entry_id: str
    worker_id: str
    project_id: str
    contract_id: str | None
    work_date: dt.date
    hours: Decimal
    role: str | None
    reasons: list[str]
    amount: Decimal | None
    currency: str | None
    # Every failing rule's exact code, newer codes included (``reasons`` keeps to v1's closed set).
    reason_codes: list[str] = []


class CurrencyTotal(msgspec.Struct, kw_only=True):
    currency: str
    amount: Decimal


class EvaluationSummary(msgspec.Struct, kw_only=True):
    evaluated: int
    eligible: int
    held: int
    eligible_totals: list[CurrencyTotal]
    held_by_reason: dict[str, int]


class Evaluation(msgspec.Struct, kw_only=True):
    evaluated_at: Instant
    eligible: list[EligibleItem]
    held: list[HeldItem]
    summary: EvaluationSummary


class Settlement(msgspec.Struct, kw_only=True):
    """What the time-to-bill workflow did with one approved entry."""

    time_entry_id: str
    disposition: Disposition
    reasons: list[str]
    amount: Decimal | None
    currency: str | None
    exception_id: str | None = None


class SettlementSummary(msgspec.Struct, kw_only=True):
    settled: int
    queued_for_posting: int
    held: int
    cost_only: int
    already_posted: int
    queued_totals: list[CurrencyTotal]
    held_by_reason: dict[str, int]


class SettlementRun(msgspec.Struct, kw_only=True):
    """What settling a selection did: counts per disposition (the entries are in the posting queue and the
    exception queue, not repeated here: a month holds tens of thousands)."""

    settled_at: Instant
    summary: SettlementSummary


class PostingItem(msgspec.Struct, kw_only=True):
    time_entry_id: str
    entry_version: int
    state: PostingState
    contract_id: str
    project_id: str
    work_date: dt.date
    hours: Decimal
    amount: Decimal
    currency: str
    attempts: int
    next_attempt_at: Instant
    last_error: str | None
    erp_posting_id: str | None
    idempotency_key: str
    created_at: Instant
    updated_at: Instant


class PostingPage(msgspec.Struct, kw_only=True):
    items: list[PostingItem]
    next_cursor: str | None = None
