"""PSA batch time entry transitions through the real stack: an outcome per item, the single transition's rules."""

from __future__ import annotations

import datetime as dt
import uuid

from tests.support.system import SystemApis

WORKER = "wrk_e1010"
TODAY = dt.datetime.now(dt.UTC).date()
BATCH = "/time-entries/transitions"


def approved_entry(apis: SystemApis, hours: str = "2") -> str:
    entry = apis.json("POST", "psa", "/time-entries", 201, json={
        "worker_id": WORKER, "project_id": "prj_4001", "task_id": "tsk_4001-t2", "work_date": TODAY.isoformat(),
        "hours": hours, "notes": "Batch"})
    path = {"time_entry_id": str(entry["id"])}
    for state, actor in (("submitted", WORKER), ("approved", "wrk_e1002")):
        apis.call("POST", "psa", "/time-entries/{time_entry_id}/transitions", 200, path=path,
                  json={"to_state": state, "actor_id": actor})
    return str(entry["id"])


def state_of(apis: SystemApis, entry_id: str) -> str:
    return str(apis.json("GET", "psa", "/time-entries/{time_entry_id}", 200, path={"time_entry_id": entry_id})[
        "state"])


def test_each_item_gets_its_own_outcome_and_a_refusal_stops_only_its_item(apis: SystemApis) -> None:
    first, second = approved_entry(apis), approved_entry(apis, "3")
    draft = str(apis.json("POST", "psa", "/time-entries", 201, json={
        "worker_id": WORKER, "project_id": "prj_4001", "work_date": TODAY.isoformat(), "hours": "1"})["id"])

    answer = apis.json("POST", "psa", BATCH, 200, json={"items": [
        {"time_entry_id": first, "to_state": "posted"},
        {"time_entry_id": draft, "to_state": "posted"},
        {"time_entry_id": "te_999999999", "to_state": "posted"},
        {"time_entry_id": second, "to_state": "posted"},
    ]})

    items = answer["items"]
    assert [i["time_entry_id"] for i in items] == [first, draft, "te_999999999", second]  # request order
    assert [i["status"] for i in items] == ["changed", "refused", "refused", "changed"]
    assert items[0]["time_entry"]["state"] == "posted" and items[3]["time_entry"]["state"] == "posted"
    illegal = items[1]["problem"]
    assert illegal["status"] == 409 and illegal["type"].endswith("/invalid-transition")
    assert (illegal["from_state"], illegal["to_state"]) == ("draft", "posted")
    unknown = items[2]["problem"]
    assert unknown["status"] == 404 and unknown["type"].endswith("/unknown-id")
    assert [state_of(apis, i) for i in (first, draft, second)] == ["posted", "draft", "posted"]


def test_a_replayed_batch_changes_nothing_more(apis: SystemApis) -> None:
    entries = [approved_entry(apis) for _ in range(2)]
    body = {"items": [{"time_entry_id": e, "to_state": "posted"} for e in entries]}

    first = apis.json("POST", "psa", BATCH, 200, json=body)
    again = apis.json("POST", "psa", BATCH, 200, json=body)  # sent again without a key: harmless by itself

    assert [i["status"] for i in first["items"]] == ["changed", "changed"]
    assert [i["status"] for i in again["items"]] == ["unchanged", "unchanged"]
    assert [i["time_entry"]["updated_at"] for i in again["items"]] == [
        i["time_entry"]["updated_at"] for i in first["items"]]

    key = str(uuid.uuid4())
    more = [approved_entry(apis) for _ in range(2)]
    keyed = {"items": [{"time_entry_id": e, "to_state": "posted"} for e in more]}
    answered = apis.json("POST", "psa", BATCH, 200, json=keyed, headers={"Idempotency-Key": key})
    replayed = apis.json("POST", "psa", BATCH, 200, json=keyed, headers={"Idempotency-Key": key})
    assert replayed == answered and [i["status"] for i in replayed["items"]] == ["changed", "changed"]
    reused = apis.json("POST", "psa", BATCH, 422, json={"items": keyed["items"][:1]}, headers={"Idempotency-Key": key})
    assert reused["type"].endswith("/idempotency-key-reused")


def test_item_rules_are_the_single_transitions_with_pointers_into_the_batch(apis: SystemApis) -> None:
    submitted = str(apis.json("POST", "psa", "/time-entries", 201, json={
        "worker_id": WORKER, "project_id": "prj_4001", "work_date": TODAY.isoformat(), "hours": "1"})["id"])
    apis.call("POST", "psa", "/time-entries/{time_entry_id}/transitions", 200,
              path={"time_entry_id": submitted}, json={"to_state": "submitted"})
    approved = approved_entry(apis)

    answer = apis.json("POST", "psa", BATCH, 200, json={"items": [
        {"time_entry_id": approved, "to_state": "approved"},
        {"time_entry_id": submitted, "to_state": "rejected"},
    ]})

    assert answer["items"][0]["status"] == "unchanged"
    no_reason = answer["items"][1]["problem"]
    assert no_reason["status"] == 422 and no_reason["errors"][0]["pointer"] == "/items/1/reason"
    assert state_of(apis, submitted) == "submitted"


def test_a_malformed_batch_is_refused_whole(apis: SystemApis) -> None:
    entry = approved_entry(apis)
    twice = apis.json("POST", "psa", BATCH, 400, json={"items": [
        {"time_entry_id": entry, "to_state": "posted"}, {"time_entry_id": entry, "to_state": "posted"}]})
    assert twice["errors"][0]["pointer"] == "/items/1/time_entry_id"
    apis.call("POST", "psa", BATCH, 400, json={"items": []})
    apis.call("POST", "psa", BATCH, 400, json={"items": [{"time_entry_id": entry, "to_state": "paid"}]})
    too_many = [{"time_entry_id": f"te_{n}", "to_state": "posted"} for n in range(501)]
    apis.call("POST", "psa", BATCH, 400, json={"items": too_many})
    assert state_of(apis, entry) == "approved"
