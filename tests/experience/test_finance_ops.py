"""Finance operations: a finance lead works the exception queue, invoices, reconciles and closes the month,
every action recorded as the signed-in person."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.support.contract_checks import assert_matches_contract
from tests.support.flows import all_items
from tests.support.stack import RunningStack

API = "experience/finance-ops"
FINOPS = "/experience/finance-ops/v1"
PSA = "/system/psa/v1"
ERP = "/system/erp/v1"
FINANCE_LEAD = "wrk_e1003"
FINANCE_CLERK = "wrk_e1004"
# Contracts no other test drafts or posts: a draft here cannot change what another test expects.
OWN_CONTRACTS = ("ctr_2005", "ctr_2007", "ctr_2013", "ctr_2014", "ctr_2016", "ctr_2017")


@pytest.fixture
def lead(stack: RunningStack) -> Iterator[httpx.Client]:
    with stack.client("finance-web", subject=FINANCE_LEAD) as client:
        yield client


@pytest.fixture
def clerk(stack: RunningStack) -> Iterator[httpx.Client]:
    """A finance person whose token was not granted month end."""
    with stack.client("finance-web", subject=FINANCE_CLERK, scopes=["finance:read", "finance:write"]) as client:
        yield client


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


def is_problem(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


def held_entry_in_a_closed_month(system: httpx.Client) -> tuple[str, str]:
    """A fresh approved entry on prj_4003 dated in a closed accounting period: month end must hold it."""
    closed = sorted(p["period"] for p in all_items(system, f"{ERP}/accounting-periods", legal_entity_id="le_us")
                    if p["status"] == "closed")
    assert closed, "the demo firm has a closed accounting period"
    period = closed[-1]
    entry = ok(system.post(f"{PSA}/time-entries", json={
        "worker_id": "wrk_e1001", "project_id": "prj_4003", "task_id": "tsk_4003-t2", "work_date": f"{period}-10",
        "hours": "2", "notes": "finance-ops " + uuid.uuid4().hex[:8]}), 201)
    manager = ok(system.get(f"{PSA}/projects/prj_4003"))["manager_id"]
    for state, actor in (("submitted", "wrk_e1001"), ("approved", manager)):
        ok(system.post(f"{PSA}/time-entries/{entry['id']}/transitions", json={"to_state": state, "actor_id": actor}))
    return entry["id"], period


def queue_item_of(lead: httpx.Client, entry_id: str) -> dict[str, Any]:
    found = all_items(lead, f"{FINOPS}/exceptions", reason_code="PERIOD_CLOSED", source_id=entry_id)
    assert len(found) == 1 and found[0]["source_id"] == entry_id, found
    return found[0]


@pytest.fixture
def held(lead: httpx.Client, system_reader: httpx.Client) -> dict[str, Any]:
    """A billing hold raised by the lead's own month end, open in the queue."""
    entry_id, period = held_entry_in_a_closed_month(system_reader)
    ok(lead.post(f"{FINOPS}/month-end-settlements", json={"period": period}))
    return queue_item_of(lead, entry_id)


def test_month_end_settles_once_and_needs_its_own_grant(lead: httpx.Client, clerk: httpx.Client,
                                                        system_reader: httpx.Client) -> None:
    entry_id, period = held_entry_in_a_closed_month(system_reader)

    refused = clerk.post(f"{FINOPS}/month-end-settlements", json={"period": period})
    first = lead.post(f"{FINOPS}/month-end-settlements", json={"period": period})
    again = lead.post(f"{FINOPS}/month-end-settlements", json={"period": period})

    assert is_problem(refused, 403)["missing_scopes"] == ["finance:month-end"]
    assert_matches_contract(API, "POST", "/month-end-settlements", first)
    run = ok(first)
    assert (run["period"], run["run_by"]) == (period, FINANCE_LEAD)
    assert run["summary"]["held_by_reason"].get("PERIOD_CLOSED", 0) >= 1
    assert ok(again)["summary"]["queued_for_posting"] == 0  # a closed month posts nothing, the second run neither
    item = queue_item_of(lead, entry_id)  # held once: one open item however often month end runs
    assert item["kind"] == "billing_hold" and item["state"] == "open" and item["reason_codes"] == ["PERIOD_CLOSED"]
    assert all_items(system_reader, f"{ERP}/postings", source_id=entry_id) == []


def test_the_queue_filters_and_every_action_is_recorded_as_the_signed_in_person(
        lead: httpx.Client, held: dict[str, Any]) -> None:
    listed = lead.get(f"{FINOPS}/exceptions", params={"state": "open", "kind": "billing_hold",
                                                       "reason_code": "PERIOD_CLOSED", "max_age_days": 0, "limit": 5})
    assert_matches_contract(API, "GET", "/exceptions", listed)
    assert all(i["state"] == "open" and "PERIOD_CLOSED" in i["reason_codes"] for i in ok(listed)["items"])
    assert ok(lead.get(f"{FINOPS}/exceptions", params={"min_age_days": 3650}))["items"] == []

    claimed = lead.post(f"{FINOPS}/exceptions/{held['id']}/assignments", json={})
    assert_matches_contract(API, "POST", "/exceptions/{exception_id}/assignments", claimed)
    assert (ok(claimed)["state"], ok(claimed)["owner_id"]) == ("assigned", FINANCE_LEAD)
    retried = lead.post(f"{FINOPS}/exceptions/{held['id']}/retries")
    assert_matches_contract(API, "POST", "/exceptions/{exception_id}/retries", retried)
    assert ok(retried)["outcome"] == "still_failing"  # the month is still closed
    resolved = lead.post(f"{FINOPS}/exceptions/{held['id']}/resolutions",
                         json={"resolution": "Moved to the open month by journal J-118"})
    assert_matches_contract(API, "POST", "/exceptions/{exception_id}/resolutions", resolved)

    detail = lead.get(f"{FINOPS}/exceptions/{held['id']}")
    assert_matches_contract(API, "GET", "/exceptions/{exception_id}", detail)
    by_action = {h["action"]: h["actor_id"] for h in ok(detail)["history"]}
    assert by_action["assigned"] == by_action["retry_requested"] == by_action["resolved"] == FINANCE_LEAD
    assert ok(detail)["state"] == "resolved"
    assert ok(detail)["resolution"] == "Moved to the open month by journal J-118"


def test_no_body_can_name_another_actor(lead: httpx.Client, held: dict[str, Any]) -> None:
    for path, body in (("assignments", {"owner_id": FINANCE_LEAD, "actor_id": "wrk_e1999"}),
                       ("resolutions", {"resolution": "done", "actor_id": "wrk_e1999"})):
        refused = is_problem(lead.post(f"{FINOPS}/exceptions/{held['id']}/{path}", json=body), 400)
        assert "/actor_id" in {e["pointer"] for e in refused["errors"]}, refused
    is_problem(lead.post(f"{FINOPS}/exceptions/{held['id']}/retries", json={"actor_id": "wrk_e1999"}), 400)
    history = ok(lead.get(f"{FINOPS}/exceptions/{held['id']}"))["history"]
    assert "wrk_e1999" not in {h["actor_id"] for h in history}
    assert ok(lead.get(f"{FINOPS}/exceptions/{held['id']}"))["state"] == "open"  # nothing was done


def test_a_token_without_a_person_or_without_the_grant_is_refused(stack: RunningStack,
                                                                  held: dict[str, Any]) -> None:
    with stack.client("finance-web") as machine, stack.client("dashboard-web", subject=FINANCE_LEAD) as dashboards:
        no_person = machine.post(f"{FINOPS}/exceptions/{held['id']}/assignments", json={})
        wrong_client = dashboards.get(f"{FINOPS}/exceptions")
    assert is_problem(no_person, 403)["type"].endswith("/user-token-required")
    assert is_problem(wrong_client, 403)["type"].endswith("/insufficient-scope")


def test_concurrent_resolutions_resolve_once(lead: httpx.Client, held: dict[str, Any]) -> None:
    def resolve(_: int) -> httpx.Response:
        return lead.post(f"{FINOPS}/exceptions/{held['id']}/resolutions", json={"resolution": "written off"})

    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(resolve, range(5)))

    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409, 409]
    assert all(a.headers["content-type"].startswith("application/problem+json") for a in answers
               if a.status_code == 409)
    history = ok(lead.get(f"{FINOPS}/exceptions/{held['id']}"))["history"]
    assert [h["action"] for h in history].count("resolved") == 1


def test_bulk_actions_answer_per_item_once_per_id(lead: httpx.Client, held: dict[str, Any]) -> None:
    unknown = "exc_" + uuid.uuid4().hex[:24]
    response = lead.post(f"{FINOPS}/exception-actions", json={
        "action": "assign", "exception_ids": [held["id"], held["id"], unknown]})

    assert_matches_contract(API, "POST", "/exception-actions", response)
    result = ok(response)
    assert (result["done"], result["refused"], result["failed"]) == (1, 1, 0)
    by_id = {i["exception_id"]: i for i in result["items"]}
    assert by_id[held["id"]]["state"] == "assigned" and by_id[unknown]["status"] == 404
    resolved = ok(lead.post(f"{FINOPS}/exception-actions", json={
        "action": "resolve", "exception_ids": [held["id"]], "resolution": "Agreed with the client"}))
    assert resolved["items"][0]["state"] == "resolved"
    repeated = ok(lead.post(f"{FINOPS}/exception-actions", json={
        "action": "resolve", "exception_ids": [held["id"]], "resolution": "Agreed with the client"}))
    assert (repeated["refused"], repeated["items"][0]["status"]) == (1, 409)  # resolved once, not twice
    history = ok(lead.get(f"{FINOPS}/exceptions/{held['id']}"))["history"]
    assert [(h["action"], h["actor_id"]) for h in history if h["action"] in ("assigned", "resolved")] == [
        ("assigned", FINANCE_LEAD), ("resolved", FINANCE_LEAD)]

    no_resolution = is_problem(lead.post(f"{FINOPS}/exception-actions", json={
        "action": "resolve", "exception_ids": [held["id"]]}), 400)
    assert {e["pointer"] for e in no_resolution["errors"]} == {"/resolution"}
    too_many = is_problem(lead.post(f"{FINOPS}/exception-actions", json={
        "action": "retry", "exception_ids": [f"exc_{n}" for n in range(101)]}), 400)
    assert "/exception_ids" in {e["pointer"] for e in too_many["errors"]}


def last_month() -> str:
    return (dt.datetime.now(dt.UTC).date().replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")


def test_a_finance_lead_drafts_reviews_and_posts_an_invoice_once(lead: httpx.Client) -> None:
    period = last_month()
    drafted = None
    for contract in OWN_CONTRACTS:
        attempt = lead.post(f"{FINOPS}/invoice-drafts", json={"contract_id": contract, "period": period})
        if attempt.status_code == 201:
            drafted = attempt
            break
        assert attempt.status_code == 422, attempt.text  # nothing to invoice for that one: try the next
    assert drafted is not None, "one of the demo contracts has something to invoice last month"
    assert_matches_contract(API, "POST", "/invoice-drafts", drafted)
    draft = drafted.json()
    assert drafted.headers["location"] == f"{FINOPS}/invoices/{draft['id']}"
    again = lead.post(f"{FINOPS}/invoice-drafts", json={"contract_id": draft["contract_id"], "period": period})
    assert ok(again)["id"] == draft["id"]  # the same draft, not a second one

    review = lead.get(f"{FINOPS}/invoices/{draft['id']}")
    assert_matches_contract(API, "GET", "/invoices/{invoice_id}", review)
    lines = ok(review)["invoice"]["lines"]
    assert sum((Decimal(line["amount"]) for line in lines), Decimal(0)) == Decimal(ok(review)["invoice"]["subtotal"])
    listed = lead.get(f"{FINOPS}/invoices", params={"contract_id": draft["contract_id"], "state": "draft"})
    assert_matches_contract(API, "GET", "/invoices", listed)
    assert draft["id"] in {i["id"] for i in ok(listed)["items"]}

    posted = lead.post(f"{FINOPS}/invoices/{draft['id']}/postings")
    assert_matches_contract(API, "POST", "/invoices/{invoice_id}/postings", posted)
    assert ok(posted)["state"] == "posted"
    twice = lead.post(f"{FINOPS}/invoices/{draft['id']}/postings")
    assert twice.status_code in (200, 409)
    assert ok(lead.get(f"{FINOPS}/invoices", params={"contract_id": draft["contract_id"], "period": period,
                                                     "state": "posted"}))["items"][0]["id"] == draft["id"]


def test_reconciliation_runs_and_its_differences_can_be_read(lead: httpx.Client) -> None:
    run = lead.post(f"{FINOPS}/reconciliations", json={"project_ids": ["prj_4003"]})
    assert_matches_contract(API, "POST", "/reconciliations", run)
    created = ok(run, 201)
    assert created["state"] in ("completed", "running") and created["project_ids"] == ["prj_4003"]

    read = lead.get(f"{FINOPS}/reconciliations/{created['id']}")
    assert_matches_contract(API, "GET", "/reconciliations/{reconciliation_id}", read)
    listed = lead.get(f"{FINOPS}/reconciliations", params={"limit": 50})
    assert_matches_contract(API, "GET", "/reconciliations", listed)
    assert created["id"] in {r["id"] for r in ok(listed)["items"]}
    backwards = is_problem(lead.post(f"{FINOPS}/reconciliations", json={
        "from_date": "2026-10-31", "to_date": "2026-10-01"}), 400)
    assert {e["pointer"] for e in backwards["errors"]} == {"/from_date"}


def test_provisioning_can_be_followed_step_by_step(lead: httpx.Client, process_reader: httpx.Client) -> None:
    # Sales starts provisioning an opportunity still in proposal: rejected into the queue, and finance can see why.
    started = ok(process_reader.post("/process/provisioning/v1/provisionings", json={"opportunity_id": "opp_3102"}),
                 202)

    def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = ok(lead.get(f"{FINOPS}/provisionings/{started['id']}"))
        return body if body["state"] not in ("pending", "running") else None

    deadline = time.monotonic() + 60
    seen = finished()
    while seen is None and time.monotonic() < deadline:
        time.sleep(0.25)
        seen = finished()
    assert seen is not None and seen["state"] == "rejected", seen
    by_id = lead.get(f"{FINOPS}/provisionings/{started['id']}")
    assert_matches_contract(API, "GET", "/provisionings/{provisioning_id}", by_id)
    assert seen["steps"][0]["name"] == "validate"
    by_opportunity = lead.get(f"{FINOPS}/opportunities/opp_3102/provisioning")
    assert_matches_contract(API, "GET", "/opportunities/{opportunity_id}/provisioning", by_opportunity)
    assert ok(by_opportunity)["id"] == started["id"]
    item = ok(lead.get(f"{FINOPS}/exceptions/{seen['exception_id']}"))
    assert (item["kind"], item["source_id"]) == ("provisioning", "opp_3102")


@pytest.mark.parametrize("path", [
    "/exceptions/exc_does_not_exist", "/invoices/inv_does_not_exist", "/reconciliations/rec_does_not_exist",
    "/provisionings/prv_does_not_exist", "/opportunities/opp_does_not_exist/provisioning",
    "/exceptions/exc%0D%0AX-Injected:%201", "/exceptions/..%2F..%2Fprocess%2Fexceptions%2Fv1%2Fexceptions",
    "/invoices/inv%2F..%2F..%2Finvoice-drafts",
])
def test_unknown_or_hostile_ids_are_a_clean_4xx(lead: httpx.Client, path: str) -> None:
    response = lead.get(FINOPS + path)
    problem = is_problem(response, 400, 404)
    assert "x-injected" not in {k.lower() for k in response.headers}
    assert problem["status"] == response.status_code


@pytest.mark.parametrize(("path", "params", "pointer"), [
    ("/exceptions", {"limit": "0"}, "/limit"),
    ("/exceptions", {"limit": "201"}, "/limit"),
    ("/exceptions", {"min_age_days": "-1"}, "/min_age_days"),
    ("/exceptions", {"max_age_days": "99999999999999999999"}, "/max_age_days"),
    ("/exceptions", {"state": "closed"}, "/state"),
    ("/exceptions", {"reason_code": "nte\r\nexceeded"}, "/reason_code"),
    ("/invoices", {"period": "2026-13"}, "/period"),
    ("/reconciliations", {"limit": "51"}, "/limit"),
])
def test_bad_query_parameters_are_400_problems_with_pointers(lead: httpx.Client, path: str, params: dict[str, str],
                                                             pointer: str) -> None:
    problem = is_problem(lead.get(FINOPS + path, params=params), 400)
    assert pointer in {e["pointer"] for e in problem.get("errors", [])}, problem


@pytest.mark.parametrize(("path", "body", "pointer"), [
    ("/month-end-settlements", {"period": "2026-13"}, "/period"),
    ("/month-end-settlements", {"period": "2026-10", "project_id": "prj_4003"}, "/project_id"),
    ("/invoice-drafts", {"contract_id": "", "period": "2026-10"}, "/contract_id"),
    ("/invoice-drafts", {"contract_id": "ctr_2005", "period": "26-10"}, "/period"),
    ("/reconciliations", {"project_ids": []}, "/project_ids"),
    ("/exceptions/exc_x/resolutions", {"resolution": "x" * 2001}, "/resolution"),
    ("/exception-actions", {"action": "delete", "exception_ids": ["exc_x"]}, "/action"),
])
def test_bad_bodies_are_400_problems_with_pointers(lead: httpx.Client, path: str, body: dict[str, Any],
                                                   pointer: str) -> None:
    problem = is_problem(lead.post(FINOPS + path, json=body), 400)
    assert pointer in {e["pointer"] for e in problem.get("errors", [])}, problem


def test_deeply_nested_json_is_refused_not_crashed(lead: httpx.Client) -> None:
    deep = "[" * 5000 + "]" * 5000
    for path in ("/exception-actions", "/month-end-settlements", "/reconciliations"):
        response = lead.post(FINOPS + path, content=deep, headers={"Content-Type": "application/json"})
        is_problem(response, 400, 413, 422)


def test_process_tier_down_is_a_503_problem_never_a_500(stack: RunningStack, lead: httpx.Client) -> None:
    stack.stack.kill("process")
    try:
        answers = [
            lead.get(f"{FINOPS}/exceptions", timeout=15),
            lead.post(f"{FINOPS}/exceptions/exc_x/resolutions", json={"resolution": "x"}, timeout=15),
            lead.post(f"{FINOPS}/exception-actions", json={"action": "retry", "exception_ids": ["exc_a", "exc_b"]},
                      timeout=15),
            lead.post(f"{FINOPS}/month-end-settlements", json={"period": "2026-10"}, timeout=15),
        ]
    finally:
        stack.stack.start(only=["process"])
        stack.stack.wait_ready(only=["process"])

    for answer in answers:
        assert is_problem(answer, 503)["status"] == 503
    # Back once the tier is (the gateway's breaker lets calls through again after a few seconds).
    deadline = time.monotonic() + 30
    while lead.get(f"{FINOPS}/exceptions").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert lead.get(f"{FINOPS}/exceptions").status_code == 200



def test_the_gateway_audit_names_the_person_and_ties_the_process_calls_to_them(
        stack: RunningStack, lead: httpx.Client, system_reader: httpx.Client) -> None:
    _, period = held_entry_in_a_closed_month(system_reader)
    correlation = "finops-audit-" + uuid.uuid4().hex
    ok(lead.post(f"{FINOPS}/month-end-settlements", json={"period": period},
                 headers={"X-Correlation-ID": correlation}))

    with stack.client("security-admin") as admin:
        deadline = time.monotonic() + 15
        while True:
            calls = ok(admin.get("/admin/v1/audit/calls", params={"correlation_id": correlation}))["items"]
            if len(calls) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.25)
    by_api = {c["api"]: c for c in calls}
    person = by_api["experience/finance-ops"]
    assert (person["client_id"], person["subject"], person["status"]) == ("finance-web", FINANCE_LEAD, 200)
    settling = by_api["process/billing"]  # the call it caused, by the experience tier, under the same id
    assert (settling["client_id"], settling["route"], settling["status"]) == ("experience-tier", "/settlements", 200)
