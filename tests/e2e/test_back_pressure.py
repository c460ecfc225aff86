"""Back-pressure: when a tier's outbound pool is full, callers get a fast 503 with Retry-After, never a timeout.

A stack of its own, with the tiers' outbound pools cut to one connection and one waiting call, and the PSA
vendor slowed down, so a handful of concurrent users is enough to saturate the chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from gateway.launcher import REPO_ROOT, Ports, Stack
from tests.support.stack import DEMO_CONSULTANT, RunningStack

MY_ASSIGNMENTS = "/experience/mobile-time/v2/me/assignments"


@pytest.fixture(scope="module")
def narrow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    data_dir: Path = tmp_path_factory.mktemp("psgw-narrow")
    stack = Stack(data_dir=data_dir, ports=Ports.free(), config_file=REPO_ROOT / "gateway.yaml",
                  extra_env={"PSGW_OUTBOUND_MAX_CONNECTIONS": "1", "PSGW_OUTBOUND_MAX_WAITING": "1"})
    stack.start()
    try:
        stack.wait_ready(timeout=90)
        yield RunningStack(stack)
    finally:
        stack.stop()


def test_a_saturated_chain_sheds_load_with_503_and_retry_after(narrow_stack: RunningStack) -> None:
    vendor = narrow_stack.stack.url("sandbox-psa")
    with narrow_stack.client("mobile-app", subject=DEMO_CONSULTANT) as phone:
        assert phone.get(MY_ASSIGNMENTS).status_code == 200  # tokens and connections warm
        httpx.put(f"{vendor}/_sandbox/faults", json={"latency_ms": 1500}).raise_for_status()
        try:
            with ThreadPoolExecutor(max_workers=8) as pool:
                answers = list(pool.map(lambda _: phone.get(MY_ASSIGNMENTS, timeout=20), range(8)))
        finally:
            httpx.delete(f"{vendor}/_sandbox/faults").raise_for_status()
        recovered = phone.get(MY_ASSIGNMENTS)

    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {200, 503}, statuses
    shed = [a for a in answers if a.status_code == 503]
    assert 200 in statuses and len(shed) >= 4, statuses
    for answer in shed:
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["type"].endswith("/downstream-saturated")
    assert recovered.status_code == 200
