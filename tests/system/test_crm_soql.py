"""The CRM sandbox refuses SOQL as Salesforce does, and the CRM connector only sends SOQL Salesforce accepts."""

from __future__ import annotations

import httpx

from tests.support.stack import RunningStack
from tests.system.conftest import SystemApis
from tests.system.vendor_access import vendor_client

QUERY = "/services/data/v60.0/query"


def soql(stack: RunningStack, text: str) -> httpx.Response:
    with vendor_client(stack, "crm") as crm:
        return crm.get(QUERY, params={"q": text})


def test_fields_all_without_a_limit_is_refused_as_salesforce_refuses_it(stack: RunningStack) -> None:
    for text in ("SELECT FIELDS(ALL) FROM Account", "SELECT FIELDS(ALL) FROM Account LIMIT 201"):
        refused = soql(stack, text)
        assert refused.status_code == 400, text
        assert refused.json() == [
            {
                "message": "The SOQL FIELDS function must have a LIMIT of at most 200",
                "errorCode": "MALFORMED_QUERY",
                "fields": [],
            }
        ]

    bounded = soql(stack, "SELECT FIELDS(ALL) FROM Account ORDER BY AccountNumber LIMIT 200")
    assert bounded.status_code == 200 and bounded.json()["records"][0]["AccountNumber"]
    assert bounded.headers["sforce-limit-info"].endswith("/100000")  # every answer reports the org's API usage


def test_the_crm_connector_reads_every_listing_with_queries_salesforce_accepts(apis: SystemApis) -> None:
    for template in ("/accounts", "/opportunities", "/contracts", "/rate-cards"):
        page = apis.json("GET", "crm", template, 200, params={"limit": 3})
        assert page["items"], template
    contract = apis.json("GET", "crm", "/contracts", 200, params={"limit": 1})["items"][0]
    assert "billing_schedule" in contract
