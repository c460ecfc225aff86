"""Checks every ERP vendor backend (NetSuite, Dynamics 365, S/4HANA) passes the same way, written once: the test
files in tests/netsuite, tests/dynamics365 and tests/s4hana give each its vendor's own wire."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.support.stack import RunningStack
from tests.support.system import SystemApis
from tests.system.test_vendor_limits import vendor_counter


def pages_to_the_last_customer(apis: SystemApis, total: int) -> None:
    """The system API pages through the vendor's customers (``total`` as the vendor counts them) to the last one,
    none lost or repeated, and refuses a cursor it did not make."""
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 5}
    while True:
        page = apis.json("GET", "erp", "/customers", 200, params=params)
        seen.extend(c["id"] for c in page["items"])
        if page["next_cursor"] is None:
            break
        params = {"limit": 5, "cursor": page["next_cursor"]}
    assert len(seen) == len(set(seen)) >= total  # others may add customers meanwhile, none is lost or repeated
    apis.call("GET", "erp", "/customers", 400, params={"cursor": "not-a-cursor"})


def limits_waited_out_then_a_503(
    stack: RunningStack, apis: SystemApis, vendor: str, sandbox_url: str, call: Callable[[], httpx.Response]
) -> httpx.Response:
    """A vendor's 429s are waited out (Retry-After) while its window allows, and a spent limit is a 503 problem
    naming the vendor, with Retry-After. ``call`` is one call straight to the vendor; its 429 is returned for the
    test to check the vendor's own refusal shape."""
    waits_before = vendor_counter(stack, "psgw_vendor_waits_total", vendor)
    admin = sandbox_url + "/_sandbox/limits"
    httpx.put(admin, json={"per_window": 1, "window_seconds": 1}).raise_for_status()
    try:
        for _ in range(3):  # more calls than the window lets through: each 429 is waited out
            assert apis.json("GET", "erp", "/legal-entities", 200)["items"]
        httpx.put(admin, json={"per_window": 1, "window_seconds": 600}).raise_for_status()
        assert call().status_code == 200  # the window's one call
        limited = call()
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 1
        refused = apis.call("GET", "erp", "/customers", 503, params={"name": "contoso"})
    finally:
        httpx.delete(admin).raise_for_status()
    problem = refused.json()
    assert problem["type"].endswith("/vendor-limit-exceeded") and problem["downstream"] == vendor
    assert int(refused.headers["retry-after"]) >= 1
    assert vendor_counter(stack, "psgw_vendor_waits_total", vendor) > waits_before
    return limited
