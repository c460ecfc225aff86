"""Calendar rules of billing terms, shared by invoicing and reconciliation: periods and when a milestone bills."""

from __future__ import annotations

import calendar
import datetime as dt

from contracts.canonical import Contract, Milestone


def period_bounds(period: str) -> tuple[dt.date, dt.date]:
    year, month = int(period[:4]), int(period[5:])
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def period_of(day: dt.date) -> str:
    return f"{day:%Y-%m}"


def previous_period(period: str) -> str:
    index = int(period[:4]) * 12 + int(period[5:]) - 2
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def next_period(period: str) -> str:
    index = int(period[:4]) * 12 + int(period[5:])
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def in_term(period: str, contract: Contract) -> bool:
    """Whether the term touches the period (compared as text: any period the API admits, year 0000 included)."""
    return period_of(contract.start_date) <= period and (
        contract.end_date is None or period <= period_of(contract.end_date))


def milestone_period(milestone: Milestone, contract: Contract) -> str:
    """The period a milestone is billed in: the one it was accepted in (its due date where the PSA does not
    record acceptance), kept inside the contract's term (never before it starts, never after it ends)."""
    period = max(period_of(milestone.accepted_on or milestone.due_date), period_of(contract.start_date))
    return min(period, period_of(contract.end_date)) if contract.end_date else period
