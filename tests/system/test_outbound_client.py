"""The tiers' outbound client (runtime.downstream over runtime.http1) against a real vendor process.

What a tier relies on when it calls out: a saturated downstream is refused fast with 503 and Retry-After instead
of queueing into timeouts, answers and failures keep their meaning, and nothing from a request can split the
outbound request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from runtime.downstream import Downstream, DownstreamProblem
from runtime.problems import ProblemError
from sandbox.hr import BASE
from tests.support.gateway import GATEWAY_TESTS, ServerProcess
from tests.support.stack import RunningStack
from tests.system.vendor_access import vendor_token

WORKER_PATH = BASE + "/workers"


@pytest.fixture
def slow_hr(stack: RunningStack) -> Iterator[str]:
    """The sandbox HR vendor, answering every call after 600 ms."""
    url = stack.stack.url("sandbox-hr")
    httpx.put(f"{url}/_sandbox/faults", json={"latency_ms": 600}).raise_for_status()
    try:
        yield url
    finally:
        httpx.delete(f"{url}/_sandbox/faults").raise_for_status()


async def outcomes(downstream: Downstream, calls: int, path: str) -> list[Any]:
    async def one() -> Any:
        try:
            return (await downstream.request("GET", path, allow_statuses=frozenset(range(400, 500)))).status_code
        except DownstreamProblem as problem:
            return problem
    try:
        return await asyncio.gather(*(one() for _ in range(calls)))
    finally:
        await downstream.aclose()


def test_calls_beyond_the_pool_and_its_queue_get_a_fast_503_with_retry_after(slow_hr: str) -> None:
    downstream = Downstream("sandbox-hr", slow_hr, timeout_seconds=10, max_connections=2, max_waiting=1)

    results = asyncio.run(outcomes(downstream, 6, WORKER_PATH))

    answered = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, DownstreamProblem)]
    assert len(answered) == 3 and all(status < 500 for status in answered)  # two in flight, one waited its turn
    assert len(refused) == 3
    for problem in refused:
        assert problem.status == 503 and problem.slug == "downstream-saturated"
        assert problem.headers == {"Retry-After": "1"}


def test_a_caller_waits_for_a_connection_only_so_long_then_gets_503_not_a_timeout(slow_hr: str) -> None:
    downstream = Downstream("sandbox-hr", slow_hr, timeout_seconds=10, max_connections=1, max_waiting=10,
                            max_wait_seconds=0.1)

    results = asyncio.run(outcomes(downstream, 3, WORKER_PATH))

    assert isinstance(results[0], int) and results[0] < 500
    assert [(r.status, r.slug) for r in results[1:]] == [(503, "downstream-saturated")] * 2


def test_a_downstream_that_is_down_is_503_and_one_too_slow_is_504(stack: RunningStack) -> None:
    async def scenario() -> tuple[ProblemError, ProblemError]:
        down = Downstream("nobody", "http://127.0.0.1:9", timeout_seconds=2)
        slow = Downstream("sandbox-hr", stack.stack.url("sandbox-hr"), timeout_seconds=0.3)
        url = stack.stack.url("sandbox-hr")
        async with httpx.AsyncClient() as control:
            (await control.put(f"{url}/_sandbox/faults", json={"timeout": True, "hang_seconds": 2})).raise_for_status()
            try:
                problems = []
                for downstream in (down, slow):
                    with pytest.raises(DownstreamProblem) as caught:
                        await downstream.request("GET", WORKER_PATH)
                    problems.append(caught.value)
                    await downstream.aclose()
                return problems[0], problems[1]
            finally:
                await control.delete(f"{url}/_sandbox/faults")

    unavailable, timed_out = asyncio.run(scenario())

    assert (unavailable.status, unavailable.slug) == (503, "downstream-unavailable")
    assert (timed_out.status, timed_out.slug) == (504, "downstream-timeout")


def test_query_values_and_answers_keep_their_meaning(stack: RunningStack) -> None:
    async def scenario() -> tuple[int, Any, str | None]:
        downstream = Downstream("sandbox-psa", stack.stack.url("sandbox-psa"),
                                headers={"Authorization": "Bearer " + vendor_token(stack, "psa")})
        try:
            answer = await downstream.request("GET", "/api/v3/projects",
                                              params={"projectCode": "CON-RTL-001 & more", "pageSize": 1,
                                                      "stage": None})
            return answer.status_code, answer.json(), answer.headers.get("content-type")
        finally:
            await downstream.aclose()

    status, body, content_type = asyncio.run(scenario())

    assert status == 200 and body["data"] == [] and content_type and content_type.startswith("application/json")


@pytest.mark.parametrize("key", ["key\r\nX-Injected: 1", "key\nX-Injected: 1", "key\rX", "key\0X"],
                         ids=["crlf", "lf", "cr", "nul"])
def test_a_line_break_in_a_header_value_never_reaches_the_wire(stack: RunningStack, key: str) -> None:
    async def scenario() -> ProblemError:
        downstream = Downstream("sandbox-psa", stack.stack.url("sandbox-psa"))
        try:
            with pytest.raises(ProblemError) as caught:
                await downstream.request("POST", "/api/v3/timecards", json={},
                                         idempotency_key=key)
            return caught.value
        finally:
            await downstream.aclose()

    problem = asyncio.run(scenario())

    assert problem.status == 400 and "line break" in str(problem.detail)
    assert not isinstance(problem, DownstreamProblem)  # refused here, not by the vendor


@pytest.fixture(scope="module")
def flaky(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real upstream that hangs up without answering when told to (tests/gateway/flaky_upstream.py)."""
    server = ServerProcess(GATEWAY_TESTS / "flaky_upstream.py", tmp_path_factory.mktemp("flaky"))
    try:
        yield server.url
    finally:
        server.stop()


def test_only_a_call_safe_to_repeat_is_sent_again_when_a_kept_alive_connection_dies(flaky: str) -> None:
    async def hits_after(method: str, idempotency_key: str | None) -> tuple[int | str, int]:
        downstream = Downstream("flaky", flaky, timeout_seconds=5)
        try:
            await downstream.request("GET", "/warm")  # leaves one kept-alive connection in the pool
            async with httpx.AsyncClient() as control:
                before = (await control.get(f"{flaky}/_control")).json()["hits"]
                await control.put(f"{flaky}/_control", json={"drop_next": 1})
            try:
                outcome: int | str = (await downstream.request(method, "/project", json={},
                                                               idempotency_key=idempotency_key)).status_code
            except DownstreamProblem as problem:
                outcome = f"{problem.status} {problem.slug}"
            async with httpx.AsyncClient() as control:
                after = (await control.get(f"{flaky}/_control")).json()
                await control.put(f"{flaky}/_control", json={"drop_next": 0})
            return outcome, after["hits"] - before
        finally:
            await downstream.aclose()

    assert asyncio.run(hits_after("GET", None)) == (200, 2)
    assert asyncio.run(hits_after("POST", "key-1")) == (200, 2)
    assert asyncio.run(hits_after("POST", None)) == ("503 downstream-unavailable", 1)
