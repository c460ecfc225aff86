"""Payloads of the invoicing process API v1 (contracts/process/invoicing/v1.yaml)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from contracts.canonical import BillingModel, Currency, Instant, Invoice, InvoiceLineSource, Money, Period, TaxLine

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class DraftRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    contract_id: Id
    period: Period


class Drawdown(msgspec.Struct, kw_only=True):
    """A retainer's period: the fee, the posted time drawn against it, and what is left or over. With an hours
    allowance, the hours too: the allowance, hours carried in from the previous period, used, unused, over."""

    retainer_amount: Decimal
    drawn_amount: Decimal
    remaining_amount: Decimal
    overage_amount: Decimal
    allowance_hours: Decimal | None = None
    carried_in_hours: Decimal | None = None
    used_hours: Decimal | None = None
    unused_hours: Decimal | None = None
    overage_hours: Decimal | None = None


class FlowBack(msgspec.Struct, kw_only=True):
    """Status flowing back to the PSA and CRM after posting: jobs by state (pending, done, failed)."""

    jobs: dict[str, int]


HoldReason = Literal["CURRENCY_MISMATCH", "NO_BILLING_SCHEDULE", "OUTSIDE_CONTRACT_TERM", "NOT_BOOKED_IN_ERP"]


class InvoiceHold(msgspec.Struct, kw_only=True):
    """Something of the period the draft does not bill, and why."""

    source_type: InvoiceLineSource
    source_id: str
    reason: HoldReason
    detail: str


class ValueHold(msgspec.Struct, kw_only=True):
    """A billable item of the period the draft does not bill because the contract's total value has no room for
    it once what its own terms still bill is counted (README, "Billing policies"). It stays unbilled, not
    reserved: a draft after the value is amended bills it."""

    source_type: InvoiceLineSource
    source_id: str
    reason: Literal["CONTRACT_VALUE_EXCEEDED"] = "CONTRACT_VALUE_EXCEEDED"
    amount: Money
    remaining: Money
    detail: str


class InvoiceTax(msgspec.Struct, kw_only=True):
    """The tax system API's answer for this invoice, as the ERP booked it (contracts/system/tax/v1.yaml)."""

    jurisdiction: str
    engine: Literal["eu-vat", "us-sales-tax", "uk-vat"]
    reference: str
    currency: Currency
    taxable_amount: Money
    tax_amount: Money
    tax_lines: list[TaxLine]


EInvoiceState = Literal["rendered", "queued", "delivered", "rejected", "invalid", "no_endpoint"]


class EInvoiceError(msgspec.Struct, kw_only=True):
    code: str
    detail: str


class EInvoice(msgspec.Struct, kw_only=True):
    """A posted invoice's EN 16931 document and where its delivery stands on the e-invoicing network."""

    format: Literal["factur-x", "peppol-bis-billing-3"]
    media_type: str
    state: EInvoiceState
    attempt: int
    validated_against: list[str]
    delivery_id: str | None = None
    errors: list[EInvoiceError] = []


class Delivery(msgspec.Struct, kw_only=True):
    """The e-invoicing system API's delivery (contracts/system/einvoice/v1.yaml)."""

    id: str
    invoice_id: str
    receiver_id: str
    format: Literal["factur-x", "peppol-bis-billing-3"]
    state: Literal["queued", "delivered", "rejected"]
    errors: list[EInvoiceError] = []


class TaxHeld(msgspec.Struct, kw_only=True):
    """A draft that waits for its region's tax service: held in the exception queue and drafted by itself when
    the service answers again (retried with back-off)."""

    contract_id: str
    period: str
    state: Literal["waiting_for_tax"] = "waiting_for_tax"
    reason: Literal["TAX_SERVICE_UNAVAILABLE"] = "TAX_SERVICE_UNAVAILABLE"
    exception_id: str
    engine: str | None = None
    detail: str


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
    # 1: the period's invoice; 2, 3, ...: a later one (after a void, or a supplementary invoice for late items).
    sequence: int = 1
    # A supplementary invoice names the posted invoice of the same period it adds to.
    supplements_id: str | None = None
    holds: list[InvoiceHold] = []
    # Additive: billable items of the period held because the contract's value has no room for them.
    value_holds: list[ValueHold] = []
    # Issue 19: the tax API's answer (null on invoices drafted before it), and the e-invoice once posted.
    tax: InvoiceTax | None = None
    e_invoice: EInvoice | None = None


class InvoiceDraftPage(msgspec.Struct, kw_only=True):
    items: list[InvoiceDraft]
    next_cursor: str | None = None


class Released(msgspec.Struct, kw_only=True):
    """What a voided draft no longer holds: another draft may bill it now."""

    time_entry_ids: list[str]
    milestone_ids: list[str]
    schedule_sources: list[str]
    # Additive (issue 19): the billable expenses the draft billed, whatever the contract's billing model.
    expense_ids: list[str] = []


class VoidedInvoice(msgspec.Struct, kw_only=True):
    id: str
    contract_id: str
    period: str
    invoice: Invoice
    released: Released
    voided_at: Instant
