"""Entry rules on the phone: whole hours survive the trip (no "1E+1"), a day holds at most 24 hours, and work
dates stay inside the firm's window; every refusal is a 4xx problem+json pointing at the field to fix."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import httpx
import pytest

from tests.support.contract_checks import assert_matches_contract
from tests.support.days import a_day_of_its_own, week_of
from tests.support.stack import RunningStack

V1 = "/experience/mobile-time/v1"
V2 = "/experience/mobile-time/v2"
API = "experience/mobile-time"
TIME = "/process/timesheets/v1"


def ref() -> str:
    return "rules-" + uuid.uuid4().hex[:12]


def own_day() -> str:
    return a_day_of_its_own().isoformat()


def v2_entry(day: str, minutes: int) -> dict[str, object]:
    return {"project_id": "prj_4001", "work_date": day, "minutes": minutes, "work_type": "billable_delivery",
            "client_ref": ref()}


@pytest.mark.parametrize(("minutes", "hours"), [(600, "10"), (1200, "20"), (30, "0.5"), (1440, "24")])
def test_whole_and_half_hours_cross_every_tier_without_an_exponent(consultant: httpx.Client, minutes: int,
                                                                     hours: str) -> None:
    day = own_day()
    created = consultant.post(f"{V2}/me/time-entries", json=v2_entry(day, minutes))

    assert created.status_code == 201, created.text
    assert_matches_contract(API, "POST", "/me/time-entries", created, version=2)
    assert created.json()["minutes"] == minutes
    week_start = week_of(dt.date.fromisoformat(day)).isoformat()
    v1_week = consultant.get(f"{V1}/me/weeks/{week_start}").json()
    v1_entry = next(e for e in v1_week["entries"] if e["time_entry_id"] == created.json()["time_entry_id"])
    assert v1_entry["hours"] == hours


def test_an_offline_batch_with_a_ten_hour_entry_syncs_whole(consultant: httpx.Client) -> None:
    day = own_day()
    batch = {"items": [{**v2_entry(day, 600), "client_ref": ref()}, {**v2_entry(day, 90), "client_ref": ref()}]}

    response = consultant.post(f"{V2}/me/time-entry-syncs", json=batch)

    assert response.status_code == 200, response.text
    assert_matches_contract(API, "POST", "/me/time-entry-syncs", response, version=2)
    assert [(i["status"], i["entry"]["minutes"]) for i in response.json()["items"]] == [("created", 600),
                                                                                       ("created", 90)]


def test_a_hundred_hours_is_refused_at_the_field(consultant: httpx.Client) -> None:
    response = consultant.post(f"{V1}/me/time-entries", json={
        "project_id": "prj_4001", "work_date": own_day(), "hours": "100", "client_ref": ref()})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["pointer"] == "/hours"


def test_a_day_holds_at_most_24_hours_across_entries(consultant: httpx.Client) -> None:
    day = own_day()
    full = consultant.post(f"{V2}/me/time-entries", json=v2_entry(day, 1440))
    assert full.status_code == 201, full.text

    one_more = consultant.post(f"{V2}/me/time-entries", json=v2_entry(day, 60))
    assert one_more.status_code == 400, one_more.text
    assert_matches_contract(API, "POST", "/me/time-entries", one_more, version=2)
    assert one_more.json()["errors"][0]["pointer"] == "/minutes"
    v1_more = consultant.post(f"{V1}/me/time-entries", json={
        "project_id": "prj_4001", "work_date": day, "hours": "1", "client_ref": ref()})
    assert v1_more.status_code == 400 and v1_more.json()["errors"][0]["pointer"] == "/hours"

    batch = consultant.post(f"{V2}/me/time-entry-syncs", json={"items": [
        {**v2_entry(own_day(), 60)}, {**v2_entry(day, 60)}]})
    assert batch.status_code == 200, batch.text
    items = batch.json()["items"]
    assert [i["status"] for i in items] == ["created", "error"]
    assert items[1]["problem"]["errors"][0]["pointer"] == "/items/1/minutes"

    # Re-sending the full day's own entry is the same entry, not a 25th hour; shrinking it makes room.
    again = consultant.post(f"{V2}/me/time-entries", json={**v2_entry(day, 1440),
                                                           "client_ref": full.json()["client_ref"]})
    assert again.status_code == 200, again.text
    entry_id = full.json()["time_entry_id"]
    assert consultant.patch(f"{V2}/me/time-entries/{entry_id}", json={"minutes": 1380}).status_code == 200
    assert consultant.post(f"{V2}/me/time-entries", json=v2_entry(day, 60)).status_code == 201
    grown = consultant.patch(f"{V2}/me/time-entries/{entry_id}", json={"minutes": 1383})
    assert grown.status_code == 400 and grown.json()["errors"][0]["pointer"] == "/minutes"


def test_work_dates_outside_the_window_are_refused(consultant: httpx.Client) -> None:
    far = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=61)).isoformat()
    for day in ("9999-12-31", far, "0001-01-01"):
        response = consultant.post(f"{V2}/me/time-entries", json=v2_entry(day, 60))
        assert response.status_code == 400, (day, response.text)
        assert response.json()["errors"][0]["pointer"] == "/work_date"
    batch = consultant.post(f"{V1}/me/time-entry-syncs", json={"items": [
        {"client_ref": ref(), "project_id": "prj_4001", "work_date": "9999-12-31", "hours": "1"}]})
    assert batch.status_code == 200, batch.text
    problem = batch.json()["items"][0]["problem"]
    assert (problem["status"], problem["errors"][0]["pointer"]) == (422, "/items/0/work_date")


@pytest.mark.parametrize("path", [f"{V2}/me/weeks/9999-12-27", f"{V1}/me/weeks/9999-12-31"])
def test_a_week_at_the_end_of_the_calendar_is_bad_input_not_a_crash(consultant: httpx.Client, path: str) -> None:
    response = consultant.get(path)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["pointer"] == "/week_start"
    submitted = consultant.post(path + "/submissions")
    assert submitted.status_code == 400, submitted.text


def test_the_process_tier_refuses_the_same_dates(stack: RunningStack) -> None:
    with stack.client("experience-tier") as experience:
        week = experience.post(f"{TIME}/submissions", json={"worker_id": "wrk_e1001", "week_start": "9999-12-27"})
        assert week.status_code == 400 and week.json()["errors"][0]["pointer"] == "/week_start"
        entry = experience.post(f"{TIME}/time-entries", json={
            "worker_id": "wrk_e1001", "project_id": "prj_4001", "work_date": "9999-12-31", "hours": "1"})
        assert entry.status_code == 400 and entry.json()["errors"][0]["pointer"] == "/work_date"


def pile_onto_one_day(stack: RunningStack, worker_id: str, day: dt.date) -> int:
    """Fire creates and offline batches at one worker's day all at once (60 hours asked for), through the gateway as
    the worker's phone; check what a consultant relies on and return the minutes the day holds afterwards.

    Every answer is a creation or a refusal: 400 problem+json pointing at ``/minutes`` for a create, an item
    problem pointing at ``/items/<i>/minutes`` in a batch. The day ends at most 24 hours and holds exactly what was
    answered created (nothing written behind a refusal, nothing created and lost)."""
    creates = [v2_entry(day.isoformat(), 90) for _ in range(24)]
    batches = [{"items": [v2_entry(day.isoformat(), 60) for _ in range(4)]} for _ in range(6)]
    headers = {"Authorization": "Bearer " + stack.token("mobile-app", subject=worker_id)}

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=120.0) as client:
            calls = [client.post(f"{V2}/me/time-entries", json=body) for body in creates]
            calls += [client.post(f"{V2}/me/time-entry-syncs", json=batch) for batch in batches]
            return list(await asyncio.gather(*calls))

    answers = asyncio.run(fire())
    created_minutes = 0
    refusals = 0
    for answer in answers[:len(creates)]:
        if answer.status_code == 201:
            created_minutes += answer.json()["minutes"]
            continue
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert [e["pointer"] for e in answer.json()["errors"]] == ["/minutes"]
        refusals += 1
    for answer in answers[len(creates):]:
        assert answer.status_code == 200, answer.text
        for index, item in enumerate(answer.json()["items"]):
            if item["status"] == "created":
                created_minutes += item["entry"]["minutes"]
                continue
            assert item["status"] == "error", item
            assert [e["pointer"] for e in item["problem"]["errors"]] == [f"/items/{index}/minutes"], item
            refusals += 1

    with stack.client("mobile-app", subject=worker_id) as phone:
        week = phone.get(f"{V2}/me/weeks/{week_of(day).isoformat()}")
    assert week.status_code == 200, week.text
    held = sum(e["minutes"] for e in week.json()["entries"] if e["work_date"] == day.isoformat())
    assert held <= 24 * 60
    assert held == created_minutes
    assert refusals > 0 and held > 23 * 60  # the day was filled, not refused early
    return held


def test_concurrent_creates_and_batches_never_put_more_than_24_hours_on_a_day(stack: RunningStack) -> None:
    pile_onto_one_day(stack, "wrk_e1001", a_day_of_its_own())
