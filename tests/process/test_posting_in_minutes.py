"""Time posted and invoiced in exact minutes, through the gateway on the sandbox stack (issue 18).

What finance relies on: 20 minutes are 20 minutes in the ERP (never 0.3333333333333333333333333333 hours), the
amount is computed once from the minutes (minutes x hourly rate / 60, rounded half-even to the cent), the invoice
line bills exactly the postings it names, and the e-invoice states a quantity and a price whose product is the
line amount. Hours are only shown, rounded half-even to the hundredth.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import httpx
import pytest
from lxml import etree

from contracts.canonical import decimal_text, hours_of_minutes
from tests.process.test_tax_and_einvoicing import assert_valid_document, delivered
from tests.support.contract_checks import assert_matches_contract
from tests.support.flows import ERP, erp_postings_of, log_and_approve, ok, postings_settled, wait_for

DRAFTS = "/process/invoicing/v1/invoice-drafts"
INVOICES = "/process/invoicing/v1/invoices"
# A demo time-and-materials contract of a UK customer (Peppol BIS UBL), without a not-to-exceed amount; the worker
# is a senior consultant on its rate card at 184.00 GBP an hour.
WORKER, PROJECT, CONTRACT, RATE = "wrk_e1016", "prj_4005", "ctr_2005", Decimal("184")
NS = {"cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
      "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}


def amount_of(minutes: int) -> Decimal:
    return (Decimal(minutes) * RATE / 60).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def post_minutes(experience: httpx.Client, system: httpx.Client, minutes: int, day: dt.date) -> str:
    """Log ``minutes`` (sent as the hours the v1 API takes), approve them, wait until the ERP has them."""
    settlement = log_and_approve(experience, system, worker_id=WORKER, project_id=PROJECT, work_date=day,
                                 hours=decimal_text(hours_of_minutes(minutes)))
    assert settlement["disposition"] == "queued_for_posting", settlement
    entry_id = str(settlement["time_entry_id"])
    wait_for(f"the {minutes} minutes posted", lambda: postings_settled(experience, [entry_id]))
    return entry_id


def draft_billing(experience: httpx.Client, entry_id: str, period: str) -> dict[str, Any]:
    """The period's draft that bills ``entry_id``: a draft made before the entry was posted is voided and the
    period drafted again (a posted invoice of the period makes this a supplementary one)."""
    draft = ok(experience.post(DRAFTS, json={"contract_id": CONTRACT, "period": period}), 200, 201)
    if entry_id not in draft["time_entry_ids"]:
        ok(experience.post(f"{INVOICES}/{draft['id']}/voidings"))
        draft = ok(experience.post(DRAFTS, json={"contract_id": CONTRACT, "period": period}), 201)
    assert entry_id in draft["time_entry_ids"]
    return dict(draft)


def ubl_line_of(document: bytes, amount: Decimal) -> dict[str, Any]:
    root = etree.fromstring(document)
    for line in root.iterfind("cac:InvoiceLine", NS):
        if Decimal(line.findtext("cbc:LineExtensionAmount", namespaces=NS) or "0") == amount:
            quantity = line.find("cbc:InvoicedQuantity", NS)
            assert quantity is not None
            return {"quantity": Decimal(quantity.text or "0"), "unit": quantity.get("unitCode"),
                    "price": Decimal(line.findtext("cac:Price/cbc:PriceAmount", namespaces=NS) or "0"),
                    "base": Decimal(line.findtext("cac:Price/cbc:BaseQuantity", namespaces=NS) or "1")}
    raise AssertionError(f"no UBL line of {amount}")


@pytest.mark.parametrize(("minutes", "hours_shown"), [(20, "0.33"), (100, "1.67")])
def test_minutes_reach_the_erp_exactly_and_the_invoice_and_its_ubl_bill_exactly_their_amount(
        experience: httpx.Client, system: httpx.Client, minutes: int, hours_shown: str) -> None:
    today = dt.datetime.now(dt.UTC).date()
    period = today.strftime("%Y-%m")
    entry_id = post_minutes(experience, system, minutes, today)

    postings = erp_postings_of(system, entry_id)
    assert len(postings) == 1
    posting = postings[0]
    assert posting["minutes"] == minutes  # the ERP holds the minutes, not a 28-digit hour figure
    assert posting["quantity"] == hours_shown
    assert Decimal(posting["amount"]) == amount_of(minutes)  # 20 min: 61.33; 100 min: 306.67

    draft = draft_billing(experience, entry_id, period)
    line = next(line for line in draft["invoice"]["lines"] if entry_id in line["source_ids"])
    billed = [p for source in line["source_ids"] for p in erp_postings_of(system, source)
              if p["reverses_posting_id"] is None]
    assert line["minutes"] == sum(p["minutes"] for p in billed)  # the line's minutes are its postings' minutes
    assert Decimal(line["amount"]) == sum(Decimal(p["amount"]) for p in billed)  # and its amount their amounts
    assert Decimal(line["unit_price"]) == RATE  # the rate the amounts were computed at, not amount / 0.33
    assert Decimal(line["quantity"]) == (Decimal(line["minutes"]) / 60).quantize(Decimal("0.01"), ROUND_HALF_EVEN)

    posted = ok(experience.post(f"{INVOICES}/{draft['id']}/postings"))
    assert posted["state"] == "posted"
    assert_matches_contract("process/invoicing", "GET", "/invoices/{invoice_id}",
                            experience.get(f"{INVOICES}/{draft['id']}"))
    erp_answer = system.get(f"{ERP}/invoices/{draft['id']}")
    assert_matches_contract("system/erp", "GET", "/invoices/{invoice_id}", erp_answer)
    erp_invoice = ok(erp_answer)
    erp_line = next(item for item in erp_invoice["lines"] if entry_id in item["source_ids"])
    assert (erp_line["minutes"], erp_line["amount"]) == (line["minutes"], line["amount"])  # booked as drafted

    delivered(experience, draft["id"])  # the e-invoice is rendered after posting, by the delivery job
    document = assert_valid_document(experience, draft["id"], "peppol-bis-billing-3")
    stated = ubl_line_of(document, Decimal(line["amount"]))
    assert stated["quantity"] * stated["price"] / stated["base"] == Decimal(line["amount"])  # exactly
    if stated["unit"] == "HUR":
        assert stated["quantity"] * 60 == line["minutes"]
    else:
        assert (stated["unit"], stated["quantity"], stated["base"]) == ("MIN", line["minutes"], 60)


def test_a_posting_whose_hours_do_not_name_its_minutes_is_refused_with_a_pointer(system: httpx.Client) -> None:
    response = system.post(f"{ERP}/postings", json={
        "source_type": "time_entry", "source_id": "te_minutes_mismatch", "project_id": PROJECT,
        "contract_id": CONTRACT, "legal_entity_id": "le_uk", "work_date": dt.date.today().isoformat(),
        "quantity": "0.5", "amount": "61.33", "currency": "GBP", "minutes": 20})

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["pointer"] for e in response.json()["errors"]] == ["/quantity"]


@pytest.mark.parametrize("minutes", [-1, 1_000_001, "20", 20.5, True])
def test_minutes_out_of_range_or_not_whole_are_a_4xx_problem(system: httpx.Client, minutes: object) -> None:
    response = system.post(f"{ERP}/postings", json={
        "source_type": "time_entry", "source_id": "te_minutes_bad", "project_id": PROJECT,
        "contract_id": CONTRACT, "legal_entity_id": "le_uk", "work_date": dt.date.today().isoformat(),
        "quantity": "0.33", "amount": "61.33", "currency": "GBP", "minutes": minutes})

    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_minutes_on_anything_but_time_are_refused(system: httpx.Client) -> None:
    response = system.post(f"{ERP}/postings", json={
        "source_type": "expense", "source_id": "exp_minutes", "project_id": PROJECT, "contract_id": CONTRACT,
        "legal_entity_id": "le_uk", "work_date": dt.date.today().isoformat(), "quantity": "1", "amount": "10.00",
        "currency": "GBP", "minutes": 60})

    assert response.status_code == 422, response.text
    assert "/minutes" in [e["pointer"] for e in response.json()["errors"]]
