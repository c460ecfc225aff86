"""NetSuite's wire as an integration meets it on the ``netsuite`` backend's sandbox, and what the system tier makes
of the vendor's refusals and limits: M2M token, SuiteQL paging, 204 + Location, DUP_RCRD, 429 with Retry-After."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from gateway.launcher import vendor_credentials
from tests.support.erp_vendors import limits_waited_out_then_a_503, pages_to_the_last_customer
from tests.support.stack import RunningStack
from tests.support.system import SystemApis

TOKEN = "/services/rest/auth/oauth2/v1/token"
SUITEQL = "/services/rest/query/v1/suiteql"
RECORD = "/services/rest/record/v1"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def sandbox(stack: RunningStack) -> str:
    return stack.stack.url("sandbox-erp")


def assertion(stack: RunningStack, *, kid: str | None = None, scope: str = "rest_webservices") -> str:
    _, env = vendor_credentials(stack.stack.data_dir)
    key = RSAKey.import_key(Path(env["PSGW_ERP_PRIVATE_KEY_FILE"]).read_text())
    now = int(time.time())
    claims = {"iss": env["PSGW_ERP_CLIENT_ID"], "scope": [scope], "aud": sandbox(stack) + TOKEN, "iat": now,
              "exp": now + 300}
    header = {"typ": "JWT", "alg": "PS256", "kid": env["PSGW_ERP_CERTIFICATE_ID"] if kid is None else kid}
    return jwt.encode(header, claims, key, algorithms=["PS256"])


def token_answer(stack: RunningStack, **form: str) -> httpx.Response:
    return httpx.post(sandbox(stack) + TOKEN, data={"grant_type": "client_credentials", **form})


@pytest.fixture
def netsuite(stack: RunningStack) -> Iterator[httpx.Client]:
    answer = token_answer(stack, client_assertion_type=ASSERTION_TYPE, client_assertion=assertion(stack))
    assert answer.status_code == 200, answer.text
    with httpx.Client(base_url=sandbox(stack), headers={"Authorization": "Bearer " + answer.json()["access_token"]},
                      timeout=10.0) as client:
        yield client


def suiteql(client: httpx.Client, query: str, **params: Any) -> httpx.Response:
    return client.post(SUITEQL, json={"q": query}, params=params, headers={"Prefer": "transient"})


def test_the_token_endpoint_wants_a_client_assertion_signed_by_the_mapped_certificate(stack: RunningStack) -> None:
    _, env = vendor_credentials(stack.stack.data_dir)
    secret = httpx.post(sandbox(stack) + TOKEN, data={"grant_type": "client_credentials"},
                        auth=(env["PSGW_ERP_CLIENT_ID"], env["PSGW_ERP_CLIENT_SECRET"]))
    assert secret.status_code == 400 and secret.json()["error"] == "invalid_client"
    wrong_kid = token_answer(stack, client_assertion_type=ASSERTION_TYPE, client_assertion=assertion(stack, kid="x"))
    assert wrong_kid.status_code == 400
    no_scope = token_answer(stack, client_assertion_type=ASSERTION_TYPE,
                            client_assertion=assertion(stack, scope="restlets"))
    assert no_scope.status_code == 400
    good = token_answer(stack, client_assertion_type=ASSERTION_TYPE, client_assertion=assertion(stack))
    assert good.status_code == 200 and good.json()["token_type"] == "Bearer" and good.json()["expires_in"] > 0


def test_a_call_without_a_token_is_refused_in_netsuites_error_shape(stack: RunningStack) -> None:
    refused = httpx.post(sandbox(stack) + SUITEQL, json={"q": "SELECT id FROM customer"},
                         headers={"Prefer": "transient"})
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert refused.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"


def test_suiteql_is_transient_and_pages_by_links(netsuite: httpx.Client) -> None:
    unmarked = netsuite.post(SUITEQL, json={"q": "SELECT id FROM customer"})
    assert unmarked.status_code == 400 and unmarked.json()["o:errorDetails"][0]["detail"]
    first = suiteql(netsuite, "SELECT * FROM customer ORDER BY id", limit=5, offset=0).json()
    assert first["hasMore"] and first["count"] == 5 and first["totalResults"] >= 12
    assert all(set(row) >= {"id", "entityid", "companyname", "links"} for row in first["items"])
    following = next(link["href"] for link in first["links"] if link["rel"] == "next")
    second = netsuite.post(following, json={"q": "SELECT * FROM customer ORDER BY id"},
                           headers={"Prefer": "transient"}).json()
    assert second["offset"] == 5 and not {r["id"] for r in first["items"]} & {r["id"] for r in second["items"]}
    unknown = suiteql(netsuite, "SELECT * FROM nosuchtable")
    assert unknown.status_code == 400 and unknown.json()["status"] == 400
    too_many = suiteql(netsuite, "SELECT * FROM customer", limit=1001)
    assert too_many.status_code == 400


def test_a_created_record_answers_204_with_its_location_and_a_duplicate_is_dup_rcrd(netsuite: httpx.Client) -> None:
    number = f"C-{uuid.uuid4().int % 10**8}"
    body = {"entityId": number, "companyName": "Tailspin Toys", "currency": "USD", "subsidiary": {"id": "1"}}
    created = netsuite.post(f"{RECORD}/customer", json=body)
    assert created.status_code == 204 and not created.content
    record = netsuite.get(created.headers["location"]).json()
    assert record["entityId"] == number and record["subsidiary"]["refName"] == "LE-US"
    assert record["links"][0]["rel"] == "self" and record["id"].isdigit()
    again = netsuite.post(f"{RECORD}/customer", json=body)
    assert again.status_code == 400
    assert again.json()["o:errorDetails"][0]["o:errorCode"] == "DUP_RCRD"
    listed = netsuite.get(f"{RECORD}/customer", params={"limit": 2}).json()
    assert set(listed["items"][0]) == {"links", "id"} and listed["hasMore"]
    missing = netsuite.get(f"{RECORD}/customer/99999999")
    assert missing.status_code == 404 and missing.json()["o:errorDetails"][0]["o:errorCode"] == "NONEXISTENT_ID"


def test_hostile_input_reaches_netsuite_as_data_and_comes_back_as_4xx(apis: SystemApis) -> None:
    quoted = apis.json("GET", "erp", "/customers", 200, params={"name": "O'Brien' OR '1'='1"})
    assert quoted["items"] == []
    apis.call("GET", "erp", "/customers/{customer_id}", 404, path={"customer_id": "cus_1001%27%20OR%201=1"})
    apis.call("GET", "erp", "/contracts/{contract_id}", 404, path={"contract_id": "ctr_2001%2F..%2F1"})
    apis.call("GET", "erp", "/postings", 400, params={"from_date": "99999-01-01"})


def test_netsuites_429_is_waited_out_and_a_spent_limit_is_a_503_naming_netsuite(
    stack: RunningStack, apis: SystemApis, netsuite: httpx.Client
) -> None:
    limited = limits_waited_out_then_a_503(
        stack, apis, "netsuite", sandbox(stack), lambda: suiteql(netsuite, "SELECT id FROM subsidiary"))
    assert limited.json()["o:errorDetails"][0]["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"


def test_the_system_api_pages_through_netsuite_to_the_last_record(apis: SystemApis, netsuite: httpx.Client) -> None:
    pages_to_the_last_customer(apis, suiteql(netsuite, "SELECT id FROM customer", limit=1).json()["totalResults"])


def test_netsuites_concurrency_limit_costs_waits_not_answers(stack: RunningStack, apis: SystemApis) -> None:
    """A contract page reads each contract's record side by side: past the account's concurrency limit NetSuite
    answers 429 with Retry-After, which the connector waits out, so the page is whole either way."""
    params = {"customer_id": "cus_1001", "limit": 10}
    unlimited = apis.json("GET", "erp", "/contracts", 200, params=params)["items"]
    admin = sandbox(stack) + "/_sandbox/limits"
    httpx.put(admin, json={"concurrent": 1}).raise_for_status()
    try:
        limited = apis.json("GET", "erp", "/contracts", 200, params=params)["items"]
    finally:
        httpx.delete(admin).raise_for_status()
    assert [c["id"] for c in limited] == [c["id"] for c in unlimited] and limited


def test_a_posting_batch_reads_its_new_records_back_together_and_never_posts_twice(
    stack: RunningStack, apis: SystemApis
) -> None:
    """One POST a posting (NetSuite creates no records in bulk), the new records read back in SuiteQL together, not
    one GET each; a closed-period line refused alone; the same batch again is every line 'existing'."""
    import datetime as dt

    today = dt.datetime.now(dt.UTC).date()
    items: list[dict[str, Any]] = [
        {"source_type": "time_entry", "source_id": f"te_{uuid.uuid4().int % 10**9 + 10**9}", "project_id": "prj_4001",
         "contract_id": "ctr_2001", "legal_entity_id": "le_us", "work_date": today.isoformat(), "quantity": "8",
         "amount": "1400.00", "currency": "USD"}
        for _ in range(12)
    ]
    items[5] = dict(items[5], work_date=(today.replace(day=1) - dt.timedelta(days=80)).isoformat())
    apis.json("GET", "erp", "/legal-entities", 200)  # token and subsidiaries in hand before counting
    admin = sandbox(stack) + "/_sandbox/limits"
    httpx.put(admin, json={"daily": 1_000_000}).raise_for_status()
    try:
        result = apis.json("POST", "erp", "/postings/batch", 200, json={"items": items})["items"]
        calls = httpx.get(admin).json()["used"]
    finally:
        httpx.delete(admin).raise_for_status()
    assert [r["status"] for r in result] == ["created"] * 5 + ["rejected"] + ["created"] * 6
    assert result[5]["problem"]["type"].endswith("/period-closed")
    assert calls == 12 + 1, calls  # twelve creations and one SuiteQL read, where a GET a record made it 23
    for item, answer in zip(items, result, strict=True):
        if answer["status"] == "created":
            posting = answer["posting"]
            assert (posting["source_id"], posting["amount"], posting["work_date"]) == (
                item["source_id"], "1400.00", item["work_date"])
            listed = apis.json("GET", "erp", "/postings", 200, params={"source_id": item["source_id"]})["items"]
            assert listed == [posting]
    again = apis.json("POST", "erp", "/postings/batch", 200, json={"items": items})["items"]
    assert [r["status"] for r in again] == ["existing"] * 5 + ["rejected"] + ["existing"] * 6
    assert [r.get("posting") for r in again if r["status"] == "existing"] == [
        r["posting"] for r in result if r["status"] == "created"]
