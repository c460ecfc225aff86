"""HR changes reach the PSA and staffing, through real processes: a worker terminated in HR has the assignments
after their last day ended and can log no time after it (what was approved stays and bills); a leave of absence
takes its days off the worker's availability. Each change is announced once, as its AsyncAPI schema says."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from contracts.toolchain.asyncapi import EventSchemas, load_asyncapi
from tests.support.contract_checks import assert_matches_contract
from tests.support.flows import PSA, all_items, ok, wait_for
from tests.support.stack import RunningStack, sandbox_url

PROCESSES = "/ccx/api/v1/northwind/workers/{wid}/businessProcesses/{name}"
EVENTS = "/process/events/v2/events"
AVAILABILITY = "/process/staffing/v1/workers/{worker_id}/availability"
APPROVED = ("approved", "posted", "invoiced")


def hr_process(sandboxes: httpx.Client, stack: RunningStack, worker_id: str, name: str, body: Any) -> httpx.Response:
    number = worker_id.removeprefix("wrk_").upper()
    wid = hashlib.md5(f"worker:{number}".encode(), usedforsecurity=False).hexdigest()
    return sandboxes.post(sandbox_url(stack, "hr") + PROCESSES.format(wid=wid, name=name), json=body)


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def worker_events(experience: httpx.Client, type_: str, worker_id: str) -> list[dict[str, Any]]:
    page = ok(experience.get(EVENTS, params={"type": type_, "limit": 500}))
    return [e for e in page["items"] if e["subject"]["worker_id"] == worker_id]


def approved_before(system: httpx.Client, worker_id: str, last_day: dt.date) -> dict[str, tuple[str, str]]:
    return {
        e["id"]: (e["state"], e["hours"])
        for e in all_items(system, f"{PSA}/time-entries", worker_id=worker_id)
        if e["state"] in APPROVED and dt.date.fromisoformat(e["work_date"]) <= last_day
    }


def a_worker_to_terminate(system: httpx.Client, last_day: dt.date) -> tuple[str, dict[str, Any]]:
    """An active consultant no other test uses, with approved time on or before ``last_day`` and a confirmed
    assignment running through it (and none starting after it: ending those would outlive this test)."""
    for number in range(1036, 1010, -1):
        worker_id = f"wrk_e{number}"
        worker = system.get(f"/system/hr/v1/workers/{worker_id}")
        if worker.status_code != 200 or worker.json()["status"] != "active" or worker.json()["role"] == "partner":
            continue
        assignments = all_items(system, f"{PSA}/assignments", worker_id=worker_id)
        running = [
            a
            for a in assignments
            if a["status"] == "confirmed"
            and dt.date.fromisoformat(a["start_date"]) <= last_day
            and (a["end_date"] is None or dt.date.fromisoformat(a["end_date"]) > last_day)
        ]
        later = [a for a in assignments if a["status"] != "ended" and dt.date.fromisoformat(a["start_date"]) > last_day]
        if running and not later and approved_before(system, worker_id, last_day):
            return worker_id, running[0]
    raise AssertionError("the demo firm has no consultant to terminate")


def test_a_terminated_worker_loses_later_assignments_and_cannot_log_later_time_but_keeps_approved_time(
    stack: RunningStack, experience: httpx.Client, system: httpx.Client, sandboxes: httpx.Client
) -> None:
    last_day = today() - dt.timedelta(days=1)
    worker_id, running = a_worker_to_terminate(system, last_day)
    approved = approved_before(system, worker_id, last_day)
    later = ok(
        system.post(
            f"{PSA}/assignments",
            headers={"Idempotency-Key": f"hr-test-{uuid.uuid4().hex}"},
            json={
                "worker_id": worker_id,
                "project_id": running["project_id"],
                "role": running["role"],
                "planned_hours_per_week": "8",
                "start_date": (last_day + dt.timedelta(days=7)).isoformat(),
                "end_date": (last_day + dt.timedelta(days=60)).isoformat(),
                "status": "proposed",
            },
        ),
        201,
    )
    entry = {"worker_id": worker_id, "project_id": running["project_id"], "hours": "2", "notes": "after the end"}

    ok(hr_process(sandboxes, stack, worker_id, "Terminate_Employee", {"Termination_Date": last_day.isoformat()}))
    try:
        (event,) = wait_for("worker.terminated", lambda: worker_events(experience, "worker.terminated", worker_id))
        assert event["data"] == {"termination_date": last_day.isoformat(), "ended_assignment_ids": [later["id"]]}
        assert EventSchemas(load_asyncapi()).errors(event) == []
        assignments = {a["id"]: a["status"] for a in all_items(system, f"{PSA}/assignments", worker_id=worker_id)}
        assert assignments[later["id"]] == "ended"
        assert assignments[running["id"]] == "confirmed", "the assignment that covers time worked stays"

        refused = experience.post(
            "/process/timesheets/v1/time-entries", json={**entry, "work_date": today().isoformat()}
        )
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert problem["type"].endswith("/worker-terminated")
        assert (problem["reason_code"], problem["termination_date"]) == ("WORKER_TERMINATED", last_day.isoformat())
        assert problem["errors"][0]["pointer"] == "/work_date"
        assert_matches_contract("process/timesheets", "POST", "/time-entries", refused)

        synced = ok(
            experience.post(
                "/process/timesheets/v1/time-entry-syncs",
                json={"items": [{**entry, "client_ref": f"late-{uuid.uuid4().hex}", "work_date": today().isoformat()}]},
            )
        )
        (item,) = synced["items"]
        assert item["status"] == "error" and item["problem"]["reason_code"] == "WORKER_TERMINATED", item

        on_last_day = ok(
            experience.post("/process/timesheets/v1/time-entries", json={**entry, "work_date": last_day.isoformat()}),
            201,
        )
        experience.delete(f"/process/timesheets/v1/time-entries/{on_last_day['id']}")

        assert approved_before(system, worker_id, last_day) == approved, "approved time is kept as it was"
        assert len(worker_events(experience, "worker.terminated", worker_id)) == 1, "announced once"
    finally:
        ok(hr_process(sandboxes, stack, worker_id, "Rescind_Termination", {}))

    def logged_again() -> bool:
        response = experience.post(
            "/process/timesheets/v1/time-entries", json={**entry, "work_date": today().isoformat()}
        )
        if response.status_code != 201:
            return False
        experience.delete(f"/process/timesheets/v1/time-entries/{response.json()['id']}")
        return True

    wait_for("the termination rescinded", logged_again)


def next_monday(weeks: int) -> dt.date:
    day = today()
    return day + dt.timedelta(days=7 * weeks - day.weekday())


def test_a_leave_of_absence_takes_its_days_off_the_workers_availability(
    stack: RunningStack, experience: httpx.Client, system: httpx.Client, sandboxes: httpx.Client
) -> None:
    worker_id = "wrk_e1012"
    capacity = Decimal(ok(system.get(f"/system/hr/v1/workers/{worker_id}"))["capacity_hours_per_week"])
    first, last = next_monday(3), next_monday(3) + dt.timedelta(days=4)
    span = {"from_date": first.isoformat(), "to_date": (first + dt.timedelta(days=13)).isoformat()}
    before = experience.get(AVAILABILITY.format(worker_id=worker_id), params=span)
    assert_matches_contract("process/staffing", "GET", "/workers/{worker_id}/availability", before)
    before_body = ok(before)
    assert Decimal(before_body["capacity_hours"]) == capacity * 2 and before_body["leave_days"] == []

    ok(
        hr_process(
            sandboxes,
            stack,
            worker_id,
            "Request_Leave_Of_Absence",
            {
                "First_Day_Of_Leave": first.isoformat(),
                "Estimated_Last_Day_Of_Leave": last.isoformat(),
                "Leave_Type": "Vacation",
            },
        )
    )
    (event,) = wait_for("worker.leave_recorded", lambda: worker_events(experience, "worker.leave_recorded", worker_id))
    assert event["data"] == {"first_day": first.isoformat(), "last_day": last.isoformat(), "leave_type": "vacation"}
    assert EventSchemas(load_asyncapi()).errors(event) == []

    after = wait_for(
        "the leave in the availability",
        lambda: (lambda body: body if body["leave_days"] else None)(
            ok(experience.get(AVAILABILITY.format(worker_id=worker_id), params=span))
        ),
    )
    assert after["leave_days"] == [(first + dt.timedelta(days=n)).isoformat() for n in range(5)]
    assert Decimal(after["leave_hours"]) == capacity
    assert Decimal(after["available_hours"]) == capacity
    assert Decimal(after["planned_hours"]) <= Decimal(before_body["planned_hours"])
    away = ok(
        experience.get(
            AVAILABILITY.format(worker_id=worker_id),
            params={"from_date": first.isoformat(), "to_date": last.isoformat()},
        )
    )
    # a week away: nothing available, and confirmed assignments plan nothing on it (the planned baseline)
    assert (away["available_hours"], away["planned_hours"], away["planned_utilization"]) == ("0", "0", None)
    # the leaders' utilisation reads the same rule: a week away is no capacity and no plan, not an idle consultant
    week = {"from_date": first.isoformat(), "to_date": last.isoformat(), "worker_id": worker_id}
    on_leave = wait_for(
        "the leave in the utilisation",
        lambda: (lambda rows: rows[0] if rows and Decimal(rows[0]["capacity_hours"]) == 0 else None)(
            ok(experience.get("/process/insights/v1/utilization", params=week))["workers"]
        ),
    )
    assert (Decimal(on_leave["planned_hours"]), on_leave["planned_utilization_pct"]) == (0, None)

    again = hr_process(
        sandboxes,
        stack,
        worker_id,
        "Request_Leave_Of_Absence",
        {
            "First_Day_Of_Leave": last.isoformat(),
            "Estimated_Last_Day_Of_Leave": (last + dt.timedelta(days=2)).isoformat(),
            "Leave_Type": "Sick",
        },
    )
    assert again.status_code == 409, "a leave overlapping another is refused by HR"
    assert len(worker_events(experience, "worker.leave_recorded", worker_id)) == 1


@pytest.mark.parametrize(
    ("worker_id", "params", "status"),
    [
        ("wrk_e1002", {"from_date": "2026-12-10", "to_date": "2026-12-01"}, 400),
        ("wrk_e1002", {"from_date": "2026-01-01", "to_date": "2027-01-02"}, 400),
        ("wrk_e1002", {"from_date": "2026-02-30", "to_date": "2026-03-02"}, 400),
        ("wrk_e1002", {"from_date": "9999-12-31", "to_date": "99999-01-01"}, 400),
        ("wrk_e1002", {"from_date": "2026-12-01"}, 400),
        ("wrk_e9999", {"from_date": "2026-12-01", "to_date": "2026-12-05"}, 404),
        ("wrk_e1002%0D%0AX-Injected:%201", {"from_date": "2026-12-01", "to_date": "2026-12-05"}, 404),
        ("wrk_e1002%2F..%2Fwrk_e1001", {"from_date": "2026-12-01", "to_date": "2026-12-05"}, 404),
    ],
)
def test_bad_availability_requests_get_a_problem(
    experience: httpx.Client, worker_id: str, params: dict[str, str], status: int
) -> None:
    response = experience.get(f"/process/staffing/v1/workers/{worker_id}/availability", params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("Terminate_Employee", {"Termination_Date": "2026-13-01"}),
        ("Terminate_Employee", {"Termination_Date": "1900-01-01"}),
        ("Terminate_Employee", {}),
        (
            "Request_Leave_Of_Absence",
            {"First_Day_Of_Leave": "2026-12-10", "Estimated_Last_Day_Of_Leave": "2026-12-01", "Leave_Type": "Vacation"},
        ),
        (
            "Request_Leave_Of_Absence",
            {"First_Day_Of_Leave": "2026-01-01", "Estimated_Last_Day_Of_Leave": "2028-01-01", "Leave_Type": "Vacation"},
        ),
        (
            "Request_Leave_Of_Absence",
            {
                "First_Day_Of_Leave": "2026-12-01",
                "Estimated_Last_Day_Of_Leave": "2026-12-02",
                "Leave_Type": "Sabbatical",
            },
        ),
    ],
)
def test_hr_refuses_a_bad_termination_or_leave(
    stack: RunningStack, sandboxes: httpx.Client, name: str, body: Any
) -> None:
    response = hr_process(sandboxes, stack, "wrk_e1003", name, body)
    assert response.status_code == 400 and response.json()["error"], response.text
