"""ERP system API through the real stack: reference data, upserts, exactly-once postings, invoices."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from tests.support.system import SystemApis

TODAY = dt.datetime.now(dt.UTC).date()


def month(back: int) -> dt.date:
    index = TODAY.year * 12 + TODAY.month - 1 - back
    return dt.date(index // 12, index % 12 + 1, 1)


def posting(source_id: str, **overrides: object) -> dict[str, object]:
    return {"source_type": "time_entry", "source_id": source_id, "project_id": "prj_4001", "contract_id": "ctr_2001",
            "legal_entity_id": "le_us", "work_date": TODAY.isoformat(), "quantity": "8", "amount": "1400.00",
            "currency": "USD", **overrides}


def fresh_source() -> str:
    return f"te_{uuid.uuid4().int % 10**9 + 10**9}"


def test_legal_entities_and_periods(apis: SystemApis) -> None:
    entities = apis.json("GET", "erp", "/legal-entities", 200)["items"]
    assert {e["id"]: e["functional_currency"] for e in entities} == {"le_us": "USD", "le_uk": "GBP", "le_de": "EUR"}
    closed = month(3).strftime("%Y-%m")
    periods = apis.json("GET", "erp", "/accounting-periods", 200, params={"legal_entity_id": "le_us",
                                                                           "period": closed})["items"]
    assert periods == [{"legal_entity_id": "le_us", "period": closed, "status": "closed"}]
    current = apis.json("GET", "erp", "/accounting-periods", 200, params={"legal_entity_id": "le_de",
                                                                           "period": TODAY.strftime("%Y-%m")})
    assert current["items"][0]["status"] == "open"
    apis.call("GET", "erp", "/accounting-periods", 400, params={"period": "2026-13"})


def test_customers_upsert_by_business_key_and_crm_account(apis: SystemApis) -> None:
    found = apis.json("GET", "erp", "/customers", 200, params={"name": "CONTOSO"})["items"]
    assert [c["id"] for c in found] == ["cus_1001"] and found[0]["external_ids"]["crm"]
    assert apis.json("GET", "erp", "/customers/{customer_id}", 200, path={"customer_id": "cus_1001"})["name"] == (
        "Contoso Retail")
    apis.call("GET", "erp", "/customers/{customer_id}", 404, path={"customer_id": "cus_9999"})
    crm_id = "0018d0000" + uuid.uuid4().hex[:9]
    body = {"name": "Northwind Traders", "billing_currency": "USD", "legal_entity_id": "le_us",
            "tax_jurisdiction": "US-WA", "external_ids": {"crm": crm_id}}
    created = apis.json("POST", "erp", "/customers", 201, json=body)
    again = apis.json("POST", "erp", "/customers", 200, json=body)
    assert again["id"] == created["id"] and created["external_ids"]["crm"] == crm_id
    existing = apis.json("POST", "erp", "/customers", 200, json={**body, "id": "cus_1001", "external_ids": {}})
    assert existing["name"] == "Contoso Retail"
    bad = apis.json("POST", "erp", "/customers", 422, json={**body, "external_ids": {}, "legal_entity_id": "le_xx"})
    assert bad["errors"][0]["pointer"] == "/legal_entity_id"


def test_contracts_upsert_amend_and_close(apis: SystemApis) -> None:
    listed = apis.json("GET", "erp", "/contracts", 200, params={"customer_id": "cus_1001", "status": "active"})
    assert listed["items"] and all(c["customer_id"] == "cus_1001" for c in listed["items"])
    seeded = apis.json("GET", "erp", "/contracts/{contract_id}", 200, path={"contract_id": "ctr_2001"})
    assert seeded["rate_card_id"] == "rc_usd" and seeded["billing_profile"]["payment_terms_days"] == 30
    apis.call("GET", "erp", "/contracts/{contract_id}", 404, path={"contract_id": "ctr_9999"})
    number = f"ctr_{uuid.uuid4().int % 10**6 + 900000}"
    body = {"id": number, "customer_id": "cus_1002", "legal_entity_id": "le_us", "name": "Fabrikam phase 2",
            "currency": "USD", "billing_model": "retainer", "nte_amount": "50000.00", "start_date": "2026-12-01",
            "end_date": "2027-11-30", "status": "draft", "rate_card_id": "rc_usd",
            "billing_profile": {"invoice_frequency": "monthly", "payment_terms_days": 45, "scheduled_amount": "10000"}}
    created = apis.json("POST", "erp", "/contracts", 201, json=body)
    assert created["id"] == number and created["version"] == 1 and created["nte_amount"] == "50000.00"
    assert apis.json("POST", "erp", "/contracts", 200, json=body)["external_ids"] == created["external_ids"]
    path = {"contract_id": number}
    active = apis.json("PATCH", "erp", "/contracts/{contract_id}", 200, path=path, json={"status": "active"})
    assert active["version"] == 1  # a status change is not an amendment
    amended = apis.json("PATCH", "erp", "/contracts/{contract_id}", 200, path=path, json={"nte_amount": "65000.00"})
    assert amended["version"] == 2 and amended["nte_amount"] == "65000.00"
    apis.json("PATCH", "erp", "/contracts/{contract_id}", 200, path=path, json={"status": "closed"})
    reopened = apis.json("PATCH", "erp", "/contracts/{contract_id}", 409, path=path, json={"status": "active"})
    assert (reopened["from_state"], reopened["to_state"]) == ("closed", "active")
    backwards = apis.json("PATCH", "erp", "/contracts/{contract_id}", 422, path=path,
                          json={"end_date": "2026-01-01"})
    assert backwards["errors"][0]["pointer"] == "/end_date"
    fine_cents = apis.json("POST", "erp", "/contracts", 422, json={**body, "id": None, "nte_amount": "1.005"})
    assert fine_cents["errors"][0]["pointer"] == "/nte_amount"


def test_project_dimensions_upsert(apis: SystemApis) -> None:
    assert apis.json("GET", "erp", "/project-dimensions", 200, params={"project_id": "prj_4001"})["items"][0][
        "code"] == "P-4001"
    project = f"prj_{uuid.uuid4().int % 10**5 + 70000}"
    body = {"project_id": project, "legal_entity_id": "le_uk", "code": "P-" + project[4:]}
    created = apis.json("POST", "erp", "/project-dimensions", 201, json=body)
    assert apis.json("POST", "erp", "/project-dimensions", 200, json=body) == created
    clash = apis.json("POST", "erp", "/project-dimensions", 409, json={**body, "code": "P-4001"})
    assert clash["type"].endswith("/dimension-conflict")


def test_a_source_is_posted_exactly_once(apis: SystemApis) -> None:
    source = fresh_source()
    created = apis.json("POST", "erp", "/postings", 201, json=posting(source))
    again = apis.json("POST", "erp", "/postings", 200, json=posting(source, amount="1500.00"))
    assert again["id"] == created["id"] and again["amount"] == "1400.00"
    listed = apis.json("GET", "erp", "/postings", 200, params={"source_id": source})["items"]
    assert [p["id"] for p in listed] == [created["id"]]
    assert created["posted_at"] and created["external_ids"]["erp"]


def test_posting_refusals_are_in_canonical_terms(apis: SystemApis, erp_downstream: str) -> None:
    closed = apis.json("POST", "erp", "/postings", 422, json=posting(fresh_source(), work_date=month(3).isoformat()))
    assert closed["type"].endswith("/period-closed") and closed["errors"][0]["pointer"] == "/work_date"
    assert closed["downstream"] == erp_downstream
    wrong_currency = apis.json("POST", "erp", "/postings", 422, json=posting(fresh_source(), currency="EUR"))
    assert [e["pointer"] for e in wrong_currency["errors"]] == ["/currency"]
    no_dimension = apis.json("POST", "erp", "/postings", 422, json=posting(fresh_source(), project_id="prj_99999"))
    assert [e["pointer"] for e in no_dimension["errors"]] == ["/project_id"]
    negative = apis.json("POST", "erp", "/postings", 422, json=posting(fresh_source(), amount="-1"))
    assert negative["errors"][0]["pointer"] == "/amount"


def test_batch_posting_reports_each_item(apis: SystemApis) -> None:
    done, new = fresh_source(), fresh_source()
    apis.json("POST", "erp", "/postings", 201, json=posting(done))
    result = apis.json("POST", "erp", "/postings/batch", 200, json={"items": [
        posting(done), posting(new), posting(fresh_source(), work_date=month(3).isoformat()),
        posting("bogus", source_type="time_entry")]})["items"]

    assert [r["status"] for r in result] == ["existing", "created", "rejected", "rejected"]
    assert result[1]["posting"]["source_id"] == new
    assert result[2]["problem"]["errors"][0]["pointer"] == "/work_date"
    assert result[3]["problem"]["errors"][0]["pointer"] == "/source_id"
    apis.call("POST", "erp", "/postings/batch", 400, json={"items": []})
    listed = apis.json("GET", "erp", "/postings", 200, params={"project_id": "prj_4001", "from_date": TODAY.isoformat(),
                                                                "limit": 200})
    assert [p["source_id"] for p in listed["items"]].count(new) == 1


def test_idempotency_key_on_a_batch_replays_the_same_answer(apis: SystemApis) -> None:
    key, body = str(uuid.uuid4()), {"items": [posting(fresh_source())]}
    first = apis.json("POST", "erp", "/postings/batch", 200, json=body, headers={"Idempotency-Key": key})
    second = apis.json("POST", "erp", "/postings/batch", 200, json=body, headers={"Idempotency-Key": key})
    assert first == second and first["items"][0]["status"] == "created"
    reused = apis.json("POST", "erp", "/postings/batch", 422, json={"items": [posting(fresh_source())]},
                       headers={"Idempotency-Key": key})
    assert reused["type"].endswith("/idempotency-key-reused")


def test_invoice_draft_then_post(apis: SystemApis) -> None:
    source = fresh_source()
    body = {"customer_id": "cus_1004", "contract_id": "ctr_2004", "legal_entity_id": "le_uk", "currency": "GBP",
            "period": TODAY.strftime("%Y-%m"), "lines": [
                {"description": "Consultant services", "quantity": "8", "unit_price": "140.00", "amount": "1120.00",
                 "source_type": "time_entry", "source_ids": [source]}]}
    key = str(uuid.uuid4())
    draft = apis.json("POST", "erp", "/invoices", 201, json=body, headers={"Idempotency-Key": key})
    assert apis.json("POST", "erp", "/invoices", 201, json=body, headers={"Idempotency-Key": key}) == draft
    assert draft["state"] == "draft" and draft["subtotal"] == "1120.00" and draft["tax"] == "224.00"
    assert draft["total"] == "1344.00" and draft["lines"][0]["source_ids"] == [source]
    path = {"invoice_id": draft["id"]}
    posted = apis.json("POST", "erp", "/invoices/{invoice_id}/post", 200, path=path)
    assert posted["state"] == "posted" and posted["issue_date"] == TODAY.isoformat()
    assert apis.json("POST", "erp", "/invoices/{invoice_id}/post", 200, path=path)["state"] == "posted"
    assert apis.json("GET", "erp", "/invoices/{invoice_id}", 200, path=path)["state"] == "posted"
    apis.call("GET", "erp", "/invoices/{invoice_id}", 404, path={"invoice_id": "inv_1"})
    listed = apis.json("GET", "erp", "/invoices", 200, params={"contract_id": "ctr_2004", "state": "posted",
                                                                "period": TODAY.strftime("%Y-%m")})
    assert draft["id"] in [i["id"] for i in listed["items"]]
    wrong_customer = apis.json("POST", "erp", "/invoices", 422, json={**body, "customer_id": "cus_1001"})
    assert {e["pointer"] for e in wrong_customer["errors"]} >= {"/contract_id"}
    line = {"description": "Consultant services", "quantity": "8", "unit_price": "140.00", "amount": "1.001",
            "source_type": "time_entry"}
    bad_line = apis.json("POST", "erp", "/invoices", 422, json={**body, "lines": [line]})
    assert bad_line["errors"][0]["pointer"] == "/lines/0/amount"


def test_revenue_schedules(apis: SystemApis) -> None:
    schedules = apis.json("GET", "erp", "/revenue-schedules", 200, params={"contract_id": "ctr_2001"})["items"]
    assert schedules and {s["method"] for s in schedules} == {"as_billed"}
    period = schedules[0]["period"]
    one = apis.json("GET", "erp", "/revenue-schedules", 200, params={"contract_id": "ctr_2001", "period": period})
    assert [s["period"] for s in one["items"]] == [period]


def test_contracts_carry_their_billing_terms(apis: SystemApis) -> None:
    fixed = apis.json("GET", "erp", "/contracts/{contract_id}", 200, path={"contract_id": "ctr_2011"})
    lines = fixed["billing_schedule"]["lines"]
    assert fixed["billing_model"] == "fixed_fee" and fixed["billing_profile"]["scheduled_amount"] is None
    assert sum(Decimal(line["amount"]) for line in lines) == Decimal(fixed["total_value"])
    assert lines[-1]["percent_complete"] == "100" and all(line["period"] for line in lines)
    retainer = apis.json("GET", "erp", "/contracts/{contract_id}", 200, path={"contract_id": "ctr_2019"})
    terms = retainer["billing_schedule"]
    assert (terms["period_fee"], terms["hours_allowance"], terms["unused_hours"]) == ("13000.00", "80", "carry_forward")
    assert retainer["billing_profile"]["scheduled_amount"] == terms["period_fee"]  # the deprecated mirror

    number = f"ctr_{uuid.uuid4().int % 10**6 + 900000}"
    body = {"id": number, "customer_id": "cus_1001", "legal_entity_id": "le_us", "name": "Contoso rollout",
            "currency": "USD", "billing_model": "fixed_fee", "start_date": "2027-01-01", "end_date": "2027-03-31",
            "status": "active", "total_value": "30000.00", "billing_schedule": {"lines": [
                {"line_no": 1, "amount": "10000.00", "period": "2027-01", "percent_complete": "40"},
                {"line_no": 2, "amount": "20000.00", "date": "2027-03-15", "percent_complete": "100"}]}}
    created = apis.json("POST", "erp", "/contracts", 201, json=body)
    assert [(line["period"], line["date"]) for line in created["billing_schedule"]["lines"]] == [
        ("2027-01", None), (None, "2027-03-15")]
    per_month = apis.json("POST", "erp", "/contracts", 422, json={
        **body, "id": None, "billing_profile": {"scheduled_amount": "30000.00"}})
    assert [e["pointer"] for e in per_month["errors"]] == ["/billing_profile/scheduled_amount"]
    over_value = apis.json("POST", "erp", "/contracts", 422, json={**body, "id": None, "total_value": "25000.00"})
    assert [e["pointer"] for e in over_value["errors"]] == ["/billing_schedule/lines"]
    outside = apis.json("PATCH", "erp", "/contracts/{contract_id}", 422, path={"contract_id": number},
                        json={"end_date": "2027-02-28"})
    assert [e["pointer"] for e in outside["errors"]] == ["/billing_schedule/lines/1/date"]
    both = apis.json("POST", "erp", "/contracts", 422, json={**body, "id": None, "billing_schedule": {"lines": [
        {"line_no": 1, "amount": "1.00", "period": "2027-01", "date": "2027-01-05"}]}})
    assert [e["pointer"] for e in both["errors"]] == ["/billing_schedule/lines/0/period"]
    amended = apis.json("PATCH", "erp", "/contracts/{contract_id}", 200, path={"contract_id": number},
                        json={"total_value": "35000.00"})
    assert amended["version"] == 2 and amended["billing_schedule"] == created["billing_schedule"]


def test_a_draft_invoice_is_voided_and_a_posted_one_is_not(apis: SystemApis) -> None:
    body = {"customer_id": "cus_1004", "contract_id": "ctr_2004", "legal_entity_id": "le_uk", "currency": "GBP",
            "period": TODAY.strftime("%Y-%m"), "lines": [
                {"description": "Consultant services", "quantity": "1", "unit_price": "140.00", "amount": "140.00",
                 "source_type": "time_entry", "source_ids": [fresh_source()]}]}
    draft = apis.json("POST", "erp", "/invoices", 201, json=body)
    path = {"invoice_id": draft["id"]}
    assert apis.json("POST", "erp", "/invoices/{invoice_id}/void", 200, path=path)["state"] == "void"
    assert apis.json("POST", "erp", "/invoices/{invoice_id}/void", 200, path=path)["state"] == "void"
    refused = apis.json("POST", "erp", "/invoices/{invoice_id}/post", 409, path=path)
    assert refused["type"].endswith("/invalid-transition")
    posted = apis.json("POST", "erp", "/invoices", 201, json=body)
    apis.json("POST", "erp", "/invoices/{invoice_id}/post", 200, path={"invoice_id": posted["id"]})
    kept = apis.json("POST", "erp", "/invoices/{invoice_id}/void", 409, path={"invoice_id": posted["id"]})
    assert (kept["from_state"], kept["to_state"]) == ("posted", "void")
    apis.call("POST", "erp", "/invoices/{invoice_id}/void", 404, path={"invoice_id": "inv_1"})


# The ERP contract suite every vendor backend runs as is (tests/<backend>/test_erp_contract.py star-imports it): every
# test above, so a new one runs on each backend without a second list to keep.
__all__ = [name for name in dir() if name.startswith("test_")]
