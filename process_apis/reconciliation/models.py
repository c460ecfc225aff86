"""Payloads of the reconciliation process API v1 (contracts/process/reconciliation/v1.yaml)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from contracts.canonical import Instant

DifferenceType = Literal[
    "missing_in_erp", "duplicated_in_erp", "amount_mismatch", "quantity_mismatch", "posted_in_erp_not_in_psa",
    "unknown_source_in_erp", "invoiced_in_psa_not_on_invoice", "on_invoice_not_invoiced_in_psa",
]


class ReconciliationRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which projects (default: every active project) and which work dates (default: all)."""

    project_ids: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=64)]],
                           msgspec.Meta(min_length=1, max_length=200)] | None = None
    from_date: dt.date | None = None
    to_date: dt.date | None = None


class Difference(msgspec.Struct, kw_only=True):
    type: DifferenceType
    time_entry_id: str | None = None
    # Additive (issue 19): the expense (its expenses process id, the PSA's source_ref) the difference is about.
    expense_id: str | None = None
    posting_ids: list[str] = []
    invoice_id: str | None = None
    psa_state: str | None = None
    psa_hours: Decimal | None = None
    erp_quantity: Decimal | None = None
    erp_amount: Decimal | None = None
    expected_amount: Decimal | None = None
    detail: str


# Differences of money (README, "Billing policies"), per contract. New kinds are added here and as a check in
# reconciliation/billing.py; ``Difference.type`` keeps to the entry-level kinds v1 published first.
BillingDifferenceType = Literal[
    "posted_not_invoiced", "milestone_billed_twice", "milestone_not_billed", "contract_value_exceeded",
    "billed_outside_term", "posted_outside_term", "superseded_entry_posted",
]


class BillingDifference(msgspec.Struct, kw_only=True):
    """A difference of money: what it is, the amounts, and what to do about it."""

    type: BillingDifferenceType
    project_id: str | None = None
    period: str | None = None
    time_entry_id: str | None = None
    milestone_id: str | None = None
    expense_id: str | None = None
    invoice_ids: list[str] = []
    posting_ids: list[str] = []
    hours: Decimal | None = None
    amount: Decimal | None = None
    expected_amount: Decimal | None = None
    currency: str | None = None
    action: str
    detail: str


class ContractReport(msgspec.Struct, kw_only=True):
    contract_id: str
    currency: str
    total_value: Decimal | None
    # Issued (posted or paid) invoices only: a draft is not an invoice yet.
    invoiced_amount: Decimal
    draft_amount: Decimal
    differences: list[BillingDifference]


class ProjectReport(msgspec.Struct, kw_only=True):
    project_id: str
    contract_id: str | None
    psa_approved_entries: int
    psa_posted_entries: int
    psa_invoiced_entries: int
    psa_posted_hours: Decimal
    erp_postings: int
    erp_posted_amount: Decimal
    currency: str | None
    approved_awaiting_posting: int
    differences: list[Difference]


class Summary(msgspec.Struct, kw_only=True):
    projects: int
    projects_with_differences: int
    differences: int
    by_type: dict[str, int]


class Reconciliation(msgspec.Struct, kw_only=True):
    id: str
    state: Literal["running", "completed", "failed"]
    trigger: Literal["request", "schedule"]
    project_ids: list[str] | None
    from_date: dt.date | None
    to_date: dt.date | None
    started_at: Instant
    finished_at: Instant | None
    summary: Summary | None
    projects: list[ProjectReport]
    error: str | None = None
    contracts: list[ContractReport] = []


class ReconciliationPage(msgspec.Struct, kw_only=True):
    items: list[Reconciliation]
    next_cursor: str | None = None
