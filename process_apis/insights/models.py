"""Payloads of the insights process API v1 (contracts/process/insights/v1.yaml)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec

from contracts.canonical import Instant


class CurrencyAmount(msgspec.Struct, kw_only=True):
    currency: str
    amount: Decimal


class UtilizationFigures(msgspec.Struct, kw_only=True):
    capacity_hours: Decimal
    planned_hours: Decimal
    actual_hours: Decimal
    billable_hours: Decimal
    planned_utilization_pct: Decimal | None
    actual_utilization_pct: Decimal | None
    billable_utilization_pct: Decimal | None


class WorkerUtilization(UtilizationFigures, kw_only=True):
    worker_id: str
    name: str
    role: str
    business_unit_id: str


class BusinessUnitUtilization(UtilizationFigures, kw_only=True):
    business_unit_id: str
    name: str
    workers: int


class Utilization(msgspec.Struct, kw_only=True):
    from_date: dt.date
    to_date: dt.date
    working_days: int
    workers: list[WorkerUtilization]
    business_units: list[BusinessUnitUtilization]
    totals: UtilizationFigures
    computed_at: Instant


class ProjectBacklog(msgspec.Struct, kw_only=True):
    project_id: str
    project_name: str
    contract_id: str
    billing_model: str
    currency: str
    posted_entries: int
    posted_hours: Decimal
    posted_amount: Decimal
    accepted_milestones: int
    milestone_amount: Decimal
    total_amount: Decimal
    oldest_work_date: dt.date | None
    entries_without_posting: int


class InvoiceReadyBacklog(msgspec.Struct, kw_only=True):
    projects: list[ProjectBacklog]
    totals: list[CurrencyAmount]
    computed_at: Instant


class AgingBucket(msgspec.Struct, kw_only=True):
    bucket: str
    min_days: int
    max_days: int | None
    entries: int
    hours: Decimal
    amounts: list[CurrencyAmount]
    held_entries: int
    held_hours: Decimal


class UnbilledTimeAging(msgspec.Struct, kw_only=True):
    as_of: dt.date
    buckets: list[AgingBucket]
    total_entries: int
    total_hours: Decimal
    totals: list[CurrencyAmount]
    computed_at: Instant


class CountByKey(msgspec.Struct, kw_only=True):
    key: str
    count: int


class ExceptionAgeBucket(msgspec.Struct, kw_only=True):
    bucket: str
    min_days: int
    max_days: int | None
    count: int


class ExceptionsSummary(msgspec.Struct, kw_only=True):
    open_total: int
    by_business_unit: list[CountByKey]
    by_reason: list[CountByKey]
    by_kind: list[CountByKey]
    by_age: list[ExceptionAgeBucket]
    computed_at: Instant


class ProjectMargin(msgspec.Struct, kw_only=True):
    project_id: str
    project_name: str
    contract_id: str
    business_unit_id: str | None
    billing_model: str
    currency: str
    billed_revenue: Decimal
    cost: Decimal | None
    cost_hours: Decimal
    margin: Decimal | None
    margin_pct: Decimal | None
    unconverted_costs: list[CurrencyAmount]
    nte_amount: Decimal | None
    nte_consumed: Decimal | None
    nte_burn_pct: Decimal | None
    # Added in v1.x (additive): the revenue side of the margin and the currencies converted into cost.
    unbilled_revenue: Decimal
    earned_revenue: Decimal
    cost_converted_from: list[str]
    # Added in v1.2 (additive): the planned baseline (assignments to date x rate card and HR cost rates), how far
    # the actual margin is from it, and a one-line explanation when the project needs attention.
    planned_hours: Decimal = Decimal(0)
    planned_revenue: Decimal = Decimal(0)
    planned_cost: Decimal | None = None
    planned_margin: Decimal | None = None
    planned_margin_pct: Decimal | None = None
    margin_variance_pct: Decimal | None = None
    attention: str | None = None
    # Added in v1.3 (additive, issue 19): the project's expenses, in its contract's currency: what the ERP booked
    # as their cost (net postings), and what issued invoices billed for them (with the contract's markup).
    expense_cost: Decimal = Decimal(0)
    billed_expenses: Decimal = Decimal(0)
    # Added in v1.3 (additive): revenue written off on the project (revenue v2), taken off unbilled revenue.
    written_off: Decimal = Decimal(0)
    # Added in v1.5 (additive): expenses inside cost and revenue. cost = time_cost + expense_cost; billable expenses
    # posted and not yet invoiced are in unbilled_revenue at what the invoice will bill (unbilled_expenses), so
    # expense_revenue = billed_expenses + unbilled_expenses is inside earned_revenue.
    time_cost: Decimal | None = None
    unbilled_expenses: Decimal = Decimal(0)
    expense_revenue: Decimal = Decimal(0)


class MarginFigures(msgspec.Struct, kw_only=True):
    """Plan and actual in the reporting currency (USD at the planning rates), summed over projects."""

    projects: int
    planned_revenue: Decimal
    planned_cost: Decimal
    planned_margin: Decimal
    planned_margin_pct: Decimal | None
    earned_revenue: Decimal
    cost: Decimal
    margin: Decimal
    margin_pct: Decimal | None
    # Added in v1.5 (additive): cost = time_cost + expense_cost; expense_revenue is inside earned_revenue.
    time_cost: Decimal = Decimal(0)
    expense_cost: Decimal = Decimal(0)
    expense_revenue: Decimal = Decimal(0)


class BusinessUnitMargin(MarginFigures, kw_only=True):
    business_unit_id: str
    name: str


class ProjectMargins(msgspec.Struct, kw_only=True):
    projects: list[ProjectMargin]
    fx_rates_to_usd: dict[str, Decimal]
    fx_rates_as_of: dt.date
    computed_at: Instant
    # Added in v1.2 (additive): plan against actual per business unit and for the firm, in USD.
    planned_as_of: dt.date | None = None
    reporting_currency: str = "USD"
    business_units: list[BusinessUnitMargin] = msgspec.field(default_factory=list)
    totals: MarginFigures | None = None
