"""Billing terms on a real Tryton (issue 14): a retainer's fee (from the contract, never the deal amount) is one
Tryton invoice per period inside the term, and time posted after its period was invoiced goes on a supplementary
Tryton invoice for that period. (Fixed-fee instalments: test_planning_to_cash.py; credit notes:
test_reversals_and_credit_notes.py; milestones: Tryton has none, see the README's backend table.)"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import httpx

from tests.support.days import this_monday
from tests.support.flows import ok
from tests.support.tryton import TrytonLook, post_invoice
from tests.tryton.test_reversals_and_credit_notes import approved

ERP = "/system/erp/v1"
PSA = "/system/psa/v1"
DRAFTS = "/process/invoicing/v1/invoice-drafts"


def month(day: dt.date, offset: int) -> str:
    index = day.year * 12 + day.month - 1 + offset
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def test_a_retainer_bills_its_fee_once_a_period_in_tryton_and_nothing_outside_its_term(
        experience: httpx.Client, system: httpx.Client, rpc: TrytonLook) -> None:
    today = dt.datetime.now(dt.UTC).date()
    signed = ok(system.get(f"{ERP}/contracts/ctr_2001"))
    start = dt.date.fromisoformat(f"{month(today, -1)}-01")
    contract = ok(system.post(f"{ERP}/contracts", json={
        "customer_id": signed["customer_id"], "legal_entity_id": signed["legal_entity_id"],
        "name": f"Retainer {uuid.uuid4().hex[:8]}", "currency": "USD", "billing_model": "retainer",
        "total_value": "12000.00", "nte_amount": None, "start_date": start.isoformat(),
        "end_date": (start + dt.timedelta(days=80)).isoformat(), "status": "active", "rate_card_id": None,
        "billing_profile": {"invoice_frequency": "monthly"},
        "billing_schedule": {"period_fee": "4000.00", "hours_allowance": "20", "unused_hours": "expire",
                             "lines": []}}), 201)

    drafted = ok(experience.post(DRAFTS, json={"contract_id": contract["id"], "period": month(today, 0)}), 201)
    posted = post_invoice(experience, drafted["id"])
    again = experience.post(DRAFTS, json={"contract_id": contract["id"], "period": month(today, 0)})
    after = experience.post(DRAFTS, json={"contract_id": contract["id"], "period": month(today, 6)})

    assert contract["billing_schedule"]["period_fee"] == "4000.00"
    assert [(line["source_type"], line["amount"]) for line in drafted["invoice"]["lines"]] == [
        ("retainer", "4000.00")]
    assert drafted["drawdown"]["allowance_hours"] == "20"
    invoice, = rpc.read("account.invoice", [int(posted["invoice"]["external_ids"]["erp"])],
                        ["state", "untaxed_amount"])
    assert invoice["state"] == "posted" and invoice["untaxed_amount"] == Decimal("4000.00")
    assert again.status_code == 200 and again.json()["id"] == drafted["id"]  # the fee is billed once
    assert after.status_code == 422 and after.json()["reason"] == "OUTSIDE_CONTRACT_TERM"


def test_time_posted_after_its_period_was_invoiced_goes_on_a_supplementary_tryton_invoice(
        experience: httpx.Client, system: httpx.Client, rpc: TrytonLook) -> None:
    """The month before this week's (open in Tryton: this week's period is other tests'), on a Saturday."""
    period = month(this_monday(), -1)
    day = dt.date.fromisoformat(f"{period}-08")
    day += dt.timedelta(days=(5 - day.weekday()) % 7)
    manager = ok(system.get(f"{PSA}/projects/prj_4001"))["manager_id"]
    on_time = approved(experience, manager, "2", day)
    first = ok(experience.post(DRAFTS, json={"contract_id": "ctr_2001", "period": period}), 200, 201)
    assert on_time in first["time_entry_ids"]
    post_invoice(experience, first["id"])
    late = approved(experience, manager, "3", day)  # posted after the period's invoice

    supplementary = experience.post(DRAFTS, json={"contract_id": "ctr_2001", "period": period})

    assert supplementary.status_code == 201, supplementary.text
    body = supplementary.json()
    assert body["time_entry_ids"] == [late] and body["supplements_id"] == first["id"]
    assert body["sequence"] == first["sequence"] + 1 and Decimal(body["invoice"]["subtotal"]) == 3 * 175
    posted = post_invoice(experience, body["id"])
    invoice, = rpc.read("account.invoice", [int(posted["invoice"]["external_ids"]["erp"])],
                        ["state", "untaxed_amount"])
    assert invoice["state"] == "posted" and invoice["untaxed_amount"] == Decimal("525.00")
