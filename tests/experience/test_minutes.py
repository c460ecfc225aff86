"""Time in whole minutes: any minute from 1 to 1440 crosses every tier and reads back exactly, is priced from the
minutes (not from rounded hours), and the firm's minute granularity refuses what falls between its steps."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from contracts.canonical import TimeEntry, decimal_text, display_hours, hours_of_minutes, whole_minutes
from gateway.launcher import REPO_ROOT, Ports, Stack
from process_apis.billing.eligibility import time_amount
from process_apis.timesheets.entry_rules import MinuteGrid, day_errors
from tests.support.contract_checks import assert_matches_contract
from tests.support.days import a_day_of_its_own, week_of
from tests.support.stack import DEMO_CONSULTANT, RunningStack

V1 = "/experience/mobile-time/v1"
V2 = "/experience/mobile-time/v2"
PSA = "/system/psa/v1"
API = "experience/mobile-time"


def v2_entry(minutes: object, day: dt.date | None = None) -> dict[str, object]:
    return {"project_id": "prj_4001", "work_date": (day or a_day_of_its_own()).isoformat(), "minutes": minutes,
            "work_type": "billable_delivery", "client_ref": "min-" + uuid.uuid4().hex[:12]}


@pytest.mark.parametrize("minutes", [10, 7, 1, 1440])
def test_any_minute_round_trips_exactly_on_every_tier(stack: RunningStack, consultant: httpx.Client,
                                                      minutes: int) -> None:
    day = a_day_of_its_own()
    created = consultant.post(f"{V2}/me/time-entries", json=v2_entry(minutes, day))

    assert created.status_code == 201, created.text
    assert_matches_contract(API, "POST", "/me/time-entries", created, version=2)
    assert created.json()["minutes"] == minutes
    entry_id = created.json()["time_entry_id"]
    week = consultant.get(f"{V2}/me/weeks/{week_of(day).isoformat()}").json()
    assert [e["minutes"] for e in week["entries"] if e["time_entry_id"] == entry_id] == [minutes]
    assert [d["minutes"] for d in week["days"] if d["work_date"] == day.isoformat()] == [minutes]
    with stack.client("process-tier") as system:
        stored = system.get(f"{PSA}/time-entries/{entry_id}")
    assert stored.status_code == 200, stored.text
    assert stored.json()["minutes"] == minutes  # authoritative in the canonical model
    assert Decimal(stored.json()["hours"]) == hours_of_minutes(minutes)  # derived, for readers of hours


def test_a_day_of_ten_minute_entries_fills_24_hours_exactly() -> None:
    """144 entries of 10 minutes are 24 hours: summed in minutes, not in hours that do not add up."""
    day = dt.date(2026, 11, 16)
    others = [TimeEntry(id=f"te_{n}", worker_id="wrk_1", project_id="prj_1", work_date=day, state="draft",
                        hours=hours_of_minutes(10), minutes=10) for n in range(143)]
    assert day_errors(others, hours_of_minutes(10), "/hours") == []
    assert day_errors(others, hours_of_minutes(11), "/hours")[0].pointer == "/hours"


@pytest.mark.parametrize(("minutes", "rate", "amount"), [
    (10, "150.03", "25.00"),  # exactly 25.005: half-even once -> 25.00 (hours 0.1666...7 x rate would give 25.01)
    (7, "180", "21.00"),
    (1, "175", "2.92"),  # 2.91666...
    (1440, "175", "4200.00"),
    (30, "150.05", "75.02"),  # exactly 75.025 -> 75.02
])
def test_time_is_priced_from_its_minutes_exactly(minutes: int, rate: str, amount: str) -> None:
    entry = TimeEntry(id="te_1", worker_id="wrk_1", project_id="prj_1", work_date=dt.date(2026, 11, 16),
                      state="approved", hours=hours_of_minutes(minutes), minutes=minutes)
    assert entry.minutes == minutes
    assert time_amount(entry.minutes, Decimal(rate)) == Decimal(amount)


def test_hours_written_by_older_writers_are_read_as_their_minutes() -> None:
    entry = TimeEntry(id="te_1", worker_id="wrk_1", project_id="prj_1", work_date=dt.date(2026, 11, 16),
                      state="draft", hours=Decimal("7.5"))
    assert (entry.minutes, entry.hours) == (450, Decimal("7.5"))
    assert whole_minutes(Decimal("0.17")) is None  # 10.2 minutes names no whole minute
    assert [whole_minutes(hours_of_minutes(m)) for m in range(1, 1441)] == list(range(1, 1441))


@pytest.mark.parametrize("minutes", [-10, 0, 1441, 10**30, 10.5, "10", None, True])
def test_hostile_minutes_are_refused_at_the_field(consultant: httpx.Client, minutes: object) -> None:
    response = consultant.post(f"{V2}/me/time-entries", json=v2_entry(minutes))

    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["pointer"] == "/minutes"


def test_a_quarter_hour_grid_refuses_between_its_steps() -> None:
    grid = MinuteGrid(15)
    assert grid.errors(hours_of_minutes(45), "/hours") == []
    refused = grid.errors(hours_of_minutes(25), "/hours")
    assert [(e.pointer, e.detail) for e in refused] == [("/hours", "time must be whole minutes in steps of 15")]


@pytest.fixture(scope="module")
def quarter_hour_consultant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A stack of its own whose firm books time in quarter hours."""
    stack = Stack(data_dir=tmp_path_factory.mktemp("psgw-quarter-hours"), ports=Ports.free(),
                  config_file=REPO_ROOT / "gateway.yaml", extra_env={"PSGW_MINUTE_GRANULARITY": "15"})
    stack.start()
    try:
        stack.wait_ready(timeout=90)
        with RunningStack(stack).client("mobile-app", subject=DEMO_CONSULTANT) as client:
            yield client
    finally:
        stack.stop()


def test_the_firms_granularity_refuses_25_minutes_at_minutes(quarter_hour_consultant: httpx.Client) -> None:
    day = a_day_of_its_own()
    refused = quarter_hour_consultant.post(f"{V2}/me/time-entries", json=v2_entry(25, day))
    accepted = quarter_hour_consultant.post(f"{V2}/me/time-entries", json=v2_entry(45, day))

    assert refused.status_code == 400, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert [(e["pointer"], e["detail"]) for e in refused.json()["errors"]] == [
        ("/minutes", "time must be whole minutes in steps of 15")]
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["minutes"] == 45


@pytest.mark.parametrize(("minutes", "shown"), [(20, "0.33"), (40, "0.67"), (10, "0.17"), (450, "7.5"), (60, "1")])
def test_hours_shown_to_a_person_are_rounded_once_to_the_hundredth(minutes: int, shown: str) -> None:
    assert decimal_text(display_hours(minutes)) == shown
    assert display_hours(minutes) == (Decimal(minutes) / 60).quantize(Decimal("0.01"))  # half-even, once


def test_thirds_of_an_hour_read_as_hundredths_on_v1_and_bill_exactly(consultant: httpx.Client,
                                                                      process_reader: httpx.Client) -> None:
    """Three entries of 20 minutes: v1 shows each as 0.33 and the day as 1 (summed in minutes, rounded once, not
    0.99); billing prices each from its minutes (20 x 175 / 60 = 58.333... -> 58.33), never from 0.33 hours."""
    day = a_day_of_its_own()
    ids = []
    for _ in range(3):
        created = consultant.post(f"{V2}/me/time-entries", json=v2_entry(20, day))
        assert created.status_code == 201, created.text
        ids.append(created.json()["time_entry_id"])

    week = consultant.get(f"{V1}/me/weeks/{week_of(day).isoformat()}")

    assert week.status_code == 200, week.text
    assert_matches_contract(API, "GET", "/me/weeks/{week_start}", week, version=1)
    mine = [e for e in week.json()["entries"] if e["time_entry_id"] in ids]
    assert [e["hours"] for e in mine] == ["0.33"] * 3
    day_total = next(d["hours"] for d in week.json()["days"] if d["work_date"] == day.isoformat())
    all_minutes = sum(e["minutes"] for e in consultant.get(f"{V2}/me/weeks/{week_of(day).isoformat()}").json()[
        "entries"] if e["work_date"] == day.isoformat())
    assert Decimal(day_total) == display_hours(all_minutes)
    assert all(len(str(e["hours"]).partition(".")[2]) <= 2 for e in week.json()["entries"])
    evaluated = process_reader.post("/process/billing/v1/eligibility-evaluations", json={"time_entry_ids": ids})
    assert evaluated.status_code == 200, evaluated.text
    assert [h["amount"] for h in evaluated.json()["held"]] == ["58.33"] * 3  # prj_4001's consultant rate, 175
