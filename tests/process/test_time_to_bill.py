"""Time to bill through real processes: approve -> eligibility -> exactly-once posting -> exceptions."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import httpx

from tests.support.contract_checks import assert_matches_contract
from tests.support.days import a_day_of_its_own
from tests.support.flows import (
    ERP,
    PSA,
    all_items,
    at_once,
    billed_on,
    entries,
    erp_postings_of,
    manager_of,
    ok,
    postings_settled,
    wait_for,
)
from tests.support.stack import RunningStack, sandbox_url

APPROVALS = "/process/timesheets/v1/approvals"
EXCEPTIONS = "/process/exceptions/v1/exceptions"
SETTLEMENTS = "/process/billing/v1/settlements"


def decide(experience: httpx.Client, ids: list[str], approver: str, *, key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return experience.post(APPROVALS, json={"time_entry_ids": ids, "approver_id": approver, "decision": "approve"},
                           headers=headers)


def settlements(approval: dict) -> dict[str, dict]:
    return {e["time_entry_id"]: e["settlement"] for e in approval["entries"]}


def test_a_manager_approves_the_week_and_eligible_entries_post_once_each(
        experience: httpx.Client, system: httpx.Client) -> None:
    week = entries(system, project_id="prj_4003", state="submitted")
    ids = [e["id"] for e in week]
    manager = manager_of(system, "prj_4003")
    key = f"week-{uuid.uuid4().hex}"
    # What the projection already holds for the project (other tests of the session may have posted there).
    held = experience.get("/process/events/v1/posted-time/projects", params={"project_id": "prj_4003"}).json()["items"]
    before = held[0] if held else {"entries": 0, "amount": "0"}

    response = decide(experience, ids, manager, key=key)

    approval = ok(response, 201)
    assert_matches_contract("process/timesheets", "POST", "/approvals", response)
    assert approval["state"] == "applied"
    assert {e["result"] for e in approval["entries"]} == {"approved"}
    settled = settlements(approval)
    billable = [e["id"] for e in week if e["billable"]]
    assert billable and all(settled[i]["disposition"] == "queued_for_posting" for i in billable)
    assert all(settled[e["id"]]["disposition"] == "cost_only" for e in week if not e["billable"])

    again = decide(experience, ids, manager, key=key)  # the manager's phone retries the same request
    assert again.status_code == 200 and again.json()["id"] == approval["id"]
    # A second, separate approval of the same time changes nothing: the approval that took it answers, each
    # entry unchanged, nothing settled (so nothing queued) again.
    fresh = ok(decide(experience, ids, manager), 200)
    assert fresh["id"] == approval["id"]
    assert {e["result"] for e in fresh["entries"]} == {"unchanged"}
    assert all(s is None for s in settlements(fresh).values())

    wait_for("the week's postings", lambda: postings_settled(experience, billable))
    for entry_id in billable:
        posted = erp_postings_of(system, entry_id)
        assert len(posted) == 1, f"{entry_id} posted {len(posted)} times"
        assert Decimal(posted[0]["amount"]) == Decimal(settled[entry_id]["amount"])
        assert ok(system.get(f"/system/psa/v1/time-entries/{entry_id}"))["state"] == "posted"
    queue = experience.get("/process/billing/v1/postings", params={"project_id": "prj_4003"})
    assert_matches_contract("process/billing", "GET", "/postings", queue)
    events = experience.get("/process/events/v1/events", params={"type": "time.posted", "limit": 500})
    assert_matches_contract("process/events", "GET", "/events", events)
    posted_events = [e["subject"]["time_entry_id"] for e in events.json()["items"]]
    assert all(posted_events.count(i) == 1 for i in billable)

    # The tier's own consumer projects the postings: each entry once, the ERP's amounts exactly.
    def projected() -> httpx.Response | None:
        page = experience.get("/process/events/v1/posted-time/projects", params={"project_id": "prj_4003"})
        items = page.json()["items"]
        return page if items and items[0]["entries"] == before["entries"] + len(billable) else None

    page = wait_for("the posted-time projection of the week", projected)
    assert_matches_contract("process/events", "GET", "/posted-time/projects", page)
    (totals,) = page.json()["items"]
    assert Decimal(totals["amount"]) - Decimal(before["amount"]) == sum(
        Decimal(erp_postings_of(system, i)[0]["amount"]) for i in billable)


def test_a_role_missing_from_the_rate_card_is_held_and_a_retry_posts_it_after_the_fix(
        experience: httpx.Client, system: httpx.Client) -> None:
    week = [e for e in entries(system, project_id="prj_4002", state="submitted") if e["billable"]]
    scientist = [e["id"] for e in week if e["worker_id"] == "wrk_e1039"]
    assert scientist, "the demo firm has a data scientist on the lean rate card"
    manager = manager_of(system, "prj_4002")
    contract = ok(system.get(f"{ERP}/contracts/ctr_2002"))

    approval = ok(decide(experience, [e["id"] for e in week], manager), 201)

    settled = settlements(approval)
    for entry_id in scientist:
        assert settled[entry_id]["disposition"] == "held"
        assert settled[entry_id]["reasons"] == ["NO_RATE_FOR_ROLE"]
    listed = experience.get(EXCEPTIONS, params={"reason_code": "NO_RATE_FOR_ROLE", "project_id": "prj_4002",
                                                "state": "open"})
    assert_matches_contract("process/exceptions", "GET", "/exceptions", listed)
    held = {i["source_id"]: i for i in listed.json()["items"]}
    assert set(scientist) <= set(held)
    item = held[scientist[0]]
    assert item["kind"] == "billing_hold" and item["payload"]["time_entry"]["id"] == scientist[0]
    assert item["correlation_id"] and item["history"][0]["action"] == "raised"
    assert erp_postings_of(system, scientist[0]) == []

    still = ok(experience.post(f"{EXCEPTIONS}/{item['id']}/retries", json={"actor_id": manager}))
    assert still["outcome"] == "still_failing" and still["exception"]["state"] == "open"

    # The fix: finance points the contract at the full USD rate card (amending it in the ERP).
    ok(system.patch(f"{ERP}/contracts/ctr_2002", json={"rate_card_id": "rc_usd"}))
    try:
        retried = experience.post(f"{EXCEPTIONS}/{item['id']}/retries", json={"actor_id": manager})
        assert_matches_contract("process/exceptions", "POST", "/exceptions/{exception_id}/retries", retried)
        assert retried.json()["outcome"] == "resolved"
        assert retried.json()["exception"]["state"] == "resolved"
        wait_for("the retried posting", lambda: postings_settled(experience, [scientist[0]]))
        posted = erp_postings_of(system, scientist[0])
        hours = Decimal(next(e["hours"] for e in week if e["id"] == scientist[0]))
        assert len(posted) == 1 and Decimal(posted[0]["amount"]) == hours * 210
    finally:
        ok(system.patch(f"{ERP}/contracts/ctr_2002", json={"rate_card_id": contract["rate_card_id"]}))


def test_time_in_a_closed_period_is_held_not_posted(experience: httpx.Client, system: httpx.Client) -> None:
    closed = {p["period"] for p in ok(system.get(f"{ERP}/accounting-periods", params={"legal_entity_id": "le_us",
                                                                                     "limit": 200}))["items"]
              if p["status"] == "closed"}
    late = dt.date.fromisoformat(max(closed) + "-20")  # late time, logged now for a month already closed
    entry = ok(experience.post("/process/timesheets/v1/time-entries", json={
        "worker_id": "wrk_e1001", "project_id": "prj_4003", "task_id": "tsk_4003-t2", "work_date": late.isoformat(),
        "hours": "2"}), 201)
    ok(experience.post("/process/timesheets/v1/submissions", json={
        "worker_id": "wrk_e1001", "week_start": late.isoformat(), "time_entry_ids": [entry["id"]]}))

    approval = ok(decide(experience, [entry["id"]], manager_of(system, "prj_4003")), 201)

    settled = settlements(approval)[entry["id"]]
    assert settled["disposition"] == "held" and settled["reasons"] == ["PERIOD_CLOSED"]
    assert erp_postings_of(system, entry["id"]) == []
    assert ok(experience.get("/process/billing/v1/postings", params={"time_entry_id": entry["id"]}))["items"] == []


def test_the_entry_that_would_cross_the_nte_is_held(experience: httpx.Client, system: httpx.Client) -> None:
    week = sorted((e for e in entries(system, project_id="prj_4009", state="submitted") if e["billable"]),
                  key=lambda e: (e["work_date"], e["id"]))[:2]
    evaluated = ok(experience.post("/process/billing/v1/eligibility-evaluations",
                                   json={"time_entry_ids": [e["id"] for e in week]}))
    amounts = {h["time_entry_id"]: Decimal(h["amount"]) for h in evaluated["held"]}
    assert all(h["reasons"] == ["NOT_APPROVED"] for h in evaluated["held"])  # not yet approved: only that
    first, second = week[0]["id"], week[1]["id"]
    nte = billed_on(system, "ctr_2009") + amounts[first] + amounts[second] / 2
    ok(system.patch(f"{ERP}/contracts/ctr_2009", json={"nte_amount": str(nte)}))
    try:
        approval = ok(decide(experience, [first, second], manager_of(system, "prj_4009")), 201)

        settled = settlements(approval)
        assert settled[first]["disposition"] == "queued_for_posting"
        assert settled[second]["disposition"] == "held" and settled[second]["reasons"] == ["NTE_EXCEEDED"]
    finally:
        ok(system.patch(f"{ERP}/contracts/ctr_2009", json={"nte_amount": None}))


def test_an_erp_outage_delays_postings_but_loses_and_doubles_nothing(
        stack: RunningStack, experience: httpx.Client, system: httpx.Client, sandboxes: httpx.Client) -> None:
    week = [e for e in entries(system, project_id="prj_4005", state="submitted") if e["billable"]]
    ids = [e["id"] for e in week]
    erp_faults = sandbox_url(stack, "erp") + "/_sandbox/faults"
    ok(sandboxes.put(erp_faults, json={"outage_seconds": 6, "only_methods": ["POST"]}))
    try:
        approval = ok(decide(experience, ids, manager_of(system, "prj_4005")), 201)
        assert all(s["disposition"] == "queued_for_posting" for s in settlements(approval).values())

        wait_for("a posting attempt refused by the outage", lambda: any(
            i["attempts"] > 0 for i in ok(experience.get("/process/billing/v1/postings",
                                                         params={"project_id": "prj_4005"}))["items"]))
        stack.stack.restart("process")  # the process tier stops mid-outage: the outbox is durable
        assert ok(sandboxes.get(erp_faults))["injected"]["outage"] > 0
    finally:
        sandboxes.delete(erp_faults)

    wait_for("postings to catch up after the outage", lambda: postings_settled(experience, ids))
    for entry_id in ids:
        assert len(erp_postings_of(system, entry_id)) == 1


def test_a_month_end_settles_approved_time_once_and_posts_it_in_batches(
        stack: RunningStack, experience: httpx.Client, system: httpx.Client) -> None:
    today = dt.datetime.now(dt.UTC).date().isoformat()
    ids = []
    for hours in ("1", "2", "3"):  # approved in the PSA already: a month end finds them, no approval runs
        entry = ok(system.post(f"{PSA}/time-entries", json={
            "worker_id": "wrk_e1001", "project_id": "prj_4003", "task_id": "tsk_4003-t2", "work_date": today,
            "hours": hours, "notes": "Month end"}), 201)
        for state, actor in (("submitted", "wrk_e1001"), ("approved", manager_of(system, "prj_4003"))):
            ok(system.post(f"{PSA}/time-entries/{entry['id']}/transitions", json={"to_state": state,
                                                                                   "actor_id": actor}))
        ids.append(entry["id"])
    with stack.client("experience-tier", scopes=["billing:read"]) as reader:
        read_only = reader.post(SETTLEMENTS, json={"time_entry_ids": ids})
    assert read_only.status_code == 403  # settling takes billing:write

    # An operator's token carries billing:write because its client is registered with it: the gateway grants
    # a token's scopes only where the client's registration has them too.

    with stack.client("experience-tier") as operator:
        settled = operator.post(SETTLEMENTS, json={"time_entry_ids": ids})
        again = operator.post(SETTLEMENTS, json={"time_entry_ids": ids})  # the operator runs it twice
        both = operator.post(SETTLEMENTS, json={"time_entry_ids": ids, "project_id": "prj_4003"})

    assert_matches_contract("process/billing", "POST", "/settlements", settled)
    summary = ok(settled)["summary"]
    assert (summary["settled"], summary["queued_for_posting"]) == (3, 3)
    assert summary["queued_totals"][0]["currency"] == "USD"
    assert ok(again)["summary"]["queued_for_posting"] == 0  # queued already: never twice
    assert both.status_code == 400 and both.headers["content-type"] == "application/problem+json"
    wait_for("the month end's postings", lambda: postings_settled(experience, ids))
    for entry_id in ids:
        assert len(erp_postings_of(system, entry_id)) == 1
        assert ok(system.get(f"{PSA}/time-entries/{entry_id}"))["state"] == "posted"


def test_one_key_sent_at_once_and_again_decides_once_and_posts_once(
        stack: RunningStack, experience: httpx.Client, system: httpx.Client) -> None:
    day = a_day_of_its_own()
    entry = ok(experience.post("/process/timesheets/v1/time-entries", json={
        "worker_id": "wrk_e1001", "project_id": "prj_4006", "task_id": "tsk_4006-t2", "work_date": day.isoformat(),
        "hours": "3"}), 201)
    ok(experience.post("/process/timesheets/v1/submissions", json={
        "worker_id": "wrk_e1001", "week_start": day.isoformat(), "time_entry_ids": [entry["id"]]}))
    manager, key = manager_of(system, "prj_4006"), f"week-{uuid.uuid4().hex}"

    # The manager's phone sends, times out and sends again while the first is still running; then once more.
    answers = at_once(lambda: stack.client("experience-tier"), 6,
                      lambda client: decide(client, [entry["id"]], manager, key=key))
    answers.append(decide(experience, [entry["id"]], manager, key=key))

    assert sorted(a.status_code for a in answers) == [200] * 6 + [201], [(a.status_code, a.text) for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert all(a.headers["location"].endswith(answers[0].json()["id"]) for a in answers)
    wait_for("the entry posted", lambda: postings_settled(experience, [entry["id"]]))
    assert len(erp_postings_of(system, entry["id"])) == 1
    approved = [e for e in all_items(experience, "/process/events/v1/events", type="time.approved")
                if e["subject"]["time_entry_id"] == entry["id"]]
    assert len(approved) == 1  # one decision moved it in the PSA

    reused = experience.post(APPROVALS, headers={"Idempotency-Key": key}, json={
        "time_entry_ids": [entry["id"]], "approver_id": manager, "decision": "reject", "reason": "not this week"})
    assert reused.status_code == 422 and reused.headers["content-type"] == "application/problem+json"
    assert reused.json()["type"].endswith("/idempotency-key-reused")
    assert ok(system.get(f"{PSA}/time-entries/{entry['id']}"))["state"] in ("approved", "posted")
