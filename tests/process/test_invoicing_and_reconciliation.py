"""Invoicing by billing model and reconciliation, through real processes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx

from tests.support.contract_checks import assert_matches_contract
from tests.support.flows import PSA, entries, ok, wait_for

DRAFTS = "/process/invoicing/v1/invoice-drafts"


def last_month() -> str:
    first_of_this = dt.datetime.now(dt.UTC).date().replace(day=1)
    return (first_of_this - dt.timedelta(days=1)).strftime("%Y-%m")


def test_time_and_materials_invoice_traces_posted_time_and_flows_back_when_posted(
        experience: httpx.Client, system: httpx.Client) -> None:
    period = last_month()
    posted = [e for e in entries(system, project_id="prj_4006", state="posted") if e["work_date"][:7] == period
              and e["billable"]]
    assert posted

    drafted = experience.post(DRAFTS, json={"contract_id": "ctr_2006", "period": period})

    assert drafted.status_code == 201, drafted.text
    assert_matches_contract("process/invoicing", "POST", "/invoice-drafts", drafted)
    draft = drafted.json()
    assert set(draft["time_entry_ids"]) == {e["id"] for e in posted}
    lines = draft["invoice"]["lines"]
    assert {s for line in lines for s in line["source_ids"]} == {e["id"] for e in posted}
    assert sum(Decimal(line["amount"]) for line in lines) == Decimal(draft["invoice"]["subtotal"])
    assert experience.post(DRAFTS, json={"contract_id": "ctr_2006", "period": period}).json()["id"] == draft["id"]

    posted_invoice = ok(experience.post(f"/process/invoicing/v1/invoices/{draft['id']}/postings"))

    assert posted_invoice["state"] == "posted" and posted_invoice["invoice"]["state"] == "posted"
    wait_for("entries to flow back as invoiced", lambda: all(
        ok(system.get(f"{PSA}/time-entries/{e['id']}"))["state"] == "invoiced" for e in posted))
    won = ok(system.get("/system/crm/v1/opportunities", params={"stage": "closed_won", "limit": 200}))["items"]
    opportunity = next(o["id"] for o in won if o["signed_contract_ref"] == "ctr_2006")
    wait_for("the CRM to show the posted invoice", lambda: ok(system.get(
        f"/system/crm/v1/opportunities/{opportunity}"))["invoice_status"] == "posted")
    view = experience.get(f"/process/invoicing/v1/invoices/{draft['id']}")
    assert_matches_contract("process/invoicing", "GET", "/invoices/{invoice_id}", view)


def test_milestone_fixed_fee_and_retainer_invoices(experience: httpx.Client, system: httpx.Client) -> None:
    period = last_month()
    accepted = [m["id"] for m in ok(system.get(f"{PSA}/milestones", params={"project_id": "prj_4015",
                                                                             "state": "accepted"}))["items"]
                if m["accepted_on"][:7] == period]  # a milestone is billed in the period it was accepted
    assert accepted
    milestone = ok(experience.post(DRAFTS, json={"contract_id": "ctr_2015", "period": period}), 201)
    assert sorted(milestone["milestone_ids"]) == sorted(accepted)
    assert all(line["source_type"] == "milestone" for line in milestone["invoice"]["lines"])

    fixed = ok(experience.post(DRAFTS, json={"contract_id": "ctr_2011", "period": period}), 201)
    assert [line["source_type"] for line in fixed["invoice"]["lines"]] == ["fixed_fee"]

    retainer = ok(experience.post(DRAFTS, json={"contract_id": "ctr_2018", "period": period}), 201)
    assert retainer["invoice"]["lines"][0]["source_type"] == "retainer"
    drawdown = retainer["drawdown"]
    assert Decimal(drawdown["retainer_amount"]) > 0
    assert Decimal(drawdown["overage_amount"]) == max(Decimal(0), Decimal(drawdown["drawn_amount"])
                                                      - Decimal(drawdown["retainer_amount"]))


def test_nothing_to_invoice_is_a_clear_422(experience: httpx.Client) -> None:
    after_next = (dt.datetime.now(dt.UTC).date().replace(day=1) + dt.timedelta(days=62)).strftime("%Y-%m")
    response = experience.post(DRAFTS, json={"contract_id": "ctr_2003", "period": after_next})  # no time there yet
    assert response.status_code == 422
    assert response.json()["type"].endswith("/nothing-to-invoice")


def test_reconciliation_reports_time_posted_in_the_psa_but_missing_in_the_erp(
        experience: httpx.Client, system: httpx.Client) -> None:
    approved = entries(system, project_id="prj_4010", state="approved")
    drifted = next(e["id"] for e in approved if e["billable"])
    # Someone marks time posted in the PSA by hand, without an ERP posting: the drift to catch.
    ok(system.post(f"{PSA}/time-entries/{drifted}/transitions", json={"to_state": "posted"}))

    response = experience.post("/process/reconciliation/v1/reconciliations", json={"project_ids": ["prj_4010"]})

    assert response.status_code == 201, response.text
    assert_matches_contract("process/reconciliation", "POST", "/reconciliations", response)
    report = response.json()
    project = report["projects"][0]
    missing = [d for d in project["differences"] if d["type"] == "missing_in_erp"]
    assert [d["time_entry_id"] for d in missing] == [drifted]
    assert project["approved_awaiting_posting"] == len(approved) - 1
    assert report["summary"]["by_type"]["missing_in_erp"] == 1
    again = ok(experience.get(f"/process/reconciliation/v1/reconciliations/{report['id']}"))
    assert again["summary"] == report["summary"]
