"""The Salesforce platform as both Salesforce connectors meet it (``system_apis.salesforce``): the CRM's standard
objects and Certinia PSA's objects on the ``certinia`` PSA backend report the org's API usage from
``Sforce-Limit-Info`` per vendor, and page SOQL by ``nextRecordsUrl`` alike."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.stack import RunningStack
from tests.support.system import SystemApis


def gauge(stack: RunningStack, name: str, vendor: str) -> float | None:
    text = httpx.get(stack.stack.url("system") + "/metrics").text
    found = re.search(rf'^{name}\{{vendor="{vendor}"\}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else None


@pytest.mark.parametrize(
    ("sandbox", "vendor", "system", "path", "params"),
    [
        ("sandbox-psa", "certinia", "psa", "/projects/{project_id}", {"project_id": "prj_4001"}),
        ("sandbox-crm", "sandbox-crm", "crm", "/accounts/{account_id}", {"account_id": "cus_1001"}),
    ],
)
def test_each_orgs_api_usage_is_a_gauge_per_vendor(
    stack: RunningStack, apis: SystemApis, sandbox: str, vendor: str, system: str, path: str, params: dict[str, str]
) -> None:
    limits = stack.stack.url(sandbox) + "/_sandbox/limits"
    httpx.put(limits, json={"daily": 5000, "used": 4000}).raise_for_status()
    try:
        apis.call("GET", system, path, 200, path=params)
        used = gauge(stack, "psgw_salesforce_api_used", vendor)
        assert used is not None and 4000 < used <= 4010, used
        assert gauge(stack, "psgw_salesforce_api_allowed", vendor) == 5000
    finally:
        httpx.delete(limits).raise_for_status()


@pytest.mark.parametrize(
    ("system", "path", "key"),
    [("psa", "/projects", "id"), ("crm", "/opportunities", "id"), ("crm", "/accounts", "id")],
)
def test_soql_pages_follow_next_records_url_to_the_end_without_repeats(
    apis: SystemApis, system: str, path: str, key: str
) -> None:
    whole: dict[str, object] = apis.json("GET", system, path, 200, params={"limit": 200})
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, object] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page: dict[str, object] = apis.json("GET", system, path, 200, params=params)
        items = page["items"]
        assert isinstance(items, list) and len(items) <= 2
        seen.extend(str(item[key]) for item in items)
        pages += 1
        cursor = page.get("next_cursor")  # type: ignore[assignment]
        if not cursor:
            break
    assert pages > 1
    assert len(seen) == len(set(seen))
    assert sorted(seen) == sorted(str(item[key]) for item in whole["items"])  # type: ignore[attr-defined]
