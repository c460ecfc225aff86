"""SAP S/4HANA Cloud's OData v2 wire as an integration meets it on the ``s4hana`` backend's sandbox, and what the
system tier makes of the vendor's refusals and limits: OAuth 2.0 client credentials, the CSRF token a write needs,
v2 envelopes (``d``, ``results``, ``__count``, ``__next``, ``__metadata``, ``__deferred``), v2 error bodies, 429
with Retry-After; and the writes only this adapter sends (credit memo requests, reversals) answered exactly once in
canonical terms."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.launcher import vendor_credentials
from runtime.problems import ProblemError
from sandbox import firm, s4hana
from sandbox.erp import seed
from sandbox.store import DocumentStore
from system_apis.erp.connectors.s4hana import S4HanaErp
from system_apis.erp.models import CustomerCreate
from system_apis.vendor_auth import VendorCredentials
from tests.support.erp_vendors import limits_waited_out_then_a_503, pages_to_the_last_customer
from tests.support.stack import RunningStack
from tests.support.system import SystemApis

TODAY = dt.datetime.now(dt.UTC).date()
BP = "/sap/opu/odata/sap/API_BUSINESS_PARTNER"


def sandbox(stack: RunningStack) -> str:
    return stack.stack.url("sandbox-erp")


def credentials(stack: RunningStack, secret: str | None = None) -> VendorCredentials:
    _, env = vendor_credentials(stack.stack.data_dir)
    return VendorCredentials(client_id=env["PSGW_ERP_CLIENT_ID"], client_secret=secret or env["PSGW_ERP_CLIENT_SECRET"])


def token_answer(stack: RunningStack, secret: str | None = None, **form: str) -> httpx.Response:
    known = credentials(stack, secret)
    return httpx.post(f"{sandbox(stack)}/sap/bc/sec/oauth2/token", data={"grant_type": "client_credentials", **form},
                      auth=(known.client_id, known.client_secret))


@pytest.fixture
def s4(stack: RunningStack) -> Iterator[httpx.Client]:
    answer = token_answer(stack)
    assert answer.status_code == 200, answer.text
    with httpx.Client(
        base_url=sandbox(stack),
        headers={"Authorization": "Bearer " + answer.json()["access_token"], "Accept": "application/json"},
        timeout=10.0,
    ) as client:
        yield client


def csrf(client: httpx.Client) -> str:
    """Fetch a CSRF token (the client keeps the session cookie it is bound to)."""
    fetched = client.get(f"{BP}/", headers={"x-csrf-token": "Fetch"})
    assert fetched.status_code == 200 and fetched.json()["d"]["EntitySets"] == ["A_BusinessPartner"]
    return fetched.headers["x-csrf-token"]


def partner(name: str = "Tailspin Toys") -> dict[str, Any]:
    return {"BusinessPartner": f"C-{uuid.uuid4().int % 10**7}", "BusinessPartnerCategory": "2",
            "OrganizationBPName1": name, "YY1_CompanyCode": "LEUK", "YY1_Currency": "GBP",
            "to_BusinessPartnerAddress": {"results": [{"CityName": "Leeds", "Country": "GB"}]}}


def test_the_token_endpoint_wants_the_client_secret(stack: RunningStack) -> None:
    good = token_answer(stack)
    assert good.status_code == 200 and good.json()["token_type"] == "Bearer" and good.json()["expires_in"] > 0
    assert token_answer(stack, secret="not-the-secret").status_code == 401
    assert token_answer(stack, grant_type="password").status_code == 400


def test_a_call_without_a_token_is_refused_in_the_v2_error_shape(stack: RunningStack) -> None:
    refused = httpx.get(sandbox(stack) + f"{BP}/A_BusinessPartner")
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    error = refused.json()["error"]
    assert set(error) >= {"code", "message", "innererror"} and error["message"]["lang"] == "en"


def test_a_write_needs_the_csrf_token_and_the_session_cookie_it_was_fetched_with(
    stack: RunningStack, s4: httpx.Client
) -> None:
    body = partner()
    refused = s4.post(f"{BP}/A_BusinessPartner", json=body)
    assert refused.status_code == 403 and refused.headers["x-csrf-token"] == "Required"
    assert refused.text == "CSRF token validation failed"
    token = csrf(s4)
    assert s4.cookies.get(s4hana.SESSION_COOKIE)
    with httpx.Client(base_url=sandbox(stack), headers=s4.headers) as other:
        # The token without its session cookie (another session) is no token.
        assert other.post(f"{BP}/A_BusinessPartner", json=body, headers={"x-csrf-token": token}).status_code == 403
    assert s4.post(f"{BP}/A_BusinessPartner", json=body, headers={"x-csrf-token": "guessed"}).status_code == 403
    created = s4.post(f"{BP}/A_BusinessPartner", json=body, headers={"x-csrf-token": token})
    assert created.status_code == 201, created.text
    entity = created.json()["d"]
    assert entity["BusinessPartner"] == body["BusinessPartner"]
    assert entity["__metadata"]["type"] == "API_BUSINESS_PARTNER.A_BusinessPartnerType"
    assert entity["__metadata"]["uri"].endswith(f"/A_BusinessPartner('{body['BusinessPartner']}')")
    assert entity["to_BusinessPartnerAddress"]["results"][0]["CityName"] == "Leeds"


def test_json_is_asked_for_as_sap_gateway_wants(s4: httpx.Client) -> None:
    assert s4.get(f"{BP}/A_BusinessPartner", headers={"Accept": "*/*"}).status_code == 406  # SAP: Atom XML
    assert s4.get(f"{BP}/A_BusinessPartner", params={"$format": "xml"}).status_code == 406
    formatted = s4.get(f"{BP}/A_BusinessPartner", params={"$format": "json", "$top": "1"}, headers={"Accept": "*/*"})
    assert formatted.status_code == 200 and len(formatted.json()["d"]["results"]) == 1


def test_collections_are_v2_envelopes_with_count_expand_and_select(s4: httpx.Client) -> None:
    first = s4.get(f"{BP}/A_BusinessPartner", params={"$top": "5", "$inlinecount": "allpages"}).json()["d"]
    assert len(first["results"]) == 5 and isinstance(first["__count"], str) and int(first["__count"]) >= 12
    assert "__next" not in first  # $top reached: the client pages with $skip
    second = s4.get(f"{BP}/A_BusinessPartner", params={"$top": "5", "$skip": "5"}).json()["d"]["results"]
    assert not {p["BusinessPartner"] for p in first["results"]} & {p["BusinessPartner"] for p in second}
    assert set(first["results"][0]["to_BusinessPartnerAddress"]) == {"__deferred"}
    expanded = s4.get(f"{BP}/A_BusinessPartner('C-1001')", params={"$expand": "to_BusinessPartnerAddress"}).json()
    assert expanded["d"]["OrganizationBPName1"] == "Contoso Retail"
    assert expanded["d"]["to_BusinessPartnerAddress"]["results"][0]["Country"] == "US"
    selected = s4.get(f"{BP}/A_BusinessPartner", params={"$select": "BusinessPartner", "$top": "2"}).json()
    assert [set(p) for p in selected["d"]["results"]] == [{"__metadata", "BusinessPartner"}] * 2
    names = ("substringof('contoso',tolower(OrganizationBPName1))", "substringof('Contoso',OrganizationBPName1)")
    for condition in names:
        found = s4.get(f"{BP}/A_BusinessPartner", params={"$filter": condition})
        assert [p["BusinessPartner"] for p in found.json()["d"]["results"]] == ["C-1001"], condition
    document = s4.get("/sap/opu/odata/sap/API_BILLING_DOCUMENT_SRV/A_BillingDocument",
                      params={"$top": "1", "$expand": "to_Item"}).json()["d"]["results"][0]
    assert document["BillingDocumentDate"].startswith("/Date(") and isinstance(document["TotalNetAmount"], str)
    assert document["to_Item"]["results"][0]["NetAmount"] and set(document["to_PricingElement"]) == {"__deferred"}
    project = s4.get("/sap/opu/odata/sap/API_ENTERPRISE_PROJECT_SRV;v=0002/A_EnterpriseProject",
                     params={"$top": "1"}).json()["d"]["results"][0]
    again = s4.get(f"/sap/opu/odata/sap/API_ENTERPRISE_PROJECT_SRV;v=0002/A_EnterpriseProject"
                   f"(guid'{project['ProjectUUID']}')").json()["d"]
    assert again["Project"] == project["Project"]


def test_a_page_past_the_servers_limit_is_cut_and_continued_by_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DocumentStore(tmp_path / "erp.sqlite3")
    store.transaction(seed, store, firm.build())
    monkeypatch.setattr(s4hana, "MAX_PAGE", 5)
    seen: list[str] = []
    params = {"$inlinecount": "allpages"}
    while True:
        page = s4hana.query(store, "A_BusinessPartner", params, "https://tenant")["d"]
        seen.extend(p["BusinessPartner"] for p in page["results"])
        if "__next" not in page:
            break
        assert page["__next"].startswith("https://tenant/sap/opu/odata/sap/API_BUSINESS_PARTNER/A_BusinessPartner?")
        params = dict(httpx.URL(page["__next"]).params)
        assert params["$inlinecount"] == "allpages" and params["$skiptoken"]
    assert len(seen) == len(set(seen)) == int(page["__count"]) >= 12


def test_refusals_are_v2_error_bodies_naming_the_property(s4: httpx.Client) -> None:
    unknown = s4.get(f"{BP}/NoSuchEntities")
    assert unknown.status_code == 404 and unknown.json()["error"]["message"]["value"]
    assert s4.get("/sap/opu/odata/sap/NO_SUCH_SRV/A_BusinessPartner").status_code == 404
    bad_filter = s4.get(f"{BP}/A_BusinessPartner", params={"$filter": "NoSuchProperty eq 'x'"})
    assert bad_filter.status_code == 400 and "NoSuchProperty" in bad_filter.json()["error"]["message"]["value"]
    assert s4.get(f"{BP}/A_BusinessPartner('C-99999')").status_code == 404
    token = csrf(s4)
    body = partner()
    assert s4.post(f"{BP}/A_BusinessPartner", json=body, headers={"x-csrf-token": token}).status_code == 201
    again = s4.post(f"{BP}/A_BusinessPartner", json=body, headers={"x-csrf-token": token})
    assert again.status_code == 400
    detail = again.json()["error"]["innererror"]["errordetails"][0]
    assert detail["code"] == "ZPSG/DUPLICATE_RECORD" and detail["severity"] == "error"
    assert detail["target"] == "BusinessPartner"


def test_hostile_input_reaches_s4hana_as_data_and_comes_back_as_4xx(apis: SystemApis) -> None:
    quoted = apis.json("GET", "erp", "/customers", 200, params={"name": "O'Brien',OrganizationBPName1) or ('"})
    assert quoted["items"] == []
    apis.call("GET", "erp", "/customers/{customer_id}", 404, path={"customer_id": "cus_1001%27)%20or%20(1"})
    apis.call("GET", "erp", "/contracts/{contract_id}", 404, path={"contract_id": "ctr_2001%2F..%2F1"})
    apis.call("GET", "erp", "/postings", 400, params={"from_date": "99999-01-01"})
    apis.call("GET", "erp", "/invoices/{invoice_id}", 404, path={"invoice_id": "inv_%0d%0aX-Injected:%201"})
    apis.call("GET", "erp", "/credit-notes", 200, params={"invoice_id": "inv_1' or '1' eq '1"})


def test_the_system_api_pages_through_s4hana_to_the_last_record(apis: SystemApis, s4: httpx.Client) -> None:
    counted = s4.get(f"{BP}/A_BusinessPartner", params={"$inlinecount": "allpages", "$top": "1"})
    pages_to_the_last_customer(apis, int(counted.json()["d"]["__count"]))


def test_s4hana_429_is_waited_out_and_a_spent_limit_is_a_503_naming_s4hana(
    stack: RunningStack, apis: SystemApis, s4: httpx.Client
) -> None:
    limited = limits_waited_out_then_a_503(
        stack, apis, "s4hana", sandbox(stack), lambda: s4.get("/sap/opu/odata/sap/API_COMPANYCODE_SRV/A_CompanyCode"))
    assert limited.json()["error"]["message"]["value"]


def test_a_posted_invoice_is_credited_once_per_key_and_never_beyond_what_it_billed(apis: SystemApis) -> None:
    source = f"te_{uuid.uuid4().int % 10**9 + 10**9}"
    line = {"description": "Consultant services", "quantity": "8", "unit_price": "140.00", "amount": "1120.00",
            "source_type": "time_entry", "source_ids": [source]}
    invoice = apis.json("POST", "erp", "/invoices", 201, json={
        "customer_id": "cus_1004", "contract_id": "ctr_2004", "legal_entity_id": "le_uk", "currency": "GBP",
        "period": TODAY.strftime("%Y-%m"), "lines": [line]})
    path = {"invoice_id": invoice["id"]}
    draft = apis.json("POST", "erp", "/invoices/{invoice_id}/credit-notes", 409, path=path, json={"lines": [line]})
    assert draft["type"].endswith("/invalid-transition")
    apis.json("POST", "erp", "/invoices/{invoice_id}/post", 200, path=path)
    key = str(uuid.uuid4())
    half = {**line, "quantity": "4", "amount": "560.00"}
    credit = apis.json("POST", "erp", "/invoices/{invoice_id}/credit-notes", 201, path=path, json={"lines": [half]},
                       headers={"Idempotency-Key": key})
    assert credit["invoice_id"] == invoice["id"] and credit["subtotal"] == "560.00"
    assert credit["lines"][0]["source_ids"] == [source]
    replay = apis.json("POST", "erp", "/invoices/{invoice_id}/credit-notes", 201, path=path, json={"lines": [half]},
                       headers={"Idempotency-Key": key})
    assert replay == credit
    beyond = apis.json("POST", "erp", "/invoices/{invoice_id}/credit-notes", 422, path=path,
                       json={"lines": [{**line, "amount": "1000.00"}]})
    assert beyond["errors"][0]["pointer"].startswith("/lines/0")
    listed = apis.json("GET", "erp", "/credit-notes", 200, params={"invoice_id": invoice["id"]})["items"]
    assert [c["id"] for c in listed] == [credit["id"]]
    # A posted (released) billing document is not cancelled here: the void is for drafts.
    apis.call("POST", "erp", "/invoices/{invoice_id}/void", 409, path=path)


def test_a_posting_is_reversed_once_and_a_reversal_is_not_reversed(apis: SystemApis) -> None:
    body = {"source_type": "time_entry", "source_id": f"te_{uuid.uuid4().int % 10**9 + 10**9}",
            "project_id": "prj_4001", "contract_id": "ctr_2001", "legal_entity_id": "le_us",
            "work_date": TODAY.isoformat(), "quantity": "2", "amount": "350.00", "currency": "USD"}
    posting = apis.json("POST", "erp", "/postings", 201, json=body)
    path = {"posting_id": posting["id"]}
    on = {"on": TODAY.isoformat()}
    reversal = apis.json("POST", "erp", "/postings/{posting_id}/reversals", 201, path=path, json=on)
    assert reversal["reverses_posting_id"] == posting["id"] and reversal["amount"] == "-350.00"
    again = apis.json("POST", "erp", "/postings/{posting_id}/reversals", 200, path=path, json=on)
    assert again["id"] == reversal["id"]
    apis.call("POST", "erp", "/postings/{posting_id}/reversals", 409, path={"posting_id": reversal["id"]}, json=on)
    apis.call("POST", "erp", "/postings/{posting_id}/reversals", 404, path={"posting_id": "pst_999999999"}, json=on)
    listed = apis.json("GET", "erp", "/postings", 200, params={"source_id": body["source_id"]})["items"]
    assert sorted(p["id"] for p in listed) == sorted([posting["id"], reversal["id"]])
    # The source is still posted once: asking again answers the original, not its reversal.
    assert apis.json("POST", "erp", "/postings", 200, json=body)["id"] == posting["id"]
    dated = apis.json("GET", "erp", "/postings", 200, params={
        "source_id": body["source_id"], "from_date": TODAY.isoformat(), "to_date": TODAY.isoformat()})["items"]
    assert len(dated) == 2


def test_hostile_queries_and_bodies_to_the_sandbox_are_v2_4xx(s4: httpx.Client) -> None:
    billing = "/sap/opu/odata/sap/API_BILLING_DOCUMENT_SRV"
    for params in (
        {"$top": "-1"},
        {"$skiptoken": "not-a-token"},
        {"$skip": "1e9999"},
        {"$skip": str(10**30)},
        {"$top": str(2**63)},
        {"$inlinecount": "sometimes"},
        {"$filter": f"TotalNetAmount eq {10**30}"},
        {"$filter": "DocumentReferenceID eq 'x' or 1 eq 1"},
        {"$filter": "substringof('x',to_Item)"},
        {"$filter": "BillingDocumentDate ge datetime'2026-13-45T00:00:00'"},
        {"$filter": " and ".join(["DocumentReferenceID eq 'x'"] * 400)},
    ):
        answer = s4.get(f"{billing}/A_BillingDocument", params=params)
        assert answer.status_code == 400 and answer.json()["error"]["message"]["value"], params
    for segment in ("A_BillingDocument(BillingDocument='1',x='2')", "A_BillingDocument('1'", "A_BillingDocument(x=y)",
                    "A_BusinessPartner('C-1001')"):  # the last: an entity set of another service
        assert s4.get(f"{billing}/{segment}").status_code in (400, 404), segment
    token = csrf(s4)
    headers = {"x-csrf-token": token}
    deep = {**partner(), "YY1_PeppolId": {"a": [[[]]]}}
    assert s4.post(f"{BP}/A_BusinessPartner", json=deep, headers=headers).status_code == 400
    bad_address = {**partner(), "to_BusinessPartnerAddress": {"results": [{"CityName": {"x": 1}}, {}]}}
    person = {**partner(), "BusinessPartnerCategory": "1"}
    refused = s4.post(f"{BP}/A_BusinessPartner", json=person, headers=headers)
    assert refused.status_code == 400
    assert refused.json()["error"]["innererror"]["errordetails"][0]["target"] == "BusinessPartnerCategory"
    assert s4.post(f"{BP}/A_BusinessPartner", json=bad_address, headers=headers).status_code == 400
    assert s4.post(f"{BP}/A_BusinessPartner", content=b"[1, 2]", headers=headers).status_code == 400
    assert s4.post(f"{BP}/A_BusinessPartner", content=b"[" * 100_000 + b"]" * 100_000,
                   headers=headers).status_code == 400
    companies = "/sap/opu/odata/sap/API_COMPANYCODE_SRV/A_CompanyCode"
    assert s4.post(companies, json={"CompanyCode": "XX"}, headers=headers).status_code == 405
    functions = ("Cancel?BillingDocument=1", "Cancel?BillingDocument='x'--", "Cancel", "Delete?BillingDocument='1'")
    for function in functions:
        assert s4.post(f"{billing}/{function}", headers=headers).status_code in (400, 404), function
    assert s4.post(f"{billing}/Cancel?BillingDocument='999999999'", headers=headers).status_code == 404


def test_wrong_credentials_are_a_502_naming_s4hana_not_data(stack: RunningStack) -> None:
    async def read() -> ProblemError:
        erp = S4HanaErp(sandbox(stack), 10.0, credentials=credentials(stack, secret="wrong"))
        try:
            await erp.list_legal_entities(cursor=None, limit=5)
        except ProblemError as exc:
            return exc
        finally:
            await erp.aclose()
        raise AssertionError("wrong credentials were accepted")

    refused = asyncio.run(read())
    assert refused.status == 502 and refused.slug == "downstream-error" and "s4hana" in str(refused)


def test_a_stale_csrf_token_is_fetched_anew_and_the_write_goes_through(stack: RunningStack) -> None:
    async def write() -> tuple[str, str]:
        erp = S4HanaErp(sandbox(stack), 10.0, credentials=credentials(stack))
        try:
            erp._csrf.token, erp._csrf.cookie = "stale", f"{s4hana.SESSION_COOKIE}=gone"
            customer, created = await erp.upsert_customer(CustomerCreate(
                name="Fabrikam Studios", legal_entity_id="le_us", billing_currency="USD",
                external_ids={"crm": f"001{uuid.uuid4().hex[:15]}"}), None)
            assert created
            return customer.id, erp._csrf.token
        finally:
            await erp.aclose()

    customer_id, token = asyncio.run(write())
    assert customer_id.startswith("cus_") and token not in ("", "stale")


def test_the_same_source_posted_concurrently_is_one_posting(apis: SystemApis) -> None:
    """Nothing twice: the tenant's unique source document decides, whichever request gets there first."""
    body = {"source_type": "time_entry", "source_id": f"te_{uuid.uuid4().int % 10**9 + 10**9}",
            "project_id": "prj_4001", "contract_id": "ctr_2001", "legal_entity_id": "le_us",
            "work_date": TODAY.isoformat(), "quantity": "1", "amount": "175.00", "currency": "USD"}
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: apis.http.post("/system/erp/v1/postings", json=body), range(6)))
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201], [a.text[:300] for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    listed = apis.json("GET", "erp", "/postings", 200, params={"source_id": body["source_id"]})["items"]
    assert [p["id"] for p in listed] == [answers[0].json()["id"]]


def test_a_contract_changes_only_as_of_the_version_read_and_the_connector_reapplies_a_stale_change(
    stack: RunningStack, apis: SystemApis, s4: httpx.Client
) -> None:
    number = f"ctr_{uuid.uuid4().int % 10**6 + 900000}"
    apis.json("POST", "erp", "/contracts", 201, json={
        "id": number, "customer_id": "cus_1002", "legal_entity_id": "le_us", "name": "Fabrikam phase 3",
        "currency": "USD", "billing_model": "time_and_materials", "start_date": "2026-12-01", "status": "draft",
        "rate_card_id": "rc_usd"})
    contracts = "/sap/opu/odata/sap/YY1_PROJECTCONTRACT_CDS/YY1_ProjectContract"
    found = s4.get(contracts, params={"$filter": f"ProjectContract eq 'SOW-{number.removeprefix('ctr_')}'"})
    [entity] = found.json()["d"]["results"]
    uri, tag = entity["__metadata"]["uri"], entity["__metadata"]["etag"]
    assert uri.endswith(f"(guid'{entity['SAP_UUID']}')") and s4.get(uri).headers["etag"] == tag
    headers = {"x-csrf-token": csrf(s4)}
    change = {"Description": "Fabrikam phase 3 (renamed)"}
    assert s4.patch(uri, json=change, headers=headers).status_code == 428
    assert s4.patch(uri, json=change, headers={**headers, "If-Match": 'W/"not-the-tag"'}).status_code == 412
    assert s4.patch(uri, json=change, headers={**headers, "If-Match": tag}).status_code == 204
    assert s4.patch(uri, json={"Description": "again"}, headers={**headers, "If-Match": tag}).status_code == 412

    async def stale_change() -> str:
        erp = S4HanaErp(sandbox(stack), 10.0, credentials=credentials(stack))
        try:
            # The version read before the change above: the tenant refuses it 412, the connector reads again.
            await erp._change("YY1_ProjectContract", entity["SAP_UUID"], {"@etag": tag},
                              {"Description": "Fabrikam phase 3, third name"})
            return (await erp.get_contract(number)).name
        finally:
            await erp.aclose()

    assert asyncio.run(stale_change()) == "Fabrikam phase 3, third name"
