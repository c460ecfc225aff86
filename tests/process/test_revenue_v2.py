"""Revenue v2 through real HTTP: a fixed fee recognised by percent complete as its contract's terms say, re-planned
when its budget changes; write-offs that lower what is left to recognise and the project's margin, recorded once."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import ROUND_DOWN, Decimal
from typing import Any

import httpx
import pytest

from process_apis.insights.settings import InsightsSettings
from tests.process.test_revenue import deliver
from tests.support.contract_checks import assert_matches_contract
from tests.support.flows import ERP, PSA, all_items, at_once, ok
from tests.support.stack import RunningStack

V2 = "/process/revenue/v2/contracts"
PERCENT = "ctr_2014"  # a fixed fee no other revenue test recognises; its terms are switched by these tests
PERCENT_PROJECT = "prj_4014"
CENT = Decimal("0.01")
APPROVED = {"approved", "posted", "invoiced"}
FX = InsightsSettings().fx_rates_to_usd


def this_month() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y-%m}"


def key() -> str:
    return f"wo-test-{uuid.uuid4().hex}"


def approved_cost(system: httpx.Client, project_id: str) -> Decimal:
    """The cost of the project's approved time at each worker's HR cost rate on the day, read from the systems."""
    workers: dict[str, dict[str, Any]] = {}
    cost = Decimal(0)
    for entry in all_items(system, f"{PSA}/time-entries", project_id=project_id):
        if entry["state"] not in APPROVED or entry.get("superseded_by_id") is not None:
            continue
        worker = workers.setdefault(entry["worker_id"], ok(system.get(f"/system/hr/v1/workers/{entry['worker_id']}")))
        day = dt.date.fromisoformat(entry["work_date"])
        (rate,) = [r for r in worker["cost_rates"] if dt.date.fromisoformat(r["valid_from"]) <= day
                   and (r["valid_to"] is None or day <= dt.date.fromisoformat(r["valid_to"]))]
        fx = FX[rate["currency"]] / FX["USD"]  # the contract's currency, at the planning rates
        cost += Decimal(entry["hours"]) * Decimal(rate["hourly_cost"]) * fx
    return cost


def earned(schedule: dict[str, Any]) -> Decimal:
    return sum((Decimal(line["amount"]) for line in schedule["lines"] if line["state"] in ("recognized", "due")),
               Decimal(0))


def set_terms(system: httpx.Client, method: str, budget: Decimal | None) -> None:
    ok(system.patch(f"{ERP}/contracts/{PERCENT}", json={"revenue_terms": {
        "fixed_fee_method": method, "budget_cost": None if budget is None else str(budget)}}))


def schedule_v2(experience: httpx.Client, contract_id: str) -> dict[str, Any]:
    response = experience.get(f"{V2}/{contract_id}/schedule")
    assert_matches_contract("process/revenue", "GET", "/contracts/{contract_id}/schedule", response, version=2)
    return dict(ok(response))


def test_a_fixed_fee_by_percent_complete_follows_cost_against_budget_and_is_replanned_when_the_budget_changes(
    experience: httpx.Client, system: httpx.Client
) -> None:
    cost = approved_cost(system, PERCENT_PROJECT)
    assert cost > 0, "the demo has approved time on PRJ-4014"
    value = Decimal(ok(system.get(f"{ERP}/contracts/{PERCENT}"))["total_value"])
    budget = (cost * 4).quantize(CENT)  # a quarter of the budget spent
    set_terms(system, "percent_complete", budget)
    try:
        schedule = schedule_v2(experience, PERCENT)
        assert schedule["method"] == "percent_complete"
        recognized = Decimal(schedule["recognized_to_date"])
        written_off = Decimal(schedule["written_off"])
        target = min(value - written_off, ((value - written_off) * cost / budget).quantize(CENT, ROUND_DOWN))
        assert abs(earned(schedule) - max(recognized, target)) <= CENT  # planning-rate conversions may round apart
        assert Decimal(schedule["scheduled_total"]) == max(recognized, value - written_off)
        assert all(line["state"] == "planned" for line in schedule["lines"] if line["period"] > this_month())

        refused = experience.get(f"/process/revenue/v1/contracts/{PERCENT}/schedule")
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"].endswith("/not-supported") and "v2" in refused.json()["detail"]

        budget = (cost * 2).quantize(CENT)  # the budget cut in half: twice as far along
        set_terms(system, "percent_complete", budget)
        replanned = schedule_v2(experience, PERCENT)
        target = min(value - written_off, ((value - written_off) * cost / budget).quantize(CENT, ROUND_DOWN))
        assert abs(earned(replanned) - max(recognized, target)) <= CENT
        assert earned(replanned) > earned(schedule) or recognized >= target

        done = experience.post(f"{V2}/{PERCENT}/recognitions", json={"through_period": this_month()})
        assert_matches_contract("process/revenue", "POST", "/contracts/{contract_id}/recognitions", done, version=2)
        after = ok(done)["schedule"]
        in_erp = all_items(system, f"{ERP}/revenue-schedules", contract_id=PERCENT)
        assert sum((Decimal(s["recognized_amount"]) for s in in_erp), Decimal(0)) == Decimal(
            after["recognized_to_date"]) <= value
        assert {s["method"] for s in in_erp if s["period"] in {r["period"] for r in ok(done)["recognized"]}} <= {
            "percent_complete"}
    finally:
        set_terms(system, "percent_complete", (cost * 2).quantize(CENT))


def test_a_write_off_replans_the_schedule_once_and_shows_in_the_margin(
    experience: httpx.Client, system: httpx.Client
) -> None:
    cost = approved_cost(system, PERCENT_PROJECT)
    set_terms(system, "percent_complete", (cost * 2).quantize(CENT))
    before = schedule_v2(experience, PERCENT)
    margin_before = margin_of(experience, PERCENT_PROJECT)
    body = {"amount": "1000.00", "reason": "Rework on the migration, not charged", "period": this_month()}
    name = key()

    first = experience.post(f"{V2}/{PERCENT}/write-offs", json=body, headers={"Idempotency-Key": name})
    assert_matches_contract("process/revenue", "POST", "/contracts/{contract_id}/write-offs", first, version=2)
    recorded = ok(first, 201)
    again = ok(experience.post(f"{V2}/{PERCENT}/write-offs", json=body, headers={"Idempotency-Key": name}))

    assert again["write_off"] == recorded["write_off"]
    write_off = recorded["write_off"]
    assert (write_off["project_id"], write_off["amount"], write_off["currency"]) == (PERCENT_PROJECT, "1000.00", "USD")
    assert write_off["recorded_by"]  # the token's subject
    after = schedule_v2(experience, PERCENT)
    assert Decimal(after["written_off"]) == Decimal(before["written_off"]) + 1000
    assert Decimal(after["scheduled_total"]) == Decimal(before["scheduled_total"]) - 1000
    assert [w["id"] for w in after["write_offs"]].count(write_off["id"]) == 1
    margin = margin_of(experience, PERCENT_PROJECT)
    assert Decimal(margin["written_off"]) == Decimal(margin_before["written_off"]) + 1000

    reused = experience.post(f"{V2}/{PERCENT}/write-offs", json={**body, "amount": "2.00"},
                             headers={"Idempotency-Key": name})
    assert reused.status_code == 422 and reused.json()["type"].endswith("/idempotency-key-reused"), reused.text

    left = Decimal(after["scheduled_total"]) - Decimal(after["recognized_to_date"])
    too_much = experience.post(f"{V2}/{PERCENT}/write-offs", json={**body, "amount": str(left + CENT)},
                               headers={"Idempotency-Key": key()})
    assert too_much.status_code == 422, too_much.text
    assert too_much.headers["content-type"].startswith("application/problem+json")
    assert too_much.json()["type"].endswith("/write-off-exceeds-recognisable")
    assert schedule_v2(experience, PERCENT)["written_off"] == after["written_off"]


def margin_of(experience: httpx.Client, project_id: str) -> dict[str, Any]:
    (row,) = ok(experience.get("/process/insights/v1/project-margins", params={"project_id": project_id}))["projects"]
    return dict(row)


def test_a_time_and_materials_write_off_comes_off_the_projects_unbilled_revenue(
    stack: RunningStack, experience: httpx.Client, system: httpx.Client
) -> None:
    deliver(experience, system)  # two fresh hours on PRJ-4003: revenue due that can be written off
    margin = margin_of(experience, "prj_4003")
    schedule = schedule_v2(experience, "ctr_2003")
    left = Decimal(schedule["scheduled_total"]) - Decimal(schedule["recognized_to_date"])
    amount = min(Decimal("50.00"), left, Decimal(margin["unbilled_revenue"]))
    assert amount > 0
    body = {"amount": str(amount), "reason": "Training hours", "period": this_month(), "project_id": "prj_4003"}
    name = key()
    # Sent four times at once (a retrying client): recorded once, every answer names that write-off.
    answers = at_once(lambda: stack.client("experience-tier"), 4,
                      lambda client: client.post(f"{V2}/ctr_2003/write-offs", headers={"Idempotency-Key": name},
                                                 json=body))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201], [a.text for a in answers]
    assert len({a.json()["write_off"]["id"] for a in answers}) == 1

    after = margin_of(experience, "prj_4003")
    assert Decimal(after["written_off"]) == Decimal(margin["written_off"]) + amount
    assert Decimal(after["unbilled_revenue"]) == Decimal(margin["unbilled_revenue"]) - amount
    assert Decimal(after["earned_revenue"]) == Decimal(margin["earned_revenue"]) - amount
    replanned = schedule_v2(experience, "ctr_2003")
    assert Decimal(replanned["scheduled_total"]) == Decimal(schedule["scheduled_total"]) - amount


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ({"amount": "10.00", "reason": "x", "period": "2026-01"}, {}, 400),  # no Idempotency-Key
        ({"amount": "10.00", "reason": "x", "period": "2026-01"}, {"Idempotency-Key": "two words"}, 400),
        ({"amount": "-1", "reason": "x", "period": "2026-01"}, None, 400),
        ({"amount": "0", "reason": "x", "period": "2026-01"}, None, 422),
        ({"amount": "0.001", "reason": "x", "period": "2026-01"}, None, 400),
        ({"amount": "1e400", "reason": "x", "period": "2026-01"}, None, 400),
        ({"amount": "99999999999999999999", "reason": "x", "period": "2026-01"}, None, 400),
        ({"amount": 10.5, "reason": "x", "period": "2026-01"}, None, 400),
        ({"amount": "10.00", "reason": "", "period": "2026-01"}, None, 400),
        ({"amount": "10.00", "reason": "x", "period": "2999-01"}, None, 422),
        ({"amount": "10.00", "reason": "x", "period": "2026-13"}, None, 400),
        ({"amount": "10.00", "reason": "x", "period": "2026-01", "project_id": "prj_4001"}, None, 422),
        ({"amount": "10.00", "reason": "x", "period": "2026-01", "extra": 1}, None, 400),
        ({"amount": {"a": {"b": {"c": [[[[[[[[[[1]]]]]]]]]]}}}, "reason": "x", "period": "2026-01"}, None, 400),
    ],
)
def test_bad_write_offs_are_refused_with_a_problem(
    experience: httpx.Client, body: dict[str, Any], headers: dict[str, str] | None, status: int
) -> None:
    response = experience.post(f"{V2}/{PERCENT}/write-offs", json=body,
                               headers={"Idempotency-Key": key()} if headers is None else headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("contract_id", ["ctr_9999", "ctr_2010%2F..", "ctr%0D%0Ax", "x" * 300])
def test_write_offs_on_unknown_or_hostile_contract_ids_get_a_problem(experience: httpx.Client,
                                                                    contract_id: str) -> None:
    response = experience.post(f"{V2}/{contract_id}/write-offs", headers={"Idempotency-Key": key()},
                               json={"amount": "1.00", "reason": "x", "period": "2026-01"})
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
