"""Dynamics 365 Finance's OData wire as an integration meets it on the ``dynamics365`` backend's sandbox, and what the
system tier makes of the vendor's refusals and limits: Entra ID client credentials, server-driven paging with
``@odata.nextLink``, ``cross-company``, OData error bodies, 429 with Retry-After; and the writes only this adapter
sends (credit notes, reversals) answered exactly once in canonical terms."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from gateway.launcher import vendor_credentials
from runtime.downstream import Reply
from runtime.problems import ProblemError
from system_apis.erp.connectors import dynamics365
from system_apis.erp.connectors.dynamics365 import Dynamics365Erp
from system_apis.erp.connectors.odata_batch import BatchFormatError, decode_batch, encode_batch
from system_apis.vendor_auth import VendorCredentials
from tests.support.erp_vendors import limits_waited_out_then_a_503, pages_to_the_last_customer
from tests.support.stack import RunningStack
from tests.support.system import SystemApis

TODAY = dt.datetime.now(dt.UTC).date()


def sandbox(stack: RunningStack) -> str:
    return stack.stack.url("sandbox-erp")


def token_answer(stack: RunningStack, *, tenant: str | None = None, **form: str) -> httpx.Response:
    _, env = vendor_credentials(stack.stack.data_dir)
    fields = {
        "grant_type": "client_credentials",
        "client_id": env["PSGW_ERP_CLIENT_ID"],
        "client_secret": env["PSGW_ERP_CLIENT_SECRET"],
        "scope": sandbox(stack) + "/.default",
        **form,
    }
    return httpx.post(f"{sandbox(stack)}/{tenant or env['PSGW_ERP_TENANT_ID']}/oauth2/v2.0/token", data=fields)


@pytest.fixture
def d365(stack: RunningStack) -> Iterator[httpx.Client]:
    answer = token_answer(stack)
    assert answer.status_code == 200, answer.text
    with httpx.Client(
        base_url=sandbox(stack), headers={"Authorization": "Bearer " + answer.json()["access_token"]}, timeout=10.0
    ) as client:
        yield client


def test_the_token_endpoint_is_the_tenants_and_wants_the_secret_and_the_resource_scope(stack: RunningStack) -> None:
    good = token_answer(stack)
    assert good.status_code == 200 and good.json()["token_type"] == "Bearer" and good.json()["expires_in"] > 0
    wrong_secret = token_answer(stack, client_secret="not-the-secret")
    assert wrong_secret.status_code == 400 and wrong_secret.json()["error"] == "invalid_client"
    assert "AADSTS7000215" in wrong_secret.json()["error_description"]
    other_resource = token_answer(stack, scope="https://other.operations.dynamics.com/.default")
    assert other_resource.status_code == 400 and "AADSTS1002012" in other_resource.json()["error_description"]
    other_tenant = token_answer(stack, tenant=str(uuid.uuid4()))
    assert other_tenant.status_code == 401  # no token endpoint there: an unauthenticated call


def test_a_call_without_a_token_is_refused_in_the_odata_error_shape(stack: RunningStack) -> None:
    refused = httpx.get(sandbox(stack) + "/data/CustomersV3")
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert set(refused.json()["error"]) >= {"code", "message", "innererror"}


def test_collections_page_by_next_link_and_read_the_default_company_unless_cross_company(d365: httpx.Client) -> None:
    first = d365.get(
        "/data/CustomersV3",
        params={"cross-company": "true", "$count": "true"},
        headers={"Prefer": "odata.maxpagesize=5"},
    )
    assert first.status_code == 200 and first.headers["preference-applied"] == "odata.maxpagesize=5"
    body = first.json()
    assert body["@odata.context"].endswith("/data/$metadata#CustomersV3") and len(body["value"]) == 5
    assert body["@odata.count"] >= 12 and "$skiptoken" in body["@odata.nextLink"]
    second = d365.get(body["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=5"}).json()
    assert not {c["CustomerAccount"] for c in body["value"]} & {c["CustomerAccount"] for c in second["value"]}
    companies = {
        c["dataAreaId"] for c in d365.get("/data/CustomersV3", params={"cross-company": "true"}).json()["value"]
    }
    assert companies == {"leus", "leuk", "lede"}
    default = d365.get("/data/CustomersV3").json()["value"]
    assert default and {c["dataAreaId"] for c in default} == {"leus"}
    selected = d365.get("/data/CustomersV3", params={"$select": "CustomerAccount,OrganizationName", "$top": "2"})
    assert [set(c) for c in selected.json()["value"]] == [{"CustomerAccount", "OrganizationName"}] * 2
    assert "@odata.nextLink" not in selected.json()  # $top reached: nothing more to page
    one = d365.get("/data/CustomersV3(dataAreaId='leus',CustomerAccount='C-1001')").json()
    assert one["OrganizationName"] == "Contoso Retail" and one["@odata.context"].endswith("CustomersV3/$entity")


def test_refusals_are_odata_error_bodies_naming_the_property(d365: httpx.Client) -> None:
    unknown = d365.get("/data/NoSuchEntities")
    assert unknown.status_code == 404 and unknown.json()["error"]["message"]
    bad_filter = d365.get("/data/CustomersV3", params={"$filter": "NoSuchProperty eq 'x'"})
    assert bad_filter.status_code == 400 and "NoSuchProperty" in bad_filter.json()["error"]["message"]
    missing = d365.get("/data/CustomersV3(dataAreaId='leus',CustomerAccount='C-99999')")
    assert missing.status_code == 404
    account = f"C-{uuid.uuid4().int % 10**8}"
    body = {
        "CustomerAccount": account,
        "dataAreaId": "leuk",
        "OrganizationName": "Tailspin Toys",
        "SalesCurrencyCode": "GBP",
    }
    created = d365.post("/data/CustomersV3", json=body)
    assert created.status_code == 201 and created.json()["CustomerAccount"] == account
    again = d365.post("/data/CustomersV3", json=body)
    assert again.status_code == 400
    assert again.json()["error"]["details"][0] == {
        "code": "DuplicateRecord",
        "target": "CustomerAccount",
        "message": again.json()["error"]["details"][0]["message"],
    }


def test_hostile_input_reaches_dynamics_as_data_and_comes_back_as_4xx(apis: SystemApis) -> None:
    quoted = apis.json("GET", "erp", "/customers", 200, params={"name": "O'Brien' or 1 eq 1 or ''='"})
    assert quoted["items"] == []
    apis.call("GET", "erp", "/customers/{customer_id}", 404, path={"customer_id": "cus_1001%27)%20or%20(1"})
    apis.call("GET", "erp", "/contracts/{contract_id}", 404, path={"contract_id": "ctr_2001%2F..%2F1"})
    apis.call("GET", "erp", "/postings", 400, params={"from_date": "99999-01-01"})
    apis.call("GET", "erp", "/invoices/{invoice_id}", 404, path={"invoice_id": "inv_%0d%0aX-Injected:%201"})


def test_the_system_api_pages_through_dynamics_to_the_last_record(apis: SystemApis, d365: httpx.Client) -> None:
    pages_to_the_last_customer(
        apis,
        d365.get("/data/CustomersV3", params={"cross-company": "true", "$count": "true", "$top": "1"}).json()[
            "@odata.count"
        ],
    )


def test_dynamics_429_is_waited_out_and_a_spent_limit_is_a_503_naming_dynamics365(
    stack: RunningStack, apis: SystemApis, d365: httpx.Client
) -> None:
    limited = limits_waited_out_then_a_503(
        stack, apis, "dynamics365", sandbox(stack), lambda: d365.get("/data/LegalEntities")
    )
    assert limited.json()["error"]["code"] == "TooManyRequests"


def test_a_posted_invoice_is_credited_once_per_key_and_never_beyond_what_it_billed(apis: SystemApis) -> None:
    source = f"te_{uuid.uuid4().int % 10**9 + 10**9}"
    line = {
        "description": "Consultant services",
        "quantity": "8",
        "unit_price": "140.00",
        "amount": "1120.00",
        "source_type": "time_entry",
        "source_ids": [source],
    }
    invoice = apis.json(
        "POST",
        "erp",
        "/invoices",
        201,
        json={
            "customer_id": "cus_1004",
            "contract_id": "ctr_2004",
            "legal_entity_id": "le_uk",
            "currency": "GBP",
            "period": TODAY.strftime("%Y-%m"),
            "lines": [line],
        },
    )
    path = {"invoice_id": invoice["id"]}
    draft = apis.json("POST", "erp", "/invoices/{invoice_id}/credit-notes", 409, path=path, json={"lines": [line]})
    assert draft["type"].endswith("/invalid-transition")
    apis.json("POST", "erp", "/invoices/{invoice_id}/post", 200, path=path)
    key = str(uuid.uuid4())
    half = {**line, "quantity": "4", "amount": "560.00"}
    credit = apis.json(
        "POST",
        "erp",
        "/invoices/{invoice_id}/credit-notes",
        201,
        path=path,
        json={"lines": [half]},
        headers={"Idempotency-Key": key},
    )
    assert credit["invoice_id"] == invoice["id"] and credit["subtotal"] == "560.00"
    assert credit["lines"][0]["source_ids"] == [source]
    replay = apis.json(
        "POST",
        "erp",
        "/invoices/{invoice_id}/credit-notes",
        201,
        path=path,
        json={"lines": [half]},
        headers={"Idempotency-Key": key},
    )
    assert replay == credit
    beyond = apis.json(
        "POST",
        "erp",
        "/invoices/{invoice_id}/credit-notes",
        422,
        path=path,
        json={"lines": [{**line, "amount": "1000.00"}]},
    )
    assert beyond["errors"][0]["pointer"].startswith("/lines/0")
    listed = apis.json("GET", "erp", "/credit-notes", 200, params={"invoice_id": invoice["id"]})["items"]
    assert [c["id"] for c in listed] == [credit["id"]]


def test_a_posting_is_reversed_once_and_a_reversal_is_not_reversed(apis: SystemApis) -> None:
    source = f"te_{uuid.uuid4().int % 10**9 + 10**9}"
    posting = apis.json(
        "POST",
        "erp",
        "/postings",
        201,
        json={
            "source_type": "time_entry",
            "source_id": source,
            "project_id": "prj_4001",
            "contract_id": "ctr_2001",
            "legal_entity_id": "le_us",
            "work_date": TODAY.isoformat(),
            "quantity": "2",
            "amount": "350.00",
            "currency": "USD",
        },
    )
    path = {"posting_id": posting["id"]}
    reversal = apis.json(
        "POST", "erp", "/postings/{posting_id}/reversals", 201, path=path, json={"on": TODAY.isoformat()}
    )
    assert reversal["reverses_posting_id"] == posting["id"] and reversal["amount"] == "-350.00"
    again = apis.json("POST", "erp", "/postings/{posting_id}/reversals", 200, path=path, json={"on": TODAY.isoformat()})
    assert again["id"] == reversal["id"]
    apis.call(
        "POST",
        "erp",
        "/postings/{posting_id}/reversals",
        409,
        path={"posting_id": reversal["id"]},
        json={"on": TODAY.isoformat()},
    )
    apis.call(
        "POST",
        "erp",
        "/postings/{posting_id}/reversals",
        404,
        path={"posting_id": "pst_999999999"},
        json={"on": TODAY.isoformat()},
    )
    listed = apis.json("GET", "erp", "/postings", 200, params={"source_id": source})["items"]
    assert sorted(p["id"] for p in listed) == sorted([posting["id"], reversal["id"]])
    # The source is still posted once: asking again answers the original, not its reversal.
    assert (
        apis.json(
            "POST",
            "erp",
            "/postings",
            200,
            json={
                "source_type": "time_entry",
                "source_id": source,
                "project_id": "prj_4001",
                "contract_id": "ctr_2001",
                "legal_entity_id": "le_us",
                "work_date": TODAY.isoformat(),
                "quantity": "2",
                "amount": "350.00",
                "currency": "USD",
            },
        )["id"]
        == posting["id"]
    )


def test_hostile_queries_to_the_sandbox_are_odata_4xx(d365: httpx.Client) -> None:
    for params in (
        {"$top": "-1"},
        {"$skiptoken": "not-a-token"},
        {"$skip": "1e9999"},
        {"$skip": str(10**30)},
        {"$top": str(2**63)},
        {"$filter": f"InvoiceIdentifier eq {10**30}"},
        {"$filter": "OrganizationName eq 'x' or 1 eq 1"},
        {"$filter": "contains(Address,'x')"},
    ):
        answer = d365.get(
            "/data/FreeTextInvoiceHeaders" if "Invoice" in str(params) else "/data/CustomersV3", params=params
        )
        assert answer.status_code == 400 and answer.json()["error"]["message"], params
    for segment in (
        "CustomersV3(dataAreaId='leus')",
        "CustomersV3(dataAreaId='leus',CustomerAccount='C-1001'",
        "CustomersV3(x=y)",
    ):
        assert d365.get(f"/data/{segment}").status_code in (400, 404), segment
    deep = {"OrganizationName": "x", "SalesCurrencyCode": "USD", "dataAreaId": "leus", "PSGPeppolId": {"a": [[[]]]}}
    assert d365.post("/data/CustomersV3", json=deep).status_code == 400
    assert d365.post("/data/CustomersV3", content=b"[1, 2]").status_code == 400
    assert d365.post("/data/CustomersV3", content=b"[" * 100_000 + b"]" * 100_000).status_code == 400
    assert d365.post("/data/LegalEntities", json={"LegalEntityId": "XX"}).status_code == 405


def test_wrong_credentials_are_a_502_naming_dynamics365_not_data(stack: RunningStack) -> None:
    _, env = vendor_credentials(stack.stack.data_dir)
    credentials = VendorCredentials(
        client_id=env["PSGW_ERP_CLIENT_ID"], client_secret="wrong", tenant_id=env["PSGW_ERP_TENANT_ID"]
    )

    async def read() -> ProblemError:
        erp = Dynamics365Erp(sandbox(stack), 10.0, credentials=credentials)
        try:
            await erp.list_legal_entities(cursor=None, limit=5)
        except ProblemError as exc:
            return exc
        finally:
            await erp.aclose()
        raise AssertionError("wrong credentials were accepted")

    refused = asyncio.run(read())
    assert refused.status == 502 and refused.slug == "downstream-error"
    assert "dynamics365" in str(refused)


def test_the_same_source_posted_concurrently_is_one_posting(apis: SystemApis) -> None:
    """Nothing twice: the tenant's unique source document decides, whichever request gets there first."""
    body = {
        "source_type": "time_entry",
        "source_id": f"te_{uuid.uuid4().int % 10**9 + 10**9}",
        "project_id": "prj_4001",
        "contract_id": "ctr_2001",
        "legal_entity_id": "le_us",
        "work_date": TODAY.isoformat(),
        "quantity": "1",
        "amount": "175.00",
        "currency": "USD",
    }
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: apis.http.post("/system/erp/v1/postings", json=body), range(6)))
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201], [a.text[:300] for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    listed = apis.json("GET", "erp", "/postings", 200, params={"source_id": body["source_id"]})["items"]
    assert [p["id"] for p in listed] == [answers[0].json()["id"]]


# --- $batch ------------------------------------------------------------------------------------------------------


def journal_line(source: str, **overrides: Any) -> dict[str, Any]:
    """A LedgerJournalLines entity as the adapter writes a time entry's posting."""
    return {
        "dataAreaId": "leus",
        "PSGSourceDocumentType": "TIMECARD",
        "Document": source,
        "PSGProjectId": "PRJ-4001",
        "PSGProjectContractID": "SOW-2001",
        "TransDate": f"{TODAY.isoformat()}T12:00:00Z",
        "Quantity": 8,
        "DebitAmount": 1400.00,
        "CurrencyCode": "USD",
        **overrides,
    }


CRLF = "\r\n"


def multipart(parts: list[str], boundary: str = "batch_t") -> bytes:
    """A multipart/mixed body of ready-made parts (each its headers, a blank line and its content)."""
    return ("".join(f"--{boundary}{CRLF}{part}{CRLF}" for part in parts) + f"--{boundary}--{CRLF}").encode()


def http_part(request: str, content_id: str | None = None, encoding: str = "binary") -> str:
    head = f"Content-Type: application/http{CRLF}Content-Transfer-Encoding: {encoding}{CRLF}"
    return head + (f"Content-ID: {content_id}{CRLF}" if content_id else "") + CRLF + request


def changeset(*parts: str, boundary: str = "changeset_t") -> str:
    inner = "".join(f"--{boundary}{CRLF}{part}{CRLF}" for part in parts) + f"--{boundary}--"
    return f"Content-Type: multipart/mixed; boundary={boundary}{CRLF}{CRLF}{inner}"


def post_line(source: str, **overrides: Any) -> str:
    body = json.dumps(journal_line(source, **overrides))
    return f"POST LedgerJournalLines HTTP/1.1{CRLF}Content-Type: application/json{CRLF}{CRLF}{body}"


def send_batch(d365: httpx.Client, body: bytes, *, go_on: bool = True, boundary: str = "batch_t") -> httpx.Response:
    headers = {"Content-Type": f"multipart/mixed; boundary={boundary}"}
    if go_on:
        headers["Prefer"] = "odata.continue-on-error"
    return d365.post("/data/$batch", content=body, headers=headers)


def answers(reply: httpx.Response) -> list[tuple[int, Any]]:
    assert reply.status_code == 200, reply.text[:500]
    return [
        (status, json.loads(body) if body.strip() else None)
        for status, body in decode_batch(reply.headers["content-type"], reply.content)
    ]


def test_the_adapter_writes_an_odata_v4_multipart_batch_byte_for_byte() -> None:
    """OData v4.0 Part 1, 11.7 (the batch format finance and operations serves): CRLF line ends, a GET as a part of
    its own, each write alone in a change set with a Content-ID, the close delimiter last."""
    sent = encode_batch(
        [("POST", "LedgerJournalLines", b'{"Document":"TC-1"}'), ("GET", "LedgerJournalLines?$top=1", None)],
        boundary="batch_b1",
        changeset="changeset_c1",
    )
    assert sent == (
        b"--batch_b1\r\n"
        b"Content-Type: multipart/mixed; boundary=changeset_c1\r\n"
        b"\r\n"
        b"--changeset_c1\r\n"
        b"Content-Type: application/http\r\n"
        b"Content-Transfer-Encoding: binary\r\n"
        b"Content-ID: 1\r\n"
        b"\r\n"
        b"POST LedgerJournalLines HTTP/1.1\r\n"
        b"Accept: application/json\r\n"
        b"Content-Type: application/json\r\n"
        b"\r\n"
        b'{"Document":"TC-1"}\r\n'
        b"--changeset_c1--\r\n"
        b"--batch_b1\r\n"
        b"Content-Type: application/http\r\n"
        b"Content-Transfer-Encoding: binary\r\n"
        b"\r\n"
        b"GET LedgerJournalLines?$top=1 HTTP/1.1\r\n"
        b"Accept: application/json\r\n"
        b"\r\n"
        b"\r\n"
        b"--batch_b1--\r\n"
    )
    answer = (
        b"--batchresponse_r\r\n"
        b"Content-Type: multipart/mixed; boundary=changesetresponse_r\r\n\r\n"
        b"--changesetresponse_r\r\n"
        b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n\r\n"
        b'{"Voucher":"V1"}\r\n'
        b"--changesetresponse_r--\r\n"
        b"--batchresponse_r\r\n"
        b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n"
        b'{"error":{"message":"--batchresponse_r is data here"}}\r\n'
        b"--batchresponse_r--\r\n"
    )
    assert decode_batch("multipart/mixed; boundary=batchresponse_r", answer) == [
        (201, b'{"Voucher":"V1"}'),
        (400, b'{"error":{"message":"--batchresponse_r is data here"}}'),
    ]
    for content_type, body in (
        ("application/json", b"{}"),
        ("multipart/mixed", answer),
        ("multipart/mixed; boundary=batchresponse_r", answer[:-22]),  # no close delimiter
        ("multipart/mixed; boundary=batchresponse_r", answer.replace(b"HTTP/1.1 201", b"HTTQ/1.1 201")),
    ):
        with pytest.raises(BatchFormatError):
            decode_batch(content_type, body)


def test_the_adapter_sends_its_posting_batch_as_multipart_mixed(monkeypatch: pytest.MonkeyPatch) -> None:
    """What goes on the wire from the connector itself: the media type with its boundary, continue-on-error, and a
    body that is the multipart batch (never the OData v4.01 JSON batch format, which the tenant refuses)."""
    sent: dict[str, Any] = {}

    async def request(method: str, path: str, **kwargs: Any) -> Reply:
        sent.update(kwargs, method=method, path=path)
        reply = (
            b"--r\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"value": [{"Voucher": "V-9"}]}\r\n--r--\r\n'
        )
        return Reply(200, {"content-type": "multipart/mixed; boundary=r"}, reply)

    erp = Dynamics365Erp("http://d365.invalid", 1.0)
    monkeypatch.setattr(erp._vendor, "request", request)
    monkeypatch.setattr(dynamics365.uuid, "uuid4", lambda: uuid.UUID(int=7))
    got = asyncio.run(erp._batch([{"id": "0", "method": "GET", "url": "LedgerJournalLines?$top=1"}], "reads"))
    assert got == {"0": (200, {"value": [{"Voucher": "V-9"}]})}
    token = uuid.UUID(int=7).hex
    assert sent["method"] == "POST" and sent["path"] == "/data/$batch" and "json" not in sent
    assert sent["headers"]["Content-Type"] == f"multipart/mixed; boundary=batch_{token}"
    assert sent["headers"]["Prefer"] == "odata.continue-on-error"
    assert sent["content"] == encode_batch(
        [("GET", "LedgerJournalLines?$top=1", None)], boundary=f"batch_{token}", changeset=f"changeset_{token}"
    )


def batch_answer(*statuses: int) -> Reply:
    """A multipart $batch answer: a change set response per status below 400, a bare failure otherwise."""
    parts = []
    for n, status in enumerate(statuses, 1):
        body = b'{"Voucher": "V-%d"}' % n if status < 400 else b'{"error": {"message": "refused", "details": []}}'
        response = b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n\r\n%s" % (status, body)
        http = b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        if status < 400:
            parts.append(
                b"Content-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n" + http + b"\r\n" + response + b"\r\n--c--"
            )
        else:
            parts.append(http + b"\r\n" + response)
    content = b"".join(b"--r\r\n" + part + b"\r\n" for part in parts) + b"--r--\r\n"
    return Reply(200, {"content-type": "multipart/mixed; boundary=r"}, content)


def test_a_service_that_stops_at_a_failure_gets_the_rest_in_the_next_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """OData v4.0 8.2.8.3: without honouring odata.continue-on-error the service stops at the first failure; the
    lines after a refused one go in the next batch (under another Idempotency-Key), never lost or held back. An
    answer cut short after a success is no such stop: a 502 naming dynamics365."""
    answers = [batch_answer(201, 400), batch_answer(201, 201)]
    sent: list[dict[str, Any]] = []

    async def request(method: str, path: str, **kwargs: Any) -> Reply:
        sent.append(kwargs)
        return answers.pop(0)

    erp = Dynamics365Erp("http://d365.invalid", 1.0)
    monkeypatch.setattr(erp._vendor, "request", request)
    writes = [
        {"id": str(n), "method": "POST", "url": "LedgerJournalLines", "body": {"Document": f"TC-{n}"}} for n in range(4)
    ]
    got = asyncio.run(erp._batch(writes, "postings:abc"))
    assert {n: status for n, (status, _) in got.items()} == {"0": 201, "1": 400, "2": 201, "3": 201}
    assert got["3"][1] == {"Voucher": "V-2"}
    assert [k["content"].count(b"Content-ID:") for k in sent] == [4, 2]
    assert b'"TC-2"' in sent[1]["content"] and b'"TC-1"' not in sent[1]["content"]
    assert [k["idempotency_key"] for k in sent] == ["postings:abc", "postings:abc:2"]

    answers[:] = [batch_answer(201)]
    with pytest.raises(ProblemError) as cut:
        asyncio.run(erp._batch(writes[:3], "postings:def"))
    assert cut.value.status == 502 and "dynamics365" in str(cut.value.to_problem().to_dict())


def test_a_multipart_batch_answers_each_part_in_order_and_counts_as_one_call(
    stack: RunningStack, d365: httpx.Client
) -> None:
    source = f"TC-{uuid.uuid4().int % 10**8 + 10**8}"
    admin = sandbox(stack) + "/_sandbox/limits"
    body = multipart(
        [
            changeset(http_part(post_line(source), "1")),
            changeset(http_part(post_line(source + "X", CurrencyCode=None), "2")),
            http_part(f"GET {sandbox(stack)}/data/LegalEntities?$top=1 HTTP/1.1{CRLF}Accept: application/json{CRLF}"),
            changeset(
                http_part(post_line(source).replace("POST LedgerJournalLines", "POST /data/LedgerJournalLines"), "4")
            ),
        ]
    )
    httpx.put(admin, json={"per_window": 1, "window_seconds": 600}).raise_for_status()
    try:
        reply = send_batch(d365, body)
        assert d365.get("/data/LegalEntities").status_code == 429  # the batch was the window's one call
    finally:
        httpx.delete(admin).raise_for_status()
    assert reply.headers["preference-applied"] == "odata.continue-on-error"
    assert reply.headers["content-type"].startswith("multipart/mixed; boundary=batchresponse_")
    assert b"Content-ID: 1\r\n" in reply.content  # a change set's response names its request
    post, bad, read, again = answers(reply)
    assert post[0] == 201 and post[1]["Document"] == source
    assert bad[0] == 400 and bad[1]["error"]["details"][0]["target"] == "CurrencyCode"
    assert read[0] == 200 and read[1]["value"][0]["LegalEntityId"]
    assert again[0] == 400 and again[1]["error"]["details"][0]["code"] == "DuplicateRecord"
    lines = d365.get("/data/LedgerJournalLines", params={"$filter": f"Document eq '{source}'", "cross-company": "true"})
    assert len(lines.json()["value"]) == 1

    # without continue-on-error the service stops at the first failure
    stopped = send_batch(
        d365,
        multipart([changeset(http_part(post_line(source), "1")), http_part(f"GET LegalEntities HTTP/1.1{CRLF}")]),
        go_on=False,
    )
    assert [status for status, _ in answers(stopped)] == [400]


def test_a_json_batch_and_hostile_multipart_batches_are_odata_400s_and_run_nothing(d365: httpx.Client) -> None:
    source = f"TC-{uuid.uuid4().int % 10**8 + 10**8}"
    good = changeset(http_part(post_line(source), "1"))
    json_batch = {
        "requests": [{"id": "1", "method": "POST", "url": "LedgerJournalLines", "body": journal_line(source)}]
    }
    answer = d365.post("/data/$batch", json=json_batch, headers={"Prefer": "odata.continue-on-error"})
    assert answer.status_code == 400 and "multipart/mixed" in answer.json()["error"]["message"]
    hostile: list[tuple[str, bytes]] = [
        ("multipart/mixed", multipart([good])),  # no boundary
        ("multipart/mixed; boundary=batch_t", multipart([good])[:-13]),  # no close delimiter
        ("multipart/mixed; boundary=batch_t", multipart([good, "Content-Type: text/plain" + CRLF + CRLF + "hi"])),
        ("multipart/mixed; boundary=batch_t", multipart([good, http_part(post_line(source + "B"), "2", "base64")])),
        (
            "multipart/mixed; boundary=batch_t",
            multipart([good, changeset(http_part(f"GET LegalEntities HTTP/1.1{CRLF}", "2"))]),
        ),  # a GET in a change set
        ("multipart/mixed; boundary=batch_t", multipart([good, changeset(http_part(post_line(source + "C")))])),
        ("multipart/mixed; boundary=batch_t", multipart([good, changeset(http_part(post_line(source + "D"), "1"))])),
        (
            "multipart/mixed; boundary=batch_t",
            multipart([good, http_part(f"DELETE LedgerJournalLines HTTP/1.1{CRLF}")]),
        ),
        ("multipart/mixed; boundary=batch_t", multipart([good, http_part("GET LegalEntities\r\n")])),  # no HTTP/1.1
        ("multipart/mixed; boundary=batch_t", multipart([good, http_part("POST LegalEntities HTTP/1.1\r\nX")])),
        (
            "multipart/mixed; boundary=batch_t",
            multipart([good] + [http_part(f"GET LegalEntities HTTP/1.1{CRLF}")] * 5000),
        ),
        ("multipart/mixed; boundary=batch_t", b"\xff\xfe--batch_t\r\n\xff: \xfe\r\n"),
    ]
    for content_type, body in hostile:
        answer = d365.post(
            "/data/$batch", content=body, headers={"Content-Type": content_type, "Prefer": "odata.continue-on-error"}
        )
        assert answer.status_code == 400, (content_type, body[:300], answer.text[:300])
        assert answer.json()["error"]["message"]
    two = changeset(http_part(post_line(source + "E"), "1"), http_part(post_line(source + "F"), "2"))
    answer = send_batch(d365, multipart([good, two]))
    assert answer.status_code == 501  # a change set of several requests is one transaction: not imitated
    deep = "{" * 5000 + "}" * 5000
    inner = send_batch(
        d365,
        multipart(
            [
                changeset(http_part(f"POST $batch HTTP/1.1{CRLF}Content-Type: application/json{CRLF}{CRLF}{{}}", "1")),
                http_part(f"GET /elsewhere/x HTTP/1.1{CRLF}"),
                changeset(
                    http_part(
                        f"POST LedgerJournalLines HTTP/1.1{CRLF}Content-Type: application/json{CRLF}{CRLF}{deep}", "3"
                    )
                ),
            ]
        ),
    )
    assert [status for status, _ in answers(inner)] == [404, 404, 400]
    lines = d365.get("/data/LedgerJournalLines", params={"$filter": f"Document eq '{source}'", "cross-company": "true"})
    assert lines.json()["value"] == []  # no malformed batch ran its good request


def test_a_posting_batch_is_one_vendor_call_rejects_a_bad_line_alone_and_never_posts_twice(
    stack: RunningStack, apis: SystemApis
) -> None:
    sources = [f"te_{uuid.uuid4().int % 10**9 + 10**9}" for _ in range(30)]
    items = [
        {
            "source_type": "time_entry",
            "source_id": s,
            "project_id": "prj_4001",
            "contract_id": "ctr_2001",
            "legal_entity_id": "le_us",
            "work_date": TODAY.isoformat(),
            "quantity": "8",
            "amount": "1400.00",
            "currency": "USD",
        }
        for s in sources
    ]
    closed = dict(
        items[7],
        source_id=f"te_{uuid.uuid4().int % 10**9 + 10**9}",
        work_date=(TODAY.replace(day=1) - dt.timedelta(days=80)).isoformat(),
    )
    body = {"items": [*items[:7], closed, *items[7:]]}
    admin = sandbox(stack) + "/_sandbox/limits"
    apis.json("GET", "erp", "/legal-entities", 200)  # a token in hand before the window is counted
    for expected in ("created", "existing"):
        # Two calls for 31 postings (one $batch of writes, one of reads for the ones posted before): one call a
        # posting would run past the window and be a 503.
        httpx.put(admin, json={"per_window": 2, "window_seconds": 600}).raise_for_status()
        try:
            result = apis.json("POST", "erp", "/postings/batch", 200, json=body)["items"]
        finally:
            httpx.delete(admin).raise_for_status()
        assert [r["source_id"] for r in result] == [i["source_id"] for i in body["items"]]
        assert [r["status"] for r in result] == [expected] * 7 + ["rejected"] + [expected] * 23
        assert result[7]["problem"]["errors"][0]["pointer"] == "/work_date"
        assert result[7]["problem"]["type"].endswith("/period-closed")
        assert all(r["posting"]["amount"] == "1400.00" for r in result if r["status"] != "rejected")
    for source in (sources[0], sources[-1], closed["source_id"]):
        listed = apis.json("GET", "erp", "/postings", 200, params={"source_id": source})["items"]
        assert len(listed) == (0 if source == closed["source_id"] else 1)
