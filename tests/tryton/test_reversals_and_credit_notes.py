"""Corrections on a real Tryton: posted time corrected is reversed in Tryton (the negative ``psgw.posting``,
referencing the original, once), and invoiced time corrected is credited with Tryton's own credit note (a
customer invoice of negated lines whose ``origin`` is the credited line, posted by Tryton)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx

from tests.support.contract_checks import assert_matches_contract
from tests.support.flows import erp_postings_of, ok, postings_settled, wait_for
from tests.support.tryton import TrytonLook, post_invoice

TIME = "/process/timesheets/v1"
ERP = "/system/erp/v1"
PSA = "/system/psa/v1"
RATE = Decimal(175)  # E1001 on RC-USD


def this_monday() -> dt.date:
    today = dt.datetime.now(dt.UTC).date()
    return today - dt.timedelta(days=today.weekday())


def approved(experience: httpx.Client, manager: str, hours: str, day: dt.date | None = None) -> str:
    """An entry of the demo consultant on prj_4001 (this Monday, or ``day``), approved and posted in Tryton."""
    day = day or this_monday()
    entry = ok(experience.post(f"{TIME}/time-entries", json={
        "worker_id": "wrk_e1001", "project_id": "prj_4001", "task_id": "tsk_4001-t2", "work_date": day.isoformat(),
        "hours": hours, "client_ref": f"tryton-cor-{uuid.uuid4().hex[:10]}"}), 201)
    monday = day - dt.timedelta(days=day.weekday())
    ok(experience.post(f"{TIME}/submissions", json={"worker_id": "wrk_e1001", "week_start": monday.isoformat(),
                                                   "time_entry_ids": [entry["id"]]}))
    ok(experience.post(f"{TIME}/approvals", json={"time_entry_ids": [entry["id"]], "approver_id": manager,
                                                 "decision": "approve"}), 201)
    wait_for("the posting in Tryton", lambda: postings_settled(experience, [entry["id"]]))
    return str(entry["id"])


def drafted_with(experience: httpx.Client, entry_id: str) -> dict[str, Any]:
    """The period's draft that bills the entry: a draft left by an earlier test is posted first, so the next one
    (a supplementary invoice for the period) takes the entry."""
    for _ in range(3):
        draft: dict[str, Any] = ok(experience.post("/process/invoicing/v1/invoice-drafts", json={
            "contract_id": "ctr_2001", "period": f"{this_monday():%Y-%m}"}), 200, 201)
        if entry_id in draft["time_entry_ids"]:
            return draft
        if draft["invoice"]["state"] == "draft":
            post_invoice(experience, draft["id"])
    raise AssertionError(f"no draft of the period took {entry_id}")


def corrected(experience: httpx.Client, manager: str, entry_id: str, hours: str) -> dict[str, Any]:
    asked = ok(experience.post(f"{TIME}/corrections", json={
        "time_entry_id": entry_id, "worker_id": "wrk_e1001", "hours": hours, "reason": "logged too much"}), 201)
    decided = ok(experience.post(f"{TIME}/corrections/{asked['id']}/decisions",
                                 json={"approver_id": manager, "decision": "approve"}))
    assert decided["correction"]["state"] == "applied", decided
    return dict(decided["correction"])


def test_corrected_posted_time_is_reversed_in_tryton_once(experience: httpx.Client, system: httpx.Client,
                                                         rpc: TrytonLook) -> None:
    manager = ok(system.get(f"{PSA}/projects/prj_4001"))["manager_id"]
    old = approved(experience, manager, "6")

    new = corrected(experience, manager, old, "5")["new_time_entry_id"]

    wait_for("the 5 hours posted", lambda: postings_settled(experience, [new]))
    postings = wait_for("the reversal in Tryton", lambda: (lambda ps: ps if len(ps) == 2 else None)(
        erp_postings_of(system, old)))
    original = next(p for p in postings if p["reverses_posting_id"] is None)
    reversal = next(p for p in postings if p["reverses_posting_id"] is not None)
    assert reversal["reverses_posting_id"] == original["id"]
    assert (Decimal(original["amount"]), Decimal(reversal["amount"])) == (6 * RATE, -6 * RATE)
    assert sum(Decimal(p["quantity"]) for p in postings) == 0
    line = int(ok(system.get(f"{PSA}/time-entries/{old}"))["external_ids"]["psa"])
    rows = rpc.search_read("psgw.posting", [("timesheet_line", "=", line)], ["kind", "reverses", "amount"])
    assert sorted((r["kind"], r["amount"]) for r in rows) == [("posting", 6 * RATE), ("reversal", -6 * RATE)]

    again = system.post(f"{ERP}/postings/{original['id']}/reversals", json={"on": reversal["work_date"]})
    assert again.status_code == 200 and again.json()["id"] == reversal["id"]  # reversed once, whatever is asked
    of_reversal = system.post(f"{ERP}/postings/{reversal['id']}/reversals", json={"on": reversal["work_date"]})
    assert of_reversal.status_code == 409, of_reversal.text
    assert of_reversal.headers["content-type"] == "application/problem+json"
    unknown = system.post(f"{ERP}/postings/pst_999999/reversals", json={"on": reversal["work_date"]})
    assert unknown.status_code == 404, unknown.text
    closed = system.post(f"{ERP}/postings/pst_999998/reversals", json={"on": "2020-01-06"})
    assert closed.status_code == 404, closed.text


def test_corrected_invoiced_time_gets_a_tryton_credit_note(experience: httpx.Client, system: httpx.Client,
                                                            rpc: TrytonLook) -> None:
    manager = ok(system.get(f"{PSA}/projects/prj_4001"))["manager_id"]
    old = approved(experience, manager, "4")
    draft = drafted_with(experience, old)
    not_yet = system.post(f"{ERP}/invoices/{draft['invoice']['id']}/credit-notes", json={"lines": [{
        "description": "early", "quantity": "1", "unit_price": "175", "amount": "175", "source_type": "time_entry",
        "source_ids": [old]}]})
    assert not_yet.status_code == 409, not_yet.text  # a draft is voided, not credited
    post_invoice(experience, draft["id"])
    wait_for("the entry invoiced", lambda: ok(system.get(f"{PSA}/time-entries/{old}"))["state"] == "invoiced")

    corrected(experience, manager, old, "3")

    notes = wait_for("the credit note in Tryton", lambda: ok(system.get(
        f"{ERP}/credit-notes", params={"invoice_id": draft["invoice"]["id"]}))["items"])
    listed = system.get(f"{ERP}/credit-notes", params={"invoice_id": draft["invoice"]["id"]})
    assert_matches_contract("system/erp", "GET", "/credit-notes", listed)
    (note,) = notes
    (line,) = note["lines"]
    assert (line["source_ids"], Decimal(line["quantity"]), Decimal(line["amount"])) == ([old], 4, 4 * RATE)
    assert Decimal(note["total"]) == 4 * RATE
    tryton_note, = rpc.read("account.invoice", [int(note["external_ids"]["erp"])],
                            ["type", "state", "total_amount", "psgw_credits", "lines"])
    assert (tryton_note["type"], tryton_note["state"]) == ("out", "posted")
    assert tryton_note["total_amount"] == -4 * RATE
    assert tryton_note["psgw_credits"] == int(draft["invoice"]["external_ids"]["erp"])
    credit_line, = rpc.read("account.invoice.line", tryton_note["lines"], ["origin", "quantity"])
    assert str(credit_line["origin"]).startswith("account.invoice.line,") and credit_line["quantity"] == -4
    invoices = ok(system.get(f"{ERP}/invoices", params={"contract_id": "ctr_2001", "limit": 100}))["items"]
    assert note["id"] not in {i["id"] for i in invoices}  # a credit note is not an invoice of the contract

    beyond = system.post(f"{ERP}/invoices/{draft['invoice']['id']}/credit-notes", json={"lines": [{
        "description": "more", "quantity": "1000", "unit_price": "175", "amount": "175000",
        "source_type": "time_entry", "source_ids": [old]}]})
    assert beyond.status_code == 422, beyond.text  # never beyond what the invoice billed for the source
    assert beyond.json()["errors"][0]["pointer"] == "/lines"
