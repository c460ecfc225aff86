"""Billable expenses are invoiced whatever the contract's billing model (issue 19), through the running stack.

What finance relies on: a posted billable expense on a fixed-fee, milestone or retainer contract is billed like on
a time-and-materials one (at cost, or with the contract's markup, rounded once), exactly once; a voided draft
releases it for the next draft; once it is on a posted invoice no later draft bills it again and reconciliation
reports nothing about it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import httpx
import pytest

from tests.process.test_expense_markup_and_sync import open_past_day
from tests.support.contract_checks import assert_matches_contract
from tests.support.flows import ERP, PSA, all_items, ok, wait_for
from tests.support.stack import RunningStack

EXPENSES = "/process/expenses/v1/expenses"
INVOICING = "/process/invoicing/v1"
FINANCE_OPS = "/experience/finance-ops/v1"


def engagement_of(system: httpx.Client, model: str) -> dict[str, Any]:
    """An active project of an active contract billed by ``model``, its manager and someone else on it."""
    for project in ok(system.get(f"{PSA}/projects", params={"status": "active", "limit": 200}))["items"]:
        contract = ok(system.get(f"{ERP}/contracts/{project['contract_id']}"))
        if contract["billing_model"] != model or contract["status"] != "active":
            continue
        team = ok(system.get(f"{PSA}/assignments", params={"project_id": project["id"], "limit": 50}))["items"]
        workers = [a["worker_id"] for a in team if a["worker_id"] != project["manager_id"]]
        if workers:
            return {"project": project, "contract": contract, "worker_id": workers[0]}
    raise AssertionError(f"the sandbox firm has no active {model} engagement")


def expected(cost: Decimal, markup: str | None) -> Decimal:
    if not markup:
        return cost
    return (cost * (100 + Decimal(markup)) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def draft(experience: httpx.Client, contract_id: str, period: str) -> dict[str, Any]:
    return dict(ok(experience.post(f"{INVOICING}/invoice-drafts", json={"contract_id": contract_id,
                                                                         "period": period}), 200, 201))


def expense_lines(invoice: dict[str, Any], expense_id: str) -> list[dict[str, Any]]:
    return [line for line in invoice["invoice"]["lines"]
            if line["source_type"] == "expense" and expense_id in line["source_ids"]]


@pytest.mark.parametrize("model", ["fixed_fee", "milestone", "retainer"])
def test_a_billable_expense_is_invoiced_once_on_every_billing_model_and_a_void_releases_it(
        experience: httpx.Client, system: httpx.Client, model: str) -> None:
    engagement = engagement_of(system, model)
    contract, project = engagement["contract"], engagement["project"]
    # The demo firm's fixed fees and retainers are worth exactly their instalments or fees (its retainers' seeded
    # invoices even billed their time beyond the fee): an expense budget on top makes room for the expense, which
    # is billed only out of what the contract's own terms leave (without room it is held: the next test).
    ok(system.patch(f"{ERP}/contracts/{contract['id']}", json={
        "total_value": str(Decimal(contract["total_value"]) + 100000)}))
    day = open_past_day(system, contract)
    period = f"{day:%Y-%m}"
    cost = Decimal("48.37")
    captured = ok(experience.post(EXPENSES, json={
        "worker_id": engagement["worker_id"], "project_id": project["id"], "category": "lodging",
        "amount": str(cost), "currency": contract["currency"], "expense_date": day.isoformat(), "country": "US",
        "receipt_ref": f"r-{uuid.uuid4().hex[:8]}"}), 201)
    expense_id = captured["id"]
    ok(experience.post(f"{EXPENSES}/{expense_id}/decisions",
                       json={"approver_id": project["manager_id"], "decision": "approve"}))
    wait_for("the expense to be posted", lambda: ok(experience.get(f"{EXPENSES}/{expense_id}"))["state"] == "posted")

    first = draft(experience, contract["id"], period)
    if not expense_lines(first, expense_id):  # a draft made before the expense was posted: void it, draft again
        ok(experience.post(f"{INVOICING}/invoices/{first['id']}/voidings"))
        first = draft(experience, contract["id"], period)
    lines = expense_lines(first, expense_id)
    assert [Decimal(line["amount"]) for line in lines] == [expected(cost, contract["expense_markup_percent"])]
    assert first["billing_model"] == model

    voided = experience.post(f"{INVOICING}/invoices/{first['id']}/voidings")
    assert_matches_contract("process/invoicing", "POST", "/invoices/{invoice_id}/voidings", voided)
    assert expense_id in ok(voided)["released"]["expense_ids"]

    second = draft(experience, contract["id"], period)
    assert second["id"] != first["id"] and len(expense_lines(second, expense_id)) == 1  # released, billed again
    posted = ok(experience.post(f"{INVOICING}/invoices/{second['id']}/postings"))
    assert posted["state"] == "posted"

    again = experience.post(f"{INVOICING}/invoice-drafts", json={"contract_id": contract["id"], "period": period})
    assert again.status_code in (200, 201, 422), again.text  # the posted one, a supplementary one, or nothing
    live = [i for i in all_items(experience, f"{INVOICING}/invoices", contract_id=contract["id"], period=period)]
    assert sum(len(expense_lines(invoice, expense_id)) for invoice in live) == 1  # billed exactly once

    run = ok(experience.post("/process/reconciliation/v1/reconciliations", json={"project_ids": [project["id"]]}),
             200, 201)
    about_it = [d for report in run["projects"] for d in report["differences"] if d.get("expense_id") == expense_id]
    about_it += [d for report in run.get("contracts", []) for d in report["differences"]
                 if d.get("expense_id") == expense_id]
    assert about_it == []


def provision_fixed_fee(system: httpx.Client, instalment: Decimal, periods: list[str]) -> dict[str, Any]:
    """A fresh fixed-fee contract worth exactly its instalments (one per period), its project and a manager."""
    first, last = dt.date.fromisoformat(f"{periods[0]}-01"), dt.date.fromisoformat(f"{periods[-1]}-28")
    tag = uuid.uuid4().hex[:8]
    contract = ok(system.post(f"{ERP}/contracts", json={
        "customer_id": "cus_1001", "legal_entity_id": "le_us", "name": f"Fixed fee {tag}", "currency": "USD",
        "billing_model": "fixed_fee", "total_value": str(instalment * len(periods)), "nte_amount": None,
        "start_date": first.isoformat(), "end_date": last.isoformat(), "status": "active", "rate_card_id": None,
        "billing_profile": {"invoice_frequency": "monthly"},
        "billing_schedule": {"lines": [{"line_no": n + 1, "amount": str(instalment), "period": period}
                                       for n, period in enumerate(periods)]}}), 201)
    project = ok(system.post(f"{PSA}/projects", json={
        "name": f"Fixed fee {tag}", "contract_id": contract["id"], "customer_id": "cus_1001",
        "legal_entity_id": "le_us", "billing_model": "fixed_fee", "status": "active", "manager_id": "wrk_e1007",
        "start_date": first.isoformat(), "end_date": last.isoformat()}), 201)
    ok(system.post(f"{ERP}/project-dimensions", json={
        "project_id": project["id"], "legal_entity_id": "le_us",
        "code": "P-" + project["id"].removeprefix("prj_").upper()}), 201)
    return {"contract": contract, "project": project}


def test_an_expense_the_fixed_fee_has_no_room_for_is_held_never_the_instalments(
        stack: RunningStack, experience: httpx.Client, system: httpx.Client) -> None:
    """Cumulative billing never passes the contract's value, and the fee is the deal: an expense is billed only out
    of the value the instalments leave. Without room it is held (``value_holds``, CONTRACT_VALUE_EXCEEDED), the
    instalments are all billed, and once the value is amended a supplementary invoice bills the expense."""
    day = open_past_day(system, {"legal_entity_id": "le_us", "start_date": "2000-01-01"})
    periods = [f"{day:%Y-%m}", f"{day + dt.timedelta(days=31):%Y-%m}"]
    engagement = provision_fixed_fee(system, Decimal("1000.00"), periods)
    contract, project = engagement["contract"], engagement["project"]
    captured = ok(experience.post(EXPENSES, json={
        "worker_id": "wrk_e1001", "project_id": project["id"], "category": "lodging", "amount": "48.37",
        "currency": "USD", "expense_date": day.isoformat(), "country": "US", "receipt_ref": "r-room"}), 201)
    expense_id = captured["id"]
    ok(experience.post(f"{EXPENSES}/{expense_id}/decisions", json={"approver_id": "wrk_e1007", "decision": "approve"}))
    wait_for("the expense to be posted", lambda: ok(experience.get(f"{EXPENSES}/{expense_id}"))["state"] == "posted")

    response = experience.post(f"{INVOICING}/invoice-drafts", json={"contract_id": contract["id"],
                                                                    "period": periods[0]})

    assert_matches_contract("process/invoicing", "POST", "/invoice-drafts", response)
    first = ok(response, 201)
    assert [line["source_type"] for line in first["invoice"]["lines"]] == ["fixed_fee"]
    held, = first["value_holds"]
    assert (held["source_type"], held["source_id"], held["reason"], Decimal(held["amount"]),
            Decimal(held["remaining"])) == ("expense", expense_id, "CONTRACT_VALUE_EXCEEDED", Decimal("48.37"), 0)
    # A finance clerk sees the hold in the finance-ops view, where they review drafts.
    with stack.client("finance-web", subject="wrk_e1004", scopes=["finance:read"]) as finance:
        seen = finance.get(f"{FINANCE_OPS}/invoices/{first['id']}")
    assert_matches_contract("experience/finance-ops", "GET", "/invoices/{invoice_id}", seen)
    assert ok(seen)["value_holds"] == [held]
    ok(experience.post(f"{INVOICING}/invoices/{first['id']}/postings"))
    second = draft(experience, contract["id"], periods[1])  # the last instalment: never refused
    assert Decimal(second["invoice"]["subtotal"]) == Decimal("1000.00")
    ok(experience.post(f"{INVOICING}/invoices/{second['id']}/postings"))
    again = experience.post(f"{INVOICING}/invoice-drafts", json={"contract_id": contract["id"], "period": periods[0]})
    assert again.status_code == 422 and again.json()["value_holds"][0]["source_id"] == expense_id  # said, not silent
    run = ok(experience.post("/process/reconciliation/v1/reconciliations", json={"project_ids": [project["id"]]}),
             200, 201)
    reported = [d for report in [*run["projects"], *run["contracts"]] for d in report["differences"]
                if d.get("expense_id") == expense_id]
    assert [d["type"] for d in reported] == ["posted_not_invoiced"]
    assert "CONTRACT_VALUE_EXCEEDED" in reported[0]["action"]  # what to do: amend the value, then draft again

    ok(system.patch(f"{ERP}/contracts/{contract['id']}", json={"total_value": "2100.00"}))  # an expense budget
    supplementary = draft(experience, contract["id"], periods[0])

    assert supplementary["supplements_id"] == first["id"] and supplementary["value_holds"] == []
    assert [(line["source_ids"], Decimal(line["amount"])) for line in supplementary["invoice"]["lines"]] == [
        ([expense_id], Decimal("48.37"))]
