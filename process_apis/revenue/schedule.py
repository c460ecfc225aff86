"""Planning a contract's revenue from its terms (pure: the facts come in, the schedule goes out).

- time and materials: as delivered, each month's posted time (ERP postings by work date);
- milestone: each milestone in the month the customer accepted it (planned in its due month until then);
- fixed fee: straight line over the months of the term;
- retainer: ratably, the fee per period (the contract's value over its months without one).

What the ERP has recognised stays as it is; what is left of the contract's value is planned over the periods
not recognised yet, so an amendment (value, end date) or a write-off (a lower value) re-plans the rest and the
schedule never adds up to more than the value. Every amount is in cents; a straight line's periods take their
share rounded down and the last period what is left, so a fixed fee's schedule adds up to its value exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

from contracts.canonical import Contract
from process_apis.revenue.models import Method, ScheduleLine

CENT = Decimal("0.01")
METHODS: dict[str, Method] = {
    "time_and_materials": "as_billed",
    "milestone": "milestone",
    "fixed_fee": "straight_line",
    "retainer": "ratable",
}
# How the ERP classifies each method's lines (its own list): a straight line is percent complete by time elapsed;
# a retainer's fee is recognised as billed.
ERP_METHODS = {
    "as_billed": "as_billed",
    "milestone": "milestone",
    "straight_line": "percent_complete",
    "ratable": "as_billed",
}


def months(first: str, last: str) -> list[str]:
    """The periods from ``first`` to ``last`` ("YYYY-MM"), both included."""
    start = int(first[:4]) * 12 + int(first[5:]) - 1
    end = int(last[:4]) * 12 + int(last[5:]) - 1
    return [f"{index // 12:04d}-{index % 12 + 1:02d}" for index in range(start, end + 1)]


def next_period(period: str) -> str:
    return months(period, f"{int(period[:4]) + 1}-{period[5:]}")[1]


def even_split(amount: Decimal, periods: list[str]) -> dict[str, Decimal]:
    if not periods or amount <= 0:
        return {}
    each = (amount / len(periods)).quantize(CENT, ROUND_DOWN)  # never more than its share: the last is never short
    split = dict.fromkeys(periods, each)
    split[periods[-1]] = amount - each * (len(periods) - 1)
    return split


def plan(
    contract: Contract,
    *,
    recognized: Mapping[str, tuple[Decimal, str | None]],
    earned: Mapping[str, Decimal],
    expected: Mapping[str, Decimal],
    current: str,
) -> list[ScheduleLine]:
    """The schedule: ``recognized`` (period -> amount, ERP id) as it is; then, per the method, ``earned``
    (delivered or accepted, by period) and ``expected`` (milestones not accepted yet, by due period) for the
    as-delivered methods, or the term's months for the straight-line ones."""
    cap = contract.total_value
    lines = [
        ScheduleLine(period=p, amount=a, state="recognized", erp_schedule_id=i)
        for p, (a, i) in sorted(recognized.items())
    ]
    left = None if cap is None else max(Decimal(0), cap - sum((a for a, _ in recognized.values()), Decimal(0)))
    method = METHODS[contract.billing_model]
    if method in ("as_billed", "milestone"):
        # What the ERP recognised covers the earliest earnings first, whatever period it was booked in; the rest
        # is due in its own period, or the first later one without a line (the ERP keeps one line per period).
        credit = sum((a for a, _ in recognized.values()), Decimal(0))
        todo = [(p, a, True) for p, a in earned.items()] + [(p, a, False) for p, a in expected.items()]
        owed: dict[str, Decimal] = {}
        all_earned: dict[str, bool] = {}
        for period, amount, is_earned in sorted(todo, key=lambda item: (not item[2], item[0])):
            used = min(credit, amount)
            credit -= used
            share = (amount - used).quantize(CENT, ROUND_HALF_EVEN)
            if left is not None:
                share = min(share, left)
                left -= share
            if share <= 0:
                continue
            target = period
            while target in recognized:
                target = next_period(target)
            owed[target] = owed.get(target, Decimal(0)) + share
            all_earned[target] = all_earned.get(target, True) and is_earned
        lines += [
            ScheduleLine(period=p, amount=a, state="due" if all_earned[p] and p <= current else "planned")
            for p, a in sorted(owed.items())
        ]
    else:
        term = months(f"{contract.start_date:%Y-%m}", f"{(contract.end_date or contract.start_date):%Y-%m}")
        open_periods = [p for p in term if p not in recognized]
        fee = contract.billing_schedule.period_fee if method == "ratable" else None
        if fee is not None:
            shares: dict[str, Decimal] = {}
            for period in open_periods:
                share = fee if left is None else min(fee, left)
                if left is not None:
                    left -= share
                shares[period] = share
        else:
            shares = even_split(left or Decimal(0), open_periods)
        lines += [
            ScheduleLine(period=p, amount=a, state="due" if p <= current else "planned")
            for p, a in shares.items()
            if a > 0
        ]
    return sorted(lines, key=lambda line: (line.period, line.state != "recognized"))
