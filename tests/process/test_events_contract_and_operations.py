"""Events as a published contract, through the gateway on the real stack: the PSA-sourced events are emitted once
each, every event published matches its AsyncAPI schema, and operators list, inspect and re-drive dead letters
(exactly once, however often and however concurrently they ask), while bad input gets a 4xx problem."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from process_apis.events.dead_letters import DeadLetters
from process_apis.events.models import DeadLetterRecord, Event
from process_apis.events.outbox import record_event
from process_apis.events.projection import CONSUMER
from process_apis.store import metadata
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime import correlation
from runtime.storage import Database, database_url
from tests.support.flows import PSA, all_items, ok, wait_for
from tests.support.stack import DELIBERATELY_MALFORMED, RunningStack, events_breaking_their_schema

EVENTS = "/process/events/v1"
PROBLEM = "application/problem+json"


def events_of(client: httpx.Client, event_type: str) -> list[dict[str, Any]]:
    return all_items(client, f"{EVENTS}/events", type=event_type)


def process_db(stack: RunningStack) -> Database:
    """The process tier's own store, as a test harness reaches it to plant what no API can cause on purpose."""
    return Database(database_url("", stack.stack.data_dir, "process"), metadata)


def in_process_db(stack: RunningStack, work: Any) -> Any:
    async def run() -> Any:
        db = process_db(stack)
        try:
            return await work(db)
        finally:
            await db.dispose()
    return asyncio.run(run())


def posted_event(entry: str, project: str, *, amount: str = "1400.00") -> Event:
    return Event(id="evt_" + uuid.uuid4().hex, type="time.posted", version=1, occurred_at=dt.datetime.now(dt.UTC),
                 correlation_id=DELIBERATELY_MALFORMED + "planted", position=10**9,
                 subject={"time_entry_id": entry, "project_id": project, "contract_id": "ctr_dl",
                          "posting_id": "pst_dl"},
                 data={"amount": amount, "currency": "USD", "hours": "8", "work_date": "2026-11-20",
                       "entry_version": 1, "psa_state": "posted"})


def assert_problem(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM)
    return response.json()


# -- the PSA-sourced events ------------------------------------------------------------------------------------

def test_confirmed_assignments_and_completed_milestones_are_reported_once_each(
        experience: httpx.Client, system: httpx.Client) -> None:
    confirmed = all_items(system, f"{PSA}/assignments", status="confirmed")
    done = [*all_items(system, f"{PSA}/milestones", state="completed"),
            *all_items(system, f"{PSA}/milestones", state="accepted")]
    reported = wait_for("the watch's first turn", lambda: (
        events_of(experience, "milestone.completed") if len(events_of(experience, "assignment.confirmed"))
        >= len(confirmed) else None))
    by_milestone = {e["subject"]["milestone_id"]: e for e in reported}
    assert len(by_milestone) == len(reported)
    for milestone in done:
        event = by_milestone[milestone["id"]]
        assert event["data"]["state"] == milestone["state"] or milestone["state"] == "accepted"
        assert (event["subject"]["project_id"], event["data"]["amount"]) == (milestone["project_id"],
                                                                           milestone["amount"])

    # Resource management confirms a new assignment in the PSA: the tier reports it, once.
    worker, project = confirmed[-1]["worker_id"], confirmed[0]["project_id"]
    demand = ok(system.post(f"{PSA}/assignments", json={
        "worker_id": worker, "project_id": project, "role": confirmed[-1]["role"],
        "planned_hours_per_week": "2", "start_date": "2027-06-01", "end_date": "2027-06-30"}), 201)
    ok(system.post(f"{PSA}/assignments/{demand['id']}/transitions", json={"to_status": "confirmed"}))

    def reported_for(assignment_id: str) -> list[dict[str, Any]]:
        return [e for e in events_of(experience, "assignment.confirmed")
                if e["subject"]["assignment_id"] == assignment_id]

    [event] = wait_for("assignment.confirmed of the new assignment", lambda: reported_for(demand["id"]))
    assert event["subject"] == {"assignment_id": demand["id"], "worker_id": worker, "project_id": project}
    assert event["data"] == {"role": confirmed[-1]["role"], "planned_hours_per_week": "2",
                             "start_date": "2027-06-01", "end_date": "2027-06-30"}
    # Seen confirmed on every later turn, reported only once: by the time a second confirmation is reported,
    # the first has been seen again.
    second = ok(system.post(f"{PSA}/assignments", json={
        "worker_id": worker, "project_id": project, "role": confirmed[-1]["role"],
        "planned_hours_per_week": "1", "start_date": "2027-07-01", "end_date": "2027-07-31"}), 201)
    ok(system.post(f"{PSA}/assignments/{second['id']}/transitions", json={"to_status": "confirmed"}))
    wait_for("assignment.confirmed of the second assignment", lambda: reported_for(second["id"]))
    assert len(reported_for(demand["id"])) == 1


def test_every_event_published_so_far_matches_its_asyncapi_schema(stack: RunningStack,
                                                                  experience: httpx.Client) -> None:
    wait_for("some events", lambda: events_of(experience, "assignment.confirmed"))
    assert events_breaking_their_schema(stack) == []


# -- dead letters ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def operator(stack: RunningStack) -> Iterator[httpx.Client]:
    """The experience tier's identity, as the finance-ops page calls the operator API."""
    with stack.client("experience-tier") as client:
        yield client


def test_a_malformed_event_becomes_a_dead_letter_an_operator_can_inspect_and_redrive(
        stack: RunningStack, operator: httpx.Client) -> None:
    entry = "te_dl_" + uuid.uuid4().hex[:8]

    async def plant(db: Database) -> str:
        token = correlation.set_current(correlation.from_headers(DELIBERATELY_MALFORMED + entry, None))
        try:
            async with db.transaction() as conn:
                return await record_event(conn, "time.posted", {
                    "time_entry_id": entry, "project_id": "prj_dl", "contract_id": "ctr_dl", "posting_id": "p"},
                    {"amount": "twelve", "currency": "USD", "hours": "8", "work_date": "2026-11-20",
                     "entry_version": 1, "psa_state": "posted"})
        finally:
            correlation.reset_current(token)

    event_id = in_process_db(stack, plant)

    def letter_of_event() -> dict[str, Any] | None:
        page = ok(operator.get(f"{EVENTS}/dead-letters", params={"type": "time.posted", "state": "dead"}))
        return next((item for item in all_items(operator, f"{EVENTS}/dead-letters", type="time.posted")
                     if item["event_id"] == event_id), None) if page is not None else None

    summary = wait_for("the dead letter of the malformed event", letter_of_event, timeout=60)
    assert (summary["consumer"], summary["reason"], summary["attempts"], summary["state"]) == (
        CONSUMER, "handler_failed", 1, "dead")
    letter = ok(operator.get(f"{EVENTS}/dead-letters/{summary['id']}"))
    assert letter["event"]["id"] == event_id and letter["event"]["data"]["amount"] == "twelve"
    assert "ValidationError" in letter["error"] and letter["raw"] is None

    # The consumer still refuses it: the re-drive runs, fails, and leaves it dead with one more attempt.
    outcome = ok(operator.post(f"{EVENTS}/dead-letters/{summary['id']}/redrive"))
    assert outcome["result"] == "failed" and "ValidationError" in outcome["error"]
    after = ok(operator.get(f"{EVENTS}/dead-letters/{summary['id']}"))
    assert (after["state"], after["attempts"]) == ("dead", 2)


def test_concurrent_and_repeated_redrives_are_consumed_once(stack: RunningStack, operator: httpx.Client) -> None:
    project = "prj_dl_" + uuid.uuid4().hex[:8]
    event = posted_event("te_" + uuid.uuid4().hex[:8], project)

    async def plant(db: Database) -> str:
        # A well-formed event the projection failed earlier (the database was busy, say): not applied yet.
        return await DeadLetters(UnitOfWorkFactory(db), {}).record(DeadLetterRecord(
            consumer=CONSUMER, event_id=event.id, event=event, reason="max_deliveries",
            error="OperationalError: database is locked", attempts=5))

    letter_id = in_process_db(stack, plant)
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(lambda _: operator.post(f"{EVENTS}/dead-letters/{letter_id}/redrive"), range(6)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1 and set(statuses) <= {200, 409}, [r.text for r in responses]
    assert next(r.json() for r in responses if r.status_code == 200)["result"] == "redriven"
    for conflict in (r for r in responses if r.status_code == 409):
        assert assert_problem(conflict, 409)["result"] in ("in_progress", "already_redriven")

    unknown = "dl_" + "0" * 32
    bulk = ok(operator.post(f"{EVENTS}/dead-letters/redrive",
                            json={"dead_letter_ids": [letter_id, letter_id, unknown]}))
    assert [(o["dead_letter_id"], o["result"]) for o in bulk["items"]] == [
        (letter_id, "already_redriven"), (letter_id, "already_redriven"), (unknown, "not_found")]
    assert assert_problem(operator.post(f"{EVENTS}/dead-letters/{letter_id}/redrive"), 409)["result"] == (
        "already_redriven")

    [totals] = ok(operator.get(f"{EVENTS}/posted-time/projects", params={"project_id": project}))["items"]
    assert (totals["entries"], totals["amount"]) == (1, "1400.00")
    letter = ok(operator.get(f"{EVENTS}/dead-letters/{letter_id}"))
    assert (letter["state"], letter["attempts"]) == ("redriven", 6) and letter["redriven_at"]
    redriven = all_items(operator, f"{EVENTS}/dead-letters", state="redriven")
    assert letter_id in {item["id"] for item in redriven}


def test_dead_letter_endpoints_refuse_bad_input_with_problems(stack: RunningStack, operator: httpx.Client) -> None:
    assert_problem(operator.get(f"{EVENTS}/dead-letters/dl_{'a' * 32}"), 404)
    for hostile in ("dl_%2F..%2Fevents", "dl_abc%0D%0AX-Injected:%201", "..%2F..%2Fadmin", "%00"):
        assert_problem(operator.get(f"{EVENTS}/dead-letters/{hostile}"), 400, 404)
        assert_problem(operator.post(f"{EVENTS}/dead-letters/{hostile}/redrive"), 400, 404)
    for deep in (b'{"dead_letter_ids": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                 b'{"ids": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3000 + b"}"):
        assert_problem(operator.post(f"{EVENTS}/dead-letters/redrive", content=deep,
                                     headers={"content-type": "application/json"}), 400, 413)
    bodies: list[dict[str, Any]] = [
        {"dead_letter_ids": []}, {"dead_letter_ids": ["dl_" + "0" * 32] * 101}, {"dead_letter_ids": ["not-an-id"]},
        {"dead_letter_ids": ["dl_" + "0" * 32], "force": True}, {"dead_letter_ids": "dl_" + "0" * 32}]
    for body in bodies:
        problem = assert_problem(operator.post(f"{EVENTS}/dead-letters/redrive", json=body), 400, 413)
        assert problem["status"] in (400, 413)
    for params in ({"limit": 0}, {"limit": 501}, {"state": "lost"}, {"type": "time.voided"},
                   {"cursor": "bm90LWEtY3Vyc29y"}, {"consumer": "x" * 65}):
        problem = assert_problem(operator.get(f"{EVENTS}/dead-letters", params=params), 400)
        assert problem.get("errors"), problem


def test_only_operators_reach_the_dead_letters(stack: RunningStack) -> None:
    with stack.client("experience-tier", scopes=["events:read"]) as reader:
        problem = assert_problem(reader.get(f"{EVENTS}/dead-letters"), 403)
        assert "events:operate" in problem["detail"]
        assert_problem(reader.post(f"{EVENTS}/dead-letters/redrive", json={"dead_letter_ids": ["dl_" + "0" * 32]}),
                       403)
    with stack.client("mobile-app", subject="wrk_e1001") as mobile:
        assert_problem(mobile.get(f"{EVENTS}/dead-letters"), 403)
    with httpx.Client(base_url=stack.url) as anonymous:
        assert_problem(anonymous.get(f"{EVENTS}/dead-letters"), 401)
