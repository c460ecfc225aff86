"""The hot path: one call through the gateway, from ASGI scope to upstream and back.

Order (ARCHITECTURE.md): match the API version -> policy chain (authenticate, authorize, ...) -> proxy
-> audit. Everything a refusal or an upstream failure produces is problem+json with the correlation id.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from gateway.state import CompiledState
from gateway.upstreams import HOP_BY_HOP, RESPONSE_SKIP, Upstream
from policies.exchange import Exchange
from runtime import correlation
from runtime.problems import PROBLEM_CONTENT_TYPE, ProblemError, make_problem

log = logging.getLogger("gateway.access")

Scope = dict[str, Any]


class PayloadTooLarge(ProblemError):
    status = 413


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def read_body(receive: Any, limit: int, declared: str | None) -> bytes:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def send_problem(send: Any, problem_status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({
        "type": "http.response.start",
        "status": problem_status,
        "headers": [(b"content-type", PROBLEM_CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode()),
                    *headers],
    })
    await send({"type": "http.response.body", "body": body})


class Proxy:
    def __init__(self, upstreams: dict[str, Upstream]) -> None:
        self.upstreams = upstreams

    async def handle(self, state: CompiledState, scope: Scope, receive: Any, send: Any) -> None:
        trace = correlation.from_headers(_header(scope, b"x-correlation-id"), _header(scope, b"traceparent"))
        token = correlation.set_current(trace)
        ids = [(b"x-correlation-id", trace.correlation_id.encode())]
        path = scope["path"]
        api, _rest = state.match(path)
        status = 0
        exchange: Exchange | None = None
        try:
            if api is None:
                raise ProblemError(f"no API is published at {path}", status=404, slug="no-such-api")
            client = scope.get("client")
            exchange = Exchange(
                method=scope["method"], path=path, raw_query=scope.get("query_string", b""),
                headers=scope["headers"], client_addr=client[0] if client else "", trace=trace, api=api,
            )
            exchange.body = await read_body(receive, state.config.max_body_bytes,
                                            _header(scope, b"content-length"))
            for policy in state.chain:
                await policy.on_request(exchange)
            status = await self._forward(exchange, send, ids)
        except ProblemError as exc:
            problem = exc.to_problem(trace.correlation_id, path)
            status = problem.status
            extra = [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
            if exchange is not None:
                extra.extend(exchange.response_headers)
            await send_problem(send, status, problem.to_json(), ids + extra)
        except Exception:
            log.exception("gateway failure")
            status = 500
            problem = make_problem(500, "the gateway failed; quote the correlation id to the operators",
                                   correlation_id=trace.correlation_id, instance=path)
            await send_problem(send, 500, problem.to_json(), ids)
        finally:
            self._log(scope, exchange, status, trace)
            correlation.reset_current(token)

    async def _forward(self, exchange: Exchange, send: Any, ids: list[tuple[bytes, bytes]]) -> int:
        upstream = self.upstreams[exchange.api.upstream]
        child = exchange.trace.child()
        headers = [(k, v) for k, v in exchange.headers if k not in HOP_BY_HOP]
        headers.append((b"x-correlation-id", child.correlation_id.encode()))
        headers.append((b"traceparent", child.traceparent.encode()))
        if exchange.client_addr:
            headers.append((b"x-forwarded-for", exchange.client_addr.encode()))
        target = exchange.path + ("?" + exchange.raw_query.decode("latin-1") if exchange.raw_query else "")
        response = await upstream.send(exchange.method, target, headers, exchange.body)
        body = response.content
        out = [(k.lower(), v) for k, v in response.headers.raw if k.lower() not in RESPONSE_SKIP]
        out.append((b"content-length", str(len(body)).encode()))
        out.extend(ids)
        out.extend(exchange.response_headers)
        await send({"type": "http.response.start", "status": response.status_code, "headers": out})
        await send({"type": "http.response.body", "body": body})
        return response.status_code

    @staticmethod
    def _log(scope: Scope, exchange: Exchange | None, status: int, trace: correlation.TraceContext) -> None:
        started = exchange.started if exchange else None
        log.info("call", extra={
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "api": exchange.api.api_id if exchange else None,
            "version": exchange.api.version if exchange else None,
            "client_id": exchange.client.id if exchange and exchange.client else None,
            "subject": exchange.principal.subject if exchange and exchange.principal else None,
            "decisions": exchange.decisions if exchange else None,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
        })
