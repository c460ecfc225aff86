"""Payloads of the finance-operations API v1 (contracts/experience/finance-ops/v1.yaml).

Responses are decoded from the process APIs into these Structs: msgspec drops the fields they do not name, so
an additive change in a process contract passes through unnoticed, and what a finance person sees is chosen here.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from contracts.canonical import Instant, Page, Period

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
ExceptionState = Literal["open", "assigned", "resolved"]
ExceptionKind = Literal["billing_hold", "posting", "provisioning", "flow_back"]
BULK_MAX = 100


# The exception queue

class HistoryEntry(msgspec.Struct, kw_only=True):
    at: Instant
    action: str
    actor_id: str | None = None
    detail: str | None = None
    reason_codes: list[str] | None = None
    correlation_id: str | None = None


class QueueItem(msgspec.Struct, kw_only=True):
    id: str
    kind: ExceptionKind
    source_type: str
    source_id: str
    state: ExceptionState
    reason_codes: list[str]
    business_unit_id: str | None = None
    project_id: str | None = None
    owner_id: str | None = None
    resolution: str | None = None
    created_at: Instant
    updated_at: Instant
    resolved_at: Instant | None = None
    age_days: int


QueuePage: TypeAlias = Page[QueueItem]


class QueueItemDetail(QueueItem, kw_only=True):
    payload: dict[str, Any] = {}
    correlation_id: str | None = None
    trace_id: str | None = None
    history: list[HistoryEntry] = []


class AssignRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    owner_id: Annotated[Id | None, msgspec.Meta(
        description="Who will own the item (a worker id); empty: the signed-in person takes it.")] = None


class ResolveRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    resolution: Text


class RetryResult(msgspec.Struct, kw_only=True):
    outcome: Literal["resolved", "still_failing", "in_progress"]
    detail: str
    exception: QueueItemDetail


class BulkRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    action: Literal["assign", "resolve", "retry"]
    exception_ids: Annotated[list[Id], msgspec.Meta(
        min_length=1, max_length=BULK_MAX, description="The items; an id named twice is acted on once.")]
    owner_id: Annotated[Id | None, msgspec.Meta(
        description="assign only: the new owner; empty: the signed-in person.")] = None
    resolution: Annotated[Text | None, msgspec.Meta(description="resolve only, and required there.")] = None


class BulkItem(msgspec.Struct, kw_only=True):
    exception_id: str
    status: Annotated[int, msgspec.Meta(description="The HTTP status this item alone would have answered.")]
    result: Annotated[Literal["done", "refused", "failed"], msgspec.Meta(
        description="done; refused (4xx: unknown id, already resolved); failed (5xx: try again).")]
    detail: str | None = None
    state: ExceptionState | None = None
    outcome: Literal["resolved", "still_failing", "in_progress"] | None = None


class BulkResult(msgspec.Struct, kw_only=True):
    action: Literal["assign", "resolve", "retry"]
    done: int
    refused: int
    failed: int
    items: list[BulkItem]


# Invoicing

class DraftRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    contract_id: Id
    period: Period


class InvoiceLine(msgspec.Struct, kw_only=True):
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    source_type: str
    source_ids: list[str] = []


class Invoice(msgspec.Struct, kw_only=True):
    id: str
    customer_id: str
    contract_id: str
    currency: str
    period: str | None = None
    lines: list[InvoiceLine]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    state: str
    issue_date: dt.date | None = None


class TaxHeld(msgspec.Struct, kw_only=True):
    """A draft waiting for its region's tax service (the invoicing process API's 202): it is made by itself once
    the service answers; the exception queue item says so meanwhile."""

    contract_id: str
    period: str
    state: Literal["waiting_for_tax"]
    reason: Literal["TAX_SERVICE_UNAVAILABLE"]
    exception_id: str
    engine: str | None = None
    detail: str


class DraftHold(msgspec.Struct, kw_only=True):
    """What the period has that the invoice does not bill, and why (the invoicing process API's hold)."""

    source_type: str
    source_id: str
    reason: str
    detail: str


class ValueHold(msgspec.Struct, kw_only=True):
    """A billable item the contract's total value has no room for once what its own terms still bill is counted
    (CONTRACT_VALUE_EXCEEDED): unbilled until the value is amended."""

    source_type: str
    source_id: str
    reason: str
    amount: Decimal
    remaining: Decimal
    detail: str


class InvoiceDraft(msgspec.Struct, kw_only=True):
    id: str
    contract_id: str
    period: str
    billing_model: str
    state: str
    invoice: Invoice
    time_entry_ids: list[str] = []
    milestone_ids: list[str] = []
    holds: list[DraftHold] = []
    value_holds: list[ValueHold] = []
    created_at: Instant
    updated_at: Instant


InvoiceDraftPage: TypeAlias = Page[InvoiceDraft]


# Reconciliation

class ReconciliationRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    project_ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=200)] | None = None
    from_date: dt.date | None = None
    to_date: dt.date | None = None


class Difference(msgspec.Struct, kw_only=True):
    type: str
    detail: str
    time_entry_id: str | None = None
    posting_ids: list[str] = []
    invoice_id: str | None = None
    psa_hours: Decimal | None = None
    erp_quantity: Decimal | None = None
    erp_amount: Decimal | None = None
    expected_amount: Decimal | None = None


class ProjectReport(msgspec.Struct, kw_only=True):
    project_id: str
    contract_id: str | None = None
    psa_approved_entries: int
    psa_posted_entries: int
    psa_invoiced_entries: int
    erp_postings: int
    erp_posted_amount: Decimal
    currency: str | None = None
    approved_awaiting_posting: int
    differences: list[Difference]


class ReconciliationSummary(msgspec.Struct, kw_only=True):
    projects: int
    projects_with_differences: int
    differences: int
    by_type: dict[str, int]


class Reconciliation(msgspec.Struct, kw_only=True):
    id: str
    state: str
    trigger: str
    project_ids: list[str] | None = None
    from_date: dt.date | None = None
    to_date: dt.date | None = None
    started_at: Instant
    finished_at: Instant | None = None
    summary: ReconciliationSummary | None = None
    projects: list[ProjectReport] = []
    error: str | None = None


ReconciliationPage: TypeAlias = Page[Reconciliation]


# Month-end settlement

class MonthEndRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    period: Period


class CurrencyTotal(msgspec.Struct, kw_only=True):
    currency: str
    amount: Decimal


class SettlementSummary(msgspec.Struct, kw_only=True):
    settled: int
    queued_for_posting: int
    held: int
    cost_only: int
    already_posted: int
    queued_totals: list[CurrencyTotal]
    held_by_reason: dict[str, int]


class MonthEndSettlement(msgspec.Struct, kw_only=True):
    period: str
    run_by: Annotated[str, msgspec.Meta(description="The signed-in person who ran it (the token's subject).")]
    settled_at: Instant
    summary: SettlementSummary


# Provisioning

class ProvisioningStep(msgspec.Struct, kw_only=True):
    name: str
    state: str
    attempts: int
    started_at: Instant | None = None
    finished_at: Instant | None = None
    error: dict[str, Any] | None = None


class ProvisioningResources(msgspec.Struct, kw_only=True):
    customer_id: str | None = None
    contract_id: str | None = None
    project_id: str | None = None
    task_ids: list[str] = []
    project_dimension_id: str | None = None
    assignment_id: str | None = None


class Provisioning(msgspec.Struct, kw_only=True):
    id: str
    opportunity_id: str
    state: str
    steps: list[ProvisioningStep]
    resources: ProvisioningResources
    error: dict[str, Any] | None = None
    exception_id: str | None = None
    runs: int
    created_at: Instant
    updated_at: Instant
