"""A fixed fee recognised by percent complete, driven through any sequence of what happens to a contract: cost is
approved (or reversed), the budget or the value is amended, revenue is written off, due revenue is recognised,
months pass. After each step the schedule must keep the promises a finance user relies on (revenue/schedule.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from contracts.canonical import BillingProfile, BillingSchedule, Contract, RevenueTerms
from process_apis.revenue.models import ScheduleLine
from process_apis.revenue.schedule import method_of, months, next_period, percent_complete_earnings, plan

CENT = Decimal("0.01")
money = st.decimals(min_value=Decimal("1.00"), max_value=Decimal("500000.00"), places=2)


def contract(value: Decimal, budget: Decimal) -> Contract:
    return Contract(
        id="ctr_pc", customer_id="cus_1", legal_entity_id="le_us", name="c", currency="USD",
        billing_model="fixed_fee", start_date=dt.date(2026, 1, 1), end_date=dt.date(2026, 12, 31),
        status="active", billing_profile=BillingProfile(), total_value=value, billing_schedule=BillingSchedule(),
        revenue_terms=RevenueTerms(fixed_fee_method="percent_complete", budget_cost=budget))


class PercentCompleteContract(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.contract = contract(Decimal("120000.00"), Decimal("80000.00"))
        self.costs: dict[str, Decimal] = {}
        self.recognized: dict[str, tuple[Decimal, str | None]] = {}
        self.written_off = Decimal(0)
        self.current = "2026-01"
        self.reduced = False  # a write-off or an amendment may lower what is earned; nothing else may
        self.earned_before = Decimal(0)
        self.recognized_before = Decimal(0)
        self.lines = self._plan()

    def _plan(self) -> list[ScheduleLine]:
        return plan(self.contract, recognized=self.recognized, earned={}, expected={}, current=self.current,
                    costs=self.costs, written_off=self.written_off)

    def _earned(self) -> Decimal:
        return sum((line.amount for line in self.lines if line.state in ("recognized", "due")), Decimal(0))

    def _left(self) -> Decimal:
        return sum((line.amount for line in self.lines if line.state != "recognized"), Decimal(0))

    def _step(self, reduces: bool = False) -> None:
        self.earned_before, self.recognized_before = self._earned(), sum(
            (a for a, _ in self.recognized.values()), Decimal(0))
        self.reduced = reduces
        self.lines = self._plan()

    @rule(amount=st.decimals(min_value=Decimal("-5000.00"), max_value=Decimal("40000.00"), places=2))
    def approve_cost(self, amount: Decimal) -> None:
        """Time approved this month (a negative amount: a correction reversing cost)."""
        self.costs[self.current] = self.costs.get(self.current, Decimal(0)) + amount
        self._step(reduces=amount < 0)

    @rule(budget=money)
    def amend_budget(self, budget: Decimal) -> None:
        self.contract = msgspec.structs.replace(
            self.contract, revenue_terms=RevenueTerms(fixed_fee_method="percent_complete", budget_cost=budget))
        self._step(reduces=True)

    @rule(value=money)
    def amend_value(self, value: Decimal) -> None:
        self.contract = msgspec.structs.replace(self.contract, total_value=value)
        self._step(reduces=True)

    @rule(share=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1"), places=2))
    def write_off(self, share: Decimal) -> None:
        """At most what is left to recognise, as the API allows."""
        amount = (self._left() * share).quantize(CENT)
        if amount > 0:
            self.written_off += amount
        self._step(reduces=True)

    @rule()
    def recognise_due(self) -> None:
        for line in self.lines:
            if line.state == "due":
                self.recognized[line.period] = (line.amount, f"rev_{line.period}")
        self._step()

    @precondition(lambda self: self.current < "2027-06")
    @rule()
    def next_month(self) -> None:
        self.current = next_period(self.current)
        self._step()

    @invariant()
    def never_more_than_the_value_less_write_offs(self) -> None:
        value = self.contract.total_value or Decimal(0)
        already = sum((a for a, _ in self.recognized.values()), Decimal(0))
        total = sum((line.amount for line in self.lines), Decimal(0))
        # The schedule adds up to the value less write-offs exactly; only an amendment below what the ERP has
        # recognised leaves more (what is recognised stays), and then nothing more is planned.
        assert total == max(already, value - self.written_off)
        assert already <= max(self.recognized_before, value - self.written_off)

    @invariant()
    def one_positive_line_per_period(self) -> None:
        assert len({line.period for line in self.lines}) == len(self.lines)
        assert all(line.amount > 0 for line in self.lines if line.state != "recognized")
        assert all(line.amount == line.amount.quantize(CENT) for line in self.lines)
        assert all(line.period <= self.current for line in self.lines if line.state == "due")

    @invariant()
    def earned_only_grows_unless_reduced(self) -> None:
        recognized = sum((a for a, _ in self.recognized.values()), Decimal(0))
        assert recognized >= self.recognized_before  # recognised revenue is never taken back
        if not self.reduced:
            assert self._earned() >= self.earned_before

    @invariant()
    def earned_is_cost_to_cost(self) -> None:
        """What is recognised or due is the value x cumulative cost / budget (capped), or what the ERP holds if
        more. The ERP keeps one line per period: what a recognised current month earns more waits in the next."""
        value = max(Decimal(0), (self.contract.total_value or Decimal(0)) - self.written_off)
        budget = self.contract.revenue_terms.budget_cost
        assert budget is not None
        target = sum(percent_complete_earnings(value, budget, {p: c for p, c in self.costs.items()
                                                              if p <= self.current}).values(), Decimal(0))
        already = sum((a for a, _ in self.recognized.values()), Decimal(0))
        expected = max(already, target)
        if self.current not in self.recognized:
            assert self._earned() == expected
        else:
            waiting = next((line.amount for line in self.lines if line.period > self.current), Decimal(0))
            assert self._earned() <= expected <= self._earned() + waiting


PercentCompleteContract.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
test_percent_complete_contract = PercentCompleteContract.TestCase


def test_a_fixed_fee_chooses_its_method_by_its_terms() -> None:
    straight = msgspec.structs.replace(contract(Decimal(100), Decimal(50)), revenue_terms=RevenueTerms())
    assert method_of(straight) == "straight_line"
    assert method_of(contract(Decimal(100), Decimal(50))) == "percent_complete"


def test_percent_complete_plans_what_is_not_earned_over_the_rest_of_the_term() -> None:
    # Budget 80,000, value 120,000: 20,000 of cost in January and 20,000 in February earn 30,000 each.
    lines = plan(contract(Decimal("120000.00"), Decimal("80000.00")), recognized={}, earned={}, expected={},
                 current="2026-02", costs={"2026-01": Decimal(20000), "2026-02": Decimal(20000)})
    assert [(line.period, line.amount, line.state) for line in lines[:2]] == [
        ("2026-01", Decimal("30000.00"), "due"), ("2026-02", Decimal("30000.00"), "due")]
    later = lines[2:]
    assert [line.period for line in later] == months("2026-03", "2026-12")
    assert all(line.state == "planned" for line in later)
    assert sum((line.amount for line in later), Decimal(0)) == Decimal("60000.00")
