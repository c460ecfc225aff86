"""Revenue recognition: a schedule planned from each contract's terms, recognised in the ERP once per period."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.canonical import BillingProfile, BillingSchedule, Contract
from process_apis.revenue.schedule import plan
from tests.support.contract_checks import assert_matches_contract
from tests.support.flows import ERP, all_items, log_and_approve, ok, postings_settled, wait_for

REVENUE = "/process/revenue/v1/contracts"
# One contract of each billing model that no other test bills or recognises.
CONTRACTS = {"time_and_materials": "ctr_2003", "fixed_fee": "ctr_2012", "milestone": "ctr_2015", "retainer": "ctr_2018"}


def this_month() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y-%m}"


def deliver(experience: httpx.Client, system: httpx.Client) -> None:
    """Two hours on PRJ-4003 today, approved and posted to the ERP."""
    entry = log_and_approve(
        experience, system, worker_id="wrk_e1001", project_id="prj_4003", work_date=dt.date.today(), hours="2"
    )
    wait_for("the delivered time posted", lambda: postings_settled(experience, [entry["time_entry_id"]]))


@pytest.mark.parametrize(("model", "contract_id"), sorted(CONTRACTS.items()))
def test_recognising_each_billing_model_puts_its_schedule_in_the_erp_once(
    experience: httpx.Client, system: httpx.Client, model: str, contract_id: str
) -> None:
    if model == "time_and_materials":  # the demo's posted time is recognised already: deliver some more
        deliver(experience, system)
    before = experience.get(f"{REVENUE}/{contract_id}/schedule")
    assert_matches_contract("process/revenue", "GET", "/contracts/{contract_id}/schedule", before)
    schedule = before.json()
    assert schedule["billing_model"] == model
    due = [line for line in schedule["lines"] if line["state"] == "due"]
    if model == "milestone":  # every phase of SOW-2015 was accepted and recognised: the schedule is the ERP's
        accepted = [
            m
            for m in all_items(system, "/system/psa/v1/milestones", project_id="prj_4015")
            if m["state"] in ("accepted", "invoiced")
        ]
        assert not due and Decimal(schedule["recognized_to_date"]) == sum(Decimal(m["amount"]) for m in accepted)
    else:
        assert due, f"{contract_id} has revenue due"
    if schedule["total_value"] is not None:
        assert Decimal(schedule["scheduled_total"]) <= Decimal(schedule["total_value"])

    done = experience.post(f"{REVENUE}/{contract_id}/recognitions", json={"through_period": this_month()})
    assert_matches_contract("process/revenue", "POST", "/contracts/{contract_id}/recognitions", done)
    again = ok(experience.post(f"{REVENUE}/{contract_id}/recognitions", json={"through_period": this_month()}))

    recognized = done.json()["recognized"]
    assert [(line["period"], line["amount"]) for line in recognized] == [
        (line["period"], line["amount"]) for line in due
    ]
    assert again["recognized"] == []
    in_erp = {s["period"]: s for s in all_items(system, f"{ERP}/revenue-schedules", contract_id=contract_id)}
    for line in recognized:
        assert Decimal(in_erp[line["period"]]["recognized_amount"]) == Decimal(line["amount"])
        assert in_erp[line["period"]]["id"] == line["erp_schedule_id"]
    assert not [line for line in again["schedule"]["lines"] if line["state"] == "due"]
    events = ok(experience.get("/process/events/v1/events", params={"type": "revenue.recognized", "limit": 500}))
    mine = [e for e in events["items"] if e["subject"]["contract_id"] == contract_id]
    assert sorted(e["data"]["period"] for e in mine) == sorted(line["period"] for line in recognized)


def test_a_fixed_fee_projects_margin_earns_what_its_contract_recognised(experience: httpx.Client) -> None:
    recognized = Decimal(ok(experience.get(f"{REVENUE}/ctr_2012/schedule"))["recognized_to_date"])
    (row,) = ok(experience.get("/process/insights/v1/project-margins", params={"project_id": "prj_4012"}))["projects"]
    assert recognized > 0
    assert Decimal(row["earned_revenue"]) == max(recognized, Decimal(row["billed_revenue"]))
    assert Decimal(row["margin"]) == Decimal(row["earned_revenue"]) - Decimal(row["cost"])


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"through_period": "2999-01"}, 422),
        ({"through_period": "2026-13"}, 400),
        ({"through_period": "2026-1"}, 400),
        ({}, 400),
        ({"through_period": "2026-01", "amount": "1"}, 400),
        ([{"through_period": "2026-01"}], 400),
        ({"through_period": {"a": {"b": {"c": [[[[[[[[[[1]]]]]]]]]]}}}}, 400),
    ],
)
def test_bad_recognitions_are_refused_with_a_problem(experience: httpx.Client, body: Any, status: int) -> None:
    response = experience.post(f"{REVENUE}/ctr_2003/recognitions", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("contract_id", ["ctr_9999", "ctr_2010%2F..", "ctr%0D%0Ax", "x" * 300])
def test_unknown_or_hostile_contract_ids_get_a_problem(experience: httpx.Client, contract_id: str) -> None:
    response = experience.get(f"{REVENUE}/{contract_id}/schedule")
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def _contract(model: str, value: Decimal | None, months: int) -> Contract:
    start = dt.date(2026, 1, 1)
    end = dt.date(2026 + (months - 1) // 12, (months - 1) % 12 + 1, 28)
    return Contract(
        id="ctr_1",
        customer_id="cus_1",
        legal_entity_id="le_us",
        name="c",
        currency="USD",
        billing_model=model,
        start_date=start,
        end_date=end,
        status="active",  # type: ignore[arg-type]
        billing_profile=BillingProfile(),
        total_value=value,
        billing_schedule=BillingSchedule(),
    )


cents = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999999.99"), places=2)


@given(
    value=cents,
    months=st.integers(1, 36),
    done=st.integers(0, 36),
    recognized_share=st.decimals(min_value=Decimal(0), max_value=Decimal("1.5"), places=3),
)
def test_a_fixed_fee_schedule_never_exceeds_its_value_and_adds_up_to_it(
    value: Decimal, months: int, done: int, recognized_share: Decimal
) -> None:
    contract = _contract("fixed_fee", value, months)
    periods = [
        f"2026-{m:02d}" if m <= 12 else f"{2026 + (m - 1) // 12}-{(m - 1) % 12 + 1:02d}" for m in range(1, months + 1)
    ]
    recognized_periods = periods[: min(done, months)]
    each = (value * recognized_share / max(1, len(recognized_periods))).quantize(Decimal("0.01"))
    recognized = {p: (each, None) for p in recognized_periods}

    lines = plan(contract, recognized=recognized, earned={}, expected={}, current="2026-06")

    total = sum((line.amount for line in lines), Decimal(0))
    already = sum((a for a, _ in recognized.values()), Decimal(0))
    assert all(line.amount > 0 for line in lines if line.state != "recognized")
    assert total == max(value, already) if len(recognized_periods) < months else total == already
    assert len({line.period for line in lines}) == len(lines)


@given(
    cap=st.one_of(st.none(), cents),
    earned=st.dictionaries(st.sampled_from([f"2026-{m:02d}" for m in range(1, 13)]), cents, max_size=12),
)
def test_time_and_materials_recognises_what_was_delivered_up_to_its_cap(
    cap: Decimal | None, earned: dict[str, Decimal]
) -> None:
    lines = plan(_contract("time_and_materials", cap, 12), recognized={}, earned=earned, expected={}, current="2026-12")
    total = sum((line.amount for line in lines), Decimal(0))
    delivered = sum(earned.values(), Decimal(0))
    assert total == (delivered if cap is None else min(cap, delivered))
