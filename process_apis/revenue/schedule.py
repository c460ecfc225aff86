"""Planning a contract's revenue from its terms (pure: the facts come in, the schedule goes out).

- time and materials: as delivered, each month's posted time (ERP postings by work date);
- milestone: each milestone in the month the customer accepted it (planned in its due month until then);
- fixed fee, as its contract's revenue terms say: straight line over the months of the term, or percent complete
  (cost to cost): by the end of each month, the value x cumulative cost of approved time / budgeted cost, the rest
  planned over the term's later months;
- retainer: ratably, the fee per period (the contract's value over its months without one).

What the ERP has recognised stays as it is; what is left of the contract's value is planned over the periods
not recognised yet, so an amendment (value, end date, budget) re-plans the rest and the schedule never adds up to
more than the value. A write-off lowers what is recognisable by its amount: it comes off the value (and off the
earliest unrecognised earnings of the as-delivered methods), never off what the ERP recognised. Every amount is
in cents; a straight line's periods take their share rounded down and the last period what is left, so a fixed
fee's schedule adds up to its value (less write-offs) exactly. Percent complete follows the cost: a correction
that lowers it lowers what is due, never what the ERP has recognised.
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
AS_DELIVERED: frozenset[Method] = frozenset({"as_billed", "milestone", "percent_complete"})
# How the ERP classifies each method's lines (its own list): a straight line is percent complete by time elapsed;
# a retainer's fee is recognised as billed.
ERP_METHODS = {
    "as_billed": "as_billed",
    "milestone": "milestone",
    "straight_line": "percent_complete",
    "percent_complete": "percent_complete",
    "ratable": "as_billed",
}


def method_of(contract: Contract) -> Method:
    """The contract's recognition method: its billing model's, or for a fixed fee what its revenue terms say."""
    if contract.billing_model == "fixed_fee" and contract.revenue_terms.fixed_fee_method == "percent_complete":
        return "percent_complete"
    return METHODS[contract.billing_model]


def percent_complete_earnings(value: Decimal, budget: Decimal, costs: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """What each month earns by cost to cost: value x cumulative cost / budget at its end (capped at the value, in
    cents rounded down), less what earlier months earned. A month whose cumulative figure falls (a correction
    reversing cost) takes it back from the latest months' earnings, so they always add up to the latest figure."""
    earned: dict[str, Decimal] = {}
    reached = Decimal(0)
    cumulative = Decimal(0)
    for period in sorted(costs):
        cumulative += costs[period]
        target = Decimal(0)
        if cumulative > 0 and value > 0:
            target = min(value, (value * cumulative / budget).quantize(CENT, ROUND_DOWN))
        change, reached = target - reached, target
        if change > 0:
            earned[period] = earned.get(period, Decimal(0)) + change
        for earlier in sorted(earned, reverse=True):
            if change >= 0:
                break
            taken = min(earned[earlier], -change)
            earned[earlier] -= taken
            change += taken
            if earned[earlier] == 0:
                del earned[earlier]
    return earned


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
    costs: Mapping[str, Decimal] | None = None,
    written_off: Decimal = Decimal(0),
) -> list[ScheduleLine]:
    """The schedule: ``recognized`` (period -> amount, ERP id) as it is; then, per the method, ``earned``
    (delivered or accepted, by period) and ``expected`` (milestones not accepted yet, by due period) for the
    as-delivered methods, ``costs`` (cost of approved time by month) for percent complete, or the term's months for
    the straight-line ones. ``written_off`` is the total of the contract's write-offs."""
    already = sum((a for a, _ in recognized.values()), Decimal(0))
    cap = None if contract.total_value is None else max(Decimal(0), contract.total_value - written_off)
    lines = [
        ScheduleLine(period=p, amount=a, state="recognized", erp_schedule_id=i)
        for p, (a, i) in sorted(recognized.items())
    ]
    left = None if cap is None else max(Decimal(0), cap - already)
    method = method_of(contract)
    term = months(f"{contract.start_date:%Y-%m}", f"{(contract.end_date or contract.start_date):%Y-%m}")
    if method in AS_DELIVERED:
        # What the ERP recognised (and what was written off) covers the earliest earnings first, whatever period
        # it was booked in; the rest is due in its own period, or the first later one without a line (the ERP
        # keeps one line per period). Percent complete's earnings are measured against the value net of
        # write-offs already, so its write-offs are not taken twice.
        credit = already
        if method == "percent_complete":
            budget = contract.revenue_terms.budget_cost
            earned = percent_complete_earnings(cap or Decimal(0), budget, costs or {}) if budget else {}
        else:
            credit += written_off
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
        if method == "percent_complete" and left:
            # The value not earned yet, planned over the term's months after this one (or the next free month).
            later = [p for p in term if p > current and p not in recognized and p not in owed]
            if not later:
                target = next_period(max([current, *recognized, *owed]))
                later = [target]
            for period, share in even_split(left, later).items():
                if share > 0:  # cents too few to go round leave the first months without a line
                    owed[period] = owed.get(period, Decimal(0)) + share
                    all_earned[period] = False
        lines += [
            ScheduleLine(period=p, amount=a, state="due" if all_earned[p] and p <= current else "planned")
            for p, a in sorted(owed.items())
        ]
    else:
        open_periods = [p for p in term if p not in recognized]
        fee = contract.billing_schedule.period_fee if method == "ratable" else None
        if fee is not None:
            shares: dict[str, Decimal] = {}
            credit = written_off if cap is None else Decimal(0)  # uncapped: a write-off comes off the next fees
            for period in open_periods:
                share = fee if left is None else min(fee, left)
                if left is not None:
                    left -= share
                used = min(credit, share)
                credit -= used
                shares[period] = share - used
        else:
            shares = even_split(left or Decimal(0), open_periods)
        lines += [
            ScheduleLine(period=p, amount=a, state="due" if p <= current else "planned")
            for p, a in shares.items()
            if a > 0
        ]
    return sorted(lines, key=lambda line: (line.period, line.state != "recognized"))
