"""The hot path: one call through the gateway, from ASGI scope to upstream and back.

Order (README, "The shape"): match the API version and the contract operation -> pick the precompiled chain
(per API version; per operation or client when a binding says so) -> access phase of each policy in priority
order (a refusal or a Reply ends it) -> upstream (breaker, timeout, retries) -> response phase of each policy on
whatever answer there is -> send -> log phase (audit sink; metrics and the access log are the gateway's own,
queued and written off the hot path). Everything a refusal or an upstream failure produces is problem+json with
the correlation id.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from gateway.state import ApiRoute, CompiledState
from gateway.telemetry import Telemetry
from gateway.upstreams import HOP_BY_HOP, RESPONSE_SKIP
from policies.audit import CallEntry
from policies.authenticate import API_KEY_ISSUER
from policies.exchange import Answer, Exchange, Reply
from policies.limits import read_body
from runtime import correlation, tracing
from runtime.problems import PROBLEM_CONTENT_TYPE, ProblemError, make_problem
from runtime.untrusted import uri_path

log = logging.getLogger("gateway.proxy")

Scope = dict[str, Any]
PROBLEM_CONTENT_TYPE_BYTES = PROBLEM_CONTENT_TYPE.encode()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _problem_answer(exc: ProblemError, correlation_id: str, path: str) -> Answer:
    problem = exc.to_problem(correlation_id, path)
    headers = [(b"content-type", PROBLEM_CONTENT_TYPE_BYTES)]
    headers.extend((k.lower().encode(), v.encode()) for k, v in exc.headers.items())
    return Answer(problem.status, headers, problem.to_json())


def _failure_answer(correlation_id: str, path: str) -> Answer:
    problem = make_problem(500, "the gateway failed; quote the correlation id to the operators",
                           correlation_id=correlation_id, instance=path)
    return Answer(500, [(b"content-type", PROBLEM_CONTENT_TYPE_BYTES)], problem.to_json())


class Proxy:
    def __init__(self, telemetry: Telemetry, instance: str, token_for_api_key: Callable[[str], str]) -> None:
        self.telemetry = telemetry
        self.instance = instance
        # Tiers verify a bearer token themselves (defense in depth): a call authenticated by API key is
        # forwarded with a short-lived token of the same client instead of the key.
        self.token_for_api_key = token_for_api_key

    async def handle(self, state: CompiledState, scope: Scope, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        trace = correlation.from_headers(_header(scope, b"x-correlation-id"), _header(scope, b"traceparent"))
        token = correlation.set_current(trace)
        path = scope["path"]
        route = state.match(path)
        chain = state.unrouted
        exchange: Exchange | None = None
        timing: list[float | int | None] = [None, None]  # upstream ms, retries
        try:
            if route is None:
                raise ProblemError(f"no API is published at {path}", status=404, slug="no-such-api",
                                   reason="no_such_api")
            chain = route.chain
            raw_path: bytes = scope.get("raw_path") or b""
            if b"%2f" in raw_path.lower():
                # The tiers (like this matching) route on the decoded path, where an encoded "/" is a separator:
                # the caller meant one segment, the tier would serve another resource. No id holds a "/".
                raise ProblemError(f"nothing is published at {path}: a path segment holds an encoded '/'",
                                   status=404, slug="no-such-resource", reason="encoded_slash")
            client = scope.get("client")
            exchange = Exchange(
                method=scope["method"], path=path, raw_query=scope.get("query_string", b""), raw_path=raw_path,
                headers=scope["headers"], client_addr=client[0] if client else "", trace=trace, api=route.target,
                receive=receive, started=started,
            )
            if route.contract is not None:
                found = route.contract.match(exchange.method, path)
                if found is not None:
                    exchange.operation, exchange.path_params = found
                    exchange.route = found.operation.path
                    if route.chains:
                        chain = route.chains.get(found.operation, chain)
            for step in chain.before_identity:
                await step(exchange)
            if chain.by_client and exchange.client is not None:
                chain = chain.by_client.get(exchange.client.id, chain)
            for step in chain.after_identity:
                await step(exchange)
            if not exchange.body_read:
                exchange.body = await read_body(receive, state.config.max_body_bytes,
                                                _header(scope, b"content-length"))
            answer = await self._forward(route, exchange, timing)
        except Reply as reply:
            answer = Answer(reply.status, list(reply.headers), reply.body)
        except ProblemError as exc:
            answer = _problem_answer(exc, trace.correlation_id, path)
        except Exception:
            log.exception("gateway failure")
            answer = _failure_answer(trace.correlation_id, path)
        if exchange is not None:
            for respond in chain.response:
                try:
                    respond(exchange, answer)
                except ProblemError as exc:  # e.g. strict response validation: the answer becomes the problem
                    answer = _problem_answer(exc, trace.correlation_id, path)
                except Exception:
                    log.exception("response policy failure")
                    answer = _failure_answer(trace.correlation_id, path)
        headers = answer.headers
        headers.append((b"content-length", str(len(answer.body)).encode()))
        headers.append((b"x-correlation-id", trace.correlation_id.encode()))
        if exchange is not None and exchange.response_headers:
            headers.extend(exchange.response_headers)
        try:
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            await send({"type": "http.response.body", "body": answer.body})
        finally:
            entry = self._record(state, scope, route, exchange, answer.status, trace, started, timing)
            for sink in chain.log:
                try:
                    sink(exchange, entry)
                except Exception:
                    log.exception("log policy failure")
            if tracing.enabled():  # PSGW_OTLP_ENDPOINT set: this hop's span (nothing otherwise)
                target = route.target if route else None
                tracing.record_gateway_call(scope, trace, started, answer.status,
                                            target.api_id if target else None, target.version if target else None,
                                            exchange.route if exchange else None,
                                            exchange.client.id if exchange and exchange.client else None)
            correlation.reset_current(token)

    async def _forward(self, route: ApiRoute, exchange: Exchange, timing: list[float | int | None]) -> Answer:
        upstream = route.upstream
        child = exchange.trace  # the upstream's parent span is this hop's span (runtime.tracing)
        principal = exchange.principal
        if principal is not None and principal.issuer == API_KEY_ISSUER:
            headers = [(k, v) for k, v in exchange.headers if k not in HOP_BY_HOP and k != b"x-api-key"]
            headers.append((b"authorization", b"Bearer " + self.token_for_api_key(principal.client_id).encode()))
        else:
            headers = [(k, v) for k, v in exchange.headers if k not in HOP_BY_HOP]
        headers.append((b"x-correlation-id", child.correlation_id.encode()))
        headers.append((b"traceparent", child.traceparent.encode()))
        if exchange.client_addr:
            headers.append((b"x-forwarded-for", exchange.client_addr.encode()))
        target = exchange.raw_path.decode("latin-1") or uri_path(exchange.path)
        if exchange.raw_query:
            target += "?" + exchange.raw_query.decode("latin-1")
        exchange.forwarded = True
        sent = time.perf_counter()
        try:
            response, retries = await upstream.send(exchange.method, target, headers, exchange.body)
        finally:
            timing[0] = round((time.perf_counter() - sent) * 1000, 3)
        timing[1] = retries
        out = [(k, v) for k, v in response.headers if k not in RESPONSE_SKIP]
        return Answer(response.status, out, response.body, from_upstream=True, upstream_headers=len(out))

    def _record(self, state: CompiledState, scope: Scope, route: ApiRoute | None, exchange: Exchange | None,
                status: int, trace: correlation.TraceContext, started: float,
                timing: list[float | int | None]) -> CallEntry:
        principal = exchange.principal if exchange else None
        target = route.target if route else None
        client = scope.get("client")
        upstream_ms, retries = timing
        entry = CallEntry(
            at=dt.datetime.now(dt.UTC),
            correlation_id=trace.correlation_id,
            trace_id=trace.trace_id,
            method=scope["method"],
            path=scope["path"],
            status=status,
            outcome=exchange.decisions if exchange else {},
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            client_id=exchange.client.id if exchange and exchange.client else None,
            subject=principal.subject if principal else None,
            issuer=principal.issuer if principal else None,
            api=target.api_id if target else None,
            version=target.version if target else None,
            route=exchange.route if exchange else None,
            upstream=target.upstream if target and upstream_ms is not None else None,
            upstream_ms=float(upstream_ms) if upstream_ms is not None else None,
            retries=int(retries) if retries is not None else None,
            client_addr=client[0] if client else None,
            instance=self.instance,
        )
        self.telemetry.record(entry, access_log=state.config.access_log)
        return entry
