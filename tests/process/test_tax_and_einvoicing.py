"""Regional tax and e-invoicing through the gateway on the sandbox stack (issue 19).

What finance relies on: each customer's invoice carries the tax of its jurisdiction, computed by that region's
engine and booked by the ERP as computed; one region's tax outage holds only that region's invoices, which are
drafted by themselves once it is back, never twice; every posted invoice gets the EN 16931 document its
customer's country expects, valid against its schema, delivered on the network with the status flowing back.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import facturx
import httpx
import pytest

from process_apis.invoicing.documents import check_bis_rules
from tests.experience.test_finance_ops import FINANCE_LEAD
from tests.support.flows import ERP, all_items, ok, wait_for
from tests.support.stack import RunningStack, sandbox_url

DRAFTS = "/process/invoicing/v1/invoice-drafts"
INVOICES = "/process/invoicing/v1/invoices"
EXCEPTIONS = "/process/exceptions/v1/exceptions"
TAX = "/system/tax/v1/tax-calculations"
DELIVERIES = "/system/einvoice/v1/deliveries"
TODAY = dt.datetime.now(dt.UTC).date()
PERIOD = TODAY.strftime("%Y-%m")
AMOUNT = "1234.57"


def new_customer(
    system: httpx.Client,
    legal_entity: str,
    currency: str,
    address: dict[str, str],
    vat_number: str | None,
    endpoint: str | None,
) -> str:
    body: dict[str, Any] = {
        "name": f"Tax test {uuid.uuid4().hex[:6]}",
        "billing_currency": currency,
        "legal_entity_id": legal_entity,
        "tax_jurisdiction": address["country"],
        "address": address,
        "vat_number": vat_number,
        "einvoice_endpoint_id": endpoint,
    }
    return str(ok(system.post(f"{ERP}/customers", json=body), 200, 201)["id"])


def new_contract(system: httpx.Client, customer_id: str, legal_entity: str, currency: str) -> str:
    """An active fixed fee whose one instalment falls in this period: something to invoice, nothing else."""
    body = {
        "customer_id": customer_id,
        "legal_entity_id": legal_entity,
        "name": "Tax test fixed fee",
        "currency": currency,
        "billing_model": "fixed_fee",
        "status": "active",
        "start_date": TODAY.replace(day=1).isoformat(),
        "end_date": (TODAY + dt.timedelta(days=90)).isoformat(),
        "total_value": AMOUNT,
        "billing_schedule": {
            "lines": [{"line_no": 1, "amount": AMOUNT, "period": PERIOD, "description": "Advisory, phase 1"}]
        },
    }
    return str(ok(system.post(f"{ERP}/contracts", json=body), 200, 201)["id"])


def register_participant(stack: RunningStack, participant: str) -> None:
    ok(httpx.post(f"{sandbox_url(stack, 'einvoice')}/_sandbox/participants", json={"participantId": participant}), 201)


@pytest.fixture(scope="module")
def customers(stack: RunningStack, system: httpx.Client) -> dict[str, tuple[str, str, str]]:
    """(customer id, legal entity, currency) for a German, a French, a UK and a US (New Mexico) customer."""
    register_participant(stack, "9957:fr44732829320")
    register_participant(stack, "9959:850000001")
    return {
        "DE": ("cus_1007", "le_de", "EUR"),  # demo customer, Berlin, DE VAT number
        "FR": (
            new_customer(
                system,
                "le_de",
                "EUR",
                {"country": "FR", "city": "Lyon", "postal_code": "69002"},
                "FR44732829320",
                "9957:fr44732829320",
            ),
            "le_de",
            "EUR",
        ),
        "UK": ("cus_1004", "le_uk", "GBP"),  # demo customer, London, GB VAT number
        "US": (
            new_customer(
                system, "le_us", "USD", {"country": "US", "region": "NM", "city": "Santa Fe"}, None, "9959:850000001"
            ),
            "le_us",
            "USD",
        ),
    }


def draft_for(experience: httpx.Client, system: httpx.Client, customer: tuple[str, str, str]) -> httpx.Response:
    contract_id = new_contract(system, *customer)
    return experience.post(DRAFTS, json={"contract_id": contract_id, "period": PERIOD})


def delivered(experience: httpx.Client, invoice_id: str) -> dict[str, Any]:
    return wait_for(
        f"the e-invoice of {invoice_id}",
        lambda: (
            lambda body: (
                body
                if body["e_invoice"]
                and body["e_invoice"]["state"] in ("delivered", "rejected", "invalid", "no_endpoint")
                else None
            )
        )(ok(experience.get(f"{INVOICES}/{invoice_id}"))),
    )


def assert_valid_document(experience: httpx.Client, invoice_id: str, expected_format: str) -> bytes:
    """The document the customer gets validates against its schema (and, for UBL, the BIS rules checked here)."""
    response = experience.get(f"{INVOICES}/{invoice_id}/e-invoice")
    assert response.status_code == 200, response.text
    if expected_format == "factur-x":
        assert response.headers["content-type"].startswith("application/pdf")
        name, xml = facturx.get_xml_from_pdf(response.content, check_xsd=False)
        assert name == "factur-x.xml"
        assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
        return bytes(xml)
    assert response.headers["content-type"].startswith("application/xml")
    assert facturx.xml_check_xsd(response.content, flavor="ubl-2.1-invoice")
    assert check_bis_rules(response.content) == []
    return response.content


EXPECTED = {  # jurisdiction, engine, category, rate, tax on 1234.57, document format
    "DE": ("DE", "eu-vat", "standard", "19", "234.57", "factur-x"),
    "FR": ("FR", "eu-vat", "reverse_charge", "0", "0.00", "factur-x"),
    "UK": ("GB", "uk-vat", "standard", "20", "246.91", "peppol-bis-billing-3"),
    "US": ("US-NM", "us-sales-tax", "standard", "4.875", "60.19", "peppol-bis-billing-3"),
}


def test_each_customer_gets_its_jurisdictions_tax_and_document(
    experience: httpx.Client, system: httpx.Client, customers: dict[str, tuple[str, str, str]]
) -> None:
    for country, customer in customers.items():
        jurisdiction, engine, category, rate, tax, document_format = EXPECTED[country]
        drafted = ok(draft_for(experience, system, customer), 201)
        assert drafted["tax"]["jurisdiction"] == jurisdiction and drafted["tax"]["engine"] == engine, drafted["tax"]
        [line] = drafted["tax"]["tax_lines"]
        assert (line["category"], line["rate_percent"], line["tax_amount"]) == (category, rate, tax), line
        erp_invoice = ok(system.get(f"{ERP}/invoices/{drafted['id']}"))
        assert erp_invoice["tax"] == tax and erp_invoice["total"] == str(Decimal(AMOUNT) + Decimal(tax))
        posted = ok(experience.post(f"{INVOICES}/{drafted['id']}/postings"))
        assert posted["state"] == "posted"
        final = delivered(experience, drafted["id"])
        e_invoice = final["e_invoice"]
        assert e_invoice["format"] == document_format and e_invoice["state"] == "delivered", e_invoice["errors"]
        xml = assert_valid_document(experience, drafted["id"], document_format)
        assert drafted["id"].encode() in xml
        if category == "reverse_charge":
            assert b"AE" in xml and b"Reverse charge" in xml


def test_with_the_eu_engine_down_uk_and_us_invoices_go_out_and_eu_ones_wait_then_complete_once(
    stack: RunningStack, experience: httpx.Client, system: httpx.Client, customers: dict[str, tuple[str, str, str]]
) -> None:
    eu_faults = f"{sandbox_url(stack, 'tax')}/eu/_sandbox/faults"
    ok(httpx.put(eu_faults, json={"outage_seconds": 600}))
    try:
        held = {c: draft_for(experience, system, customers[c]) for c in ("DE", "FR")}
        went_out = {c: draft_for(experience, system, customers[c]) for c in ("UK", "US")}
        for country, response in went_out.items():
            posted = ok(experience.post(f"{INVOICES}/{ok(response, 201)['id']}/postings"))
            assert posted["state"] == "posted" and posted["tax"]["engine"] != "eu-vat", country
        holds = {}
        for country, response in held.items():
            body = ok(response, 202)
            assert body["reason"] == "TAX_SERVICE_UNAVAILABLE" and body["engine"] == "eu-vat", body
            holds[country] = body
            item = ok(experience.get(f"{EXCEPTIONS}/{body['exception_id']}"))
            assert item["kind"] == "billing_hold" and item["source_type"] == "invoice_draft"
            assert item["reason_codes"] == ["TAX_SERVICE_UNAVAILABLE"]
            again = ok(experience.post(DRAFTS, json={"contract_id": body["contract_id"], "period": PERIOD}), 202)
            assert again["exception_id"] == body["exception_id"]  # one hold per contract and period
        with stack.client("dashboard-web") as dashboards, stack.client("finance-web", subject=FINANCE_LEAD) as ops:
            panel = ok(dashboards.get("/experience/dashboards/v1/exceptions-summary"))
            from_finance_ops = ok(
                ops.post(
                    "/experience/finance-ops/v1/invoice-drafts",
                    json={"contract_id": holds["DE"]["contract_id"], "period": PERIOD},
                ),
                202,
            )
        assert panel["tax_holds"] >= 2  # the finance dashboard shows what waits for a tax service
        assert from_finance_ops["exception_id"] == holds["DE"]["exception_id"]
    finally:
        ok(httpx.delete(eu_faults))

    for country, hold in holds.items():
        contract_id = hold["contract_id"]
        drafts = wait_for(
            f"the held {country} draft",
            lambda c=contract_id: (
                all_items(  # type: ignore[misc]
                    experience, INVOICES, contract_id=c
                )
                or None
            ),
        )
        assert len(drafts) == 1 and drafts[0]["tax"]["engine"] == "eu-vat", drafts
        assert ok(experience.get(f"{EXCEPTIONS}/{hold['exception_id']}"))["state"] == "resolved"
        invoice_id = drafts[0]["id"]
        ok(experience.post(f"{INVOICES}/{invoice_id}/postings"))
        ok(experience.post(f"{INVOICES}/{invoice_id}/postings"))  # a repeat posts nothing more
        issued = [i for i in all_items(system, f"{ERP}/invoices", contract_id=contract_id) if i["state"] == "posted"]
        assert [i["id"] for i in issued] == [invoice_id]
        assert ok(experience.post(DRAFTS, json={"contract_id": contract_id, "period": PERIOD}))["id"] == invoice_id


def test_a_rejected_delivery_waits_in_the_exception_queue_and_a_retry_delivers_it(
    stack: RunningStack, experience: httpx.Client, system: httpx.Client
) -> None:
    endpoint = f"9957:fr{uuid.uuid4().int % 10**11:011d}"
    customer = (new_customer(system, "le_de", "EUR", {"country": "FR"}, "FR44732829320", endpoint), "le_de", "EUR")
    invoice_id = ok(draft_for(experience, system, customer), 201)["id"]
    ok(experience.post(f"{INVOICES}/{invoice_id}/postings"))

    rejected = delivered(experience, invoice_id)["e_invoice"]
    [item] = ok(experience.get(EXCEPTIONS, params={"kind": "flow_back", "source_id": invoice_id}))["items"]
    register_participant(stack, endpoint)
    retried = ok(experience.post(f"{EXCEPTIONS}/{item['id']}/retries", json={}))

    assert rejected["state"] == "rejected" and rejected["errors"][0]["code"] == "RECEIVER_NOT_FOUND", rejected
    assert item["reason_codes"] == ["EINVOICE_REJECTED"] and retried["outcome"] == "in_progress"
    final = wait_for(
        "the second delivery",
        lambda: (lambda e: e if e["state"] == "delivered" else None)(
            ok(experience.get(f"{INVOICES}/{invoice_id}"))["e_invoice"]
        ),
    )
    assert final["attempt"] == 2


TAX_REQUEST: dict[str, Any] = {
    "document_ref": "probe",
    "currency": "EUR",
    "seller": {"legal_entity_id": "le_de", "country": "DE", "currency": "EUR"},
    "buyer": {"customer_id": "cus_x", "country": "FR", "vat_number": "FR44732829320"},
    "lines": [{"amount": "100.00"}],
}


@pytest.mark.parametrize(
    ("change", "status", "pointer"),
    [
        ({"buyer": {"customer_id": "cus_x", "country": "FR", "vat_number": "FR00732829320"}}, 400, "/buyer/vat_number"),
        ({"buyer": {"customer_id": "cus_x", "country": "DE", "vat_number": "FR44732829320"}}, 400, "/buyer/vat_number"),
        ({"buyer": {"customer_id": "cus_x", "country": "XX"}}, 422, "/buyer/country"),
        ({"currency": "USD"}, 422, "/currency"),
        (
            {
                "buyer": {"customer_id": "cus_x", "country": "US"},
                "seller": {"legal_entity_id": "le_us", "country": "US", "currency": "EUR"},
            },
            400,
            "/buyer/region",
        ),
        ({"lines": [{"amount": "1e400"}]}, 400, "/lines/0/amount"),
        ({"lines": []}, 400, "/lines"),
        ({"buyer": {"customer_id": "cus_x", "country": "fr\r\n"}}, 400, "/buyer/country"),
    ],
)
def test_bad_tax_input_is_a_problem_with_a_pointer(
    system: httpx.Client, change: dict[str, Any], status: int, pointer: str
) -> None:
    response = system.post(TAX, json={**TAX_REQUEST, **change})
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert pointer in [e["pointer"] for e in response.json()["errors"]], response.json()


def test_a_contract_whose_customer_has_a_malformed_vat_number_is_refused_not_drafted(
    experience: httpx.Client, system: httpx.Client
) -> None:
    customer = (new_customer(system, "le_de", "EUR", {"country": "FR"}, "FR00732829320", None), "le_de", "EUR")
    refused = draft_for(experience, system, customer)
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["reason"] == "TAX_DATA_INVALID" and body["tax_pointers"] == ["/buyer/vat_number"]
    assert [e["pointer"] for e in body["errors"]] == ["/contract_id"]


def test_bad_delivery_input_and_unknown_ids_are_problems(system: httpx.Client, experience: httpx.Client) -> None:
    bad_receiver = system.post(
        DELIVERIES,
        json={
            "invoice_id": "inv_1",
            "sender_id": "9930:de309174625",
            "receiver_id": "nobody",
            "format": "factur-x",
            "content_base64": "JVBERi0=",
        },
    )
    unknown = system.get(f"{DELIVERIES}/dlv_999999999")
    encoded_slash = system.get(f"{DELIVERIES}/dlv_1%2F..%2Fx")
    no_document = experience.get(f"{INVOICES}/inv_999999999/e-invoice")
    crlf_document = experience.get(f"{INVOICES}/inv_1%0D%0Ax/e-invoice")
    deep = system.post(TAX, content=b'{"buyer":' * 80 + b"{}" + b"}" * 80, headers={"Content-Type": "application/json"})

    assert bad_receiver.status_code == 400 and "/receiver_id" in bad_receiver.text
    assert unknown.status_code == 404 and encoded_slash.status_code in (400, 404)
    assert no_document.status_code == 404 and crlf_document.status_code in (400, 404)
    assert deep.status_code == 400
    assert all(
        r.headers["content-type"].startswith("application/problem+json")
        for r in (bad_receiver, unknown, encoded_slash, no_document, crlf_document, deep)
    )


def test_the_catalog_lists_the_tax_and_e_invoicing_contracts(stack: RunningStack) -> None:
    listed = {
        api["api_id"]
        for api in httpx.get(f"{stack.url}/catalog/apis", params={"q": "system"}, timeout=60).json()["items"]
    }
    assert {"system/tax", "system/einvoice"} <= listed, listed
