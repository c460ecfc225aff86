"""A tier or a vendor system down: the gateway answers 503 problem+json naming it, quickly, never a hang."""

from __future__ import annotations

import httpx

from tests.support.stack import RunningStack

MY_ASSIGNMENTS = "/experience/mobile-time/v1/me/assignments"


def test_tier_down_gives_503_naming_the_tier(stack: RunningStack, consultant: httpx.Client) -> None:
    stack.stack.kill("experience")
    try:
        # A hang would raise ReadTimeout here: a dead tier must be reported, not waited on.
        response = consultant.get(MY_ASSIGNMENTS, timeout=5)
    finally:
        stack.stack.start(only=["experience"])
        stack.stack.wait_ready(only=["experience"])

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["upstream"] == "experience" and "experience" in body["detail"]
    assert consultant.get(MY_ASSIGNMENTS).status_code == 200  # back after restart


def test_vendor_down_deep_in_the_chain_is_named_at_the_top(stack: RunningStack, consultant: httpx.Client) -> None:
    stack.stack.kill("sandbox-psa")
    try:
        response = consultant.get(MY_ASSIGNMENTS)
    finally:
        stack.stack.start(only=["sandbox-psa"])
        stack.stack.wait_ready(only=["sandbox-psa"])

    assert response.status_code == 503
    assert response.json()["downstream"] == "sandbox-psa"


def test_vendor_5xx_becomes_502_naming_the_vendor(stack: RunningStack) -> None:
    sandbox = stack.stack.url("sandbox-psa")
    # Every call fails while the fault is set, not just the next one: the process tier polls the PSA in the
    # background, and a poll landing between the PUT and the GET took a one-shot failure meant for the GET.
    httpx.put(f"{sandbox}/_sandbox/faults", json={"error_rate": 1.0, "error_status": 500}).raise_for_status()
    try:
        with stack.client("process-tier") as process:
            response = process.get("/system/psa/v1/projects/prj_4002")
    finally:
        httpx.delete(f"{sandbox}/_sandbox/faults")

    assert response.status_code == 502
    assert response.json()["downstream"] == "sandbox-psa"
