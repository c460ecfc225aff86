"""rate_limit, validate, response_cache, lifecycle and audit in-process: budgets, contracts, the cache, version
lifecycle headers and the audit sink, each driven through its phases as the chain drives it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from contracts.toolchain.validation import CompiledContract
from policies import audit, lifecycle, rate_limit, response_cache, validate
from policies.audit import AuditLog, CallEntry
from policies.exchange import ApiTarget, Reply
from policies.rate_limit import MemoryStore
from runtime.problems import ProblemError
from tests.unit.policies.harness import API, MOBILE, build, exchange, header, services, upstream_answer

BASE = "/experience/mobile-time/v2"
CONTRACT = CompiledContract.from_document(
    {
        "openapi": "3.1.0",
        "info": {
            "title": "t",
            "version": "2.0.0",
            "x-lifecycle": "deprecated",
            "x-deprecated-at": "2026-11-23",
            "x-sunset": "2027-06-01",
        },
        "servers": [{"url": BASE}],
        "paths": {
            "/things/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "get": {
                    "x-psgw-cache": {"ttl_seconds": 60},
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["id"],
                                        "properties": {"id": {"type": "string"}},
                                    }
                                }
                            },
                        }
                    },
                },
                "patch": {
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["hours"],
                                    "additionalProperties": False,
                                    "properties": {"hours": {"type": "integer", "maximum": 24}},
                                }
                            }
                        },
                    },
                    "responses": {"200": {"description": "ok"}},
                },
            },
        },
    }
)


def call(method: str = "GET", path: str = f"{BASE}/things/t1", **kwargs: Any) -> Any:
    return exchange(method, path, contract=CONTRACT, **kwargs)


async def test_rate_limit_spends_the_burst_then_refuses_with_retry_after_that_agrees_with_ratelimit() -> None:
    tiers = {"silver": rate_limit.TierLimits(requests_per_second=1, burst=2)}
    handler = build(rate_limit.POLICY, store=MemoryStore(), lent=services(sla_tiers=tiers))
    for _ in range(2):
        allowed = exchange(client=MOBILE)
        await handler.access(allowed)
        assert header(allowed.response_headers, "ratelimit-policy") == '"tier";q=2;w=2'
    refused = exchange(client=MOBILE)
    with pytest.raises(ProblemError) as limited:
        await handler.access(refused)
    assert limited.value.status == 429
    retry_after = limited.value.headers["Retry-After"]
    assert f"t={retry_after}" in (header(refused.response_headers, "ratelimit") or "")


async def test_rate_limit_built_disabled_is_left_out_of_the_chain() -> None:
    assert build(rate_limit.POLICY, {"enabled": False}, store=MemoryStore()) is None


async def test_validate_refuses_a_body_the_contract_refuses_with_a_pointer_and_unknown_operations() -> None:
    handler = build(validate.POLICY, contract=CONTRACT)
    bad = call("PATCH", body=b'{"hours": 25}', headers={"content-type": "application/json"})
    bad.body = b'{"hours": 25}'
    with pytest.raises(ProblemError) as invalid:
        await handler.access(bad)
    assert invalid.value.status == 400 and invalid.value.errors is not None
    assert invalid.value.errors[0].pointer == "/hours"
    with pytest.raises(ProblemError) as method:
        await handler.access(call("DELETE"))
    assert method.value.status == 405 and method.value.headers["Allow"] == "GET, PATCH"
    with pytest.raises(ProblemError) as nowhere:
        await handler.access(call(path=f"{BASE}/nowhere"))
    assert nowhere.value.status == 404


async def test_validate_checks_responses_only_when_asked_and_strict_turns_a_bad_one_into_502() -> None:
    assert not hasattr(build(validate.POLICY, contract=CONTRACT), "response")
    strict = build(validate.POLICY, {"responses": "strict"}, contract=CONTRACT)
    strict.response(call(), upstream_answer(body=b'{"id": "t1"}'))
    with pytest.raises(ProblemError) as broken:
        strict.response(call(), upstream_answer(body=b'{"name": "no id"}'))
    assert broken.value.status == 502


async def test_response_cache_serves_the_same_principal_and_never_another() -> None:
    handler = build(response_cache.POLICY, contract=CONTRACT)
    first = call(client=MOBILE, subject="w_1")
    await handler.access(first)  # a miss
    answer = upstream_answer(body=b'{"id": "t1"}')
    first.forwarded = True
    handler.response(first, answer)
    assert header(answer.headers, "x-cache") == "miss"
    with pytest.raises(Reply) as hit:
        await handler.access(call(client=MOBILE, subject="w_1"))
    assert hit.value.body == b'{"id": "t1"}' and header(hit.value.headers, "x-cache") == "hit"
    await handler.access(call(client=MOBILE, subject="w_2"))  # another person: a miss, not w_1's answer


async def test_response_cache_forgets_a_resource_after_a_write_reached_the_upstream() -> None:
    handler = build(response_cache.POLICY, contract=CONTRACT)
    read = call(client=MOBILE)
    await handler.access(read)
    handler.response(read, upstream_answer(body=b'{"id": "t1"}'))
    write = call("PATCH", client=MOBILE)
    write.forwarded = True
    handler.response(write, upstream_answer(status=504, body=b"{}"))  # even when the write timed out
    await handler.access(call(client=MOBILE))  # a miss again: no Reply


def test_lifecycle_dates_come_from_the_contract_and_the_link_names_the_successor() -> None:
    v3 = ApiTarget(
        api_id=API.api_id,
        layer="experience",
        version=3,
        base_path="/experience/mobile-time/v3",
        upstream="experience",
        read_scopes=frozenset(),
        write_scopes=frozenset(),
    )
    handler = build(lifecycle.POLICY, contract=CONTRACT, lent=services(apis=(API, v3)))
    answer = upstream_answer(status=404)
    handler.response(call(path=f"{BASE}/things/a b"), answer)
    sunset = dt.datetime(2027, 6, 1, tzinfo=dt.UTC)
    assert header(answer.headers, "sunset") == "Tue, 01 Jun 2027 00:00:00 GMT"
    assert int((header(answer.headers, "deprecation") or "@")[1:]) < sunset.timestamp()
    assert header(answer.headers, "link") == '</experience/mobile-time/v3/things/a%20b>; rel="successor-version"'


def test_lifecycle_is_absent_for_an_active_version_and_a_binding_can_set_the_dates() -> None:
    active = CompiledContract.from_document(
        {"openapi": "3.1.0", "info": {"title": "t", "version": "1.0.0"}, "servers": [{"url": BASE}], "paths": {}}
    )
    assert build(lifecycle.POLICY, contract=active) is None
    bound = build(lifecycle.POLICY, {"deprecated_at": "2026-01-01", "sunset": "2026-12-31"}, contract=active)
    answer = upstream_answer()
    bound.response(call(), answer)
    assert header(answer.headers, "sunset") == "Thu, 31 Dec 2026 00:00:00 GMT"
    assert header(answer.headers, "link") is None  # no later version is published


class _Store:
    def __init__(self) -> None:
        self.calls: list[CallEntry] = []

    async def create_schema(self) -> None: ...

    async def write_calls(self, entries: Any) -> None:
        self.calls.extend(entries)


async def test_audit_is_a_log_sink_that_queues_each_call_and_is_absent_when_disabled() -> None:
    store = _Store()
    log = AuditLog(store, audit.AuditConfig())  # type: ignore[arg-type]
    sink = build(audit.POLICY, lent=services(audit=log))
    entry = CallEntry(
        at=dt.datetime.now(dt.UTC),
        correlation_id="c1",
        trace_id="t" * 32,
        method="GET",
        path="/x",
        status=200,
        outcome={"authenticate": "ok"},
        latency_ms=1.0,
    )
    sink.log(None, entry)
    assert await log.flush() == 1 and store.calls == [entry]
    assert build(audit.POLICY, {"enabled": False}, lent=services(audit=log)) is None
    assert audit.POLICY.build_unrouted is not None  # calls no API matched are audited too
