"""Vendor failures reach callers as problems naming the vendor: 5xx -> 502, too slow -> 504, down -> 503."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.support.stack import RunningStack
from tests.support.system import SystemApis

READS = {
    "psa": "/time-entries/{time_entry_id}",
    "erp": "/contracts/{contract_id}",
    "hr": "/workers/{worker_id}",
    "crm": "/rate-cards/{rate_card_id}",
}
PATHS = {"psa": {"time_entry_id": "te_100001"}, "erp": {"contract_id": "ctr_2001"},
         "hr": {"worker_id": "wrk_e1001"}, "crm": {"rate_card_id": "rc_usd"}}


@contextmanager
def faults(stack: RunningStack, system: str, plan: dict[str, Any]) -> Iterator[None]:
    sandbox = stack.stack.url(f"sandbox-{system}")
    httpx.put(f"{sandbox}/_sandbox/faults", json=plan).raise_for_status()
    try:
        yield
    finally:
        httpx.delete(f"{sandbox}/_sandbox/faults").raise_for_status()


@pytest.mark.parametrize("system", sorted(READS))
def test_vendor_5xx_becomes_502_naming_the_vendor(stack: RunningStack, apis: SystemApis, system: str) -> None:
    with faults(stack, system, {"error_rate": 1.0, "error_status": 500}):
        problem = apis.json("GET", system, READS[system], 502, path=PATHS[system])

    assert problem["downstream"] == f"sandbox-{system}" and f"sandbox-{system}" in problem["detail"]
    apis.call("GET", system, READS[system], 200, path=PATHS[system])  # healthy again once the fault is gone


def test_vendor_5xx_on_a_write_leaves_no_idempotency_record(stack: RunningStack, apis: SystemApis) -> None:
    body = {"source_type": "fixed_fee", "source_id": "ctr_2012/fault-test", "project_id": "prj_4012",
            "contract_id": "ctr_2012", "legal_entity_id": "le_uk", "work_date": "2026-11-02", "quantity": "1",
            "amount": "15000.00", "currency": "GBP"}
    headers = {"Idempotency-Key": "fault-test-posting"}
    with faults(stack, "erp", {"fail_next": 1, "error_status": 500, "only_methods": ["POST"]}):
        failed = apis.json("POST", "erp", "/postings", 502, json=body, headers=headers)
        assert failed["downstream"] == "sandbox-erp"
        retried = apis.call("POST", "erp", "/postings", 201, json=body, headers=headers)
    assert retried.json()["source_id"] == "ctr_2012/fault-test"


def test_vendor_too_slow_becomes_504(stack: RunningStack, apis: SystemApis) -> None:
    with faults(stack, "hr", {"timeout": True, "hang_seconds": 8}):
        problem = apis.json("GET", "hr", "/workers/{worker_id}", 504, path={"worker_id": "wrk_e1002"})

    assert problem["downstream"] == "sandbox-hr" and problem["type"].endswith("/downstream-timeout")


def test_vendor_outage_becomes_503(stack: RunningStack, apis: SystemApis) -> None:
    with faults(stack, "crm", {"outage_seconds": 60}):
        problem = apis.json("GET", "crm", "/opportunities", 503)
    assert problem["downstream"] == "sandbox-crm"


def test_vendor_down_becomes_503(stack: RunningStack, apis: SystemApis) -> None:
    stack.stack.kill("sandbox-erp")
    try:
        problem = apis.json("GET", "erp", "/legal-entities", 503)
    finally:
        stack.stack.start(only=["sandbox-erp"])
        stack.stack.wait_ready(only=["sandbox-erp"])

    assert problem["downstream"] == "sandbox-erp" and problem["type"].endswith("/downstream-unavailable")
    apis.call("GET", "erp", "/legal-entities", 200)


def test_vendor_refusing_our_credentials_is_a_502_not_a_client_error(stack: RunningStack, apis: SystemApis) -> None:
    with faults(stack, "psa", {"fail_next": 1, "error_status": 403}):
        problem = apis.json("GET", "psa", "/milestones/{milestone_id}", 502, path={"milestone_id": "ms_5001"})
    assert problem["downstream"] == "sandbox-psa"
