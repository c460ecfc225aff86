"""Billing eligibility: may an approved time entry be billed, for how much, and if not, why not.

Plain, pure functions, one per rule, over a :class:`BillingContext` precomputed once per batch (rates by
role and date, closed periods, assignment intervals, ...), so evaluating is dictionary look-ups and one
decimal multiplication per entry. Nothing here does I/O; :mod:`process_apis.billing.facts` loads the context.

An entry is eligible when every rule holds; otherwise it is held with *every* failing reason.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final, Literal

import msgspec

from contracts.canonical import (
    BILLED_BY_MILESTONE_MODELS,
    COST_ONLY_REASONS,
    REASON_CODES,
    TIME_ENTRY_APPROVED,
    TIME_ENTRY_POSTED,
    TRAVEL_RATE_ROLE,
    BillingModel,
    ContractStatus,
    ProjectStatus,
    ReasonCode,
    TimeEntry,
)

# The codes billing v1 published as a closed enum (``reasons``); a newer code is reported there as the v1 code
# nearest in meaning, and exactly in the open list ``reason_codes``.
_V1_EQUIVALENT: Final[dict[str, ReasonCode]] = {"RATE_CURRENCY_MISMATCH": "NO_RATE_FOR_ROLE",
                                                 "TRAVEL_NOT_BILLABLE": "NOT_BILLABLE"}
V1_REASON_CODES: Final[frozenset[str]] = frozenset(REASON_CODES) - _V1_EQUIVALENT.keys()
# Held for these alone, an entry is not a problem to fix: it is cost, not revenue, or it is billed already.
NOT_REMEDIABLE: Final[frozenset[str]] = COST_ONLY_REASONS | {"ALREADY_POSTED"}

CENT: Final = Decimal("0.01")


class Eligibility(msgspec.Struct, frozen=True, kw_only=True):
    """The verdict on one entry. ``amount`` is known whenever a rate was found, eligible or not."""

    time_entry_id: str
    eligible: bool
    reasons: tuple[ReasonCode, ...] = ()
    amount: Decimal | None = None
    currency: str | None = None
    rate: Decimal | None = None
    role: str | None = None

    @property
    def disposition(self) -> Literal["post", "hold", "cost_only", "already_posted"]:
        """What the time-to-bill workflow does with it: post it, queue it as an exception, or leave it be."""
        if self.eligible:
            return "post"
        if "ALREADY_POSTED" in self.reasons and all(r in NOT_REMEDIABLE for r in self.reasons):
            return "already_posted"
        if all(r in NOT_REMEDIABLE for r in self.reasons):
            return "cost_only"
        return "hold"


@dataclass(frozen=True, slots=True)
class ContractTerms:
    id: str
    status: ContractStatus
    billing_model: BillingModel
    currency: str
    start_date: dt.date
    end_date: dt.date | None
    nte_amount: Decimal | None
    rate_card_id: str | None


@dataclass(frozen=True, slots=True)
class ProjectTerms:
    id: str
    status: ProjectStatus
    contract_id: str
    legal_entity_id: str
    business_unit_id: str | None = None


@dataclass(frozen=True, slots=True)
class RateLine:
    valid_from: dt.date
    valid_to: dt.date | None
    hourly_rate: Decimal


@dataclass(frozen=True, slots=True)
class RateSchedule:
    """One role's rates on one rate card, sorted by start date, searchable by bisection."""

    starts: tuple[dt.date, ...]
    lines: tuple[RateLine, ...]

    @classmethod
    def of(cls, lines: Iterable[RateLine]) -> RateSchedule:
        ordered = tuple(sorted(lines, key=lambda line: line.valid_from))
        return cls(tuple(line.valid_from for line in ordered), ordered)

    def rate_on(self, day: dt.date) -> Decimal | None:
        index = bisect.bisect_right(self.starts, day) - 1
        if index < 0:
            return None
        line = self.lines[index]
        if line.valid_to is not None and day > line.valid_to:
            return None
        return line.hourly_rate


@dataclass(frozen=True, slots=True)
class AssignmentSpan:
    start_date: dt.date
    end_date: dt.date | None
    role: str

    def covers(self, day: dt.date) -> bool:
        return self.start_date <= day and (self.end_date is None or day <= self.end_date)


@dataclass(slots=True)
class BillingContext:
    """Everything the rules need for a batch, indexed for constant-time look-ups."""

    projects: Mapping[str, ProjectTerms] = field(default_factory=dict)
    contracts: Mapping[str, ContractTerms] = field(default_factory=dict)
    # (rate_card_id, role) -> schedule
    rates: Mapping[tuple[str, str], RateSchedule] = field(default_factory=dict)
    # rate_card_id -> the currency its rates are in
    rate_card_currencies: Mapping[str, str] = field(default_factory=dict)
    # (legal_entity_id, year, month) of every closed accounting period
    closed_periods: frozenset[tuple[str, int, int]] = frozenset()
    # (worker_id, project_id) -> confirmed assignment spans
    assignments: Mapping[tuple[str, str], tuple[AssignmentSpan, ...]] = field(default_factory=dict)
    # the worker's role in HR: the fallback when no assignment names one
    worker_roles: Mapping[str, str] = field(default_factory=dict)
    non_billable_tasks: frozenset[str] = frozenset()
    # time entry ids already posted in the ERP or queued for posting
    posted_sources: frozenset[str] = frozenset()
    # contract_id -> amount billed so far (posted + queued), before this batch
    billed: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(slots=True)
class _Facts:
    """What the rules of one entry share, resolved once."""

    project: ProjectTerms | None
    contract: ContractTerms | None
    role: str | None
    assigned: bool


Rule = Callable[[TimeEntry, _Facts, BillingContext], bool]
"""True when the rule fails for the entry."""


def not_approved(entry: TimeEntry, facts: _Facts, context: BillingContext) -> bool:
    return entry.state not in TIME_ENTRY_APPROVED or entry.superseded_by_id is not None


def not_billable(entry: TimeEntry, facts: _Facts, context: BillingContext) -> bool:
    return not entry.billable or (entry.task_id is not None and entry.task_id in context.non_billable_tasks)


def project_not_active(entry: TimeEntry, facts: _Facts, context: BillingContext) -> bool:
    return facts.project is None or facts.project.status != "active"


def contract_not_active(entry: TimeEntry, facts: _Facts, context: BillingContext) -> bool:
    return facts.contract is None or facts.contract.status in ("draft", "closed")


def amendment_pending(entry: TimeEntry, facts: _Facts, context: BillingContext) -> bool:
    return facts.contract is not None and facts.contract.status == "amendment_pending"


def outside_contract_dates(entry: TimeEntry, facts: _Facts, context: BillingContext) -> bool:
    contract = facts.contract
    if contract is None:
        return False  # no term to compare with: CONTRACT_NOT_ACTIVE says it already
    return entry.work_date < contract.start_date or (
        contract.end_date is not None and entry.work_date > contract.end_date)


def billed_by_milestone(entry: TimeEntry, facts: _Facts, context: BillingContext) -> bool:
    return facts.contract is not None and facts.contract.billing_model in BILLED_BY_MILESTONE_MODELS


def period_closed(entry: TimeEntry, facts: _Facts, context: BillingContext) -> bool:
    if facts.project is None:
        return False
    day = entry.work_date
    return (facts.project.legal_entity_id, day.year, day.month) in context.closed_periods


def not_assigned(entry: TimeEntry, facts: _Facts, context: BillingContext) -> bool:
    return not facts.assigned


def already_posted(entry: TimeEntry, facts: _Facts, context: BillingContext) -> bool:
    return entry.state in TIME_ENTRY_POSTED or entry.id in context.posted_sources


def rate_currency_mismatch(entry: TimeEntry, facts: _Facts, context: BillingContext) -> bool:
    """The contract's rate card is in another currency than the contract: its rates cannot price the entry."""
    contract = facts.contract
    if contract is None or contract.rate_card_id is None:
        return False
    card_currency = context.rate_card_currencies.get(contract.rate_card_id)
    return card_currency is not None and card_currency != contract.currency


def travel_not_billable(entry: TimeEntry, facts: _Facts, context: BillingContext) -> bool:
    """Travel time is billed only where the contract's rate card prices it (a ``travel`` line on the work date);
    elsewhere it is cost, not revenue, and not a problem to fix."""
    if entry.activity != "travel":
        return False
    return rate_for(facts.contract, TRAVEL_RATE_ROLE, entry.work_date, context) is None


# The order reasons are reported in (stable, so clients and tests can compare lists).
RULES: Final[tuple[tuple[ReasonCode, Rule], ...]] = (
    ("NOT_APPROVED", not_approved),
    ("NOT_BILLABLE", not_billable),
    ("PROJECT_NOT_ACTIVE", project_not_active),
    ("CONTRACT_NOT_ACTIVE", contract_not_active),
    ("AMENDMENT_PENDING", amendment_pending),
    ("OUTSIDE_CONTRACT_DATES", outside_contract_dates),
    ("PERIOD_CLOSED", period_closed),
    ("NOT_ASSIGNED", not_assigned),
    ("ALREADY_POSTED", already_posted),
    ("BILLED_BY_MILESTONE", billed_by_milestone),
    ("RATE_CURRENCY_MISMATCH", rate_currency_mismatch),
    ("TRAVEL_NOT_BILLABLE", travel_not_billable),
)


def role_on(entry: TimeEntry, context: BillingContext) -> tuple[str | None, bool]:
    """The role the worker bills in on the work date (the confirmed assignment's), and whether one covers it."""
    for span in context.assignments.get((entry.worker_id, entry.project_id), ()):
        if span.covers(entry.work_date):
            return span.role, True
    return context.worker_roles.get(entry.worker_id), False


def rate_for(contract: ContractTerms | None, role: str | None, day: dt.date, context: BillingContext) -> Decimal | None:
    if contract is None or contract.rate_card_id is None or role is None:
        return None
    schedule = context.rates.get((contract.rate_card_id, role))
    return schedule.rate_on(day) if schedule is not None else None


def bill_amount(hours: Decimal, rate: Decimal) -> Decimal:
    """Hours x rate, rounded half-even to cents."""
    return (hours * rate).quantize(CENT, rounding=ROUND_HALF_EVEN)


def time_amount(minutes: int | Decimal, rate: Decimal) -> Decimal:
    """Minutes x hourly rate / 60, rounded half-even to cents once: exact where hours are not (10 minutes at
    150.03 is exactly 25.005 -> 25.00; 0.1666...7 hours x 150.03 would round up to 25.01). Invoicing prices a
    retainer's overage minutes by the same rule."""
    return (Decimal(minutes) * rate / 60).quantize(CENT, rounding=ROUND_HALF_EVEN)


def evaluate(entry: TimeEntry, context: BillingContext, *, billed: Decimal | None = None) -> Eligibility:
    """The verdict on one entry. ``billed`` overrides the contract's billed-so-far (batches thread it through)."""
    project = context.projects.get(entry.project_id)
    contract = context.contracts.get(project.contract_id) if project is not None else None
    role, assigned = role_on(entry, context)
    facts = _Facts(project, contract, role, assigned)
    reasons: list[ReasonCode] = [code for code, rule in RULES if rule(entry, facts, context)]
    amount = rate = None
    currency = contract.currency if contract is not None else None
    if contract is not None and not {"BILLED_BY_MILESTONE", "RATE_CURRENCY_MISMATCH", "TRAVEL_NOT_BILLABLE"} & set(
            reasons):
        # Hours are revenue only here, so only here does a missing rate or the NTE matter. A rate in another
        # currency is never used to price (the entry is held for RATE_CURRENCY_MISMATCH, without an amount).
        # Travel is priced at the rate card's travel line, whatever the traveller's role.
        priced_as = TRAVEL_RATE_ROLE if entry.activity == "travel" else role
        rate = rate_for(contract, priced_as, entry.work_date, context)
        if rate is None:
            reasons.append("NO_RATE_FOR_ROLE")
        else:
            amount = time_amount(entry.minutes or 0, rate)
            if contract.nte_amount is not None:
                so_far = billed if billed is not None else context.billed.get(contract.id, Decimal(0))
                if so_far + amount > contract.nte_amount:
                    reasons.append("NTE_EXCEEDED")
    return Eligibility(time_entry_id=entry.id, eligible=not reasons, reasons=_in_order(reasons), amount=amount,
                       currency=currency, rate=rate, role=role)


def evaluate_batch(entries: Sequence[TimeEntry], context: BillingContext) -> list[Eligibility]:
    """Evaluate many entries; earlier work dates draw on a contract's NTE first. Results keep the input order."""
    running: dict[str, Decimal] = dict(context.billed)
    results: list[Eligibility | None] = [None] * len(entries)
    order = sorted(range(len(entries)), key=lambda i: (entries[i].work_date, entries[i].id))
    projects = context.projects
    for index in order:
        entry = entries[index]
        project = projects.get(entry.project_id)
        contract_id = project.contract_id if project is not None else None
        so_far = running.get(contract_id, Decimal(0)) if contract_id is not None else None
        verdict = evaluate(entry, context, billed=so_far)
        if verdict.eligible and contract_id is not None and verdict.amount is not None:
            running[contract_id] = (so_far or Decimal(0)) + verdict.amount
        results[index] = verdict
    return [r for r in results if r is not None]


_ORDER: Final = {code: index for index, code in enumerate(REASON_CODES)}


def v1_reasons(reasons: Iterable[ReasonCode]) -> list[ReasonCode]:
    """``reasons`` in billing v1's closed set: newer codes as their nearest v1 code, each once, in order."""
    mapped = {code if code in V1_REASON_CODES else _V1_EQUIVALENT[code] for code in reasons}
    return list(_in_order(list(mapped)))


def _in_order(reasons: list[ReasonCode]) -> tuple[ReasonCode, ...]:
    return tuple(sorted(reasons, key=_ORDER.__getitem__))
