"""The ASGI edge every tier runs behind: correlation ids, content-type policing, bearer verification, a JSON depth
limit, a last guard on response header values, access log, request metrics (by route template) and the hop's
span when tracing is on.

It runs before routing so that even a 404 or a 415 carries the correlation id and the problem shape.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from typing import Any

from runtime import correlation, metrics, tracing
from runtime.problems import PROBLEM_CONTENT_TYPE, FieldError, make_problem
from runtime.tokens import Principal, TokenError, TokenVerifier, bearer_token
from runtime.untrusted import DEFAULT_MAX_JSON_DEPTH, header_value, json_depth_exceeds, unsafe_header_value

ASGIApp = Any
Scope = dict[str, Any]
Receive = Any
Send = Any
Message = dict[str, Any]

log = logging.getLogger("runtime.access")

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_TYPES = ("application/json", "application/merge-patch+json", "application/problem+json")
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# The request headers the edge reads, taken in one pass over the header list (the first of each).
_READ = frozenset({b"x-correlation-id", b"traceparent", b"authorization", b"content-type", b"content-length",
                   b"transfer-encoding"})

# The verified caller of the request being served, beside ``scope["state"]["principal"]``: read by the
# ``principal`` dependency (runtime/app.py) without a parameter of its own, which Litestar would parse per call.
_principal: ContextVar[Principal | None] = ContextVar("psgw_principal", default=None)


def current_principal() -> Principal | None:
    return _principal.get()


def _read_headers(scope: Scope) -> dict[bytes, str]:
    """The headers in ``_READ`` that the request carries, the first of each."""
    found: dict[bytes, str] = {}
    for key, value in scope.get("headers", ()):
        if key in _READ and key not in found:
            found[key] = value.decode("latin-1")
    return found


async def send_problem(send: Send, status: int, detail: str, *, slug: str | None = None,
                       extra_headers: list[tuple[bytes, bytes]] | None = None, **extensions: Any) -> None:
    problem = make_problem(status, detail, slug=slug, correlation_id=correlation.current_correlation_id(),
                           **extensions)
    body = problem.to_json()
    headers = [(b"content-type", PROBLEM_CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    headers.extend(extra_headers or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _safe_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The last guard: a header value holding CR, LF or another control (a route that echoed decoded input) is
    percent-encoded and logged, where the server would otherwise drop the connection mid-answer."""
    if not unsafe_header_value(b"".join([value for _, value in headers])):
        return headers  # one search over all the values: a control in any of them is one in the joined bytes
    for index, (name, value) in enumerate(headers):
        if unsafe_header_value(value):
            log.error("a response header carried control characters; sent percent-encoded",
                      extra={"header": name.decode("latin-1")})
            headers[index] = (name, header_value(value.decode("latin-1")))
    return headers


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, verifier: TokenVerifier | None, service: str,
                 json_bodies_only: bool = True, max_json_depth: int = DEFAULT_MAX_JSON_DEPTH,
                 max_body_bytes: int = 1_000_000) -> None:
        self.app = app
        self.verifier = verifier
        self.service = service
        self.json_bodies_only = json_bodies_only
        self.max_json_depth = max_json_depth
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _read_headers(scope)
        ctx = correlation.from_headers(headers.get(b"x-correlation-id"), headers.get(b"traceparent"))
        token = correlation.set_current(ctx)
        caller = _principal.set(None)
        started = time.perf_counter()
        status_holder = [0]

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                answer_headers = _safe_headers(list(message.get("headers", ())))
                answer_headers.append((b"x-correlation-id", ctx.correlation_id.encode()))
                message = {**message, "headers": answer_headers}
            await send(message)

        try:
            await self._handle(scope, receive, send_with_ids, headers)
        finally:
            path = scope.get("path", "")
            if path not in PUBLIC_PATHS:
                elapsed = time.perf_counter() - started
                method = scope.get("method", "-")
                client_id = getattr(scope.get("state", {}).get("principal"), "client_id", None)
                if log.isEnabledFor(logging.INFO):  # the benchmarks and most deployments log at WARNING
                    log.info(
                        "request",
                        extra={
                            "method": method,
                            "path": path,
                            "status": status_holder[0],
                            "duration_ms": round(elapsed * 1000, 2),
                            "client_id": client_id,
                        },
                    )
                # The router leaves the matched template in the scope; none for a 404 or a refusal before routing.
                template = scope.get("path_template")
                metrics.record_served(self.service, method, template, client_id, status_holder[0], elapsed)
                if tracing.enabled():
                    tracing.record_server_span(self.service, method, metrics.display_template(template), ctx,
                                               headers.get(b"traceparent"), started, status_holder[0])
            _principal.reset(caller)
            correlation.reset_current(token)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, str]) -> None:
        path = scope.get("path", "")
        if path in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        if self.json_bodies_only and scope["method"] in BODY_METHODS:
            content_type = (headers.get(b"content-type") or "").split(";")[0].strip().lower()
            has_body = headers.get(b"content-length") not in (None, "0") or headers.get(
                b"transfer-encoding") is not None
            if has_body and content_type not in JSON_TYPES:
                await send_problem(send, 415, f"send application/json, not {content_type or 'no content type'}")
                return
        if self.verifier is not None:
            try:
                principal = await self.verifier.verify(bearer_token(headers.get(b"authorization")))
            except TokenError as exc:
                await send_problem(
                    send, 401, exc.detail, slug="invalid-token", reason=exc.reason,
                    extra_headers=[(b"www-authenticate", b'Bearer error="invalid_token"')],
                )
                return
            scope.setdefault("state", {})["principal"] = principal
            _principal.set(principal)
        if scope["method"] in BODY_METHODS and _is_json(headers.get(b"content-type")):
            body = await self._read_body(receive, send)
            if body is None:
                return
            if json_depth_exceeds(body, self.max_json_depth):
                limit = self.max_json_depth
                await send_problem(send, 400, f"the JSON body nests arrays or objects more than {limit} levels deep",
                                   slug="json-too-deep", title="JSON nested too deeply", reason="json_too_deep",
                                   max_json_depth=limit,
                                   errors=[FieldError(pointer="", detail=f"nested more than {limit} levels deep")])
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    async def _read_body(self, receive: Receive, send: Send) -> bytes | None:
        """The whole body (None once a 413 is sent): the depth check needs it before the framework parses it."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await send_problem(send, 413, f"the body is larger than the limit of {self.max_body_bytes} bytes",
                                   reason="body_too_large", limit_bytes=self.max_body_bytes)
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the buffered body over once, then the server's own (a disconnect, when it comes)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def install_edge(app: Any, *, verifier: TokenVerifier | None, service: str, json_bodies_only: bool = True,
                 max_json_depth: int = DEFAULT_MAX_JSON_DEPTH, max_body_bytes: int = 1_000_000) -> None:
    """Put the edge outside a Litestar app's router, so unknown routes (404/405) get ids and problem+json too."""
    app.asgi_handler = EdgeMiddleware(app.asgi_handler, verifier=verifier, service=service,
                                      json_bodies_only=json_bodies_only, max_json_depth=max_json_depth,
                                      max_body_bytes=max_body_bytes)
