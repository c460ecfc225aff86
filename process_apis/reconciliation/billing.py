"""Reconciliation of money, per contract: a table of pure checks over the contract's facts.

Each check looks at :class:`ContractFacts` (gathered once: the contract, its projects' time entries in every
version, milestones, ERP postings and invoices) and returns the differences it finds, each with its amounts and
the action to take. Only issued invoices (posted or paid) count as billed: a draft is not an invoice yet.
A new kind of difference is a new check in :data:`CHECKS` (corrections add theirs beside
``superseded_entry_posted``); nothing else moves.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Final

from contracts.canonical import INVOICE_ISSUED, Contract, Invoice, Milestone, Posting, TimeEntry
from process_apis.invoicing.service import time_figures
from process_apis.invoicing.terms import milestone_period, period_of
from process_apis.reconciliation.models import BillingDifference

ZERO: Final = Decimal(0)


def within(day: dt.date, from_date: dt.date | None, to_date: dt.date | None) -> bool:
    return (from_date is None or day >= from_date) and (to_date is None or day <= to_date)


@dataclass
class ContractFacts:
    contract: Contract
    entries: list[TimeEntry]
    postings: list[Posting]
    invoices: list[Invoice]
    milestones: list[Milestone] = field(default_factory=list)
    # the contract's billable expenses (process_apis/expenses): posted ones are billed like time
    billable_expenses: frozenset[str] = frozenset()
    # Work dates the report covers (entries and postings outside are not looked at).
    from_date: dt.date | None = None
    to_date: dt.date | None = None

    def in_window(self, day: dt.date) -> bool:
        return within(day, self.from_date, self.to_date)

    @cached_property
    def issued(self) -> list[Invoice]:
        return [i for i in self.invoices if i.state in INVOICE_ISSUED]

    @cached_property
    def drafts(self) -> list[Invoice]:
        return [i for i in self.invoices if i.state == "draft"]

    @cached_property
    def issued_periods(self) -> set[str]:
        return {i.period for i in self.issued if i.period}

    @cached_property
    def billed_on(self) -> dict[tuple[str, str], list[str]]:
        """(source_type, source_id) -> the issued invoices that bill it."""
        found: dict[tuple[str, str], list[str]] = defaultdict(list)
        for invoice in self.issued:
            for source in sorted({(line.source_type, s) for line in invoice.lines for s in line.source_ids}):
                found[source].append(invoice.id)
        return found

    @cached_property
    def drafted_on(self) -> dict[tuple[str, str], str]:
        return {(line.source_type, s): invoice.id for invoice in self.drafts for line in invoice.lines
                for s in line.source_ids}

    @cached_property
    def postings_of(self) -> dict[str, list[Posting]]:
        found: dict[str, list[Posting]] = defaultdict(list)
        for posting in self.postings:
            if posting.source_type == "time_entry":
                found[posting.source_id].append(posting)
        return found

    def outside_term(self, day: dt.date) -> bool:
        return day < self.contract.start_date or (self.contract.end_date is not None and day > self.contract.end_date)

    def pending(self, source: tuple[str, str]) -> str:
        """What to do for an unbilled source: post the draft holding it, else draft its period again."""
        draft = self.drafted_on.get(source)
        return f"post draft invoice {draft}" if draft else "draft the contract's period again"


Check = Callable[[ContractFacts], list[BillingDifference]]


def posted_not_invoiced(facts: ContractFacts) -> list[BillingDifference]:
    """Posted (current) time of a period that has an issued invoice, on no issued invoice: late time that the
    period's supplementary invoice bills. Retainer time is billed by the fee, so it counts when on a line."""
    found = []
    for entry in facts.entries:
        if entry.state != "posted" or entry.superseded_by_id is not None or not entry.billable:
            continue
        period = period_of(entry.work_date)
        if not facts.in_window(entry.work_date) or period not in facts.issued_periods:
            continue
        if ("time_entry", entry.id) in facts.billed_on:
            continue
        postings = facts.postings_of.get(entry.id, [])
        found.append(BillingDifference(
            type="posted_not_invoiced", project_id=entry.project_id, period=period, time_entry_id=entry.id,
            posting_ids=[p.id for p in postings], hours=entry.hours,
            amount=sum((p.amount for p in postings), ZERO), currency=facts.contract.currency,
            action=f"{facts.pending(('time_entry', entry.id))}: a supplementary invoice for {period} bills it",
            detail=f"posted after the {period} invoice was issued and on no issued invoice"))
    return found


def milestone_billed_twice(facts: ContractFacts) -> list[BillingDifference]:
    found = []
    for milestone in facts.milestones:
        invoices = facts.billed_on.get(("milestone", milestone.id), [])
        if len(invoices) > 1:
            billed = sum((line.amount for i in facts.issued for line in i.lines
                          if line.source_type == "milestone" and milestone.id in line.source_ids), ZERO)
            found.append(BillingDifference(
                type="milestone_billed_twice", project_id=milestone.project_id,
                period=milestone_period(milestone, facts.contract), milestone_id=milestone.id, invoice_ids=invoices,
                amount=billed, expected_amount=milestone.amount,
                currency=milestone.currency,
                action=f"credit the milestone on {len(invoices) - 1} of the invoices {', '.join(invoices)}",
                detail=f"billed on {len(invoices)} issued invoices"))
    return found


def milestone_not_billed(facts: ContractFacts) -> list[BillingDifference]:
    """An accepted milestone whose period was invoiced without it, or one the PSA says is invoiced that no
    issued invoice bills."""
    found = []
    for milestone in facts.milestones:
        if milestone.state not in ("accepted", "invoiced") or ("milestone", milestone.id) in facts.billed_on:
            continue
        period = milestone_period(milestone, facts.contract)
        if milestone.state == "invoiced":
            action, detail = ("find the invoice that billed it, or bill it: "
                              f"{facts.pending(('milestone', milestone.id))} ({period})",
                              "the PSA says invoiced; no issued invoice bills it")
        elif period in facts.issued_periods:
            action, detail = (f"{facts.pending(('milestone', milestone.id))}: a supplementary invoice for "
                              f"{period} bills it", f"accepted in {period}; that period's invoice left it out")
        else:
            continue
        found.append(BillingDifference(
            type="milestone_not_billed", project_id=milestone.project_id, period=period, milestone_id=milestone.id,
            amount=milestone.amount, currency=milestone.currency, action=action, detail=detail))
    return found


def contract_value_exceeded(facts: ContractFacts) -> list[BillingDifference]:
    value = facts.contract.total_value
    billed = sum((i.subtotal for i in facts.issued), ZERO)
    if value is None or billed <= value:
        return []
    return [BillingDifference(
        type="contract_value_exceeded", invoice_ids=[i.id for i in facts.issued], amount=billed,
        expected_amount=value, currency=facts.contract.currency,
        action=f"credit {billed - value} {facts.contract.currency}, or amend the contract's value",
        detail=f"issued invoices add up to {billed}, the contract is worth {value}")]


def billed_outside_term(facts: ContractFacts) -> list[BillingDifference]:
    contract = facts.contract
    first, last = period_of(contract.start_date), period_of(contract.end_date) if contract.end_date else None
    return [BillingDifference(
        type="billed_outside_term", period=invoice.period, invoice_ids=[invoice.id], amount=invoice.subtotal,
        expected_amount=ZERO, currency=invoice.currency, action=f"credit invoice {invoice.id}",
        detail=f"bills {invoice.period}, outside the term ({contract.start_date} to {contract.end_date or 'open'})")
        for invoice in facts.issued
        if invoice.period and (invoice.period < first or (last is not None and invoice.period > last))]


def posted_outside_term(facts: ContractFacts) -> list[BillingDifference]:
    return [BillingDifference(
        type="posted_outside_term", project_id=posting.project_id, period=period_of(posting.work_date),
        time_entry_id=posting.source_id if posting.source_type == "time_entry" else None,
        posting_ids=[posting.id], hours=posting.quantity, amount=posting.amount, expected_amount=ZERO,
        currency=posting.currency, action=f"reverse posting {posting.id}",
        detail=f"booked for {posting.work_date}, outside the term")
        for posting in facts.postings if facts.in_window(posting.work_date) and facts.outside_term(posting.work_date)]


def superseded_entry_posted(facts: ContractFacts) -> list[BillingDifference]:
    """A corrected (superseded) version whose postings still add up to hours: its correction was not reversed.
    A reversal posting for the same source (negative quantity) nets it to zero."""
    found = []
    for entry in facts.entries:
        if entry.superseded_by_id is None or not facts.in_window(entry.work_date):
            continue
        postings = facts.postings_of.get(entry.id, [])
        net_minutes = sum((p.posted_minutes for p in postings), ZERO)
        if net_minutes == 0:
            continue
        net = time_figures(net_minutes)[0]
        found.append(BillingDifference(
            type="superseded_entry_posted", project_id=entry.project_id, period=period_of(entry.work_date),
            time_entry_id=entry.id, posting_ids=[p.id for p in postings], hours=net,
            amount=sum((p.amount for p in postings), ZERO), expected_amount=ZERO, currency=facts.contract.currency,
            action=f"reverse the posting of {entry.id} (superseded by {entry.superseded_by_id})"
                   + (f" and credit invoices {', '.join(facts.billed_on[('time_entry', entry.id)])}"
                      if ("time_entry", entry.id) in facts.billed_on else ""),
            detail=f"version {entry.version} was corrected by {entry.superseded_by_id}; {net} h are still posted"))
    return found


def expense_posted_not_invoiced(facts: ContractFacts) -> list[BillingDifference]:
    """A billable expense booked in the ERP for a period that has an issued invoice, on no issued invoice: the
    same difference as late time (``posted_not_invoiced``), naming the expense."""
    found = []
    for posting in facts.postings:
        if posting.source_type != "expense" or posting.reverses_posting_id is not None \
                or posting.source_id not in facts.billable_expenses:
            continue
        period = period_of(posting.work_date)
        source = ("expense", posting.source_id)
        if not facts.in_window(posting.work_date) or period not in facts.issued_periods or source in facts.billed_on:
            continue
        found.append(BillingDifference(
            type="posted_not_invoiced", project_id=posting.project_id, period=period,
            expense_id=posting.source_id, posting_ids=[posting.id], amount=posting.amount, currency=posting.currency,
            action=f"{facts.pending(source)}: a supplementary invoice for {period} bills it" + (
                "; held there for the contract's value (value_holds, CONTRACT_VALUE_EXCEEDED), it needs the value "
                "amended first" if facts.contract.total_value is not None else ""),
            detail=f"posted after the {period} invoice was issued and on no issued invoice"))
    return found


CHECKS: Final[tuple[Check, ...]] = (
    posted_not_invoiced, milestone_billed_twice, milestone_not_billed, contract_value_exceeded, billed_outside_term,
    posted_outside_term, superseded_entry_posted, expense_posted_not_invoiced,
)


def check_contract(facts: ContractFacts, checks: tuple[Check, ...] = CHECKS) -> list[BillingDifference]:
    return [difference for check in checks for difference in check(facts)]
