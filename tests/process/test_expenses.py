"""Expenses through the gateway: policy holds with reason codes, exactly-once ERP posting, billing at cost."""

from __future__ import annotations

import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.support.contract_checks import assert_matches_contract
from tests.support.flows import ERP, PSA, all_items, at_once, erp_postings_of, ok, wait_for
from tests.support.stack import RunningStack, sandbox_url

EXPENSES = "/process/expenses/v1/expenses"
DRAFTS = "/process/invoicing/v1/invoice-drafts"


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@pytest.fixture(scope="module")
def engagement(system: httpx.Client) -> dict[str, Any]:
    """An active time-and-materials project of an active contract, its manager and a consultant on it
    (the last such project: the other invoicing scenarios use the first contracts)."""
    projects = ok(system.get(f"{PSA}/projects", params={"status": "active", "limit": 200}))["items"]
    for project in reversed(projects):
        contract = ok(system.get(f"{ERP}/contracts/{project['contract_id']}"))
        if (
            contract["billing_model"] != "time_and_materials"
            or contract["status"] != "active"
            or contract["nte_amount"] is not None
            or contract.get("expense_markup_percent") is not None  # billed at cost here (markup: its own test)
        ):
            continue
        team = ok(system.get(f"{PSA}/assignments", params={"project_id": project["id"], "limit": 50}))["items"]
        workers = [a["worker_id"] for a in team if a["worker_id"] != project["manager_id"]]
        if workers:
            return {
                "project_id": project["id"],
                "contract_id": contract["id"],
                "currency": contract["currency"],
                "manager_id": project["manager_id"],
                "worker_id": workers[0],
            }
    raise AssertionError("the sandbox firm has no active time-and-materials engagement")


def expense(engagement: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {
        "worker_id": engagement["worker_id"],
        "project_id": engagement["project_id"],
        "category": "lodging",
        "amount": "189.00",
        "currency": engagement["currency"],
        "expense_date": today().isoformat(),
        "country": "US",
        "billable": True,
        "receipt_ref": f"rcpt-{uuid.uuid4().hex[:8]}",
        "description": "Hotel, client workshop",
    } | overrides


def decide(experience: httpx.Client, expense_id: str, approver_id: str) -> httpx.Response:
    return experience.post(
        f"{EXPENSES}/{expense_id}/decisions", json={"approver_id": approver_id, "decision": "approve"}
    )


def test_an_expense_over_policy_is_held_and_a_compliant_one_is_posted_once_and_invoiced_at_cost(
    stack: RunningStack,
    experience: httpx.Client,
    system: httpx.Client,
    sandboxes: httpx.Client,
    engagement: dict[str, Any],
) -> None:
    over = experience.post(EXPENSES, json=expense(engagement, category="meals", amount="92.50", country="US"))
    assert_matches_contract("process/expenses", "POST", "/expenses", over)
    held = ok(over, 201)
    assert held["state"] == "held" and held["reason_codes"] == ["OVER_PER_DIEM"]
    assert decide(experience, held["id"], engagement["manager_id"]).status_code == 409  # held: not decided

    key = f"expense-{uuid.uuid4().hex}"
    body = expense(engagement)
    captured = ok(experience.post(EXPENSES, json=body, headers={"Idempotency-Key": key}), 201)
    assert captured["state"] == "submitted" and captured["reason_codes"] == []
    repeat = experience.post(EXPENSES, json=body, headers={"Idempotency-Key": key})  # the phone retries
    assert repeat.status_code == 200 and repeat.json()["id"] == captured["id"]

    own = experience.post(
        f"{EXPENSES}/{captured['id']}/decisions", json={"approver_id": engagement["worker_id"], "decision": "approve"}
    )
    assert own.status_code == 403 and own.headers["content-type"].startswith("application/problem+json")
    assert own.json()["errors"][0]["pointer"] == "/approver_id"

    erp_faults = sandbox_url(stack, "erp") + "/_sandbox/faults"
    ok(sandboxes.put(erp_faults, json={"outage_seconds": 4, "only_methods": ["POST"]}))
    try:
        approved = decide(experience, captured["id"], engagement["manager_id"])
        assert_matches_contract("process/expenses", "POST", "/expenses/{expense_id}/decisions", approved)
        assert ok(approved)["state"] == "approved"
    finally:
        wait_for("the ERP outage to refuse the posting", lambda: ok(sandboxes.get(erp_faults))["injected"]["outage"])
        sandboxes.delete(erp_faults)
    posted = wait_for(
        "the expense to be posted after the outage",
        lambda: (e := ok(experience.get(f"{EXPENSES}/{captured['id']}"))) and e["state"] == "posted" and e,
    )
    assert [p["id"] for p in erp_postings_of(system, captured["id"])] == [posted["erp_posting_id"]]

    drafted = ok(
        experience.post(DRAFTS, json={"contract_id": engagement["contract_id"], "period": today().strftime("%Y-%m")}),
        200,
        201,
    )
    lines = [line for line in drafted["invoice"]["lines"] if captured["id"] in line["source_ids"]]
    assert [(line["source_type"], Decimal(line["amount"])) for line in lines] == [("expense", Decimal("189.00"))]
    assert held["id"] not in {s for line in drafted["invoice"]["lines"] for s in line["source_ids"]}
    again = ok(
        experience.post(DRAFTS, json={"contract_id": engagement["contract_id"], "period": today().strftime("%Y-%m")}),
        200,
        201,
    )
    assert again["id"] == drafted["id"]
    view = experience.get(f"{EXPENSES}/{captured['id']}")
    assert_matches_contract("process/expenses", "GET", "/expenses/{expense_id}", view)
    assert view.json()["invoice_id"] == drafted["id"]

    # The period's invoice is issued; an expense posted after it is reported until a supplementary invoice bills it.
    ok(experience.post(f"/process/invoicing/v1/invoices/{drafted['id']}/postings"))
    late = ok(experience.post(EXPENSES, json=expense(engagement, amount="64.00", receipt_ref=None)), 201)
    ok(decide(experience, late["id"], engagement["manager_id"]))
    wait_for(
        "the late expense to be posted", lambda: ok(experience.get(f"{EXPENSES}/{late['id']}"))["state"] == "posted"
    )
    run = ok(
        experience.post("/process/reconciliation/v1/reconciliations", json={"project_ids": [engagement["project_id"]]}),
        200,
        201,
    )
    unbilled = [d for c in run["contracts"] for d in c["differences"] if d["expense_id"] is not None]
    assert [(d["type"], d["expense_id"], Decimal(d["amount"])) for d in unbilled] == [
        ("posted_not_invoiced", late["id"], Decimal("64.00"))
    ]


def test_a_category_never_billed_is_cost_only(experience: httpx.Client, engagement: dict[str, Any]) -> None:
    training = ok(experience.post(EXPENSES, json=expense(engagement, category="training", amount="60.00")), 201)
    assert training["state"] == "submitted" and training["reason_codes"] == ["CATEGORY_NOT_BILLABLE"]
    assert training["billable"] is False


@pytest.mark.parametrize(
    ("overrides", "pointer"),
    [
        ({"category": "yacht"}, "/category"),
        ({"amount": "-10.00"}, "/amount"),
        ({"amount": "0"}, "/amount"),
        ({"amount": "1e30"}, "/amount"),
        ({"amount": "10.001"}, "/amount"),
        ({"currency": "JPY"}, "/currency"),
        ({"receipt_ref": None}, "/receipt_ref"),
        ({"expense_date": "1900-01-01"}, "/expense_date"),
        ({"expense_date": "9999-12-31"}, "/expense_date"),
        ({"project_id": "prj_999999"}, "/project_id"),
        ({"worker_id": "wrk_nobody"}, "/worker_id"),
    ],
)
def test_bad_input_is_a_problem_naming_the_field(
    experience: httpx.Client, engagement: dict[str, Any], overrides: dict[str, Any], pointer: str
) -> None:
    response = experience.post(EXPENSES, json=expense(engagement, **overrides))
    assert response.status_code in (400, 422), response.text  # the gateway checks the contract first
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["pointer"] for e in response.json()["errors"]] == [pointer]


def test_hostile_requests_are_4xx(experience: httpx.Client, engagement: dict[str, Any]) -> None:
    deep = b"[" * 5000 + b"]" * 5000
    nested = experience.post(
        EXPENSES, content=b'{"description":' + deep + b"}", headers={"content-type": "application/json"}
    )
    assert 400 <= nested.status_code < 500
    unknown_field = experience.post(EXPENSES, json=expense(engagement, approved=True))
    assert unknown_field.status_code == 400
    for bad_id in ("exp_x%0D%0AX-Injected:1", "exp_a%2F..%2Fb", "exp_unknown"):
        assert 400 <= experience.get(f"{EXPENSES}/{bad_id}").status_code < 500
        assert 400 <= decide(experience, bad_id, engagement["manager_id"]).status_code < 500
    key = f"expense-{uuid.uuid4().hex}"
    ok(experience.post(EXPENSES, json=expense(engagement), headers={"Idempotency-Key": key}), 201)
    reused = experience.post(EXPENSES, json=expense(engagement, amount="12.00"), headers={"Idempotency-Key": key})
    assert reused.status_code == 422


def test_concurrent_repeats_of_one_capture_record_one_expense(
    stack: RunningStack, experience: httpx.Client, engagement: dict[str, Any]
) -> None:
    """A phone on a bad network sends its capture several times at once: one expense, every answer names it."""
    body = expense(engagement)
    key = f"storm-{uuid.uuid4().hex}"
    answers = at_once(
        lambda: stack.client("experience-tier"),
        5,
        lambda client: client.post(EXPENSES, json=body, headers={"Idempotency-Key": key}),
    )
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201], [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert answers[0].json() | {"state": None} == answers[-1].json() | {"state": None}
    listed = all_items(experience, EXPENSES, worker_id=engagement["worker_id"])
    assert [e["id"] for e in listed if e["receipt_ref"] == body["receipt_ref"]] == [answers[0].json()["id"]]


def test_concurrent_approvals_post_once(
    experience: httpx.Client, system: httpx.Client, engagement: dict[str, Any]
) -> None:
    captured = ok(
        experience.post(EXPENSES, json=expense(engagement, category="software", amount="49.00", receipt_ref=None)), 201
    )
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(lambda _: decide(experience, captured["id"], engagement["manager_id"]).status_code, range(4))
        )
    assert sorted(answers) == [200, 409, 409, 409]
    wait_for(
        "the expense to be posted", lambda: ok(experience.get(f"{EXPENSES}/{captured['id']}"))["state"] == "posted"
    )
    assert len(erp_postings_of(system, captured["id"])) == 1


def test_a_consultant_captures_expenses_on_the_phone_and_sees_only_their_own(
    stack: RunningStack, experience: httpx.Client, engagement: dict[str, Any]
) -> None:
    mine = "/experience/mobile-time/v2/me/expenses"
    body = {k: v for k, v in expense(engagement).items() if k != "worker_id"}
    key = f"phone-{uuid.uuid4().hex[:12]}"
    with stack.client("mobile-app", subject=engagement["worker_id"]) as phone:
        first = phone.post(mine, json=body, headers={"Idempotency-Key": key})
        assert_matches_contract("experience/mobile-time", "POST", "/me/expenses", first, version=2)
        captured = ok(first, 201)
        resent = phone.post(mine, json=body, headers={"Idempotency-Key": key})  # offline: the answer was lost
        assert resent.status_code == 200 and resent.json()["id"] == captured["id"]
        no_receipt = phone.post(mine, json=body | {"receipt_ref": None})
        assert no_receipt.status_code == 422 and no_receipt.json()["errors"][0]["pointer"] == "/receipt_ref"
        listed = phone.get(mine, params={"limit": 100})
        assert_matches_contract("experience/mobile-time", "GET", "/me/expenses", listed, version=2)
    assert ok(experience.get(f"{EXPENSES}/{captured['id']}"))["worker_id"] == engagement["worker_id"]
    with stack.client("mobile-app", subject=engagement["manager_id"]) as other:
        theirs = [e["id"] for e in ok(other.get(mine, params={"limit": 100}))["items"]]
    assert captured["id"] not in theirs
    with stack.client("mobile-app") as no_person:
        assert no_person.post(mine, json=body).status_code == 403


def test_the_managers_inbox_holds_expenses_beside_time(stack: RunningStack, engagement: dict[str, Any]) -> None:
    inbox = "/experience/approvals/v1/expenses"
    with stack.client("mobile-app", subject=engagement["worker_id"]) as phone:
        submitted = ok(
            phone.post(
                "/experience/mobile-time/v2/me/expenses",
                json={k: v for k, v in expense(engagement).items() if k != "worker_id"},
            ),
            201,
        )
        held = ok(
            phone.post(
                "/experience/mobile-time/v2/me/expenses",
                json={
                    k: v
                    for k, v in expense(engagement, category="travel", amount="1600.00").items()
                    if k != "worker_id"
                },
            ),
            201,
        )
    assert held["reason_codes"] == ["OVER_CATEGORY_LIMIT"]
    with stack.client("dashboard-web", subject=engagement["manager_id"]) as manager:
        listed = manager.get(inbox, params={"project_id": engagement["project_id"], "limit": 200})
        assert_matches_contract("experience/approvals", "GET", "/expenses", listed)
        waiting = {e["id"]: e for e in ok(listed)["items"]}
        assert waiting[submitted["id"]]["state"] == "submitted" and waiting[submitted["id"]]["kind"] == "expense"
        assert waiting[held["id"]]["reason_codes"] == ["OVER_CATEGORY_LIMIT"]
        decided = manager.post(f"{inbox}/{submitted['id']}/decisions", json={"decision": "approve"})
        assert_matches_contract("experience/approvals", "POST", "/expenses/{expense_id}/decisions", decided)
        assert ok(decided)["state"] == "approved"
        assert manager.post(f"{inbox}/{held['id']}/decisions", json={"decision": "approve"}).status_code == 409
        assert manager.post(f"{inbox}/exp_unknown/decisions", json={"decision": "approve"}).status_code == 404
    with stack.client("dashboard-web", subject=engagement["worker_id"]) as consultant:  # not their project
        refused = consultant.post(f"{inbox}/{held['id']}/decisions", json={"decision": "reject"})
        assert refused.status_code in (403, 404)


def test_a_rejection_keeps_its_reason_and_posts_nothing(
    experience: httpx.Client, system: httpx.Client, engagement: dict[str, Any]
) -> None:
    captured = ok(experience.post(EXPENSES, json=expense(engagement)), 201)
    rejected = ok(
        experience.post(
            f"{EXPENSES}/{captured['id']}/decisions",
            json={"approver_id": engagement["manager_id"], "decision": "reject", "reason": "not on this engagement"},
        )
    )
    assert (rejected["state"], rejected["decision_reason"]) == ("rejected", "not on this engagement")
    assert erp_postings_of(system, captured["id"]) == []


def in_a_closed_period() -> dt.date:
    """A day three months back: the sandbox ERP closed that period (sandbox/firm.py closes months 3 to 6 back)."""
    month = today().replace(day=1)
    for _ in range(3):
        month = (month - dt.timedelta(days=1)).replace(day=1)
    return month.replace(day=15)


def test_an_expense_dated_in_a_closed_erp_period_is_refused_at_capture_with_a_pointer(
    stack: RunningStack, experience: httpx.Client, engagement: dict[str, Any]
) -> None:
    # Before: captured, approved, then refused by the ERP's posting: stuck approved, an exception for finance.
    day = in_a_closed_period()
    receipt = f"rcpt-closed-{uuid.uuid4().hex[:8]}"
    refused = experience.post(EXPENSES, json=expense(engagement, expense_date=day.isoformat(), receipt_ref=receipt))
    with stack.client("mobile-app", subject=engagement["worker_id"]) as phone:
        on_the_phone = phone.post(
            "/experience/mobile-time/v2/me/expenses",
            json={k: v for k, v in expense(engagement, expense_date=day.isoformat(), receipt_ref=receipt).items()
                  if k != "worker_id"},
        )

    for answer in (refused, on_the_phone):
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"].endswith("/period-closed")
        assert [e["pointer"] for e in answer.json()["errors"]] == ["/expense_date"]
    assert_matches_contract("process/expenses", "POST", "/expenses", refused)
    mine = all_items(experience, EXPENSES, worker_id=engagement["worker_id"])
    assert receipt not in {e["receipt_ref"] for e in mine}  # nothing captured, nothing to post
    fine = ok(experience.post(EXPENSES, json=expense(engagement)), 201)  # the period of today is open
    assert fine["state"] == "submitted"


def test_a_managers_own_expense_is_not_in_their_inbox_and_deciding_it_is_403(
    stack: RunningStack, experience: httpx.Client, engagement: dict[str, Any]
) -> None:
    manager_id = engagement["manager_id"]
    own = ok(experience.post(EXPENSES, json=expense(engagement, worker_id=manager_id)), 201)
    theirs = ok(experience.post(EXPENSES, json=expense(engagement)), 201)
    inbox = "/experience/approvals/v1/expenses"

    with stack.client("dashboard-web", subject=manager_id) as manager:
        waiting = {e["id"] for e in all_items(manager, inbox, project_id=engagement["project_id"])}
        refused = manager.post(f"{inbox}/{own['id']}/decisions", json={"decision": "approve"})

    assert theirs["id"] in waiting and own["id"] not in waiting
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/own-time")
    assert ok(experience.get(f"{EXPENSES}/{own['id']}"))["state"] == "submitted"
