"""Corrections of approved and posted time, carried out by the process tier: an 8 h entry corrected to 6 h
nets 6 h in the ERP (the old posting reversed, the new one posted, each exactly once), whatever fails between."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx

from tests.support.contract_checks import assert_matches_contract
from tests.support.days import a_day_of_its_own
from tests.support.flows import all_items, at_once, erp_postings_of, ok, postings_settled, wait_for
from tests.support.stack import RunningStack, sandbox_url

TIME = "/process/timesheets/v1"
# The demo consultant on a time-and-materials project far from its NTE, and the project's manager.
CONSULTANT, PROJECT, TASK, MANAGER = "wrk_e1001", "prj_4006", "tsk_4006-t2", "wrk_e1007"


def approved_entry(experience: httpx.Client, hours: str = "8", day: dt.date | None = None) -> str:
    day = day or a_day_of_its_own()
    entry = ok(experience.post(f"{TIME}/time-entries", json={
        "worker_id": CONSULTANT, "project_id": PROJECT, "task_id": TASK, "work_date": day.isoformat(),
        "hours": hours, "client_ref": f"cor-{uuid.uuid4().hex[:10]}"}), 201)
    ok(experience.post(f"{TIME}/submissions", json={"worker_id": CONSULTANT, "week_start": day.isoformat(),
                                                   "time_entry_ids": [entry["id"]]}))
    approval = ok(experience.post(f"{TIME}/approvals", json={
        "time_entry_ids": [entry["id"]], "approver_id": MANAGER, "decision": "approve"}), 201)
    assert approval["entries"][0]["settlement"]["disposition"] == "queued_for_posting", approval
    return str(entry["id"])


def ask(experience: httpx.Client, entry_id: str, hours: str = "6") -> dict[str, Any]:
    response = experience.post(f"{TIME}/corrections", json={
        "time_entry_id": entry_id, "worker_id": CONSULTANT, "hours": hours, "reason": "the workshop ended early"})
    assert response.status_code == 201, response.text
    assert_matches_contract("process/timesheets", "POST", "/corrections", response)
    return dict(response.json())


def decide(experience: httpx.Client, correction_id: str, approver: str = MANAGER) -> httpx.Response:
    return experience.post(f"{TIME}/corrections/{correction_id}/decisions",
                           json={"approver_id": approver, "decision": "approve"})


def net_hours(system: httpx.Client, *entry_ids: str) -> Decimal:
    return sum((Decimal(p["quantity"]) for i in entry_ids for p in erp_postings_of(system, i)), Decimal(0))


def reversed_once(system: httpx.Client, entry_id: str) -> bool:
    postings = erp_postings_of(system, entry_id)
    return len(postings) == 2 and sum(Decimal(p["quantity"]) for p in postings) == 0


def test_posted_time_corrected_from_8_to_6_hours_nets_6_in_the_erp(experience: httpx.Client,
                                                                     system: httpx.Client) -> None:
    old = approved_entry(experience)
    wait_for("the 8 hours posted", lambda: postings_settled(experience, [old]))
    correction = ask(experience, old)
    assert correction["state"] == "requested"

    decided = decide(experience, correction["id"])

    assert decided.status_code == 200, decided.text
    assert_matches_contract("process/timesheets", "POST", "/corrections/{correction_id}/decisions", decided)
    outcome = decided.json()
    assert (outcome["result"], outcome["correction"]["state"]) == ("approved", "applied")
    new = outcome["correction"]["new_time_entry_id"]
    assert outcome["correction"]["settlement"]["disposition"] == "queued_for_posting"
    wait_for("the 6 hours posted", lambda: postings_settled(experience, [new]))
    wait_for("the 8 hours reversed", lambda: reversed_once(system, old))
    reversal = next(p for p in erp_postings_of(system, old) if p["reverses_posting_id"])
    original = next(p for p in erp_postings_of(system, old) if not p["reverses_posting_id"])
    assert (reversal["reverses_posting_id"], Decimal(reversal["amount"])) == (original["id"],
                                                                             -Decimal(original["amount"]))
    assert reversal["work_date"] == dt.datetime.now(dt.UTC).date().isoformat()  # the current open period
    assert net_hours(system, old, new) == Decimal(6)
    old_entry = ok(system.get(f"/system/psa/v1/time-entries/{old}"))
    new_entry = ok(system.get(f"/system/psa/v1/time-entries/{new}"))
    assert (old_entry["superseded_by_id"], new_entry["supersedes_id"], new_entry["hours"]) == (new, old, "6")

    again = decide(experience, correction["id"])
    assert again.status_code == 200 and again.json()["result"] == "unchanged"
    assert len(erp_postings_of(system, old)) == 2 and len(erp_postings_of(system, new)) == 1


def test_approved_time_corrected_before_its_posting_lands_nets_6(
        stack: RunningStack, experience: httpx.Client, system: httpx.Client, sandboxes: httpx.Client) -> None:
    erp_faults = sandbox_url(stack, "erp") + "/_sandbox/faults"
    ok(sandboxes.put(erp_faults, json={"outage_seconds": 8, "only_methods": ["POST"]}))
    try:
        old = approved_entry(experience)  # queued for posting; the ERP is down
        correction = ask(experience, old)
        outcome = ok(decide(experience, correction["id"]))
        new = outcome["correction"]["new_time_entry_id"]
        assert outcome["correction"]["state"] == "applied"
        stack.stack.restart("process")  # the process tier stops mid-outage: both outboxes are durable
    finally:
        sandboxes.delete(erp_faults)

    wait_for("the postings to catch up", lambda: postings_settled(experience, [new]))
    wait_for("the old version reversed", lambda: reversed_once(system, old))
    assert net_hours(system, old, new) == Decimal(6)
    assert len(erp_postings_of(system, new)) == 1


def test_nobody_corrects_on_their_own_say_so_and_rules_hold(experience: httpx.Client) -> None:
    old = approved_entry(experience, hours="4")
    too_much = experience.post(f"{TIME}/corrections", json={
        "time_entry_id": old, "worker_id": CONSULTANT, "hours": "25", "reason": "typo"})
    assert too_much.status_code == 400 and too_much.json()["errors"][0]["pointer"] == "/hours"
    not_theirs = experience.post(f"{TIME}/corrections", json={
        "time_entry_id": old, "worker_id": "wrk_e1005", "hours": "3", "reason": "typo"})
    assert not_theirs.status_code == 404
    correction = ask(experience, old, hours="3")
    second = experience.post(f"{TIME}/corrections", json={
        "time_entry_id": old, "worker_id": CONSULTANT, "hours": "2", "reason": "again"})
    assert second.status_code == 409

    own = decide(experience, correction["id"], approver=CONSULTANT)
    assert own.status_code == 403 and own.json()["type"].endswith("/own-time")
    not_manager = decide(experience, correction["id"], approver="wrk_e1002")
    assert not_manager.status_code == 403
    assert ok(experience.get(f"{TIME}/corrections/{correction['id']}"))["state"] == "requested"


def test_a_correction_approved_while_the_psa_is_down_is_carried_out_once_it_returns(
        stack: RunningStack, experience: httpx.Client, system: httpx.Client, sandboxes: httpx.Client) -> None:
    old = approved_entry(experience)
    wait_for("the 8 hours posted", lambda: postings_settled(experience, [old]))
    correction = ask(experience, old)
    psa_faults = sandbox_url(stack, "psa") + "/_sandbox/faults"
    ok(sandboxes.put(psa_faults, json={"outage_seconds": 4, "only_methods": ["POST"]}))
    try:
        decided = decide(experience, correction["id"])
        assert decided.status_code == 202, decided.text  # approved, recorded; carried out when the PSA returns
        assert decided.json()["correction"]["state"] == "approved"
    finally:
        sandboxes.delete(psa_faults)

    applied = wait_for("the recovery loop to carry the correction out", lambda: (lambda c: c if c["state"] == "applied"
                       else None)(ok(experience.get(f"{TIME}/corrections/{correction['id']}"))), timeout=120)
    new = applied["new_time_entry_id"]
    wait_for("the 6 hours posted", lambda: postings_settled(experience, [new]))
    wait_for("the 8 hours reversed", lambda: reversed_once(system, old))
    assert net_hours(system, old, new) == Decimal(6)
    assert ok(system.get(f"/system/psa/v1/time-entries/{old}"))["superseded_by_id"] == new


def a_weekend_day_two_months_back() -> dt.date:
    """A Saturday in an open period no other test invoices on ctr_2006 (seeded time is on weekdays only)."""
    first = (dt.datetime.now(dt.UTC).date().replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    first = (first - dt.timedelta(days=1)).replace(day=1)
    return first + dt.timedelta(days=(5 - first.weekday()) % 7)


def test_invoiced_time_corrected_is_credited_in_full_and_reversed_once(experience: httpx.Client,
                                                                        system: httpx.Client) -> None:
    day = a_weekend_day_two_months_back()
    old = approved_entry(experience, day=day)
    wait_for("the 8 hours posted", lambda: postings_settled(experience, [old]))
    draft = ok(experience.post("/process/invoicing/v1/invoice-drafts",
                               json={"contract_id": "ctr_2006", "period": f"{day:%Y-%m}"}), 200, 201)
    assert old in draft["time_entry_ids"]
    ok(experience.post(f"/process/invoicing/v1/invoices/{draft['id']}/postings"))
    wait_for("the entry invoiced", lambda: ok(system.get(f"/system/psa/v1/time-entries/{old}"))["state"]
             == "invoiced")
    billed = next(p for p in erp_postings_of(system, old) if not p["reverses_posting_id"])

    outcome = ok(decide(experience, ask(experience, old)["id"]))

    assert outcome["correction"]["state"] == "applied"
    new = outcome["correction"]["new_time_entry_id"]
    credits = wait_for("the credit note", lambda: ok(system.get("/system/erp/v1/credit-notes",
                                                                 params={"invoice_id": draft["id"]}))["items"])
    assert len(credits) == 1
    (line,) = credits[0]["lines"]
    assert (line["source_ids"], Decimal(line["amount"]), Decimal(line["quantity"])) == (
        [old], Decimal(billed["amount"]), Decimal(8))
    wait_for("the 6 hours posted", lambda: postings_settled(experience, [new]))
    wait_for("the 8 hours reversed", lambda: reversed_once(system, old))
    assert net_hours(system, old, new) == Decimal(6)
    # The new version is posted after its period was invoiced: the late-time policy bills it on the period's next
    # (supplementary) invoice, the old version never again.
    assert ok(system.get(f"/system/psa/v1/time-entries/{new}"))["state"] == "posted"
    supplement = ok(experience.post("/process/invoicing/v1/invoice-drafts",
                                    json={"contract_id": "ctr_2006", "period": f"{day:%Y-%m}"}), 201)
    assert supplement["id"] != draft["id"] and supplement["supplements_id"] is not None
    assert supplement["sequence"] > draft["sequence"]
    assert new in supplement["time_entry_ids"] and old not in supplement["time_entry_ids"]


def test_an_open_correction_holds_its_hours_on_the_day_until_it_is_carried_out(experience: httpx.Client) -> None:
    day = a_day_of_its_own()
    old = approved_entry(experience, hours="8", day=day)
    correction = ask(experience, old, hours="20")  # the day would hold 20 once the correction is carried out

    more = experience.post(f"{TIME}/time-entries", json={
        "worker_id": CONSULTANT, "project_id": PROJECT, "task_id": TASK, "work_date": day.isoformat(),
        "hours": "5", "client_ref": f"cor-{uuid.uuid4().hex[:10]}"})
    assert more.status_code == 400, more.text
    assert more.headers["content-type"] == "application/problem+json"
    assert more.json()["errors"][0]["pointer"] == "/hours"
    assert "4 left" in more.json()["errors"][0]["detail"]

    ok(experience.post(f"{TIME}/corrections/{correction['id']}/decisions",
                       json={"approver_id": MANAGER, "decision": "reject", "reason": "stay at 8"}))
    room = experience.post(f"{TIME}/time-entries", json={
        "worker_id": CONSULTANT, "project_id": PROJECT, "task_id": TASK, "work_date": day.isoformat(),
        "hours": "5", "client_ref": f"cor-{uuid.uuid4().hex[:10]}"})
    assert room.status_code == 201, room.text


def test_one_key_sent_at_once_and_again_records_one_correction_and_a_reused_key_is_refused(
        stack: RunningStack, experience: httpx.Client) -> None:
    old = approved_entry(experience, hours="5")
    key = f"fix-{uuid.uuid4().hex}"
    body = {"time_entry_id": old, "worker_id": CONSULTANT, "hours": "4", "reason": "left at four"}

    answers = at_once(lambda: stack.client("experience-tier"), 6,
                      lambda client: client.post(f"{TIME}/corrections", json=body, headers={"Idempotency-Key": key}))
    answers.append(experience.post(f"{TIME}/corrections", json=body, headers={"Idempotency-Key": key}))

    assert sorted(a.status_code for a in answers) == [200] * 6 + [201], [(a.status_code, a.text) for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    mine = [c for c in all_items(experience, f"{TIME}/corrections", worker_id=CONSULTANT)
            if c["time_entry_id"] == old]
    assert [c["id"] for c in mine] == [answers[0].json()["id"]]

    reused = experience.post(f"{TIME}/corrections", json={**body, "hours": "3"}, headers={"Idempotency-Key": key})
    assert reused.status_code == 422 and reused.headers["content-type"] == "application/problem+json"
    assert reused.json()["type"].endswith("/idempotency-key-reused")
    assert ok(experience.get(f"{TIME}/corrections/{mine[0]['id']}"))["hours"] == "4"
