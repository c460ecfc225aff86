"""Certinia's wire as an integration meets it on the ``certinia`` PSA backend, and how canonical time entries sit
on Certinia's weekly timecards: one header per entry, hours on its day, the correction chain in one all-or-none
composite request, minutes Certinia cannot keep refused rather than rounded."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.certinia.org import API, certinia_session
from tests.support.stack import RunningStack
from tests.support.system import SystemApis

WORKER = "wrk_e1011"
WEDNESDAY = dt.date(2026, 12, 2)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def sandbox(stack: RunningStack) -> str:
    return stack.stack.url("sandbox-psa")


@pytest.fixture
def certinia(stack: RunningStack) -> Iterator[httpx.Client]:
    """The org as the integration user sees it: a session from the JWT bearer flow."""
    with certinia_session(stack) as client:
        yield client


def timecards(certinia: httpx.Client, where: str) -> list[dict[str, Any]]:
    answer = certinia.get(
        "/query", params={"q": "SELECT FIELDS(ALL) FROM pse__Timecard_Header__c WHERE " + where + " LIMIT 200"}
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["records"])


def timecard(certinia: httpx.Client, entry_id: str) -> dict[str, Any]:
    (row,) = timecards(certinia, f"Name = 'TC-{entry_id.removeprefix('te_').upper()}'")
    return row


def new_entry(apis: SystemApis, **overrides: object) -> dict[str, Any]:
    body = {
        "worker_id": WORKER,
        "project_id": "prj_4001",
        "task_id": "tsk_4001-t2",
        "work_date": WEDNESDAY.isoformat(),
        "hours": "7.5",
        "notes": "Workshop",
        **overrides,
    }
    created: dict[str, Any] = apis.json("POST", "psa", "/time-entries", 201, json=body)
    return created


def transition(apis: SystemApis, entry_id: str, to_state: str, **extra: str) -> dict[str, Any]:
    changed: dict[str, Any] = apis.json(
        "POST",
        "psa",
        "/time-entries/{time_entry_id}/transitions",
        200,
        path={"time_entry_id": entry_id},
        json={"to_state": to_state, **extra},
    )
    return changed


def test_a_time_entry_is_one_weekly_timecard_with_hours_on_its_day(apis: SystemApis, certinia: httpx.Client) -> None:
    entry = new_entry(apis)
    row = timecard(certinia, entry["id"])

    assert (row["pse__Start_Date__c"], row["pse__End_Date__c"]) == ("2026-11-30", "2026-12-06")  # Monday..Sunday
    assert [row[f"pse__{day}_Hours__c"] for day in DAYS] == [0, 0, 7.5, 0, 0, 0, 0]
    assert row["pse__Wednesday_Notes__c"] == "Workshop" and row["pse__Total_Hours__c"] == 7.5
    assert (row["pse__Status__c"], row["pse__Billable__c"], row["Version__c"]) == ("Saved", True, 1)

    moved = apis.json(
        "PATCH",
        "psa",
        "/time-entries/{time_entry_id}",
        200,
        path={"time_entry_id": entry["id"]},
        json={"work_date": "2026-12-07", "hours": "2"},
    )
    assert moved["work_date"] == "2026-12-07" and moved["minutes"] == 120
    row = timecard(certinia, entry["id"])
    assert row["pse__Start_Date__c"] == "2026-12-07" and row["pse__Monday_Hours__c"] == 2
    assert row["pse__Wednesday_Hours__c"] == 0 and row["pse__Total_Hours__c"] == 2

    transition(apis, entry["id"], "submitted")
    transition(apis, entry["id"], "approved", actor_id="wrk_e1002")
    row = timecard(certinia, entry["id"])
    assert (row["pse__Status__c"], row["pse__Submitted__c"], row["pse__Approved__c"]) == ("Approved", True, True)
    assert transition(apis, entry["id"], "posted")["state"] == "posted"
    assert timecard(certinia, entry["id"])["pse__Billed__c"] is True


def test_minutes_certinia_cannot_keep_are_refused_not_rounded(apis: SystemApis, certinia: httpx.Client) -> None:
    before = len(timecards(certinia, "pse__Timecard_Notes__c = null AND pse__Wednesday_Notes__c = 'One minute'"))
    refused = apis.json(
        "POST",
        "psa",
        "/time-entries",
        422,
        json={
            "worker_id": WORKER,
            "project_id": "prj_4001",
            "work_date": WEDNESDAY.isoformat(),
            "hours": "0.0166666666666666666666666667",
            "notes": "One minute",
        },
    )
    assert refused["errors"][0]["pointer"] == "/hours"
    assert len(timecards(certinia, "pse__Wednesday_Notes__c = 'One minute'")) == before == 0
    three = new_entry(apis, hours="0.05", notes="Three minutes")  # 0.05 h is exact in two decimals
    assert three["minutes"] == 3 and timecard(certinia, three["id"])["pse__Wednesday_Hours__c"] == 0.05


def test_a_correction_and_the_entry_it_supersedes_are_written_together_once(
    apis: SystemApis, certinia: httpx.Client
) -> None:
    entry = new_entry(apis, hours="4")
    transition(apis, entry["id"], "submitted")
    transition(apis, entry["id"], "approved", actor_id="wrk_e1002")
    path = {"time_entry_id": entry["id"]}

    def correct(hours: str) -> httpx.Response:
        return apis.http.post(f"/system/psa/v1/time-entries/{entry['id']}/corrections", json={"hours": hours})

    with ThreadPoolExecutor(max_workers=4) as pool:  # racing corrections: one wins, the others are told who did
        answers = list(pool.map(correct, ["3", "3.5", "2", "1"]))
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409], [a.text for a in answers]
    winner = next(a.json() for a in answers if a.status_code == 201)
    assert all(a.json()["type"].endswith("/already-superseded") for a in answers if a.status_code == 409)

    old, new = timecard(certinia, entry["id"]), timecard(certinia, winner["id"])
    assert old["Superseded_By__c"] == new["Id"] and new["Supersedes__c"] == old["Id"]
    assert (new["Version__c"], new["pse__Status__c"], old["pse__Status__c"]) == (2, "Saved", "Approved")
    assert len(timecards(certinia, f"Supersedes__c = '{old['Id']}'")) == 1  # nothing twice
    assert old["pse__Wednesday_Hours__c"] == 4  # approved hours never change in place
    assert (
        apis.json("GET", "psa", "/time-entries/{time_entry_id}", 200, path=path)["superseded_by_id"] == (winner["id"])
    )


def test_hostile_values_stay_values_in_soql(apis: SystemApis) -> None:
    ref = f"x' OR Name != 'y\\' {uuid.uuid4()}"
    first = new_entry(apis, client_ref=ref, hours="1")
    again = apis.json(
        "POST",
        "psa",
        "/time-entries",
        200,
        json={
            "worker_id": WORKER,
            "project_id": "prj_4001",
            "work_date": WEDNESDAY.isoformat(),
            "hours": "1",
            "client_ref": ref,
        },
    )
    assert again["id"] == first["id"] and again["client_ref"] == ref
    for worker in ("wrk_e1011' OR Name != '", "wrk_e1011\\", "wrk_%27"):
        assert apis.json("GET", "psa", "/time-entries", 200, params={"worker_id": worker})["items"] == []
    apis.call("GET", "psa", "/time-entries/{time_entry_id}", 404, path={"time_entry_id": "te_1'%20OR%20'1"})


def test_the_org_refuses_calls_without_a_session_in_salesforces_error_shape(stack: RunningStack) -> None:
    refused = httpx.get(sandbox(stack) + API + "/query", params={"q": "SELECT Id FROM pse__Proj__c"})
    assert refused.status_code == 401
    assert refused.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID", "fields": []}
    ]
    secret = httpx.post(sandbox(stack) + "/services/oauth2/token", data={"grant_type": "client_credentials"})
    assert secret.status_code == 400 and secret.json()["error"] == "unsupported_grant_type"


def test_certinias_own_rules_hold_whoever_calls(certinia: httpx.Client) -> None:
    (approved,) = certinia.get(
        "/query", params={"q": "SELECT Id FROM pse__Timecard_Header__c WHERE pse__Status__c = 'Approved' LIMIT 1"}
    ).json()["records"]
    edited = certinia.patch(f"/sobjects/pse__Timecard_Header__c/{approved['Id']}", json={"pse__Monday_Hours__c": 1})
    assert edited.status_code == 400 and edited.json()[0]["errorCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    deleted = certinia.delete(f"/sobjects/pse__Timecard_Header__c/{approved['Id']}")
    assert deleted.status_code == 400
    unbounded = certinia.get("/query", params={"q": "SELECT FIELDS(ALL) FROM pse__Proj__c"})
    assert unbounded.status_code == 400 and unbounded.json()[0]["errorCode"] == "MALFORMED_QUERY"
    unknown = certinia.get("/query", params={"q": "SELECT Id FROM Opportunity"})
    assert unknown.status_code == 400 and unknown.json()[0]["errorCode"] == "INVALID_TYPE"
    deep = certinia.post("/sobjects/pse__Timecard_Header__c", content=b"[" * 5000 + b"]" * 5000)
    assert deep.status_code == 400
    huge = certinia.patch(f"/sobjects/pse__Timecard_Header__c/{approved['Id']}", json={"pse__Monday_Hours__c": 1e300})
    assert huge.status_code == 400


def test_the_orgs_daily_api_budget_is_reported_and_when_spent_is_a_503_naming_certinia(
    certinia: httpx.Client, apis: SystemApis, stack: RunningStack
) -> None:
    limits = sandbox(stack) + "/_sandbox/limits"
    httpx.put(limits, json={"daily": 3, "used": 1}).raise_for_status()
    try:
        answered = certinia.get("/query", params={"q": "SELECT Id FROM pse__Proj__c LIMIT 1"})
        assert answered.headers["sforce-limit-info"] == "api-usage=2/3"
        certinia.get("/query", params={"q": "SELECT Id FROM pse__Proj__c LIMIT 1"})
        refused = certinia.get("/query", params={"q": "SELECT Id FROM pse__Proj__c LIMIT 1"})
        assert refused.status_code == 403 and refused.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        response = apis.call("GET", "psa", "/projects/{project_id}", 503, path={"project_id": "prj_4002"})
    finally:
        httpx.delete(limits).raise_for_status()
    problem = response.json()
    assert problem["type"].endswith("/vendor-limit-exceeded") and problem["downstream"] == "certinia"
    assert int(response.headers["retry-after"]) >= 1
    apis.call("GET", "psa", "/projects/{project_id}", 200, path={"project_id": "prj_4002"})


def test_an_expired_session_is_renewed_by_the_jwt_bearer_flow(apis: SystemApis, stack: RunningStack) -> None:
    auth = sandbox(stack) + "/_sandbox/auth"
    apis.call("GET", "psa", "/projects/{project_id}", 200, path={"project_id": "prj_4001"})
    issued = httpx.get(auth).json()["issued"]
    httpx.delete(auth).raise_for_status()  # every session the org handed out expires
    apis.call("GET", "psa", "/projects/{project_id}", 200, path={"project_id": "prj_4001"})
    assert httpx.get(auth).json()["issued"] == issued + 1


def test_a_timecard_with_time_on_several_days_is_named_not_misread(certinia: httpx.Client, apis: SystemApis) -> None:
    """Entered in Certinia's own weekly grid: two days on one header is no single time entry, and is not read as
    one (no hours dropped): the caller is told which timecard."""
    contact = certinia.get("/query", params={"q": "SELECT Id FROM Contact WHERE Employee_Number__c = 'E1012'"})
    project = certinia.get("/query", params={"q": "SELECT Id FROM pse__Proj__c WHERE pse__Project_ID__c = 'PRJ-4003'"})
    created = certinia.post(
        "/sobjects/pse__Timecard_Header__c",
        json={
            "pse__Resource__c": contact.json()["records"][0]["Id"],
            "pse__Project__c": project.json()["records"][0]["Id"],
            "pse__Start_Date__c": "2026-11-30",
            "pse__End_Date__c": "2026-12-06",
            "pse__Monday_Hours__c": 8,
            "pse__Tuesday_Hours__c": 4,
        },
    )
    assert created.status_code == 201, created.text
    name = certinia.get(f"/sobjects/pse__Timecard_Header__c/{created.json()['id']}").json()["Name"]

    read = apis.http.get(f"/system/psa/v1/time-entries/te_{name.removeprefix('TC-')}")
    assert read.status_code == 502 and read.headers["content-type"] == "application/problem+json"
    assert name in read.json()["detail"] and read.json()["downstream"] == "certinia"
