"""cors, ip_allow and limits in-process: what a caller at the edge gets before anything else runs."""

from __future__ import annotations

from typing import Any

import pytest

from policies import cors, ip_allow, limits
from policies.exchange import Exchange, Reply
from runtime.problems import ProblemError
from tests.unit.policies.harness import API, SYSTEM_API, build, exchange, header

ORIGIN = "https://app.example.com"


async def test_cors_answers_an_allowed_preflight_itself_and_refuses_another_origin() -> None:
    handler = build(cors.POLICY, {"allowed_origins": [ORIGIN]})
    preflight = {
        "origin": ORIGIN,
        "access-control-request-method": "PATCH",
        "access-control-request-headers": "content-type, if-match",
    }
    with pytest.raises(Reply) as answered:
        await handler.access(exchange("OPTIONS", headers=preflight))
    assert answered.value.status == 204
    assert header(answered.value.headers, "access-control-allow-origin") == ORIGIN
    assert "PATCH" in (header(answered.value.headers, "access-control-allow-methods") or "")
    with pytest.raises(ProblemError) as refused:
        await handler.access(exchange("OPTIONS", headers={**preflight, "origin": "https://evil.example"}))
    assert refused.value.status == 403
    with pytest.raises(ProblemError, match="x-evil"):
        await handler.access(exchange("OPTIONS", headers={**preflight, "access-control-request-headers": "x-evil"}))


async def test_cors_adds_its_headers_only_for_an_allowed_origin() -> None:
    handler = build(cors.POLICY, {"allowed_origins": [ORIGIN]})
    allowed = exchange(headers={"origin": ORIGIN + "/"})
    await handler.access(allowed)
    assert header(allowed.response_headers, "access-control-allow-origin") == ORIGIN + "/"
    other = exchange(headers={"origin": "https://evil.example"})
    await handler.access(other)
    assert other.response_headers == [] and other.decisions["cors"] == "origin_not_allowed"
    assert build(cors.POLICY, {"allowed_origins": [ORIGIN]}, api=SYSTEM_API) is None  # experience layer only


async def test_ip_allow_refuses_outside_networks_and_reads_forwarded_only_from_trusted_proxies() -> None:
    handler = build(ip_allow.POLICY, {"allow": ["10.0.0.0/8"], "trusted_proxies": ["192.168.1.1/32"]}, api=SYSTEM_API)
    await handler.access(exchange(api=SYSTEM_API, client_addr="10.1.2.3"))
    with pytest.raises(ProblemError) as refused:
        await handler.access(exchange(api=SYSTEM_API, client_addr="203.0.113.9"))
    assert refused.value.status == 403 and refused.value.slug == "ip-not-allowed"
    # Behind the trusted proxy the right-most untrusted hop counts; a spoofed left-most entry does not.
    await handler.access(
        exchange(api=SYSTEM_API, client_addr="192.168.1.1", headers={"x-forwarded-for": "203.0.113.9, 10.9.9.9"})
    )
    with pytest.raises(ProblemError):
        await handler.access(
            exchange(api=SYSTEM_API, client_addr="192.168.1.1", headers={"x-forwarded-for": "10.9.9.9, 203.0.113.9"})
        )
    with pytest.raises(ProblemError):  # an untrusted caller cannot claim an address
        await handler.access(
            exchange(api=SYSTEM_API, client_addr="203.0.113.9", headers={"x-forwarded-for": "10.1.1.1"})
        )
    assert build(ip_allow.POLICY, api=API) is None  # system layer only by default


async def test_limits_refuse_a_large_body_a_wrong_type_and_deep_json_and_read_the_body() -> None:
    handler = build(
        limits.POLICY, {"max_body_bytes": 64, "allowed_content_types": ["application/json"], "max_json_depth": 4}
    )
    ok = exchange("POST", body=b'{"a": [1]}', headers={"content-type": "application/json"})
    await handler.access(ok)
    assert ok.body == b'{"a": [1]}' and ok.body_read
    with pytest.raises(ProblemError) as large:
        await handler.access(exchange("POST", body=b"x" * 65, headers={"content-type": "application/json"}))
    assert large.value.status == 413
    with pytest.raises(ProblemError) as media:
        await handler.access(exchange("POST", body=b"a=1", headers={"content-type": "text/plain"}))
    assert media.value.status == 415
    with pytest.raises(ProblemError) as deep:
        await handler.access(exchange("POST", body=b"[[[[[1]]]]]", headers={"content-type": "application/json"}))
    assert deep.value.status == 400 and deep.value.slug == "json-too-deep"


def chunked(method: str, body: bytes) -> Exchange:
    call = exchange(method, body=body, headers={"transfer-encoding": "chunked"})
    call.headers = [(k, v) for k, v in call.headers if k != b"content-length"]
    return call


async def test_limits_read_a_body_only_a_request_declares() -> None:
    handler = build(limits.POLICY, {"max_body_bytes": 64})
    streamed = chunked("POST", b'{"a": 1}')
    await handler.access(streamed)
    assert streamed.body == b'{"a": 1}'
    with pytest.raises(ProblemError) as large:  # a chunked body is still held to the limit
        await handler.access(chunked("PUT", b"x" * 65))
    assert large.value.status == 413
    undeclared = exchange("GET")

    async def no_receive() -> dict[str, Any]:
        raise AssertionError("a request without Content-Length or Transfer-Encoding has no body to wait for")

    undeclared.receive = no_receive
    await handler.access(undeclared)
    assert undeclared.body == b"" and undeclared.body_read and undeclared.decisions["limits"] == "ok"
