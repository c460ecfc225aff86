"""Billing eligibility rules, one table row per reason code (pure functions, no I/O)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import msgspec
import pytest

from contracts.canonical import TimeEntry
from process_apis.billing.eligibility import (
    REASON_CODES,
    AssignmentSpan,
    BillingContext,
    ContractTerms,
    ProjectTerms,
    RateLine,
    RateSchedule,
    bill_amount,
    evaluate,
    evaluate_batch,
    v1_reasons,
)

DAY = dt.date(2026, 10, 14)


def entry(**changes: object) -> TimeEntry:
    base = TimeEntry(id="te_1", worker_id="wrk_e1001", project_id="prj_1", task_id="tsk_1_t2", work_date=DAY,
                     hours=Decimal("8"), billable=True, state="approved")
    if "hours" in changes and "minutes" not in changes:
        changes["minutes"] = None  # minutes are authoritative: a change of hours says them again
    return msgspec.structs.replace(base, **changes)


def context(**changes: object) -> BillingContext:
    base = BillingContext(
        projects={"prj_1": ProjectTerms("prj_1", "active", "ctr_1", "le_us")},
        contracts={"ctr_1": ContractTerms("ctr_1", "active", "time_and_materials", "USD", dt.date(2026, 1, 1),
                                          dt.date(2026, 12, 31), None, "rc_usd")},
        rates={("rc_usd", "consultant"): RateSchedule.of([
            RateLine(dt.date(2026, 1, 1), dt.date(2026, 9, 30), Decimal("170")),
            RateLine(dt.date(2026, 10, 1), None, Decimal("175.125")),
        ])},
        closed_periods=frozenset({("le_us", 2026, 7)}),
        assignments={("wrk_e1001", "prj_1"): (AssignmentSpan(dt.date(2026, 1, 1), None, "consultant"),)},
        worker_roles={"wrk_e1001": "consultant"},
        non_billable_tasks=frozenset({"tsk_1_t4"}),
    )
    return dataclasses.replace(base, **changes)


def contract(**changes: object) -> dict[str, ContractTerms]:
    return {"ctr_1": dataclasses.replace(context().contracts["ctr_1"], **changes)}


Case = tuple[str, Callable[[], TimeEntry], Callable[[], BillingContext]]

CASES: list[Case] = [
    ("NOT_APPROVED", lambda: entry(state="submitted"), context),
    ("NOT_APPROVED", lambda: entry(superseded_by_id="te_2"), context),
    ("NOT_BILLABLE", lambda: entry(billable=False), context),
    ("NOT_BILLABLE", lambda: entry(task_id="tsk_1_t4"), context),
    ("PROJECT_NOT_ACTIVE", entry, lambda: context(projects={"prj_1": ProjectTerms("prj_1", "on_hold", "ctr_1",
                                                                                    "le_us")})),
    ("CONTRACT_NOT_ACTIVE", entry, lambda: context(contracts=contract(status="closed"))),
    ("AMENDMENT_PENDING", entry, lambda: context(contracts=contract(status="amendment_pending"))),
    ("OUTSIDE_CONTRACT_DATES", lambda: entry(work_date=dt.date(2027, 1, 4)), context),
    ("NO_RATE_FOR_ROLE", entry, lambda: context(assignments={("wrk_e1001", "prj_1"): (
        AssignmentSpan(dt.date(2026, 1, 1), None, "data_scientist"),)})),
    ("PERIOD_CLOSED", lambda: entry(work_date=dt.date(2026, 7, 15)), context),
    ("NTE_EXCEEDED", entry, lambda: context(contracts=contract(nte_amount=Decimal("10000")),
                                            billed={"ctr_1": Decimal("9000")})),
    ("NOT_ASSIGNED", lambda: entry(worker_id="wrk_e1009"), lambda: context(worker_roles={"wrk_e1009": "consultant"})),
    ("ALREADY_POSTED", lambda: entry(state="posted"), context),
    ("ALREADY_POSTED", entry, lambda: context(posted_sources=frozenset({"te_1"}))),
    ("BILLED_BY_MILESTONE", entry, lambda: context(contracts=contract(billing_model="milestone"))),
    ("BILLED_BY_MILESTONE", entry, lambda: context(contracts=contract(billing_model="fixed_fee"))),
    # A USD rate card on a GBP contract: held, never priced at the USD rate and called GBP.
    ("RATE_CURRENCY_MISMATCH", entry, lambda: context(contracts=contract(currency="GBP"),
                                                      rate_card_currencies={"rc_usd": "USD"})),
    # Travel on a contract whose rate card prices no travel: cost, not revenue.
    ("TRAVEL_NOT_BILLABLE", lambda: entry(activity="travel"), context),
]


def travel_priced() -> BillingContext:
    rates = {**context().rates, ("rc_usd", "travel"): RateSchedule.of([RateLine(dt.date(2026, 1, 1), None,
                                                                                Decimal("90"))])}
    return context(rates=rates)


def test_travel_is_priced_at_the_rate_cards_travel_line_whatever_the_role() -> None:
    verdict = evaluate(entry(activity="travel", minutes=20), travel_priced())

    assert verdict.eligible and verdict.disposition == "post"
    assert (verdict.rate, verdict.amount) == (Decimal("90"), Decimal("30.00"))
    assert evaluate(entry(activity="travel"), context()).disposition == "cost_only"  # no travel line
    assert v1_reasons(("TRAVEL_NOT_BILLABLE",)) == ["NOT_BILLABLE"]


def test_every_reason_code_has_a_case() -> None:
    assert {code for code, _, _ in CASES} == set(REASON_CODES)


@pytest.mark.parametrize(("reason", "make_entry", "make_context"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_rule_holds_the_entry_with_its_reason(reason: str, make_entry: Callable[[], TimeEntry],
                                                   make_context: Callable[[], BillingContext]) -> None:
    verdict = evaluate(make_entry(), make_context())

    assert verdict.eligible is False
    assert verdict.reasons == (reason,)


def test_an_entry_that_passes_every_rule_is_eligible_at_hours_times_rate() -> None:
    verdict = evaluate(entry(hours=Decimal("7.5")), context())

    assert verdict.eligible and verdict.reasons == ()
    # 7.5 x 175.125 = 1313.4375 -> half-even to cents
    assert verdict.amount == Decimal("1313.44")
    assert verdict.currency == "USD"
    assert verdict.rate == Decimal("175.125") and verdict.role == "consultant"
    assert verdict.disposition == "post"


def test_rate_follows_the_work_date() -> None:
    assert evaluate(entry(work_date=dt.date(2026, 9, 30)), context()).amount == Decimal("1360.00")


def test_amounts_round_half_even_to_cents() -> None:
    assert bill_amount(Decimal("1"), Decimal("0.125")) == Decimal("0.12")
    assert bill_amount(Decimal("1"), Decimal("0.135")) == Decimal("0.14")


def test_a_held_entry_carries_every_failing_reason() -> None:
    verdict = evaluate(entry(state="submitted", billable=False, work_date=dt.date(2026, 7, 15)),
                       context(contracts=contract(status="amendment_pending")))

    assert verdict.reasons == ("NOT_APPROVED", "NOT_BILLABLE", "AMENDMENT_PENDING", "PERIOD_CLOSED")
    assert verdict.disposition == "hold"


def test_non_billable_time_is_cost_not_an_exception() -> None:
    assert evaluate(entry(billable=False), context()).disposition == "cost_only"
    assert evaluate(entry(), context(contracts=contract(billing_model="milestone"))).disposition == "cost_only"
    assert evaluate(entry(state="posted"), context()).disposition == "already_posted"


def test_unknown_project_is_held_not_crashed() -> None:
    verdict = evaluate(entry(project_id="prj_404"), context())

    assert "PROJECT_NOT_ACTIVE" in verdict.reasons and "CONTRACT_NOT_ACTIVE" in verdict.reasons


def test_batch_holds_only_the_entry_that_crosses_the_nte() -> None:
    ctx = context(contracts=contract(nte_amount=Decimal("5000")), billed={"ctr_1": Decimal("1000")})
    entries = [entry(id=f"te_{n}", work_date=DAY + dt.timedelta(days=n)) for n in range(4)]  # 1401 each

    verdicts = evaluate_batch(list(reversed(entries)), ctx)

    by_id = {v.time_entry_id: v for v in verdicts}
    assert [by_id[f"te_{n}"].eligible for n in range(4)] == [True, True, False, False]
    assert by_id["te_2"].reasons == ("NTE_EXCEEDED",)
    assert [v.time_entry_id for v in verdicts] == ["te_3", "te_2", "te_1", "te_0"]


def test_a_rate_card_in_another_currency_is_a_hold_without_an_amount() -> None:
    verdict = evaluate(entry(), context(contracts=contract(currency="GBP"), rate_card_currencies={"rc_usd": "USD"}))

    assert verdict.reasons == ("RATE_CURRENCY_MISMATCH",) and verdict.disposition == "hold"
    assert verdict.amount is None and verdict.rate is None and verdict.currency == "GBP"
    assert v1_reasons(verdict.reasons) == ["NO_RATE_FOR_ROLE"]  # billing v1's closed enum, nearest meaning
    same = evaluate(entry(), context(rate_card_currencies={"rc_usd": "USD"}))
    assert same.eligible and same.amount == Decimal("1401.00")
