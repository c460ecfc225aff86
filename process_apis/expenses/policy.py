"""The expense policy: which categories exist, what each may cost, and what is billed.

Pure functions over one expense, like the billing eligibility rules (process_apis/billing/eligibility.py): a
rule either holds or names its reason code (contracts/canonical.py ``ExpenseReasonCode``). An expense is held
for approval-blocking reasons; ``CATEGORY_NOT_BILLABLE`` alone only makes it cost, never revenue.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from contracts.canonical import ExpenseReasonCode, ProjectStatus


@dataclass(frozen=True, slots=True)
class Category:
    limit: Decimal | None  # the most one expense may cost; None: per diem by country instead
    billable: bool = True


CATEGORIES: Final[dict[str, Category]] = {
    "travel": Category(Decimal("1500.00")),
    "lodging": Category(Decimal("400.00")),
    "meals": Category(None),
    "software": Category(Decimal("250.00")),
    "training": Category(Decimal("2000.00"), billable=False),
}
# Meals per day, by the ISO 3166 country the expense was incurred in; other countries get DEFAULT_PER_DIEM.
PER_DIEM: Final[dict[str, Decimal]] = {
    "US": Decimal("75.00"),
    "GB": Decimal("60.00"),
    "DE": Decimal("56.00"),
    "FR": Decimal("60.00"),
}
DEFAULT_PER_DIEM: Final = Decimal("50.00")
# Above this amount an expense is refused without a receipt reference.
RECEIPT_THRESHOLD: Final = Decimal("75.00")
# Codes that do not stop an approval: the expense is simply not billed.
COST_ONLY: Final[frozenset[ExpenseReasonCode]] = frozenset({"CATEGORY_NOT_BILLABLE"})


@dataclass(frozen=True, slots=True)
class ExpenseFacts:
    category: str
    amount: Decimal
    country: str
    billable: bool
    expense_date: dt.date
    project_status: ProjectStatus


def per_diem(country: str) -> Decimal:
    return PER_DIEM.get(country, DEFAULT_PER_DIEM)


def evaluate(facts: ExpenseFacts) -> tuple[ExpenseReasonCode, ...]:
    """Every failing rule's reason code, in a stable order (empty: compliant)."""
    category = CATEGORIES[facts.category]
    reasons: list[ExpenseReasonCode] = []
    if facts.project_status != "active":
        reasons.append("PROJECT_NOT_ACTIVE")
    if category.limit is not None and facts.amount > category.limit:
        reasons.append("OVER_CATEGORY_LIMIT")
    if category.limit is None and facts.amount > per_diem(facts.country):
        reasons.append("OVER_PER_DIEM")
    if facts.billable and not category.billable:
        reasons.append("CATEGORY_NOT_BILLABLE")
    return tuple(reasons)


def holds(reasons: tuple[ExpenseReasonCode, ...]) -> bool:
    return any(r not in COST_ONLY for r in reasons)
