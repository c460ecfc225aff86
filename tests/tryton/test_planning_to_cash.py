"""Planning to cash on a real Tryton: time the consultant logs on the mobile app lands in Tryton as a timesheet
line, approval posts it once, and invoicing creates (and posts) a Tryton invoice for hours x rate.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import httpx

from system_apis.tryton_rpc import nested
from tests.support.contract_checks import assert_matches_contract
from tests.support.days import this_monday
from tests.support.flows import all_items, ok, postings_settled, wait_for
from tests.support.tryton import TrytonLook, post_invoice

TIME = "/process/timesheets/v1"
MOBILE = "/experience/mobile-time/v1"
DRAFTS = "/process/invoicing/v1/invoice-drafts"
PSA = "/system/psa/v1"
ERP = "/system/erp/v1"
CONSULTANT_RATE = Decimal(175)  # E1001 is a consultant; RC-USD bills consultants at 175/h


def test_logged_time_is_a_tryton_timesheet_line_that_posts_once_and_is_invoiced(
        consultant: httpx.Client, experience: httpx.Client, system: httpx.Client, rpc: TrytonLook) -> None:
    work_date = this_monday()
    period = f"{work_date:%Y-%m}"
    body = {"project_id": "prj_4001", "task_id": "tsk_4001-t2", "work_date": work_date.isoformat(),
            "hours": "7.5", "notes": "pricing model review", "client_ref": f"phone-{uuid.uuid4().hex[:10]}"}

    created = consultant.post(f"{MOBILE}/me/time-entries", json=body)

    assert created.status_code == 201, created.text
    assert_matches_contract("experience/mobile-time", "POST", "/me/time-entries", created)
    entry = {"id": created.json()["time_entry_id"]}
    resent = consultant.post(f"{MOBILE}/me/time-entries", json=body)  # the phone syncs again: same entry
    assert resent.json()["time_entry_id"] == entry["id"]
    line_id = int(ok(system.get(f"{PSA}/time-entries/{entry['id']}"))["external_ids"]["psa"])
    line, = rpc.read("timesheet.line", [line_id], [
        "date", "duration", "description", "psgw_client_ref", "employee.party.code", "work.origin.number",
        "psgw_state"])
    assert line["date"] == work_date and line["duration"] == dt.timedelta(hours=7, minutes=30)
    # The experience tier keeps offline ids per worker, so the stored ref ends with the phone's own.
    assert nested(line, "employee.party.code") == "E1001" and line["psgw_client_ref"].endswith(body["client_ref"])
    assert nested(line, "work.origin.number") == "PRJ-4001-T2"  # booked on the task's timesheet work
    assert line["psgw_state"] == "draft"
    assert len(rpc.search_read("timesheet.line", [("psgw_client_ref", "=", line["psgw_client_ref"])], ["id"])) == 1

    submitted = ok(experience.post(f"{TIME}/submissions", json={
        "worker_id": "wrk_e1001", "week_start": work_date.isoformat(), "time_entry_ids": [entry["id"]]}))
    assert submitted["items"][0]["result"] == "submitted"
    manager = ok(system.get(f"{PSA}/projects/prj_4001"))["manager_id"]
    approval = ok(experience.post(f"{TIME}/approvals", json={
        "time_entry_ids": [entry["id"]], "approver_id": manager, "decision": "approve"}), 201)
    settlement = approval["entries"][0]["settlement"]
    assert settlement["disposition"] == "queued_for_posting", approval
    assert Decimal(settlement["amount"]) == Decimal("7.5") * CONSULTANT_RATE

    wait_for("the posting in Tryton", lambda: postings_settled(experience, [entry["id"]]))
    postings = rpc.search_read("psgw.posting", [("timesheet_line", "=", line_id)],
                                     ["amount", "quantity", "contract.number"])
    assert len(postings) == 1 and postings[0]["amount"] == Decimal("1312.50")
    assert nested(postings[0], "contract.number") == "SOW-2001"
    line, = rpc.read("timesheet.line", [line_id], ["psgw_state", "psgw_approved_by.party.code"])
    assert line["psgw_state"] == "posted"
    assert nested(line, "psgw_approved_by.party.code") == manager.removeprefix("wrk_").upper()

    drafted = experience.post(DRAFTS, json={"contract_id": "ctr_2001", "period": period})

    assert drafted.status_code == 201, drafted.text
    draft = drafted.json()
    assert entry["id"] in draft["time_entry_ids"]
    invoice_id = int(draft["invoice"]["external_ids"]["erp"])
    invoice, = rpc.read("account.invoice", [invoice_id], [
        "state", "type", "party.code", "untaxed_amount", "total_amount", "psgw_contract.number"])
    assert invoice["type"] == "out" and invoice["state"] == "draft" and nested(invoice, "party.code") == "C-1001"
    # The invoice bills exactly the postings of the entries it names (an earlier test on this session's Tryton may
    # have invoiced part of the period already: this draft is then a supplementary one).
    posted_total = sum((Decimal(p["amount"]) for p in all_items(system, f"{ERP}/postings", contract_id="ctr_2001",
                                                               from_date=f"{period}-01")
                        if p["source_id"] in draft["time_entry_ids"]), Decimal(0))
    assert invoice["untaxed_amount"] == posted_total == Decimal(draft["invoice"]["subtotal"])
    billed = rpc.search_read("account.invoice.line", [("invoice", "=", invoice_id)], ["psgw_source_refs", "amount"])
    ours = [b for b in billed if f"TC-{line_id}" in (b["psgw_source_refs"] or "").split()]
    assert len(ours) == 1 and ours[0]["amount"] >= Decimal("1312.50")  # a line per project and rate

    posted = post_invoice(experience, draft["id"])

    assert posted["invoice"]["state"] == "posted"
    invoice, = rpc.read("account.invoice", [invoice_id], ["state", "number", "move"])
    assert invoice["state"] == "posted" and invoice["number"] and invoice["move"]
    wait_for("the entry to flow back as invoiced", lambda: ok(
        system.get(f"{PSA}/time-entries/{entry['id']}"))["state"] == "invoiced")


def test_system_apis_answer_in_the_canonical_model_from_tryton(system: httpx.Client) -> None:
    worker = system.get("/system/hr/v1/workers/wrk_e1001")
    assert_matches_contract("system/hr", "GET", "/workers/{worker_id}", worker)
    assert worker.json()["role"] == "consultant" and len(worker.json()["cost_rates"]) == 2
    card = ok(system.get("/system/crm/v1/rate-cards/rc_usd"))
    assert {line["role"]: Decimal(line["hourly_rate"]) for line in card["lines"]}["consultant"] == CONSULTANT_RATE
    contract = system.get(f"{ERP}/contracts/ctr_2001")
    assert_matches_contract("system/erp", "GET", "/contracts/{contract_id}", contract)
    assert contract.json()["rate_card_id"] == "rc_usd" and contract.json()["customer_id"] == "cus_1001"
    periods = ok(system.get(f"{ERP}/accounting-periods", params={"legal_entity_id": "le_us", "limit": 200}))
    assert {p["status"] for p in periods["items"]} == {"open", "closed"}
    projects = system.get(f"{PSA}/projects", params={"contract_id": "ctr_2001"})
    assert_matches_contract("system/psa", "GET", "/projects", projects)
    assert [p["id"] for p in projects.json()["items"]] == ["prj_4001"]
    assignments = ok(system.get(f"{PSA}/assignments", params={"worker_id": "wrk_e1001", "status": "confirmed"}))
    assert {a["project_id"] for a in assignments["items"]} >= {"prj_4001", "prj_4003"}
    opportunity = ok(system.get("/system/crm/v1/opportunities/opp_3001"))
    assert opportunity["stage"] == "closed_won" and opportunity["signed_contract_ref"] == "ctr_2001"


def test_tryton_refusals_and_unknown_ids_are_canonical_problems(system: httpx.Client) -> None:
    missing = system.get(f"{PSA}/time-entries/te_999999")
    assert missing.status_code == 404 and missing.json()["type"].endswith("unknown-id")
    refused = system.post(f"{PSA}/time-entries", json={
        "worker_id": "wrk_e9999", "project_id": "prj_4001", "work_date": this_monday().isoformat(), "hours": "2"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["pointer"] == "/worker_id"
    nothing = system.post(f"{ERP}/postings", json={
        "source_type": "time_entry", "source_id": "te_999998", "project_id": "prj_4001", "contract_id": "ctr_2001",
        "legal_entity_id": "le_us", "work_date": "2020-01-06", "quantity": "1", "amount": "175",
        "currency": "USD"})
    assert nothing.status_code == 422 and nothing.json()["type"].endswith("period-closed")


def test_a_signed_fixed_fee_bills_its_tryton_instalments_and_a_voided_draft_is_cancelled_in_tryton(
        experience: httpx.Client, system: httpx.Client, rpc: TrytonLook) -> None:
    started = ok(experience.post("/process/provisioning/v1/provisionings", json={"opportunity_id": "opp_3105"}),
                 200, 202)
    done = wait_for("provisioning on Tryton", lambda: (lambda body: body if body["state"] in (
        "completed", "failed", "rejected", "compensated") else None)(ok(experience.get(
            f"/process/provisioning/v1/provisionings/{started['id']}"))))
    assert done["state"] == "completed", done
    assert done["resources"]["contract_id"] == "ctr_2101"  # the contract signed in Tryton, adopted
    contract = system.get(f"{ERP}/contracts/ctr_2101")
    assert_matches_contract("system/erp", "GET", "/contracts/{contract_id}", contract)
    lines = contract.json()["billing_schedule"]["lines"]
    assert contract.json()["total_value"] == "130000.00" and sum(Decimal(x["amount"]) for x in lines) == 130000
    stored = rpc.search_read("psgw.contract.schedule_line", [("contract.number", "=", "SOW-2101")],
                             ["line_no", "amount"])
    assert sorted(r["line_no"] for r in stored) == [1, 2, 3, 4, 5]

    drafted = ok(experience.post(DRAFTS, json={"contract_id": "ctr_2101", "period": lines[0]["period"]}), 201)
    assert [line["amount"] for line in drafted["invoice"]["lines"]] == [lines[0]["amount"]]
    voided = ok(experience.post(f"/process/invoicing/v1/invoices/{drafted['id']}/voidings"))

    invoice, = rpc.read("account.invoice", [int(drafted["invoice"]["external_ids"]["erp"])], ["state"])
    assert invoice["state"] == "cancelled" and voided["invoice"]["state"] == "void"
    again = ok(experience.post(DRAFTS, json={"contract_id": "ctr_2101", "period": lines[0]["period"]}), 201)
    assert again["id"] != drafted["id"] and again["sequence"] == 2
    ended = experience.post(DRAFTS, json={"contract_id": "ctr_2101", "period": "2031-01"})
    assert ended.status_code == 422 and ended.json()["reason"] == "OUTSIDE_CONTRACT_TERM"
