"""Billing eligibility throughput, in-process: the month-end rule pass over 50,000 approved entries.

    .venv/bin/python -m bench.eligibility [--entries 50000] [--runs 5]

Context and entries come from the demo firm (sandbox/firm.py), scaled up: every confirmed assignment logs
time on working days. Two implementations run on the same data in the same run:
  psgateway  process_apis.billing.eligibility.evaluate_batch (context indexed once per batch)
  naive      the same rules written the straightforward way: per entry, linear scans of contracts, rate
             lines, assignments and closed periods, no precomputation
Both must agree on every verdict (checked) before any figure is printed. Target (issue 9): >= 100,000/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from decimal import ROUND_HALF_EVEN, Decimal

from bench.harness import machine_summary, write_readme_section
from contracts.canonical import TimeEntry
from process_apis.billing.eligibility import (
    AssignmentSpan,
    BillingContext,
    ContractTerms,
    ProjectTerms,
    RateLine,
    RateSchedule,
    evaluate_batch,
)
from sandbox import firm as demo
from system_apis.ids import to_canonical

CENT = Decimal("0.01")


def build(entries_wanted: int) -> tuple[BillingContext, list[TimeEntry], demo.Firm]:
    story = demo.build()
    contracts = {
        to_canonical("contract", c.number): ContractTerms(
            to_canonical("contract", c.number), c.status, c.billing_model,  # type: ignore[arg-type]
            c.currency, c.start, c.end, c.nte, to_canonical("rate_card", c.rate_card))
        for c in story.contracts
    }
    projects = {
        to_canonical("project", p.code): ProjectTerms(to_canonical("project", p.code), p.status,  # type: ignore[arg-type]
                                                      to_canonical("contract", p.contract),
                                                      to_canonical("legal_entity", p.legal_entity))
        for p in story.projects
    }
    rates = {
        (to_canonical("rate_card", card.code), role): RateSchedule.of([RateLine(card.valid_from, None, rate)])
        for card in story.rate_cards for role, rate in card.rates.items()
    }
    closed = frozenset((to_canonical("legal_entity", le), int(period[:4]), int(period[5:]))
                       for le, periods in story.closed_periods.items() for period in periods)
    spans: dict[tuple[str, str], tuple[AssignmentSpan, ...]] = {}
    confirmed = [a for a in story.assignments if a.status == "confirmed"]
    for a in confirmed:
        key = (to_canonical("worker", a.worker), to_canonical("project", a.project))
        spans[key] = (*spans.get(key, ()), AssignmentSpan(a.start, a.end, a.role))
    roles = {to_canonical("worker", w.number): w.role for w in story.workers}
    context = BillingContext(projects=projects, contracts=contracts, rates=rates, closed_periods=closed,
                             assignments=spans, worker_roles=roles)
    entries: list[TimeEntry] = []
    day = story.today - dt.timedelta(days=45)  # the open periods: a month-end run
    while len(entries) < entries_wanted:
        for a in confirmed:
            if len(entries) == entries_wanted:
                break
            if day.weekday() < 5:
                entries.append(TimeEntry(
                    id=f"te_b{len(entries)}", worker_id=to_canonical("worker", a.worker),
                    project_id=to_canonical("project", a.project), work_date=day, hours=Decimal("7.5"),
                    billable=True, state="approved"))
        day += dt.timedelta(days=1)
    return context, entries, story


def naive_verdicts(entries: list[TimeEntry], story: demo.Firm) -> list[tuple[bool, Decimal | None]]:
    """Eligibility written without precomputation: what each entry costs when nothing is indexed."""
    billed: dict[str, Decimal] = {}
    results: dict[str, tuple[bool, Decimal | None]] = {}
    for entry in sorted(entries, key=lambda e: (e.work_date, e.id)):
        project = next((p for p in story.projects if to_canonical("project", p.code) == entry.project_id), None)
        contract = next((c for c in story.contracts if project and c.number == project.contract), None)
        spans = [a for a in story.assignments if a.status == "confirmed"
                 and to_canonical("worker", a.worker) == entry.worker_id
                 and to_canonical("project", a.project) == entry.project_id
                 and a.start <= entry.work_date and (a.end is None or entry.work_date <= a.end)]
        reasons = []
        if entry.state != "approved":
            reasons.append("NOT_APPROVED")
        if project is None or project.status != "active":
            reasons.append("PROJECT_NOT_ACTIVE")
        if contract is None or contract.status in ("closed", "draft"):
            reasons.append("CONTRACT_NOT_ACTIVE")
        if contract is not None and contract.status == "amendment_pending":
            reasons.append("AMENDMENT_PENDING")
        if contract is not None and not (contract.start <= entry.work_date and (
                contract.end is None or entry.work_date <= contract.end)):
            reasons.append("OUTSIDE_CONTRACT_DATES")
        if contract is not None and contract.billing_model in ("fixed_fee", "milestone"):
            reasons.append("BILLED_BY_MILESTONE")
        if project is not None and f"{entry.work_date:%Y-%m}" in story.closed_periods.get(project.legal_entity, []):
            reasons.append("PERIOD_CLOSED")
        if not spans:
            reasons.append("NOT_ASSIGNED")
        amount = None
        if contract is not None and "BILLED_BY_MILESTONE" not in reasons:
            role = spans[0].role if spans else next(
                (w.role for w in story.workers if to_canonical("worker", w.number) == entry.worker_id), None)
            card = next((r for r in story.rate_cards if r.code == contract.rate_card), None)
            rate = card.rates.get(role) if card is not None and role is not None else None
            if rate is None:
                reasons.append("NO_RATE_FOR_ROLE")
            else:
                amount = (entry.hours * rate).quantize(CENT, rounding=ROUND_HALF_EVEN)
                contract_id = to_canonical("contract", contract.number)
                so_far = billed.get(contract_id, Decimal(0))
                if contract.nte is not None and so_far + amount > contract.nte:
                    reasons.append("NTE_EXCEEDED")
                elif not reasons:
                    billed[contract_id] = so_far + amount
        results[entry.id] = (not reasons, amount)
    return [results[e.id] for e in entries]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--readme", action="store_true", help="rewrite the README's eligibility figures")
    args = parser.parse_args()
    context, entries, story = build(args.entries)

    ours: list[float] = []
    for _ in range(args.runs):
        started = time.perf_counter()
        verdicts = evaluate_batch(entries, context)
        ours.append(time.perf_counter() - started)
    naive_sample = entries[: max(1, args.entries // 10)]  # the naive pass is slow: time a tenth, scale per entry
    started = time.perf_counter()
    naive = naive_verdicts(naive_sample, story)
    naive_seconds = time.perf_counter() - started

    reference = evaluate_batch(naive_sample, context)
    mismatches = sum(1 for a, b in zip(reference, naive, strict=True) if (a.eligible, a.amount if a.eligible else None)
                     != (b[0], b[1] if b[0] else None))
    if mismatches:
        raise SystemExit(f"the two implementations disagree on {mismatches} of {len(naive)} entries")

    best = min(ours)
    eligible = sum(1 for v in verdicts if v.eligible)
    naive_rate = len(naive) / naive_seconds
    our_rate = len(entries) / best
    report = "\n".join([
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine_summary()}.",
        f"Command: `.venv/bin/python -m bench.eligibility --entries {args.entries} --runs {args.runs}` "
        f"({eligible:,} of {len(entries):,} entries eligible; both implementations agree on every verdict).",
        "",
        "| implementation | entries/s | µs/entry | vs naive |",
        "|---|---:|---:|---:|",
        f"| psgateway evaluate_batch (best of {args.runs}; median {len(entries) / statistics.median(ours):,.0f}/s)"
        f" | {our_rate:,.0f} | {1e6 / our_rate:.1f} | {our_rate / naive_rate:.1f}x |",
        f"| naive, no precomputation | {naive_rate:,.0f} | {1e6 / naive_rate:.1f} | 1x |",
        "",
        f"Target >= 100,000 entries/s: {'met' if our_rate >= 100_000 else 'NOT met'}.",
    ])
    print(report)
    if args.readme:
        write_readme_section("eligibility", report)


if __name__ == "__main__":
    main()
