"""Payloads of the invoicing process API v1 (contracts/process/invoicing/v1.yaml)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from contracts.canonical import BillingModel, Instant, Invoice, Period

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class DraftRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    contract_id: Id
    period: Period


class Drawdown(msgspec.Struct, kw_only=True):
    """A retainer's period: the prepaid amount, the posted time drawn against it, and what is left or over."""

    retainer_amount: Decimal
    drawn_amount: Decimal
    remaining_amount: Decimal
    overage_amount: Decimal


class FlowBack(msgspec.Struct, kw_only=True):
    """Status flowing back to the PSA and CRM after posting: jobs by state (pending, done, failed)."""

    jobs: dict[str, int]


class InvoiceDraft(msgspec.Struct, kw_only=True):
    id: str
    contract_id: str
    period: str
    billing_model: BillingModel
    state: Literal["draft", "posted"]
    invoice: Invoice
    time_entry_ids: list[str]
    milestone_ids: list[str]
    drawdown: Drawdown | None = None
    flow_back: FlowBack | None = None
    created_at: Instant
    updated_at: Instant


class InvoiceDraftPage(msgspec.Struct, kw_only=True):
    items: list[InvoiceDraft]
    next_cursor: str | None = None
