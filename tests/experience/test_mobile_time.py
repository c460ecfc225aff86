"""Mobile time entry, v1 and v2: a consultant's week, offline sync, edits, submission, and real versioning."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import httpx
import pytest
import yaml

from contracts import CONTRACTS_DIR
from tests.support.contract_checks import assert_matches_contract
from tests.support.days import a_day_of_its_own, this_monday, week_of
from tests.support.stack import DEMO_CONSULTANT, RunningStack

V1 = "/experience/mobile-time/v1"
V2 = "/experience/mobile-time/v2"
API = "experience/mobile-time"


def ref() -> str:
    return "phone-" + uuid.uuid4().hex[:12]


def work_day() -> dt.date:
    """A day no other test logs on (the demo consultant is staffed on prj_4001 throughout the window)."""
    return a_day_of_its_own()


def test_offline_entry_synced_twice_exists_once(consultant: httpx.Client) -> None:
    client_ref, day = ref(), work_day()
    batch = {"items": [{"client_ref": client_ref, "project_id": "prj_4001", "work_date": day.isoformat(),
                        "hours": "8", "notes": "Offline workshop"}]}

    first = consultant.post(f"{V1}/me/time-entry-syncs", json=batch)
    second = consultant.post(f"{V1}/me/time-entry-syncs", json=batch)

    assert first.status_code == 200, first.text
    assert_matches_contract(API, "POST", "/me/time-entry-syncs", first)
    assert [i["status"] for i in first.json()["items"]] == ["created"]
    assert [i["status"] for i in second.json()["items"]] == ["existing"]
    entry_id = first.json()["items"][0]["entry"]["time_entry_id"]
    assert second.json()["items"][0]["entry"]["time_entry_id"] == entry_id
    week = consultant.get(f"{V1}/me/weeks/{week_of(day).isoformat()}").json()
    mine = [e for e in week["entries"] if e["client_ref"] == client_ref]
    assert [(e["time_entry_id"], e["hours"], e["state"]) for e in mine] == [(entry_id, "8", "draft")]


@pytest.fixture(scope="module")
def someone_elses_entry(stack: RunningStack) -> str:
    with stack.client("process-tier") as system:
        items = system.get("/system/psa/v1/time-entries", params={"project_id": "prj_4002", "limit": 50}).json()
    return str(next(e["id"] for e in items["items"] if e["worker_id"] != DEMO_CONSULTANT))


def test_one_bad_entry_does_not_fail_the_batch(consultant: httpx.Client, someone_elses_entry: str) -> None:
    good, bad_hours, bad_date, unknown = ref(), ref(), ref(), ref()
    response = consultant.post(f"{V1}/me/time-entry-syncs", json={"items": [
        {"client_ref": good, "project_id": "prj_4001", "work_date": work_day().isoformat(), "hours": "1.5"},
        {"client_ref": bad_hours, "project_id": "prj_4001", "work_date": work_day().isoformat(), "hours": "30"},
        {"client_ref": bad_date, "project_id": "prj_4001", "work_date": "2026-13-45", "hours": "2"},
        {"client_ref": unknown, "op": "delete"},
        {"client_ref": ref(), "op": "upsert", "time_entry_id": someone_elses_entry, "hours": "1"},
    ]})

    assert response.status_code == 200, response.text
    assert_matches_contract(API, "POST", "/me/time-entry-syncs", response)
    items = response.json()["items"]
    assert [i["status"] for i in items] == ["created", "error", "error", "error", "error"]
    assert items[1]["problem"]["errors"][0]["pointer"] == "/items/1/hours"
    assert items[2]["problem"]["errors"][0]["pointer"] == "/items/2/work_date"
    assert items[3]["problem"]["errors"][0]["pointer"] == "/items/3/time_entry_id"
    # That entry exists but is not this consultant's: as unknown to them as a missing one.
    assert items[4]["problem"]["status"] == 404


def test_edit_and_delete_a_draft(consultant: httpx.Client) -> None:
    created = consultant.post(f"{V1}/me/time-entries", json={
        "project_id": "prj_4001", "work_date": work_day().isoformat(), "hours": "2", "client_ref": ref()})
    assert created.status_code == 201, created.text
    assert_matches_contract(API, "POST", "/me/time-entries", created)
    entry_id = created.json()["time_entry_id"]

    changed = consultant.patch(f"{V1}/me/time-entries/{entry_id}", json={"hours": "3.25", "notes": "Longer"})
    assert changed.status_code == 200, changed.text
    assert_matches_contract(API, "PATCH", "/me/time-entries/{time_entry_id}", changed)
    assert (changed.json()["hours"], changed.json()["notes"]) == ("3.25", "Longer")

    deleted = consultant.delete(f"{V1}/me/time-entries/{entry_id}")
    assert deleted.status_code == 204
    gone = consultant.patch(f"{V1}/me/time-entries/{entry_id}", json={"hours": "1"})
    assert gone.status_code == 404
    assert_matches_contract(API, "PATCH", "/me/time-entries/{time_entry_id}", gone)


def test_someone_elses_entry_is_not_found(consultant: httpx.Client, someone_elses_entry: str) -> None:
    response = consultant.patch(f"{V1}/me/time-entries/{someone_elses_entry}", json={"hours": "1"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_submit_my_week(consultant: httpx.Client) -> None:
    day = work_day()
    week = week_of(day).isoformat()
    created = consultant.post(f"{V1}/me/time-entries", json={
        "project_id": "prj_4001", "work_date": day.isoformat(), "hours": "4", "client_ref": ref()}).json()

    response = consultant.post(f"{V1}/me/weeks/{week}/submissions")

    assert response.status_code == 200, response.text
    assert_matches_contract(API, "POST", "/me/weeks/{week_start}/submissions", response)
    body = response.json()
    assert {"time_entry_id": created["time_entry_id"], "result": "submitted", "state": "submitted",
            "detail": None} in body["items"]
    after = consultant.get(f"{V1}/me/weeks/{week}").json()
    assert after["submittable_entries"] == 0
    assert all(e["state"] != "draft" for e in after["entries"])


def test_my_week_totals_and_etag(consultant: httpx.Client) -> None:
    week = this_monday().isoformat()
    first = consultant.get(f"{V1}/me/weeks/{week}")

    assert first.status_code == 200, first.text
    assert_matches_contract(API, "GET", "/me/weeks/{week_start}", first)
    body = first.json()
    assert len(body["days"]) == 7
    assert Decimal(body["total_hours"]) == sum(Decimal(e["hours"]) for e in body["entries"])
    assert Decimal(body["total_hours"]) == sum(Decimal(d["hours"]) for d in body["days"])
    assert Decimal(body["total_hours"]) == sum(Decimal(p["hours"]) for p in body["projects"])
    again = consultant.get(f"{V1}/me/weeks/{week}", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_v1_and_v2_speak_different_shapes_of_the_same_entry(consultant: httpx.Client) -> None:
    day = work_day()
    created = consultant.post(f"{V2}/me/time-entries", json={
        "project_id": "prj_4001", "work_date": day.isoformat(), "minutes": 90,
        "work_type": "non_billable_internal", "client_ref": ref()})
    assert created.status_code == 201, created.text
    assert_matches_contract(API, "POST", "/me/time-entries", created, version=2)
    v2_entry = created.json()
    assert (v2_entry["minutes"], v2_entry["work_type"]) == (90, "non_billable_internal")
    assert "hours" not in v2_entry and "billable" not in v2_entry

    week = week_of(day).isoformat()
    v1_week, v2_week = consultant.get(f"{V1}/me/weeks/{week}"), consultant.get(f"{V2}/me/weeks/{week}")
    assert_matches_contract(API, "GET", "/me/weeks/{week_start}", v2_week, version=2)
    v1_entry = next(e for e in v1_week.json()["entries"] if e["time_entry_id"] == v2_entry["time_entry_id"])
    assert (v1_entry["hours"], v1_entry["billable"]) == ("1.5", False)
    assert v2_week.json()["total_minutes"] == sum(e["minutes"] for e in v2_week.json()["entries"])


def test_v1_announces_its_deprecation_and_successor(consultant: httpx.Client) -> None:
    info = yaml.safe_load((CONTRACTS_DIR / API / "v1.yaml").read_text())["info"]
    sunset = dt.datetime.fromisoformat(str(info["x-sunset"])).replace(tzinfo=dt.UTC)
    week = this_monday().isoformat()

    for response in (consultant.get(f"{V1}/me/weeks/{week}"), consultant.get(f"{V1}/me/assignments"),
                     consultant.patch(f"{V1}/me/time-entries/te_999999", json={"hours": "1"})):
        assert response.headers["deprecation"].startswith("@")
        assert int(response.headers["deprecation"][1:]) <= int(sunset.timestamp())
        assert response.headers["sunset"] == sunset.strftime("%a, %d %b %Y %H:%M:%S GMT")
        path = response.request.url.path
        # The successor is the newest version (v3; v2 is deprecated in turn).
        assert response.headers["link"] == f'<{path.replace("/v1/", "/v3/")}>; rel="successor-version"'
    assert info["x-lifecycle"] == "deprecated"
    v3 = consultant.get(f"/experience/mobile-time/v3/me/weeks/{week}")
    assert "deprecation" not in v3.headers and "sunset" not in v3.headers


def test_v2_requires_a_work_type_and_whole_minutes(consultant: httpx.Client) -> None:
    missing = consultant.post(f"{V2}/me/time-entries", json={
        "project_id": "prj_4001", "work_date": work_day().isoformat(), "minutes": 60})
    assert missing.status_code == 400
    assert_matches_contract(API, "POST", "/me/time-entries", missing, version=2)
    assert {"pointer": "/work_type"}.items() <= missing.json()["errors"][0].items()

    odd = consultant.post(f"{V2}/me/time-entries", json={
        "project_id": "prj_4001", "work_date": work_day().isoformat(), "minutes": 0, "work_type": "billable_delivery"})
    assert odd.status_code == 400
    assert odd.json()["errors"][0]["pointer"] == "/minutes"


def test_v2_sync_is_idempotent_and_per_item(consultant: httpx.Client) -> None:
    client_ref = ref()
    batch = {"items": [
        {"client_ref": client_ref, "project_id": "prj_4001", "work_date": work_day().isoformat(), "minutes": 480,
         "work_type": "billable_delivery"},
        {"client_ref": ref(), "project_id": "prj_4001", "work_date": work_day().isoformat(), "minutes": 480},
    ]}
    first, second = (consultant.post(f"{V2}/me/time-entry-syncs", json=batch) for _ in range(2))
    assert_matches_contract(API, "POST", "/me/time-entry-syncs", first, version=2)
    assert [i["status"] for i in first.json()["items"]] == ["created", "error"]
    assert first.json()["items"][1]["problem"]["errors"][0]["pointer"] == "/items/1/work_type"
    assert [i["status"] for i in second.json()["items"]] == ["existing", "error"]
    assert first.json()["items"][0]["entry"]["minutes"] == 480


def test_a_phone_cannot_reach_another_workers_entry_by_guessing_its_client_ref(stack: RunningStack) -> None:
    client_ref = ref()
    body = {"project_id": "prj_4001", "work_date": work_day().isoformat(), "hours": "1", "client_ref": client_ref}
    with stack.client("mobile-app", subject="wrk_e1001") as mine, stack.client("mobile-app",
                                                                              subject="wrk_e1005") as other:
        created = mine.post(f"{V1}/me/time-entries", json=body)
        assert created.status_code == 201, created.text
        theirs = other.post(f"{V1}/me/time-entries", json=body)
    # The same phone id from someone else is their own entry (or a refusal), never the first consultant's.
    assert theirs.json().get("time_entry_id") != created.json()["time_entry_id"]


def test_a_rejected_entry_waits_for_its_owner_to_edit_or_delete_it(consultant: httpx.Client,
                                                                  manager: httpx.Client) -> None:
    day = a_day_of_its_own()
    week = week_of(day).isoformat()
    kept, dropped = (consultant.post(f"{V2}/me/time-entries", json={
        "project_id": "prj_4001", "work_date": day.isoformat(), "minutes": 60, "work_type": "billable_delivery",
        "client_ref": ref()}).json()["time_entry_id"] for _ in range(2))
    assert consultant.post(f"{V2}/me/weeks/{week}/submissions").status_code == 200
    rejected = manager.post("/experience/approvals/v1/decisions", json={
        "time_entry_ids": [kept, dropped], "decision": "reject", "reason": "book it on the workshop task"})
    assert rejected.status_code == 200 and rejected.json()["rejected"] == 2, rejected.text

    again = consultant.post(f"{V2}/me/weeks/{week}/submissions")

    assert again.status_code == 200, again.text
    results = {i["time_entry_id"]: (i["result"], i["state"]) for i in again.json()["items"]}
    assert results[kept] == results[dropped] == ("unchanged", "rejected")  # not resent as it was

    edited = consultant.patch(f"{V2}/me/time-entries/{kept}", json={"minutes": 90})
    assert edited.status_code == 200 and edited.json()["state"] == "draft", edited.text
    deleted = consultant.delete(f"{V2}/me/time-entries/{dropped}")
    assert deleted.status_code == 204, deleted.text
    entries = {e["time_entry_id"]: e["state"] for e in consultant.get(f"{V2}/me/weeks/{week}").json()["entries"]}
    assert entries[kept] == "draft" and dropped not in entries
    resent = {i["time_entry_id"]: i["result"] for i in consultant.post(f"{V2}/me/weeks/{week}/submissions").json()[
        "items"]}
    assert resent[kept] == "submitted" and dropped not in resent

    # Submitted (or approved) time is not deleted; ids that are not mine, or not ids, are problems, never a 500.
    refused = consultant.delete(f"{V2}/me/time-entries/{kept}")
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    for hostile in ("te_999999", dropped, "te%2F..%2Fx", "te_1%0D%0AX-Injected:%201", "t" * 5000):
        answer = consultant.delete(f"{V2}/me/time-entries/{hostile}")
        assert 400 <= answer.status_code < 500, (hostile, answer.status_code, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    batch = consultant.post(f"{V2}/me/time-entry-syncs", json={"items": [
        {"client_ref": ref(), "op": "delete", "time_entry_id": kept}]})
    assert batch.status_code == 200, batch.text
    assert batch.json()["items"][0]["problem"]["status"] == 409
