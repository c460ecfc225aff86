"""Money decisions taken at the same moment (issue 14): requests sent together over real HTTP, as two finance
clerks (or a clerk and the scheduler) would, must leave what sequential requests leave.

What finance relies on: two periods of a fixed fee drafted at once never spend the value its own instalments
need on expenses; two invoices posted at once never pass the contract's value together; milestones drafted by
several requests at once are each on exactly one invoice, in the period they were accepted; and requests that
share an ERP draft never answer each other's voiding of it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from process_apis.invoicing.service import InvoicingService
from process_apis.jobs import JobRunner
from process_apis.systems import Systems
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.downstream import Downstream, DownstreamProblem
from runtime.storage import Database
from tests.process.ledger_world import VendorDocuments
from tests.support.contract_checks import assert_matches_contract
from tests.support.flows import ERP, PSA, all_items, ok, wait_for
from tests.support.stack import RunningStack

INVOICING = "/process/invoicing/v1"
DRAFTS = f"{INVOICING}/invoice-drafts"
EXPENSES = "/process/expenses/v1/expenses"
TODAY = dt.datetime.now(dt.UTC).date()


def month(offset: int) -> str:
    index = TODAY.year * 12 + TODAY.month - 1 + offset
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def at_once(stack: RunningStack, requests: list[tuple[str, str, dict[str, Any] | None]]) -> list[httpx.Response]:
    """The requests sent together (asyncio.gather over the gateway), each on its own connection."""
    headers = {"Authorization": "Bearer " + stack.token("experience-tier")}

    async def send() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=60.0) as client:
            return list(await asyncio.gather(*(client.request(method, path, json=body)
                                               for method, path, body in requests)))

    return asyncio.run(send())


def engagement(system: httpx.Client, model: str, value: Decimal, instalments: dict[str, Decimal],
               term: tuple[str, str]) -> dict[str, Any]:
    """A fresh contract of ``model`` (USD, le_us) worth ``value``, with a project the ERP knows."""
    first, last = dt.date.fromisoformat(f"{term[0]}-01"), dt.date.fromisoformat(f"{term[1]}-28")
    tag = uuid.uuid4().hex[:8]
    contract = ok(system.post(f"{ERP}/contracts", json={
        "customer_id": "cus_1001", "legal_entity_id": "le_us", "name": f"At once {tag}", "currency": "USD",
        "billing_model": model, "total_value": str(value), "nte_amount": None, "start_date": first.isoformat(),
        "end_date": last.isoformat(), "status": "active", "rate_card_id": None,
        "billing_profile": {"invoice_frequency": "milestone" if model == "milestone" else "monthly"},
        "billing_schedule": {"lines": [{"line_no": n + 1, "amount": str(amount), "period": period}
                                       for n, (period, amount) in enumerate(sorted(instalments.items()))]}}), 201)
    project = ok(system.post(f"{PSA}/projects", json={
        "name": f"At once {tag}", "contract_id": contract["id"], "customer_id": "cus_1001", "legal_entity_id": "le_us",
        "billing_model": model, "status": "active", "manager_id": "wrk_e1007", "start_date": first.isoformat(),
        "end_date": last.isoformat()}), 201)
    ok(system.post(f"{ERP}/project-dimensions", json={
        "project_id": project["id"], "legal_entity_id": "le_us",
        "code": "P-" + project["id"].removeprefix("prj_").upper()}), 201)
    return {"contract": contract, "project": project}


def posted_expense(experience: httpx.Client, project_id: str, day: dt.date, amount: str) -> str:
    captured = ok(experience.post(EXPENSES, json={
        "worker_id": "wrk_e1001", "project_id": project_id, "category": "lodging", "amount": amount,
        "currency": "USD", "expense_date": day.isoformat(), "country": "US",
        "receipt_ref": f"r-{uuid.uuid4().hex[:8]}"}), 201)
    expense = f"{EXPENSES}/{captured['id']}"
    ok(experience.post(f"{expense}/decisions", json={"approver_id": "wrk_e1007", "decision": "approve"}))
    wait_for("the expense to be posted", lambda: ok(experience.get(expense))["state"] == "posted")
    return str(captured["id"])


def open_periods(system: httpx.Client) -> set[str]:
    return {p["period"] for p in all_items(system, f"{ERP}/accounting-periods", legal_entity_id="le_us")
            if p["status"] == "open"}


def live_invoices(experience: httpx.Client, contract_id: str) -> list[dict[str, Any]]:
    return all_items(experience, f"{INVOICING}/invoices", contract_id=contract_id)


def test_two_periods_drafted_at_once_never_spend_the_fixed_fees_own_value_on_expenses(
        stack: RunningStack, experience: httpx.Client, system: httpx.Client) -> None:
    """Worth its two instalments (March and May, 1,000.00 each) plus 50.00: room for one 48.37 expense, not two.
    March (instalment and an expense) and April (an expense only) drafted at the same moment each saw 50.00 of
    room and both took their expense: May's own instalment was then refused for the contract's value."""
    march, april, may = month(-2), month(-1), month(0)
    assert {march, april, may} <= open_periods(system)
    made = engagement(system, "fixed_fee", Decimal("2050.00"), {march: Decimal("1000.00"), may: Decimal("1000.00")},
                      (march, may))
    contract_id, project_id = made["contract"]["id"], made["project"]["id"]
    expenses = {posted_expense(experience, project_id, dt.date.fromisoformat(f"{period}-10"), "48.37")
                for period in (march, april)}

    drafted = at_once(stack, [("POST", DRAFTS, {"contract_id": contract_id, "period": period})
                              for period in (march, april)])
    last = experience.post(DRAFTS, json={"contract_id": contract_id, "period": may})

    for response in drafted:
        assert_matches_contract("process/invoicing", "POST", "/invoice-drafts", response)
    assert last.status_code == 201, last.text  # the fee's own instalment is never refused
    assert [line["source_type"] for line in last.json()["invoice"]["lines"]] == ["fixed_fee"]
    live = live_invoices(experience, contract_id)
    billed = [s for i in live for line in i["invoice"]["lines"] if line["source_type"] == "expense"
              for s in line["source_ids"]]
    held = [h["source_id"] for r in drafted for h in r.json().get("value_holds", [])
            if h["reason"] == "CONTRACT_VALUE_EXCEEDED"]
    assert len(billed) == 1 and set(billed) | set(held) == expenses, (billed, held, [r.text for r in drafted])
    assert sum((Decimal(i["invoice"]["subtotal"]) for i in live), Decimal(0)) == Decimal("2048.37")
    for response in drafted:  # March bills its instalment whatever happened to its expense
        assert response.status_code in (201, 422), response.text
        if response.status_code == 422:
            assert response.json()["type"].endswith("/nothing-to-invoice") and response.json()["value_holds"]


def test_two_invoices_posted_at_once_never_pass_the_contract_value_together(
        stack: RunningStack, experience: httpx.Client, system: httpx.Client) -> None:
    """Two 1,000.00 instalments drafted; the contract is then amended to 1,500.00 (750.00 each). Posted one after
    the other, the second is refused; posted at the same moment, each checked the value without the other."""
    march, april = month(-2), month(-1)
    made = engagement(system, "fixed_fee", Decimal("2000.00"), {march: Decimal("1000.00"), april: Decimal("1000.00")},
                      (march, april))
    contract_id = made["contract"]["id"]
    drafts = [ok(experience.post(DRAFTS, json={"contract_id": contract_id, "period": period}), 201)
              for period in (march, april)]
    ok(system.patch(f"{ERP}/contracts/{contract_id}", json={"total_value": "1500.00", "billing_schedule": {"lines": [
        {"line_no": 1, "amount": "750.00", "period": march}, {"line_no": 2, "amount": "750.00", "period": april}]}}))

    posted = at_once(stack, [("POST", f"{INVOICING}/invoices/{d['id']}/postings", None) for d in drafts])

    assert sorted(r.status_code for r in posted) == [200, 422], [r.text for r in posted]
    refused, = [r for r in posted if r.status_code == 422]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["reason"] == "CONTRACT_VALUE_EXCEEDED" and refused.json()["remaining"] == "500.00"
    issued = [i for i in all_items(system, f"{ERP}/invoices", contract_id=contract_id) if i["state"] in ("posted",
                                                                                                      "paid")]
    assert sum((Decimal(i["subtotal"]) for i in issued), Decimal(0)) == Decimal("1000.00")
    still_draft, = [d for d in drafts if d["id"] not in {i["id"] for i in issued}]
    assert ok(experience.get(f"{INVOICING}/invoices/{still_draft['id']}"))["state"] == "draft"


def test_milestones_drafted_by_several_requests_at_once_are_each_on_one_invoice_in_their_period(
        stack: RunningStack, experience: httpx.Client, system: httpx.Client) -> None:
    """Two milestones accepted in two months; every period of the term drafted three times, all at the same moment,
    then every draft posted at the same moment: each milestone billed once, in the month it was accepted."""
    march, april, may = month(-2), month(-1), month(0)
    made = engagement(system, "milestone", Decimal("5000.00"), {}, (march, may))
    contract_id, project = made["contract"]["id"], made["project"]
    vendors = VendorDocuments(stack.stack.data_dir)
    psa_id = int(project["external_ids"]["psa"])
    accepted = {period: vendors.add_milestone(psa_id, f"Phase {period}", amount, "USD",
                                              dt.date.fromisoformat(f"{period}-05"),
                                              accepted_on=dt.date.fromisoformat(f"{period}-12"))
                for period, amount in ((march, Decimal("1500.00")), (april, Decimal("2500.00")))}

    drafted = at_once(stack, [("POST", DRAFTS, {"contract_id": contract_id, "period": period})
                              for period in (march, april, may) for _ in range(3)])

    by_period: dict[str, set[str]] = {}
    for (period, response) in zip([p for p in (march, april, may) for _ in range(3)], drafted, strict=True):
        if period == may:
            assert response.status_code == 422 and response.json()["type"].endswith("/nothing-to-invoice")
            continue
        assert response.status_code in (200, 201), response.text
        by_period.setdefault(period, set()).add(response.json()["id"])
        assert response.json()["milestone_ids"] == [accepted[period]]
    assert all(len(ids) == 1 for ids in by_period.values()), by_period  # one invoice per period, answered to each
    posted = at_once(stack, [("POST", f"{INVOICING}/invoices/{invoice_id}/postings", None)
                             for ids in by_period.values() for invoice_id in ids])
    assert [r.status_code for r in posted] == [200, 200], [r.text for r in posted]
    issued = [i for i in all_items(system, f"{ERP}/invoices", contract_id=contract_id) if i["state"] == "posted"]
    billed = sorted((i["period"], s) for i in issued for line in i["lines"] for s in line["source_ids"])
    assert billed == sorted((period, milestone) for period, milestone in accepted.items())


@pytest.mark.asyncio(loop_scope="session")
async def test_a_shared_erp_draft_voided_by_another_request_at_once_does_not_fail_the_draft(db: Database) -> None:
    """Requests that computed the same bill at once share one ERP draft (one Idempotency-Key); when its contract's
    invoices moved, each voids it and computes again. The second void meets 409 idempotency-key-in-use (or the
    draft already void): the same end, never the finance user's answer. Any other refusal still fails the call."""
    uow = UnitOfWorkFactory(db)
    service = InvoicingService(uow, Systems(Downstream("gateway", "http://127.0.0.1:9")), JobRunner(uow))
    answers = iter([DownstreamProblem("still running", status=409, slug="idempotency-key-in-use"),
                    DownstreamProblem("a void invoice cannot be voided", status=409, slug="invalid-transition"),
                    DownstreamProblem("the ERP is down", status=503, slug="erp-unavailable")])

    async def void_invoice(invoice_id: str, idempotency_key: str) -> None:
        raise next(answers)

    service.systems.erp.void_invoice = void_invoice  # type: ignore[method-assign,assignment]

    await service._discard("inv_1")
    await service._discard("inv_1")
    with pytest.raises(DownstreamProblem) as down:
        await service._discard("inv_1")
    assert down.value.status == 503
