"""Time entry writes for the mobile app, through the process tier (the only tier that writes to the PSA)."""

from __future__ import annotations

import uuid

import httpx

from tests.support.contract_checks import assert_matches_contract
from tests.support.days import a_day_of_its_own, week_of
from tests.support.flows import all_items, ok

TIME = "/process/timesheets/v1"


def test_an_offline_entry_synced_twice_exists_once(experience: httpx.Client) -> None:
    ref, day = f"phone-{uuid.uuid4().hex[:8]}:1", a_day_of_its_own()
    item = {"client_ref": ref, "worker_id": "wrk_e1001", "project_id": "prj_4001", "task_id": "tsk_4001-t2",
            "work_date": day.isoformat(), "hours": "8", "notes": "offline"}

    first = experience.post(f"{TIME}/time-entry-syncs", json={"items": [item]})
    second = experience.post(f"{TIME}/time-entry-syncs", json={"items": [item]})

    assert_matches_contract("process/timesheets", "POST", "/time-entry-syncs", first)
    assert first.json()["items"][0]["status"] == "created", first.text
    assert second.json()["items"][0]["status"] == "existing"
    entry_id = first.json()["items"][0]["time_entry"]["id"]
    assert second.json()["items"][0]["time_entry"]["id"] == entry_id
    mine = all_items(experience, f"{TIME}/time-entries", worker_id="wrk_e1001", from_date=day.isoformat(),
                     to_date=day.isoformat())
    assert [e["id"] for e in mine if e.get("client_ref") == ref] == [entry_id]


def test_create_change_submit_and_reject_with_clear_errors(experience: httpx.Client) -> None:
    day = a_day_of_its_own()
    body = {"worker_id": "wrk_e1001", "project_id": "prj_4001", "task_id": "tsk_4001-t1",
            "work_date": day.isoformat(), "hours": "4", "client_ref": f"web-{uuid.uuid4().hex[:8]}"}
    created = experience.post(f"{TIME}/time-entries", json=body)
    assert created.status_code == 201, created.text
    assert_matches_contract("process/timesheets", "POST", "/time-entries", created)
    assert experience.post(f"{TIME}/time-entries", json=body).status_code == 200
    entry = created.json()

    changed = ok(experience.patch(f"{TIME}/time-entries/{entry['id']}", json={"hours": "5.5"}))
    assert changed["hours"] in ("5.5", "5.50")

    submitted = ok(experience.post(f"{TIME}/submissions", json={
        "worker_id": "wrk_e1001", "week_start": week_of(day).isoformat(), "time_entry_ids": [entry["id"]]}))
    assert submitted["items"][0]["result"] == "submitted"

    not_manager = ok(experience.post(f"{TIME}/approvals", json={
        "time_entry_ids": [entry["id"]], "approver_id": "wrk_e1003", "decision": "approve"}), 201)
    assert not_manager["entries"][0]["result"] == "refused"
    own_time = experience.post(f"{TIME}/approvals", json={
        "time_entry_ids": [entry["id"]], "approver_id": "wrk_e1001", "decision": "approve"})
    assert own_time.status_code == 403 and own_time.json()["errors"][0]["pointer"] == "/time_entry_ids/0"

    no_reason = experience.post(f"{TIME}/approvals", json={
        "time_entry_ids": [entry["id"]], "approver_id": "wrk_e1002", "decision": "reject"})
    assert no_reason.status_code == 400 and no_reason.json()["errors"][0]["pointer"] == "/reason"
    rejected = ok(experience.post(f"{TIME}/approvals", json={
        "time_entry_ids": [entry["id"]], "approver_id": "wrk_e1002", "decision": "reject",
        "reason": "book this on Delivery"}), 201)
    assert rejected["entries"][0]["result"] == "rejected"
    assert ok(experience.get(f"{TIME}/time-entries/{entry['id']}"))["rejection_reason"] == "book this on Delivery"


def test_bad_input_is_a_problem_not_a_crash(experience: httpx.Client) -> None:
    too_long = experience.post(f"{TIME}/time-entries", json={
        "worker_id": "wrk_e1001", "project_id": "prj_4001", "work_date": "2026-11-23", "hours": "25"})
    assert too_long.status_code == 400
    assert too_long.headers["content-type"] == "application/problem+json"
    unknown = experience.get(f"{TIME}/time-entries/te_999999999")
    assert unknown.status_code == 404
    empty = experience.post(f"{TIME}/approvals", json={"time_entry_ids": [], "approver_id": "x", "decision": "approve"})
    assert empty.status_code == 400
