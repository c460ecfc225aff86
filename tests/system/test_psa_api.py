"""PSA system API through the real stack: every operation, its errors, idempotency and versions."""

from __future__ import annotations

import datetime as dt
import uuid

from tests.support.system import SystemApis

WORKER = "wrk_e1010"  # not the demo consultant, whose assignments other tests count
TODAY = dt.datetime.now(dt.UTC).date()


def new_entry(apis: SystemApis, **overrides: object) -> dict[str, object]:
    body = {"worker_id": WORKER, "project_id": "prj_4001", "task_id": "tsk_4001-t2",
            "work_date": TODAY.isoformat(), "hours": "7.5", "notes": "Delivery", **overrides}
    return apis.json("POST", "psa", "/time-entries", 201, json=body)


def test_projects_list_read_create_and_change(apis: SystemApis) -> None:
    page = apis.json("GET", "psa", "/projects", 200, params={"customer_id": "cus_1001", "limit": 1})
    assert [p["customer_id"] for p in page["items"]] == ["cus_1001"] and page["next_cursor"]
    rest = apis.json("GET", "psa", "/projects", 200, params={"customer_id": "cus_1001", "cursor": page["next_cursor"],
                                                              "limit": 1})
    assert rest["items"][0]["id"] != page["items"][0]["id"]
    assert apis.json("GET", "psa", "/projects/{project_id}", 200, path={"project_id": "prj_4001"})["name"] == (
        "Contoso Retail: Pricing")
    apis.call("GET", "psa", "/projects/{project_id}", 404, path={"project_id": "prj_9999"})

    created = apis.json("POST", "psa", "/projects", 201, json={
        "name": "Contoso Retail: Loyalty", "contract_id": "ctr_2001", "customer_id": "cus_1001",
        "legal_entity_id": "le_us", "billing_model": "time_and_materials", "manager_id": "wrk_e1002",
        "start_date": "2026-12-01", "end_date": "2027-05-31"})
    assert created["status"] == "planned" and created["id"].startswith("prj_")
    path = {"project_id": created["id"]}
    active = apis.json("PATCH", "psa", "/projects/{project_id}", 200, path=path,
                       json={"status": "active", "budget_hours": "640"})
    assert active["status"] == "active" and active["budget_hours"] == "640"
    closed = apis.json("PATCH", "psa", "/projects/{project_id}", 200, path=path, json={"status": "closed"})
    assert closed["status"] == "closed"
    refused = apis.json("PATCH", "psa", "/projects/{project_id}", 409, path=path, json={"status": "active"})
    assert refused["from_state"] == "closed" and refused["to_state"] == "active"
    bad_dates = apis.json("POST", "psa", "/projects", 422, json={
        "name": "x", "contract_id": "ctr_2001", "customer_id": "cus_1001", "legal_entity_id": "le_us",
        "billing_model": "fixed_fee", "start_date": "2027-01-01", "end_date": "2026-01-01"})
    assert bad_dates["errors"][0]["pointer"] == "/end_date"
    unknown_manager = apis.json("POST", "psa", "/projects", 422, json={
        "name": "x", "contract_id": "ctr_2001", "customer_id": "cus_1001", "legal_entity_id": "le_us",
        "billing_model": "fixed_fee", "manager_id": "wrk_e9999"})
    assert unknown_manager["errors"][0]["pointer"] == "/manager_id"

    tasks = apis.json("GET", "psa", "/projects/{project_id}/tasks", 200, path=path)
    assert tasks["items"] == []
    task = apis.json("POST", "psa", "/projects/{project_id}/tasks", 201, path=path,
                     json={"name": "Migration", "billable": False})
    assert task["project_id"] == created["id"] and task["billable"] is False
    assert [t["id"] for t in apis.json("GET", "psa", "/projects/{project_id}/tasks", 200, path=path)["items"]] == [
        task["id"]]


def test_assignments_are_created_as_demand_and_confirmed_once(apis: SystemApis) -> None:
    mine = apis.json("GET", "psa", "/assignments", 200, params={"worker_id": WORKER, "status": "confirmed"})
    assert mine["items"] and all(a["worker_id"] == WORKER for a in mine["items"])
    demand = apis.json("POST", "psa", "/assignments", 201, json={
        "worker_id": WORKER, "project_id": "prj_4003", "role": "senior_consultant",
        "planned_hours_per_week": "16", "start_date": "2026-12-01"})
    assert demand["status"] == "proposed" and demand["role"] == "senior_consultant"
    path = {"assignment_id": demand["id"]}
    confirmed = apis.json("POST", "psa", "/assignments/{assignment_id}/transitions", 200, path=path,
                          json={"to_status": "confirmed"})
    again = apis.json("POST", "psa", "/assignments/{assignment_id}/transitions", 200, path=path,
                      json={"to_status": "confirmed"})
    assert confirmed["status"] == again["status"] == "confirmed"
    apis.json("POST", "psa", "/assignments/{assignment_id}/transitions", 200, path=path, json={"to_status": "ended"})
    refused = apis.json("POST", "psa", "/assignments/{assignment_id}/transitions", 409, path=path,
                        json={"to_status": "confirmed"})
    assert refused["type"].endswith("/invalid-transition") and refused["from_state"] == "ended"
    apis.call("POST", "psa", "/assignments/{assignment_id}/transitions", 404, path={"assignment_id": "asg_999999"},
              json={"to_status": "confirmed"})
    unknown = apis.json("POST", "psa", "/assignments", 422, json={
        "worker_id": "wrk_e9999", "project_id": "prj_4003", "role": "analyst", "planned_hours_per_week": "8",
        "start_date": "2026-12-01"})
    assert unknown["errors"][0]["pointer"] == "/worker_id"


def test_time_entry_lifecycle_submit_approve_post_invoice(apis: SystemApis) -> None:
    entry = new_entry(apis)
    path = {"time_entry_id": str(entry["id"])}
    assert entry["state"] == "draft" and entry["hours"] == "7.5"
    edited = apis.json("PATCH", "psa", "/time-entries/{time_entry_id}", 200, path=path, json={"hours": "8"})
    assert edited["hours"] == "8"
    submitted = apis.json("POST", "psa", "/time-entries/{time_entry_id}/transitions", 200, path=path,
                          json={"to_state": "submitted", "actor_id": WORKER})
    assert submitted["state"] == "submitted" and submitted["submitted_at"]
    not_editable = apis.json("PATCH", "psa", "/time-entries/{time_entry_id}", 409, path=path, json={"hours": "6"})
    assert not_editable["state"] == "submitted"
    no_reason = apis.json("POST", "psa", "/time-entries/{time_entry_id}/transitions", 422, path=path,
                          json={"to_state": "rejected"})
    assert no_reason["errors"][0]["pointer"] == "/reason"
    approved = apis.json("POST", "psa", "/time-entries/{time_entry_id}/transitions", 200, path=path,
                         json={"to_state": "approved", "actor_id": "wrk_e1002"})
    assert approved["approved_by"] == "wrk_e1002" and approved["approved_at"]
    repeat = apis.json("POST", "psa", "/time-entries/{time_entry_id}/transitions", 200, path=path,
                       json={"to_state": "approved", "actor_id": "wrk_e1002"})
    assert repeat["approved_at"] == approved["approved_at"]  # a repeat changes nothing
    back = apis.json("POST", "psa", "/time-entries/{time_entry_id}/transitions", 409, path=path,
                     json={"to_state": "draft"})
    assert (back["from_state"], back["to_state"]) == ("approved", "draft")
    for state in ("posted", "invoiced"):
        assert apis.json("POST", "psa", "/time-entries/{time_entry_id}/transitions", 200, path=path,
                         json={"to_state": state})["state"] == state
    assert apis.json("GET", "psa", "/time-entries/{time_entry_id}", 200, path=path)["state"] == "invoiced"
    apis.call("DELETE", "psa", "/time-entries/{time_entry_id}", 409, path=path)


def test_rejected_time_goes_back_to_draft_and_drafts_can_be_deleted(apis: SystemApis) -> None:
    entry = new_entry(apis, hours="2")
    path = {"time_entry_id": str(entry["id"])}
    apis.json("POST", "psa", "/time-entries/{time_entry_id}/transitions", 200, path=path,
              json={"to_state": "submitted"})
    rejected = apis.json("POST", "psa", "/time-entries/{time_entry_id}/transitions", 200, path=path,
                         json={"to_state": "rejected", "actor_id": "wrk_e1002", "reason": "Wrong task"})
    assert rejected["rejection_reason"] == "Wrong task"
    fixed = apis.json("PATCH", "psa", "/time-entries/{time_entry_id}", 200, path=path,
                      json={"task_id": "tsk_4001-t1"})
    assert fixed["task_id"] == "tsk_4001-t1" and fixed["state"] == "rejected"
    apis.json("POST", "psa", "/time-entries/{time_entry_id}/transitions", 200, path=path, json={"to_state": "draft"})
    apis.call("DELETE", "psa", "/time-entries/{time_entry_id}", 204, path=path)
    apis.call("GET", "psa", "/time-entries/{time_entry_id}", 404, path=path)


def test_client_ref_makes_an_offline_resend_harmless(apis: SystemApis) -> None:
    ref = f"phone-{uuid.uuid4()}"
    first = new_entry(apis, client_ref=ref)
    again = apis.json("POST", "psa", "/time-entries", 200, json={
        "worker_id": WORKER, "project_id": "prj_4001", "task_id": "tsk_4001-t2", "work_date": TODAY.isoformat(),
        "hours": "7.5", "notes": "Delivery", "client_ref": ref})
    assert again["id"] == first["id"] and again["client_ref"] == ref


def test_a_correction_is_a_new_version_and_history_is_kept(apis: SystemApis) -> None:
    approved = apis.json("GET", "psa", "/time-entries", 200,
                         params={"worker_id": WORKER, "state": "approved", "limit": 1})["items"][0]
    path = {"time_entry_id": approved["id"]}
    correction = apis.json("POST", "psa", "/time-entries/{time_entry_id}/corrections", 201, path=path,
                           json={"hours": "3", "notes": "Corrected"})
    old = apis.json("GET", "psa", "/time-entries/{time_entry_id}", 200, path=path)

    assert correction["version"] == approved["version"] + 1 and correction["supersedes_id"] == approved["id"]
    assert correction["state"] == "draft" and correction["hours"] == "3"
    assert old["superseded_by_id"] == correction["id"] and old["hours"] == approved["hours"]
    twice = apis.json("POST", "psa", "/time-entries/{time_entry_id}/corrections", 409, path=path, json={"hours": "4"})
    assert twice["superseded_by_id"] == correction["id"]
    superseded = apis.json("POST", "psa", "/time-entries/{time_entry_id}/transitions", 409, path=path,
                           json={"to_state": "posted"})
    assert superseded["type"].endswith("/already-superseded")
    draft = new_entry(apis, hours="1")
    apis.call("POST", "psa", "/time-entries/{time_entry_id}/corrections", 409,
              path={"time_entry_id": str(draft["id"])}, json={"hours": "2"})


def test_time_entry_filters_and_pagination(apis: SystemApis) -> None:
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).isoformat()
    recent = apis.json("GET", "psa", "/time-entries", 200, params={"worker_id": WORKER, "updated_since": since})
    assert recent["items"] and all(i["updated_at"] >= since[:19] for i in recent["items"])
    window = apis.json("GET", "psa", "/time-entries", 200, params={
        "project_id": "prj_4001", "from_date": "2026-01-01", "to_date": TODAY.isoformat(), "state": "posted",
        "limit": 3})
    assert len(window["items"]) == 3 and {i["state"] for i in window["items"]} == {"posted"}
    seen = {i["id"] for i in window["items"]}
    following = apis.json("GET", "psa", "/time-entries", 200, params={
        "project_id": "prj_4001", "from_date": "2026-01-01", "to_date": TODAY.isoformat(), "state": "posted",
        "limit": 3, "cursor": window["next_cursor"]})
    assert seen.isdisjoint(i["id"] for i in following["items"])
    other_filters = apis.json("GET", "psa", "/time-entries", 400, params={"state": "approved",
                                                                           "cursor": window["next_cursor"]})
    assert other_filters["type"].endswith("/invalid-cursor")
    assert apis.json("GET", "psa", "/time-entries", 200, params={"worker_id": "nobody"})["items"] == []
    apis.call("GET", "psa", "/time-entries", 400, params={"limit": 1001})  # pages of up to 1000 here


def test_time_entry_refusals_name_canonical_fields(apis: SystemApis) -> None:
    other_task = apis.json("POST", "psa", "/time-entries", 422, json={
        "worker_id": WORKER, "project_id": "prj_4001", "task_id": "tsk_4002-t1", "work_date": TODAY.isoformat(),
        "hours": "1"})
    # the vendor refused taskId; the caller reads its own field name
    assert [e["pointer"] for e in other_task["errors"]] == ["/task_id"]
    assert "taskId" not in other_task["detail"]
    too_long = apis.json("POST", "psa", "/time-entries", 422, json={
        "worker_id": WORKER, "project_id": "prj_4001", "work_date": TODAY.isoformat(), "hours": "25"})
    assert too_long["errors"][0]["pointer"] == "/hours"
    closed_project = apis.json("POST", "psa", "/time-entries", 422, json={
        "worker_id": WORKER, "project_id": "prj_4020", "work_date": TODAY.isoformat(), "hours": "1"})
    assert closed_project["errors"][0]["pointer"] == "/project_id"
    apis.call("POST", "psa", "/time-entries", 400, json={"worker_id": WORKER})


def test_expenses_and_milestones(apis: SystemApis) -> None:
    expenses = apis.json("GET", "psa", "/expenses", 200, params={"project_id": "prj_4001", "limit": 2})
    assert expenses["items"] and all(e["project_id"] == "prj_4001" for e in expenses["items"])
    pending = apis.json("GET", "psa", "/milestones", 200, params={"state": "pending"})["items"]
    assert pending
    path = {"milestone_id": pending[-1]["id"]}
    assert apis.json("GET", "psa", "/milestones/{milestone_id}", 200, path=path)["state"] == "pending"
    skipped = apis.json("POST", "psa", "/milestones/{milestone_id}/transitions", 409, path=path,
                        json={"to_state": "invoiced"})
    assert (skipped["from_state"], skipped["to_state"]) == ("pending", "invoiced")
    for state in ("completed", "completed", "accepted"):
        assert apis.json("POST", "psa", "/milestones/{milestone_id}/transitions", 200, path=path,
                         json={"to_state": state})["state"] == state
    apis.call("GET", "psa", "/milestones/{milestone_id}", 404, path={"milestone_id": "ms_1"})


def test_idempotency_key_same_request_one_record_different_request_refused(apis: SystemApis) -> None:
    key = str(uuid.uuid4())
    body = {"worker_id": WORKER, "project_id": "prj_4001", "work_date": TODAY.isoformat(), "hours": "1.25"}
    first = apis.json("POST", "psa", "/time-entries", 201, json=body, headers={"Idempotency-Key": key})
    second = apis.json("POST", "psa", "/time-entries", 201, json=body, headers={"Idempotency-Key": key})
    assert first == second
    entries = apis.json("GET", "psa", "/time-entries", 200, params={"worker_id": WORKER, "state": "draft",
                                                                     "from_date": TODAY.isoformat(), "limit": 200})
    assert [e["id"] for e in entries["items"]].count(first["id"]) == 1
    assert sum(1 for e in entries["items"] if e["hours"] == "1.25") == 1

    reused = apis.json("POST", "psa", "/time-entries", 422, json={**body, "hours": "2"},
                       headers={"Idempotency-Key": key})
    assert reused["type"].endswith("/idempotency-key-reused")
    path = {"time_entry_id": first["id"]}
    transition_key = str(uuid.uuid4())
    for _ in range(2):
        apis.call("POST", "psa", "/time-entries/{time_entry_id}/transitions", 200, path=path,
                  json={"to_state": "submitted"}, headers={"Idempotency-Key": transition_key})
