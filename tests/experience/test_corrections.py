"""Correcting posted time, as the people do it: the consultant asks on the phone, the manager decides in the
inbox, the process tier carries it out. An 8 h entry corrected to 6 h is 6 h in the ERP and on the invoice."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.support.contract_checks import assert_matches_contract
from tests.support.days import a_day_of_its_own, week_of
from tests.support.flows import all_items
from tests.support.stack import RunningStack

V2 = "/experience/mobile-time/v2"
INBOX = "/experience/approvals/v1"
PROJECT, TASK, CONTRACT = "prj_4006", "tsk_4006-t2", "ctr_2006"  # far from its NTE: time there is posted
PROJECT_MANAGER = "wrk_e1007"


@pytest.fixture
def project_manager(stack: RunningStack) -> Iterator[httpx.Client]:
    with stack.client("dashboard-web", subject=PROJECT_MANAGER) as client:
        yield client


def eventually(what: str, probe: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"gave up waiting for {what}")


def postings(system_reader: httpx.Client, entry_id: str) -> list[dict[str, Any]]:
    return all_items(system_reader, "/system/erp/v1/postings", source_id=entry_id)


def posted_entry(consultant: httpx.Client, manager: httpx.Client, system_reader: httpx.Client) -> dict[str, Any]:
    """Eight hours logged on the phone, submitted, approved in the inbox and posted to the ERP."""
    day = a_day_of_its_own()
    created = consultant.post(f"{V2}/me/time-entries", json={
        "project_id": PROJECT, "task_id": TASK, "work_date": day.isoformat(), "minutes": 480,
        "work_type": "billable_delivery", "client_ref": "fix-" + uuid.uuid4().hex[:10]})
    assert created.status_code == 201, created.text
    entry_id = created.json()["time_entry_id"]
    assert consultant.post(f"{V2}/me/weeks/{week_of(day).isoformat()}/submissions").status_code == 200
    approved = manager.post(f"{INBOX}/submitted-entries/{entry_id}/decisions", json={"decision": "approve"})
    assert approved.json()["items"][0]["billing"]["disposition"] == "queued_for_posting", approved.text
    eventually("the 8 hours posted", lambda: len(postings(system_reader, entry_id)) == 1)
    return {"id": entry_id, "period": f"{day:%Y-%m}"}


def test_posted_time_corrected_on_the_phone_and_in_the_inbox_bills_6_hours(
        consultant: httpx.Client, project_manager: httpx.Client, system_reader: httpx.Client,
        process_reader: httpx.Client, stack: RunningStack) -> None:
    old = posted_entry(consultant, project_manager, system_reader)

    asked = consultant.post(f"{V2}/me/time-entries/{old['id']}/corrections",
                            json={"minutes": 360, "reason": "the workshop ended at 15:00"})
    assert asked.status_code == 201, asked.text
    assert_matches_contract("experience/mobile-time", "POST", "/me/time-entries/{time_entry_id}/corrections", asked,
                            version=2)
    correction = asked.json()
    assert (correction["minutes"], correction["state"]) == (360, "requested")

    listed = project_manager.get(f"{INBOX}/correction-requests")
    assert listed.status_code == 200, listed.text
    assert_matches_contract("experience/approvals", "GET", "/correction-requests", listed)
    item = next(i for i in listed.json()["items"] if i["correction_id"] == correction["correction_id"])
    assert (item["hours"], item["corrected_hours"], item["time_entry_id"]) == ("8", "6", old["id"])

    decided = project_manager.post(f"{INBOX}/correction-requests/{correction['correction_id']}/decisions",
                                   json={"decision": "approve"})
    assert decided.status_code == 200, decided.text
    assert_matches_contract("experience/approvals", "POST", "/correction-requests/{correction_id}/decisions", decided)
    assert (decided.json()["result"], decided.json()["state"]) == ("approved", "applied")
    new = decided.json()["new_time_entry_id"]
    again = project_manager.post(f"{INBOX}/correction-requests/{correction['correction_id']}/decisions",
                                 json={"decision": "approve"})
    assert again.json()["result"] == "unchanged"

    eventually("the 6 hours posted and the 8 reversed", lambda: len(postings(system_reader, new)) == 1
               and len(postings(system_reader, old["id"])) == 2)
    net = sum((Decimal(p["quantity"]) for i in (old["id"], new) for p in postings(system_reader, i)), Decimal(0))
    assert net == Decimal(6)

    # Invoicing never takes the superseded version: the period's invoice bills the 6 hours, not 8 + 6.
    with stack.client("experience-tier", scopes=["invoicing:read", "invoicing:write"]) as finance:
        drafted = finance.post("/process/invoicing/v1/invoice-drafts",
                               json={"contract_id": CONTRACT, "period": old["period"]})
    assert drafted.status_code in (200, 201), drafted.text
    billed = drafted.json()["time_entry_ids"]
    assert new in billed and old["id"] not in billed


def test_nobody_decides_a_correction_of_their_own_time(consultant: httpx.Client, project_manager: httpx.Client,
                                                       system_reader: httpx.Client, stack: RunningStack) -> None:
    old = posted_entry(consultant, project_manager, system_reader)
    asked = consultant.post(f"{V2}/me/time-entries/{old['id']}/corrections",
                            json={"minutes": 1500, "reason": "typo"})
    assert asked.status_code == 400 and asked.json()["errors"][0]["pointer"] == "/minutes"
    asked = consultant.post(f"{V2}/me/time-entries/{old['id']}/corrections", json={"minutes": 420, "reason": "typo"})
    assert asked.status_code == 201, asked.text
    correction_id = asked.json()["correction_id"]

    # The consultant holding a manager's token for their own request: refused, and never in their inbox.
    with stack.client("dashboard-web", subject="wrk_e1001") as own:
        assert correction_id not in {i["correction_id"] for i in all_items(own, f"{INBOX}/correction-requests")}
        refused = own.post(f"{INBOX}/correction-requests/{correction_id}/decisions", json={"decision": "approve"})
    assert refused.status_code == 403 and refused.json()["type"].endswith("/own-time")
    with stack.client("process-tier") as system:
        assert not system.get(f"/system/psa/v1/time-entries/{old['id']}").json()["superseded_by_id"]


def test_a_correction_of_what_cannot_be_corrected_is_a_clear_4xx(consultant: httpx.Client,
                                                                  project_manager: httpx.Client,
                                                                  system_reader: httpx.Client) -> None:
    body = {"minutes": 60, "reason": "typo"}
    for entry_id in ("te_999999999", "te%2F..%2F1", "te_1%0D%0AX:%20y"):
        response = consultant.post(f"{V2}/me/time-entries/{entry_id}/corrections", json=body)
        assert 400 <= response.status_code < 500, (entry_id, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    someone_elses = next(e["id"] for e in all_items(system_reader, "/system/psa/v1/time-entries",
                                                    project_id=PROJECT, state="posted")
                         if e["worker_id"] != "wrk_e1001")
    assert consultant.post(f"{V2}/me/time-entries/{someone_elses}/corrections", json=body).status_code == 404
    draft = consultant.post(f"{V2}/me/time-entries", json={
        "project_id": PROJECT, "work_date": a_day_of_its_own().isoformat(), "minutes": 60,
        "work_type": "billable_delivery"}).json()["time_entry_id"]
    refused = consultant.post(f"{V2}/me/time-entries/{draft}/corrections", json=body)  # a draft is edited instead
    assert refused.status_code == 409 and refused.json()["type"].endswith("/not-correctable")
    unknown = project_manager.post(f"{INBOX}/correction-requests/cor_nothing/decisions", json={"decision": "approve"})
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
