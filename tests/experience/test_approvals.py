"""The approvals inbox: a manager sees submitted time on their own projects only, and decides it."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx

from tests.support.contract_checks import assert_matches_contract
from tests.support.days import a_day_of_its_own, week_of
from tests.support.flows import all_items, wait_for
from tests.support.stack import DEMO_MANAGER, RunningStack

API = "experience/approvals"
INBOX = "/experience/approvals/v1"
MOBILE = "/experience/mobile-time/v1"


def submitted_entry(consultant: httpx.Client, hours: str = "2", day: dt.date | None = None) -> str:
    """A fresh entry by the demo consultant on prj_4001 (managed by the demo manager), submitted."""
    day = day or a_day_of_its_own()
    created = consultant.post(f"{MOBILE}/me/time-entries", json={
        "project_id": "prj_4001", "work_date": day.isoformat(), "hours": hours,
        "client_ref": "inbox-" + uuid.uuid4().hex[:10]})
    assert created.status_code == 201, created.text
    submitted = consultant.post(f"{MOBILE}/me/weeks/{week_of(day).isoformat()}/submissions")
    assert submitted.status_code == 200, submitted.text
    return str(created.json()["time_entry_id"])


def test_manager_sees_submitted_time_on_their_projects_only(manager: httpx.Client, consultant: httpx.Client,
                                                           system_reader: httpx.Client) -> None:
    entry_id = submitted_entry(consultant)
    mine = {p["id"] for p in all_items(system_reader, "/system/psa/v1/projects") if p["manager_id"] == DEMO_MANAGER}

    first = manager.get(f"{INBOX}/submitted-entries", params={"limit": 5})
    assert first.status_code == 200, first.text
    assert_matches_contract(API, "GET", "/submitted-entries", first)
    seen = all_items(manager, f"{INBOX}/submitted-entries")

    assert entry_id in {e["time_entry_id"] for e in seen}
    assert {e["project_id"] for e in seen} <= mine
    expected = [e["id"] for p in sorted(mine)
                for e in all_items(system_reader, "/system/psa/v1/time-entries", project_id=p, state="submitted")
                if e["worker_id"] != DEMO_MANAGER]  # their own time waits in someone else's inbox
    assert sorted(e["time_entry_id"] for e in seen) == sorted(expected)
    not_mine = manager.get(f"{INBOX}/submitted-entries", params={"project_id": "prj_4002"})
    assert "prj_4002" not in mine and not_mine.status_code == 404


def test_approving_moves_the_entry_and_posts_it_through_the_process_tier(
        manager: httpx.Client, consultant: httpx.Client, system_reader: httpx.Client) -> None:
    entry_id = submitted_entry(consultant, hours="3")

    response = manager.post(f"{INBOX}/submitted-entries/{entry_id}/decisions", json={"decision": "approve"},
                            headers={"Idempotency-Key": "approve-" + entry_id})
    again = manager.post(f"{INBOX}/submitted-entries/{entry_id}/decisions", json={"decision": "approve"},
                         headers={"Idempotency-Key": "approve-" + entry_id})

    assert response.status_code == 200, response.text
    assert_matches_contract(API, "POST", "/submitted-entries/{time_entry_id}/decisions", response)
    item = response.json()["items"][0]
    assert (item["time_entry_id"], item["result"]) == (entry_id, "approved")
    # prj_4001 bills time and materials well under its not-to-exceed amount: approved time is billable at once.
    assert item["billing"]["disposition"] == "queued_for_posting", item["billing"]
    assert again.json()["approval_id"] == response.json()["approval_id"]
    # The posting dispatcher posts it to the ERP exactly once; the PSA then shows it posted.
    state = wait_for(f"{entry_id} posted", lambda: system_reader.get(
        f"/system/psa/v1/time-entries/{entry_id}").json()["state"] == "posted" and "posted")
    postings = system_reader.get("/system/erp/v1/postings", params={"source_id": entry_id}).json()["items"]
    assert state == "posted" and len(postings) == 1


def test_rejecting_needs_a_reason_and_the_consultant_sees_it(manager: httpx.Client,
                                                             consultant: httpx.Client) -> None:
    day = a_day_of_its_own()
    entry_id = submitted_entry(consultant, day=day)

    no_reason = manager.post(f"{INBOX}/decisions", json={"time_entry_ids": [entry_id], "decision": "reject"})
    assert no_reason.status_code == 400
    assert no_reason.json()["errors"][0]["pointer"] == "/reason"

    rejected = manager.post(f"{INBOX}/decisions", json={"time_entry_ids": [entry_id], "decision": "reject",
                                                         "reason": "Book the workshop on the Tuesday"})
    assert rejected.status_code == 200, rejected.text
    assert_matches_contract(API, "POST", "/decisions", rejected)
    assert rejected.json()["rejected"] == 1
    week = consultant.get(f"{MOBILE}/me/weeks/{week_of(day).isoformat()}").json()
    entry = next(e for e in week["entries"] if e["time_entry_id"] == entry_id)
    assert (entry["state"], entry["rejection_reason"]) == ("rejected", "Book the workshop on the Tuesday")


def test_bulk_decision_answers_per_entry(manager: httpx.Client, consultant: httpx.Client,
                                         system_reader: httpx.Client) -> None:
    mine = submitted_entry(consultant)
    foreign = next(e["id"] for e in all_items(system_reader, "/system/psa/v1/time-entries", project_id="prj_4002",
                                              state="submitted"))

    response = manager.post(f"{INBOX}/decisions", json={
        "time_entry_ids": [mine, foreign, "te_999999"], "decision": "reject", "reason": "Wrong task"})

    assert response.status_code == 200, response.text
    assert_matches_contract(API, "POST", "/decisions", response)
    results = {i["time_entry_id"]: i["result"] for i in response.json()["items"]}
    assert results == {mine: "rejected", foreign: "refused", "te_999999": "not_found"}
    assert system_reader.get(f"/system/psa/v1/time-entries/{foreign}").json()["state"] == "submitted"


def test_a_consultant_token_cannot_use_the_inbox(consultant: httpx.Client) -> None:
    response = consultant.get(f"{INBOX}/submitted-entries")
    assert response.status_code == 403


def managers_own_submitted_entry(system_reader: httpx.Client) -> str:
    """Time the demo manager logged on a project they manage (prj_4001), submitted."""
    created = system_reader.post("/system/psa/v1/time-entries", json={
        "worker_id": DEMO_MANAGER, "project_id": "prj_4001", "work_date": a_day_of_its_own().isoformat(),
        "hours": "3", "notes": "Steering committee"})
    assert created.status_code == 201, created.text
    entry_id = str(created.json()["id"])
    moved = system_reader.post(f"/system/psa/v1/time-entries/{entry_id}/transitions",
                               json={"to_state": "submitted", "actor_id": DEMO_MANAGER})
    assert moved.status_code == 200, moved.text
    return entry_id


def test_nobody_approves_their_own_time(manager: httpx.Client, system_reader: httpx.Client) -> None:
    own = managers_own_submitted_entry(system_reader)

    assert own not in {e["time_entry_id"] for e in all_items(manager, f"{INBOX}/submitted-entries")}
    for decide in (lambda: manager.post(f"{INBOX}/submitted-entries/{own}/decisions", json={"decision": "approve"}),
                   lambda: manager.post(f"{INBOX}/decisions", json={"time_entry_ids": [own], "decision": "reject",
                                                                     "reason": "not mine to decide"})):
        response = decide()
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["pointer"] == "/time_entry_ids/0"
    assert system_reader.get(f"/system/psa/v1/time-entries/{own}").json()["state"] == "submitted"


def open_exceptions(process_reader: httpx.Client, entry_id: str) -> list[dict[str, object]]:
    return all_items(process_reader, "/process/exceptions/v1/exceptions", source_id=entry_id)


def in_a_closed_period() -> dt.date:
    """A day of the month three months back: the sandbox ERP closed that period (time there is held)."""
    today = dt.datetime.now(dt.UTC).date()
    month = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    for _ in range(2):
        month = (month - dt.timedelta(days=1)).replace(day=1)
    return month.replace(day=20)


def test_a_repeated_decision_is_unchanged_and_raises_nothing(manager: httpx.Client, consultant: httpx.Client,
                                                            process_reader: httpx.Client) -> None:
    # Time in a closed period is held: the first approval raises one exception, a second must not raise another.
    entry_id = submitted_entry(consultant, hours="2", day=in_a_closed_period())
    first = manager.post(f"{INBOX}/submitted-entries/{entry_id}/decisions", json={"decision": "approve"})
    assert first.status_code == 200, first.text
    assert "PERIOD_CLOSED" in first.json()["items"][0]["billing"]["reasons"]
    raised = open_exceptions(process_reader, entry_id)
    assert len(raised) == 1

    again = manager.post(f"{INBOX}/submitted-entries/{entry_id}/decisions", json={"decision": "approve"})

    assert again.status_code == 200, again.text
    assert_matches_contract(API, "POST", "/submitted-entries/{time_entry_id}/decisions", again)
    assert again.json()["approval_id"] == first.json()["approval_id"]
    assert [(i["time_entry_id"], i["result"]) for i in again.json()["items"]] == [(entry_id, "unchanged")]
    assert again.json()["approved"] == 0
    assert open_exceptions(process_reader, entry_id) == raised
    rejected = manager.post(f"{INBOX}/decisions", json={"time_entry_ids": [entry_id], "decision": "reject",
                                                         "reason": "too late"})
    assert rejected.json()["items"][0]["result"] == "refused"  # approved time is corrected, not rejected


def test_a_recorded_decision_can_be_read_back_by_its_approver_only(stack: RunningStack, manager: httpx.Client,
                                                                   consultant: httpx.Client) -> None:
    entry_id = submitted_entry(consultant, hours="1")
    decided = manager.post(f"{INBOX}/submitted-entries/{entry_id}/decisions", json={"decision": "approve"})
    assert decided.status_code == 200, decided.text
    approval_id = decided.json()["approval_id"]

    read = manager.get(f"{INBOX}/decisions/{approval_id}")

    assert read.status_code == 200, read.text
    assert_matches_contract(API, "GET", "/decisions/{approval_id}", read)
    assert read.json() == decided.json()
    with stack.client("dashboard-web", subject="wrk_e1007") as another_manager:
        theirs = another_manager.get(f"{INBOX}/decisions/{approval_id}")
    assert theirs.status_code == 404, theirs.text  # someone else's decision is as unknown as a missing one
    assert theirs.headers["content-type"] == "application/problem+json"
    for hostile in ("apr_unknown", "apr%2F..%2Fx", "apr%0D%0AX-Injected:%201", "a" * 5000):
        answer = manager.get(f"{INBOX}/decisions/{hostile}")
        assert 400 <= answer.status_code < 500, (hostile, answer.status_code, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert "X-Injected" not in answer.headers
    assert consultant.get(f"{INBOX}/decisions/{approval_id}").status_code == 403  # no approvals:read
