"""Vendor API limits: each sandbox enforces its vendor's limits in the vendor's way; the system tier waits out a
short Retry-After, and gives callers a 503 naming the vendor with Retry-After when the budget is spent."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.support.stack import RunningStack
from tests.system.conftest import SystemApis
from tests.system.vendor_access import vendor_client

WORKER = {"worker_id": "wrk_e1001"}


@contextmanager
def limits(stack: RunningStack, system: str, plan: dict[str, Any]) -> Iterator[httpx.Client]:
    with vendor_client(stack, system) as vendor:
        vendor.put("/_sandbox/limits", json=plan).raise_for_status()
        try:
            yield vendor
        finally:
            vendor.delete("/_sandbox/limits").raise_for_status()


def vendor_counter(stack: RunningStack, name: str, vendor: str) -> float:
    text = httpx.get(stack.stack.url("system") + "/metrics").text
    found = re.search(rf'^{name}\{{vendor="{vendor}"\}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_a_vendor_429_with_retry_after_is_waited_out_then_the_call_succeeds(
    stack: RunningStack, apis: SystemApis
) -> None:
    waits_before = vendor_counter(stack, "psgw_vendor_waits_total", "sandbox-hr")
    with limits(stack, "hr", {"per_window": 1, "window_seconds": 1}) as sandbox:
        refused = sandbox.get("/ccx/api/v1/northwind/workers", params={"limit": 1})
        if refused.status_code == 200:  # the window turned between the two calls: spend this one too
            refused = sandbox.get("/ccx/api/v1/northwind/workers", params={"limit": 1})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert "error" in refused.json()  # Workday's error envelope

        worker = apis.json("GET", "hr", "/workers/{worker_id}", 200, path=WORKER)

    assert worker["id"] == "wrk_e1001"
    assert vendor_counter(stack, "psgw_vendor_waits_total", "sandbox-hr") > waits_before


def test_a_spent_rate_budget_is_a_503_naming_the_vendor_with_retry_after(stack: RunningStack, apis: SystemApis) -> None:
    with limits(stack, "hr", {"per_window": 1, "window_seconds": 600}) as sandbox:
        sandbox.get("/ccx/api/v1/northwind/workers", params={"limit": 1})  # the window's one call
        response = apis.call("GET", "hr", "/workers/{worker_id}", 503, path=WORKER)

    problem = response.json()
    assert problem["type"].endswith("/vendor-limit-exceeded") and problem["downstream"] == "sandbox-hr"
    assert "sandbox-hr" in problem["detail"] and int(response.headers["retry-after"]) > 10
    apis.call("GET", "hr", "/workers/{worker_id}", 200, path=WORKER)  # the budget back, the call works again


def test_salesforce_reports_api_usage_and_a_spent_daily_budget_is_a_503(stack: RunningStack, apis: SystemApis) -> None:
    with limits(stack, "crm", {"daily": 3, "used": 1}) as sandbox:
        # The process tier polls the CRM for won opportunities in the background, so another caller may spend
        # part of the budget between these calls: the usage only grows, and the budget runs out within it.
        answered = sandbox.get("/services/data/v60.0/sobjects/Account/AccountNumber/C-1001")
        if answered.status_code == 200:
            usage = re.fullmatch(r"api-usage=(\d+)/3", answered.headers["sforce-limit-info"])
            assert usage is not None and 2 <= int(usage.group(1)) <= 3, answered.headers["sforce-limit-info"]
        refused = answered
        for _ in range(3):
            if refused.status_code != 200:
                break
            refused = sandbox.get("/services/data/v60.0/sobjects/Account/AccountNumber/C-1001")
        assert refused.status_code == 403
        assert refused.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"

        response = apis.call("GET", "crm", "/rate-cards/{rate_card_id}", 503, path={"rate_card_id": "rc_usd"})

    problem = response.json()
    assert problem["type"].endswith("/vendor-limit-exceeded") and problem["downstream"] == "sandbox-crm"
    assert int(response.headers["retry-after"]) >= 1


@pytest.mark.parametrize(("system", "path"), [("psa", "/api/v3/projects"), ("erp", "/api/v1/customers")])
def test_the_psa_and_erp_answer_429_with_retry_after_past_their_rate(
    stack: RunningStack, system: str, path: str
) -> None:
    with limits(stack, system, {"per_window": 1, "window_seconds": 600}) as vendor:
        vendor.get(path)
        refused = vendor.get(path)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
