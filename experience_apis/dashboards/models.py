"""Payloads of the dashboards API v1 (contracts/experience/dashboards/v1.yaml): one panel each, page-shaped.

The figures are the process tier's (process/insights); these Structs only pick, order and label them.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec


class CurrencyAmount(msgspec.Struct, kw_only=True):
    currency: str
    amount: Decimal


class UtilizationRow(msgspec.Struct, kw_only=True):
    key: str
    label: str
    business_unit_id: str
    workers: int
    capacity_hours: Decimal
    planned_hours: Decimal
    actual_hours: Decimal
    billable_hours: Decimal
    planned_pct: Decimal | None
    actual_pct: Decimal | None
    billable_pct: Decimal | None


class UtilizationPanel(msgspec.Struct, kw_only=True):
    from_date: dt.date
    to_date: dt.date
    working_days: int
    business_units: list[UtilizationRow]
    workers: list[UtilizationRow]
    totals: UtilizationRow


class BacklogRow(msgspec.Struct, kw_only=True):
    project_id: str
    project_name: str
    billing_model: str
    currency: str
    posted_entries: int
    posted_hours: Decimal
    posted_amount: Decimal
    accepted_milestones: int
    milestone_amount: Decimal
    total_amount: Decimal
    oldest_work_date: dt.date | None


class BacklogPanel(msgspec.Struct, kw_only=True):
    projects: list[BacklogRow]
    totals: list[CurrencyAmount]


class AgingRow(msgspec.Struct, kw_only=True):
    bucket: str
    label: str
    entries: int
    hours: Decimal
    held_entries: int
    amounts: list[CurrencyAmount]


class AgingPanel(msgspec.Struct, kw_only=True):
    as_of: dt.date
    buckets: list[AgingRow]
    total_entries: int
    total_hours: Decimal
    totals: list[CurrencyAmount]


class CountRow(msgspec.Struct, kw_only=True):
    key: str
    label: str
    count: int


class ExceptionsPanel(msgspec.Struct, kw_only=True):
    open_total: int
    by_business_unit: list[CountRow]
    by_reason: list[CountRow]
    by_age: list[CountRow]
    # Invoice drafts waiting for their region's tax service (reason TAX_SERVICE_UNAVAILABLE, README "Tax and
    # e-invoicing"): they are drafted by themselves once it answers.
    tax_holds: int = 0


class MarginRow(msgspec.Struct, kw_only=True):
    project_id: str
    project_name: str
    billing_model: str
    currency: str
    billed_revenue: Decimal
    cost: Decimal | None
    margin: Decimal | None
    margin_pct: Decimal | None
    nte_amount: Decimal | None
    nte_consumed: Decimal | None
    nte_burn_pct: Decimal | None
    unbilled_revenue: Decimal
    earned_revenue: Decimal
    cost_converted_from: list[str]
    # Added in v1.x (additive): the planned baseline beside the actuals, and why a project needs attention.
    business_unit_id: str | None = None
    planned_hours: Decimal = Decimal(0)
    planned_revenue: Decimal = Decimal(0)
    planned_cost: Decimal | None = None
    planned_margin: Decimal | None = None
    planned_margin_pct: Decimal | None = None
    margin_variance_pct: Decimal | None = None
    attention: str | None = None
    # Added in v1.3 (additive, issue 19): the project's expenses, booked cost and billed (inside billed_revenue).
    expense_cost: Decimal = Decimal(0)
    billed_expenses: Decimal = Decimal(0)
    # Added in v1.4 (additive): cost = time_cost + expense_cost; expense_revenue = billed_expenses +
    # unbilled_expenses, inside earned_revenue.
    time_cost: Decimal | None = None
    unbilled_expenses: Decimal = Decimal(0)
    expense_revenue: Decimal = Decimal(0)


class MarginFigures(msgspec.Struct, kw_only=True):
    projects: int
    planned_revenue: Decimal
    planned_cost: Decimal
    planned_margin: Decimal
    planned_margin_pct: Decimal | None
    earned_revenue: Decimal
    cost: Decimal
    margin: Decimal
    margin_pct: Decimal | None
    # Added in v1.4 (additive): cost = time_cost + expense_cost; expense_revenue is inside earned_revenue.
    time_cost: Decimal = Decimal(0)
    expense_cost: Decimal = Decimal(0)
    expense_revenue: Decimal = Decimal(0)


class BusinessUnitMarginRow(MarginFigures, kw_only=True):
    business_unit_id: str
    label: str


class MarginsPanel(msgspec.Struct, kw_only=True):
    projects: list[MarginRow]
    fx_rates_to_usd: dict[str, Decimal]
    fx_rates_as_of: dt.date
    # Added in v1.x (additive): plan against actual per business unit and in total, in reporting_currency.
    planned_as_of: dt.date | None = None
    reporting_currency: str = "USD"
    business_units: list[BusinessUnitMarginRow] = msgspec.field(default_factory=list)
    totals: MarginFigures | None = None
