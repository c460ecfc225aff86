"""Request and result payloads of the ERP system API (records themselves are canonical entities)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from contracts.canonical import (
    BillingModel,
    BillingProfile,
    ContractStatus,
    Currency,
    InvoiceLineSource,
    Period,
    PostalAddress,
    Posting,
    RevenueMethod,
    RevenueTerms,
    TaxLine,
    UnusedHoursRule,
    display_hours,
)
from runtime.problems import FieldError
from system_apis.checks import NON_NEGATIVE, Checked, DecimalRange

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
MAX_BATCH = 500
HALF_HUNDREDTH = Decimal("0.005")


class CustomerCreate(Checked, kw_only=True):
    # The customer's business key when it is known already (CRM account ids are customer ids: cus_1001).
    id: Ref | None = None
    name: Name
    billing_currency: Currency
    legal_entity_id: Ref
    tax_jurisdiction: Annotated[str, msgspec.Meta(max_length=40)] = ""
    external_ids: dict[str, str] = {}
    address: PostalAddress | None = None
    vat_number: Annotated[str, msgspec.Meta(min_length=4, max_length=20)] | None = None
    einvoice_endpoint_id: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}:[A-Za-z0-9._-]{1,50}$")] | None = None


PERCENT = DecimalRange(Decimal(0), maximum=Decimal(100))
# Bounds a contract's terms never need to pass (and that keep every amount exact in minor units).
AMOUNT = DecimalRange(Decimal(0), maximum=Decimal(10) ** 12)
HOURS = DecimalRange(Decimal(0), maximum=Decimal(10000))


class ScheduleLineCreate(Checked, kw_only=True):
    """A fixed-fee instalment: exactly one of ``period`` and ``date`` says when it is billed."""

    line_no: Annotated[int, msgspec.Meta(ge=1, le=10000)]
    amount: Decimal
    period: Period | None = None
    date: dt.date | None = None
    percent_complete: Decimal | None = None
    description: Annotated[str, msgspec.Meta(max_length=200)] = ""

    ranges = {"amount": AMOUNT, "percent_complete": PERCENT}


class BillingScheduleCreate(Checked, kw_only=True):
    lines: Annotated[list[ScheduleLineCreate], msgspec.Meta(max_length=400)] = []
    period_fee: Decimal | None = None
    hours_allowance: Decimal | None = None
    unused_hours: UnusedHoursRule = "expire"

    ranges = {"period_fee": AMOUNT, "hours_allowance": HOURS}


class ContractCreate(Checked, kw_only=True):
    # The contract's business key when it is known already (the SOW signed in CRM: ctr_2001).
    id: Ref | None = None
    customer_id: Ref
    legal_entity_id: Ref
    name: Name
    currency: Currency
    billing_model: BillingModel
    nte_amount: Decimal | None = None
    start_date: dt.date
    end_date: dt.date | None = None
    status: ContractStatus = "draft"
    rate_card_id: Ref | None = None
    billing_profile: BillingProfile = msgspec.field(default_factory=BillingProfile)
    total_value: Decimal | None = None
    billing_schedule: BillingScheduleCreate = msgspec.field(default_factory=BillingScheduleCreate)
    expense_markup_percent: Decimal | None = None
    revenue_terms: RevenueTerms = msgspec.field(default_factory=RevenueTerms)

    ranges = {"nte_amount": NON_NEGATIVE, "total_value": AMOUNT, "expense_markup_percent": PERCENT}


class ContractPatch(Checked, kw_only=True):
    name: Name | UnsetType = UNSET
    billing_model: BillingModel | UnsetType = UNSET
    nte_amount: Decimal | UnsetType | None = UNSET
    start_date: dt.date | UnsetType = UNSET
    end_date: dt.date | UnsetType | None = UNSET
    status: ContractStatus | UnsetType = UNSET
    rate_card_id: Ref | UnsetType | None = UNSET
    billing_profile: BillingProfile | UnsetType = UNSET
    total_value: Decimal | UnsetType | None = UNSET
    billing_schedule: BillingScheduleCreate | UnsetType = UNSET
    expense_markup_percent: Decimal | UnsetType | None = UNSET
    revenue_terms: RevenueTerms | UnsetType = UNSET

    ranges = {"nte_amount": NON_NEGATIVE, "total_value": AMOUNT, "expense_markup_percent": PERCENT}


class ProjectDimensionCreate(Checked, kw_only=True):
    project_id: Ref
    legal_entity_id: Ref
    code: Code


# Whole minutes of one posting (a year of days, and more) and of one invoice line (a month end's worth).
PostedMinutes = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
LineMinutes = Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]


def minutes_problems(minutes: int | None, quantity: Decimal, prefix: str) -> list[FieldError]:
    """With ``minutes``, ``quantity`` must be those minutes in hours: exact, or rounded to the hundredth
    (:func:`contracts.canonical.display_hours`), so a reader of hours and a reader of minutes see the same time."""
    if minutes is None or not quantity.is_finite() or abs(quantity - Decimal(minutes) / 60) <= HALF_HUNDREDTH:
        return []
    return [
        FieldError(
            pointer=f"{prefix}/quantity", detail=f"must be {minutes} minutes in hours ({display_hours(minutes)})"
        )
    ]


class PostingCreate(Checked, kw_only=True):
    source_type: InvoiceLineSource
    source_id: Ref
    project_id: Ref
    contract_id: Ref
    legal_entity_id: Ref
    work_date: dt.date
    quantity: Decimal
    amount: Decimal
    currency: Currency
    # Additive (issue 18): time's whole minutes, authoritative; ``quantity`` then names them in hours (to the
    # hundredth at least). The connector books them in the vendor's unit.
    minutes: PostedMinutes | None = None

    ranges = {"quantity": NON_NEGATIVE, "amount": NON_NEGATIVE}

    def field_problems(self, prefix: str = "") -> list[FieldError]:
        errors = super().field_problems(prefix)
        if self.minutes is not None and self.source_type != "time_entry":
            errors.append(
                FieldError(
                    pointer=f"{prefix}/minutes", detail="only time (source_type time_entry) is posted in minutes"
                )
            )
        errors.extend(minutes_problems(self.minutes, self.quantity, prefix))
        return errors


class PostingReversal(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Reverse a posting: book its negative on ``on`` (a day of an open period, usually today)."""

    on: dt.date


class PostingBatch(Checked, kw_only=True):
    items: Annotated[list[PostingCreate], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class PostingBatchItem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One item's outcome: ``created`` now, ``existing`` (posted before: never twice), or ``rejected`` (problem)."""

    source_id: str
    status: Literal["created", "existing", "rejected"]
    posting: Posting | None = None
    problem: dict[str, Any] | None = None


class PostingBatchResult(msgspec.Struct, kw_only=True):
    items: list[PostingBatchItem]


class InvoiceLineCreate(Checked, kw_only=True):
    description: Name
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    source_type: InvoiceLineSource
    source_ids: Annotated[list[Ref], msgspec.Meta(max_length=5000)] = []
    # Additive (issue 18): a time line's whole minutes; ``quantity`` then names them in hours.
    minutes: LineMinutes | None = None

    ranges = {"quantity": NON_NEGATIVE, "unit_price": NON_NEGATIVE, "amount": NON_NEGATIVE}

    def field_problems(self, prefix: str = "") -> list[FieldError]:
        return [*super().field_problems(prefix), *minutes_problems(self.minutes, self.quantity, prefix)]


class InvoiceCreate(Checked, kw_only=True):
    customer_id: Ref
    contract_id: Ref
    legal_entity_id: Ref
    currency: Currency
    period: Period | None = None
    lines: Annotated[list[InvoiceLineCreate], msgspec.Meta(min_length=1, max_length=1000)]
    # The tax the tax system API computed: the ERP books exactly this (empty: the ERP computes its own).
    tax_lines: Annotated[list[TaxLine], msgspec.Meta(max_length=50)] = []


class CreditNoteCreate(Checked, kw_only=True):
    """The lines of a posted invoice to take back (positive amounts: what is credited)."""

    lines: Annotated[list[InvoiceLineCreate], msgspec.Meta(min_length=1, max_length=1000)]


class PostingFilter(msgspec.Struct, kw_only=True, frozen=True):
    project_id: str | None = None
    contract_id: str | None = None
    source_id: str | None = None
    from_date: dt.date | None = None
    to_date: dt.date | None = None


class RevenueScheduleCreate(Checked, kw_only=True):
    """Revenue recognised on a contract for one period (once: the ERP refuses a second line for the period)."""

    contract_id: Ref
    period: Period
    recognized_amount: Decimal
    currency: Currency
    method: RevenueMethod

    ranges = {"recognized_amount": AMOUNT}
