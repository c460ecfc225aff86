"""The canonical model: one meaning for each entity, shared by every tier.

Rules of the model:
- ids are canonical strings with a type prefix (``cus_``, ``ctr_``, ``prj_``, ...) minted by the system tier;
  ``external_ids`` cross-references each system's own id (``{"crm": "001Ax...", "erp": "10023"}``).
- money is ``Decimal`` (encoded as a JSON string, never a float) beside an ISO 4217 ``currency``; every decimal on
  the wire is fixed point, never an exponent: :func:`decimal_text` writes it, :func:`plain_decimal` trims it.
- instants are timezone-aware (UTC on the wire); calendar days (work dates, periods) are plain dates.
- field names are snake_case; enums are lower snake_case strings.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Final, Generic, Literal, TypeVar, get_args

import msgspec

T = TypeVar("T")

Instant = Annotated[dt.datetime, msgspec.Meta(tz=True)]
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$", examples=["EUR"])]
Period = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-10"])]
Money = Decimal
ExternalIds = dict[str, str]

BillingModel = Literal["time_and_materials", "fixed_fee", "milestone", "retainer"]
ContractStatus = Literal["draft", "active", "amendment_pending", "closed"]
ProjectStatus = Literal["planned", "active", "on_hold", "closed"]
WorkerStatus = Literal["active", "leave", "terminated"]
# Why a worker is absent on a leave HR recorded (README.md, "HR changes"): the days are off their capacity whatever
# the type.
LeaveType = Literal["vacation", "sick", "parental", "personal", "other"]
AssignmentStatus = Literal["proposed", "confirmed", "ended"]
TimeEntryState = Literal["draft", "submitted", "approved", "rejected", "posted", "invoiced"]
# What the time was spent on: delivering the work, or travelling for it. Travel is billed only where the contract's
# rate card prices it (a line for ``TRAVEL_RATE_ROLE``); elsewhere it is cost (``TRAVEL_NOT_BILLABLE``).
TimeActivity = Literal["work", "travel"]
TRAVEL_RATE_ROLE: Final = "travel"
ExpenseState = TimeEntryState
MilestoneState = Literal["pending", "completed", "accepted", "invoiced"]
InvoiceState = Literal["draft", "posted", "paid", "void"]
PeriodStatus = Literal["open", "closed"]
OpportunityStage = Literal["prospecting", "qualification", "proposal", "negotiation", "closed_won", "closed_lost"]
RevenueMethod = Literal["as_billed", "milestone", "percent_complete"]
InvoiceLineSource = Literal["time_entry", "expense", "milestone", "fixed_fee", "retainer"]
# Why the expense policy holds an expense or bills it as cost only (README, "Expenses").
ExpenseReasonCode = Literal["OVER_CATEGORY_LIMIT", "OVER_PER_DIEM", "CATEGORY_NOT_BILLABLE", "PROJECT_NOT_ACTIVE"]
# What a retainer's hours allowance does when a period leaves some unused (README, "Billing policies").
UnusedHoursRule = Literal["expire", "carry_forward"]
# How a fixed fee's revenue is recognised (README.md, "Revenue and contract changes"): evenly over the term, or by
# percent complete, cost to cost (cost of approved time at HR cost rates over the budgeted cost).
FixedFeeRecognition = Literal["straight_line", "percent_complete"]

# Allowed time entry transitions; corrections of approved/posted time create a new version instead.
TIME_ENTRY_TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"submitted"}),
    "submitted": frozenset({"approved", "rejected", "draft"}),
    "rejected": frozenset({"draft", "submitted"}),
    "approved": frozenset({"posted"}),
    "posted": frozenset({"invoiced"}),
    "invoiced": frozenset(),
}

# The lifecycle's named stages: every tier says "approved or later" with these names, never a respelled set.
TIME_ENTRY_SUBMITTABLE: frozenset[str] = frozenset(
    state for state, targets in TIME_ENTRY_TRANSITIONS.items() if "submitted" in targets)  # draft, rejected
TIME_ENTRY_POSTED: frozenset[str] = frozenset({"posted", "invoiced"})  # the ERP has it
# Approved time: it counts as cost, and only a correction's new version changes it.
TIME_ENTRY_APPROVED: frozenset[str] = frozenset({"approved"}) | TIME_ENTRY_POSTED
TIME_ENTRY_RECORDED: frozenset[str] = frozenset({"submitted"}) | TIME_ENTRY_APPROVED  # what a worker has handed in

# An invoice the customer has been sent (a draft is not issued; a void one is nothing).
INVOICE_ISSUED: frozenset[str] = frozenset({"posted", "paid"})
# Billing models whose time is billed by milestone or fixed fee, never hour by hour.
BILLED_BY_MILESTONE_MODELS: frozenset[str] = frozenset({"fixed_fee", "milestone"})

# Why an approved entry is not billable (billing eligibility, contracts/process/billing).
ReasonCode = Literal[
    "NOT_APPROVED", "NOT_BILLABLE", "PROJECT_NOT_ACTIVE", "CONTRACT_NOT_ACTIVE", "AMENDMENT_PENDING",
    "OUTSIDE_CONTRACT_DATES", "NO_RATE_FOR_ROLE", "PERIOD_CLOSED", "NTE_EXCEEDED", "NOT_ASSIGNED",
    "ALREADY_POSTED", "BILLED_BY_MILESTONE", "RATE_CURRENCY_MISMATCH", "TRAVEL_NOT_BILLABLE",
]
REASON_CODES: tuple[ReasonCode, ...] = get_args(ReasonCode)
# Held for these alone, an entry's hours are cost, not revenue.
COST_ONLY_REASONS: frozenset[ReasonCode] = frozenset({"NOT_BILLABLE", "BILLED_BY_MILESTONE", "TRAVEL_NOT_BILLABLE"})

MILESTONE_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"completed"}),
    "completed": frozenset({"accepted"}),
    "accepted": frozenset({"invoiced"}),
    "invoiced": frozenset(),
}
ASSIGNMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    "proposed": frozenset({"confirmed", "ended"}),
    "confirmed": frozenset({"ended"}),
    "ended": frozenset(),
}
PROJECT_TRANSITIONS: dict[str, frozenset[str]] = {
    "planned": frozenset({"active", "on_hold", "closed"}),
    "active": frozenset({"on_hold", "closed"}),
    "on_hold": frozenset({"active", "closed"}),
    "closed": frozenset(),
}


def decimal_text(value: Decimal) -> str:
    """The one wire form of a decimal: fixed point, never an exponent ("1E+1" is "10"), its own scale kept
    ("1360.00" stays). Every tier writes decimals through this (msgspec writes ``str(value)``, which turns a
    normalized 10 into "1E+1", so a Decimal that crosses an API is made by :func:`plain_decimal` or written here)."""
    if not value.is_finite():
        raise ValueError(f"{value} is not a finite decimal")
    text = format(value, "f")
    return text[1:] if text.startswith("-") and not value else text  # "-0" is "0"


def plain_decimal(value: Decimal) -> Decimal:
    """``value`` without trailing zeros (8.00 -> 8, 7.50 -> 7.5) as a Decimal whose ``str`` is its
    :func:`decimal_text` (true for every magnitude from 0.000001 up, which covers hours and money)."""
    return Decimal(decimal_text(value.normalize()))


MINUTES_TOLERANCE: Final = Decimal("1e-20")


def hours_of_minutes(minutes: int) -> Decimal:
    """Decimal hours for whole minutes: exact when minutes/60 terminates (450 -> 7.5), else to 28 digits
    (10 -> 0.1666...7). Minutes are authoritative; these hours are for readers of hours (v1)."""
    return plain_decimal(Decimal(minutes) / 60)


# The precision rule for time (one place): minutes are authoritative and money is computed from them exactly
# (minutes x hourly rate / 60, rounded half-even to the cent once). Hours shown to a person are minutes / 60
# rounded half-even to HOURS_PLACES decimals: 20 minutes read "0.33", never "0.3333333333333333333333333333".
HOURS_QUANTUM: Final = Decimal("0.01")


def display_hours(minutes: int) -> Decimal:
    """Hours for a reader of hours: ``minutes / 60`` rounded half-even to the hundredth, trailing zeros trimmed
    (450 -> 7.5, 20 -> 0.33, 10 -> 0.17). Never fed back as minutes (use the minutes) and never priced."""
    return plain_decimal((Decimal(minutes) / 60).quantize(HOURS_QUANTUM, rounding=ROUND_HALF_EVEN))


def whole_minutes(hours: Decimal) -> int | None:
    """The whole minutes ``hours`` names, or None when it names none. Hours written by :func:`hours_of_minutes`
    carry 28 digits, so they come back to their minutes within ``MINUTES_TOLERANCE`` (10 -> 0.16...67 -> 10)."""
    if not hours.is_finite():
        return None
    minutes = hours * 60
    whole = minutes.to_integral_value(rounding=ROUND_HALF_EVEN)
    return int(whole) if abs(minutes - whole) <= MINUTES_TOLERANCE else None


def role_id(name: str) -> str:
    """The canonical role id: the role's snake_case name (``data_scientist``), one vocabulary for HR (worker
    roles and the role list), PSA (assignments) and CRM (rate card lines). Each system spells roles its own way
    (HR job profile ``JP-DATA_SCIENTIST``, PSA and CRM ``Data Scientist``); its adapter strips the vendor's
    decoration and maps the name here."""
    return "_".join(name.strip().lower().replace("-", " ").replace("_", " ").split())


class Entity(msgspec.Struct, kw_only=True, omit_defaults=False):
    id: str
    external_ids: ExternalIds = {}


class Page(msgspec.Struct, Generic[T], kw_only=True):
    """A page of a list; pass ``next_cursor`` back as ``cursor`` for the next one (null: no more)."""

    items: list[T]
    next_cursor: str | None = None


class LegalEntity(Entity, kw_only=True):
    name: str
    country: str
    functional_currency: Currency
    # Additive (issue 19): the seller's VAT registration and e-invoicing network id, printed on its invoices.
    vat_number: str | None = None
    einvoice_endpoint_id: str | None = None
    # A tax registration that is not a VAT number (a US federal EIN), printed where there is no VAT number.
    tax_registration_id: str | None = None


class BusinessUnit(Entity, kw_only=True):
    name: str


class CostCenter(Entity, kw_only=True):
    name: str
    business_unit_id: str


class Role(Entity, kw_only=True):
    name: str


class PostalAddress(msgspec.Struct, kw_only=True):
    """Where a customer is billed (and, for US sales tax, where services are delivered: the ship-to state)."""

    country: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$", examples=["FR"])]
    line1: str = ""
    city: str = ""
    postal_code: str = ""
    # ISO 3166-2 subdivision code without the country (US state "NY"); empty where none applies.
    region: str = ""


class Customer(Entity, kw_only=True):
    name: str
    billing_currency: Currency
    legal_entity_id: str
    tax_jurisdiction: str
    # Additive (issue 19): the billing address and the VAT number decide the tax and the e-invoice format.
    address: PostalAddress | None = None
    vat_number: str | None = None
    # Where e-invoices reach the customer on the e-invoicing network: "scheme:identifier" (Peppol EAS codes).
    einvoice_endpoint_id: str | None = None


class RateCardLine(msgspec.Struct, kw_only=True):
    role: str
    hourly_rate: Money
    valid_from: dt.date
    valid_to: dt.date | None = None


class RateCard(Entity, kw_only=True):
    name: str
    currency: Currency
    lines: list[RateCardLine]


class BillingProfile(msgspec.Struct, kw_only=True):
    invoice_frequency: Literal["monthly", "milestone", "schedule"] = "monthly"
    payment_terms_days: int = 30
    # Deprecated: a retainer's per-period fee, the same as ``BillingSchedule.period_fee`` (null otherwise).
    # A fixed fee is billed by ``BillingSchedule.lines``, never by a per-period amount.
    scheduled_amount: Money | None = None


class ScheduleLine(msgspec.Struct, kw_only=True):
    """One instalment of a fixed fee: ``amount`` is billed in ``period`` (or in the period of ``date``)."""

    line_no: int
    amount: Money
    period: Period | None = None
    date: dt.date | None = None
    # The share of the work, in percent, complete once this instalment is billed (cumulative; informative).
    percent_complete: Decimal | None = None
    description: str = ""

    @property
    def billing_period(self) -> str | None:
        if self.period is not None:
            return self.period
        return f"{self.date:%Y-%m}" if self.date is not None else None


class RevenueTerms(msgspec.Struct, kw_only=True):
    """A fixed fee's recognition method; ``budget_cost`` (contract currency) is what percent complete measures the
    cost of approved time against, and is required for it."""

    fixed_fee_method: FixedFeeRecognition = "straight_line"
    budget_cost: Money | None = None


class BillingSchedule(msgspec.Struct, kw_only=True):
    """What invoicing may bill, by billing model. Fixed fee: ``lines``. Retainer: ``period_fee`` each period of
    the term, covering up to ``hours_allowance`` hours (time beyond it is billed as overage at the rate card);
    ``unused_hours`` says what becomes of hours a period leaves unused. Time and materials: hours x rate card,
    capped by the NTE. Milestone: each milestone's amount, in the period it is accepted."""

    lines: list[ScheduleLine] = []
    period_fee: Money | None = None
    hours_allowance: Decimal | None = None
    unused_hours: UnusedHoursRule = "expire"


class Contract(Entity, kw_only=True):
    customer_id: str
    legal_entity_id: str
    name: str
    currency: Currency
    billing_model: BillingModel
    nte_amount: Money | None = None
    start_date: dt.date
    end_date: dt.date | None = None
    status: ContractStatus
    version: int = 1
    rate_card_id: str | None = None
    billing_profile: BillingProfile = msgspec.field(default_factory=BillingProfile)
    # The most the contract may ever bill, in its currency (null: no cap beyond the NTE).
    total_value: Money | None = None
    billing_schedule: BillingSchedule = msgspec.field(default_factory=BillingSchedule)
    # Additive (issue 19): the percent (0 to 100) added to the cost of a billable expense when it is invoiced;
    # null bills expenses at cost (process_apis/expenses/billing.py rounds each line once).
    expense_markup_percent: Decimal | None = None
    # Additive (issue 20): how its revenue is recognised; only a fixed fee has a choice.
    revenue_terms: RevenueTerms = msgspec.field(default_factory=RevenueTerms)


class Task(Entity, kw_only=True):
    project_id: str
    name: str
    billable: bool = True


class Project(Entity, kw_only=True):
    name: str
    contract_id: str
    customer_id: str
    legal_entity_id: str
    status: ProjectStatus
    billing_model: BillingModel
    budget_hours: Decimal | None = None
    manager_id: str | None = None
    business_unit_id: str | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None


class CostRate(msgspec.Struct, kw_only=True):
    hourly_cost: Money
    currency: Currency
    valid_from: dt.date
    valid_to: dt.date | None = None


class WorkerLeave(msgspec.Struct, kw_only=True):
    """A leave of absence HR recorded: the worker is away from ``first_day`` to ``last_day``, both inclusive."""

    first_day: dt.date
    last_day: dt.date
    leave_type: LeaveType


class Worker(Entity, kw_only=True):
    name: str
    email: str
    role: str
    status: WorkerStatus
    business_unit_id: str
    cost_center_id: str
    legal_entity_id: str
    capacity_hours_per_week: Decimal = Decimal(40)
    cost_rates: list[CostRate] = []
    manager_id: str | None = None
    # The last day worked (HR's termination date): no time after it. Null while employed with no end in sight.
    termination_date: dt.date | None = None
    leaves: list[WorkerLeave] = []


class Assignment(Entity, kw_only=True):
    worker_id: str
    project_id: str
    role: str
    planned_hours_per_week: Decimal
    start_date: dt.date
    end_date: dt.date | None = None
    status: AssignmentStatus


class TimeEntry(Entity, kw_only=True):
    worker_id: str
    project_id: str
    task_id: str | None = None
    work_date: dt.date
    # Derived from ``minutes`` (:func:`hours_of_minutes`), kept for readers of hours (mobile v1, reports).
    hours: Decimal
    billable: bool = True
    notes: str = ""
    state: TimeEntryState
    version: int = 1
    # A correction is a new entry that supersedes an earlier one; history is kept, never overwritten.
    supersedes_id: str | None = None
    superseded_by_id: str | None = None
    submitted_at: Instant | None = None
    approved_at: Instant | None = None
    approved_by: str | None = None
    rejection_reason: str | None = None
    updated_at: Instant | None = None
    # The offline client's own id for the entry: a re-sent entry with the same client_ref is the same entry.
    client_ref: str | None = None
    # Authoritative: whole minutes worked. Left out (older writers), it is read from ``hours``.
    minutes: int | None = None
    activity: TimeActivity = "work"

    def __post_init__(self) -> None:
        if self.minutes is None and self.hours.is_finite():
            self.minutes = int((self.hours * 60).to_integral_value(rounding=ROUND_HALF_EVEN))
        if self.minutes is not None:
            self.hours = hours_of_minutes(self.minutes)


class Expense(Entity, kw_only=True):
    worker_id: str
    project_id: str
    expense_date: dt.date
    amount: Money
    currency: Currency
    category: str
    billable: bool = True
    receipt_ref: str | None = None
    state: ExpenseState
    # Additive (issue 19): the id the expense was captured under (the expenses process API's ``exp_c...``), unique
    # in the PSA: the key its write is idempotent by, and what reconciliation matches ERP postings with.
    source_ref: str | None = None


class Milestone(Entity, kw_only=True):
    project_id: str
    name: str
    amount: Money
    currency: Currency
    due_date: dt.date
    state: MilestoneState
    # The day the customer accepted it (null until then, or where the PSA does not record it).
    accepted_on: dt.date | None = None


class InvoiceLine(msgspec.Struct, kw_only=True):
    description: str
    # Time lines: hours for the reader, :func:`display_hours` of ``minutes`` (never priced, never summed).
    quantity: Decimal
    unit_price: Money
    amount: Money
    source_type: InvoiceLineSource
    source_ids: list[str] = []
    # Additive (issue 18): a time line's whole minutes, authoritative (null on other lines and older invoices).
    minutes: int | None = None


TaxCategory = Literal["standard", "zero_rated", "exempt", "reverse_charge", "outside_scope"]


class TaxLine(msgspec.Struct, kw_only=True):
    """One group of an invoice's tax breakdown: what is taxed at one rate and category, and the tax on it
    (rounded half-even to the currency's minor unit once per group, as EN 16931 computes a VAT breakdown)."""

    jurisdiction: str
    category: TaxCategory
    rate_percent: Decimal
    taxable_amount: Money
    tax_amount: Money
    # Why a zero tax (reverse charge, exempt service): printed on the invoice, required by EN 16931 (BT-120).
    exemption_reason: str | None = None


class Invoice(Entity, kw_only=True):
    customer_id: str
    contract_id: str
    legal_entity_id: str
    currency: Currency
    period: Period | None = None
    lines: list[InvoiceLine]
    subtotal: Money
    tax: Money
    total: Money
    state: InvoiceState
    issue_date: dt.date | None = None
    # Additive (issue 19): the breakdown the tax system API computed, as the ERP booked it (empty: the ERP's own).
    tax_lines: list[TaxLine] = []


class CreditNote(Entity, kw_only=True):
    """A credit note against a posted invoice: the lines it takes back, as positive amounts credited (corrected
    time is credited in full and billed again at its new hours)."""

    invoice_id: str
    currency: Currency
    lines: list[InvoiceLine]
    subtotal: Money
    tax: Money
    total: Money
    issue_date: dt.date | None = None


class RevenueSchedule(Entity, kw_only=True):
    contract_id: str
    period: Period
    recognized_amount: Money
    currency: Currency
    method: RevenueMethod


class AccountingPeriod(msgspec.Struct, kw_only=True):
    legal_entity_id: str
    period: Period
    status: PeriodStatus


class ProjectDimension(Entity, kw_only=True):
    """The ERP's financial dimension for a project: what postings and invoices are booked against."""

    project_id: str
    legal_entity_id: str
    code: str


class Posting(Entity, kw_only=True):
    """A billable item booked in the ERP; ``source_id`` (the time entry) is posted at most once."""

    source_type: InvoiceLineSource
    source_id: str
    project_id: str
    contract_id: str
    legal_entity_id: str
    work_date: dt.date
    # Time: hours for the reader, :func:`display_hours` of ``minutes`` (a reversal's negative); never priced.
    quantity: Decimal
    amount: Money
    currency: Currency
    posted_at: Instant | None = None
    # A reversal (a correction took the source back) is the negative of the posting it names, dated when it was
    # booked; the source's net posting is the sum of both.
    reverses_posting_id: str | None = None
    # Additive (issue 18): time's whole minutes, authoritative (negative on a reversal). Left out by an ERP that
    # books hours only, it is read from ``quantity`` when that names whole minutes (:func:`whole_minutes`).
    minutes: int | None = None

    def __post_init__(self) -> None:
        if self.minutes is None and self.source_type == "time_entry":
            self.minutes = whole_minutes(self.quantity)

    @property
    def posted_minutes(self) -> Decimal:
        """The minutes this posting books: ``minutes``, else its hours x 60 (an ERP that books neither exactly)."""
        return Decimal(self.minutes) if self.minutes is not None else self.quantity * 60


class Opportunity(Entity, kw_only=True):
    account_id: str
    account_name: str
    name: str
    stage: OpportunityStage
    amount: Money
    currency: Currency
    close_date: dt.date | None = None
    billing_model: BillingModel | None = None
    legal_entity_id: str | None = None
    rate_card_id: str | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    nte_amount: Money | None = None
    signed_contract_ref: str | None = None
    # Written back by the process tier: the project provisioned for the won deal, the latest invoice's state.
    provisioned_project_id: str | None = None
    invoice_status: InvoiceState | None = None
