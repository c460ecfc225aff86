"""Outbound calls: one bounded HTTP/1.1 pool per downstream (runtime.http1), timeouts always set, ids propagated.

Tier-to-tier calls go through the gateway with the calling tier's own client identity: a
:class:`ClientCredentials` source fetches and caches its token from the gateway's token endpoint.
Failures are translated once, here: the downstream down -> 503, too slow -> 504, a 5xx -> 502, each naming
the downstream; a 4xx problem from the downstream keeps its status and detail (404 stays 404).
Every call is counted and timed per downstream (``runtime.metrics``) and, with tracing on, recorded as a client span.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Awaitable, Mapping
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, quote_plus, urlsplit

import httpx
import msgspec

from runtime import correlation, metrics, tracing
from runtime.http1 import (
    ConnectionDropped,
    ConnectTimedOut,
    Http1Pool,
    PoolSaturated,
    ResponseTimedOut,
    UpstreamError,
)
from runtime.problems import PROBLEM_CONTENT_TYPE, FieldError, ProblemError

T = TypeVar("T")

_decoder = msgspec.json.Decoder()
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
SATURATED_RETRY_AFTER = "1"
# Back-pressure defaults: a call waits at most this long for a free connection, and at most this many calls per
# connection wait at once; past either the downstream is overloaded, and a fast 503 beats a slow timeout.
DEFAULT_MAX_WAIT_SECONDS = 2.0
DEFAULT_WAITING_PER_CONNECTION = 4


def segment(value: str) -> str:
    """``value`` (an id from a request) as one path segment of a downstream call.

    Percent-encoded whole, so whatever it holds (``/``, ``?``, ``#``, control characters, any script) it stays
    one segment naming one resource: a bad id is that resource's 404 downstream, not another resource, an invalid
    URL or a refused request line. ``.`` and ``..`` are encoded too: URL normalisation would remove them.
    """
    encoded = quote(value, safe="")
    return encoded.replace(".", "%2E") if encoded in {".", ".."} else encoded


class DownstreamProblem(ProblemError):
    """A problem answered by (or about) a downstream, re-raised with the downstream named."""


async def found_or_none(call: Awaitable[T]) -> T | None:
    """A record the downstream does not know (404) is a fact too: ``None``; any other failure propagates."""
    try:
        return await call
    except DownstreamProblem as exc:
        if exc.status == 404:
            return None
        raise


class TokenSource(Protocol):
    """Where a downstream's bearer token comes from (:class:`ClientCredentials`, or a vendor's own grant)."""

    def invalidate(self) -> None: ...

    async def token(self) -> str: ...

    async def aclose(self) -> None: ...


class CachedToken:
    """A bearer token from ``_fetch`` (the token endpoint's JSON answer), fetched once for concurrent callers and
    reused until it expires (renewed a minute early, or at half-life for short tokens) or is invalidated."""

    # The lifetime assumed when the answer has no ``expires_in``; None: until invalidated (after a 401).
    default_lifetime: float | None = 300.0

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._token = None

    async def token(self) -> str:
        if self._token and time.monotonic() < self._expires_at:
            return self._token
        async with self._lock:
            if self._token and time.monotonic() < self._expires_at:
                return self._token
            body = await self._fetch()
            self._token = str(body["access_token"])
            lifetime = body.get("expires_in", self.default_lifetime)
            self._expires_at = (float("inf") if lifetime is None
                                else time.monotonic() + max(float(lifetime) - 60.0, float(lifetime) / 2))
            return self._token

    async def _fetch(self) -> dict[str, Any]:
        raise NotImplementedError

    async def aclose(self) -> None:
        await self._http.aclose()


class ClientCredentials(CachedToken):
    """OAuth2 client_credentials token source for a tier's own identity at the gateway."""

    def __init__(self, token_url: str, client_id: str, client_secret: str, scope: str | None = None,
                 http: httpx.AsyncClient | None = None) -> None:
        super().__init__(http or httpx.AsyncClient(timeout=httpx.Timeout(5.0)))
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope

    async def _fetch(self) -> dict[str, Any]:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        try:
            response = await self._http.post(self.token_url, data=form, auth=(self.client_id, self.client_secret))
        except httpx.HTTPError as exc:
            raise DownstreamProblem(
                f"cannot obtain a token from {self.token_url}: {type(exc).__name__}",
                status=503, slug="token-unavailable", downstream="gateway",
            ) from exc
        if response.status_code != 200:
            raise DownstreamProblem(
                f"the gateway refused this tier's client credentials ({response.status_code})",
                status=503, slug="token-unavailable", downstream="gateway",
            )
        body: dict[str, Any] = response.json()
        return body


class Reply:
    """A downstream's answer: status, headers (names lower-cased, repeats joined) and the whole body.

    The headers are decoded on first use: most callers read only the status and the body."""

    __slots__ = ("_headers", "_raw_headers", "content", "status_code")

    def __init__(self, status_code: int, headers: dict[str, str] | None, content: bytes,
                 raw_headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.status_code = status_code
        self._headers = headers
        self._raw_headers = raw_headers
        self.content = content

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            self._headers = _header_dict(self._raw_headers or [])
        return self._headers

    def json(self) -> Any:
        return _decoder.decode(self.content)


class Downstream:
    """A named downstream with its own bounded connection pool (:mod:`runtime.http1`).

    Back-pressure: at most ``max_connections`` calls in flight; beyond that a call waits for a connection at most
    ``max_wait_seconds``, and at most ``max_waiting`` calls wait; otherwise the call fails fast with 503
    ``downstream-saturated`` and ``Retry-After``, so an overloaded tier sheds load instead of timing out.
    Retries: a call whose reused keep-alive connection died before any answer byte is sent once more on a fresh
    connection when it is safe to repeat (an idempotent method, or an Idempotency-Key); nothing else is retried
    here (the gateway owns retries with budgets).
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        timeout_seconds: float = 10.0,
        credentials: TokenSource | None = None,
        max_connections: int = 100,
        max_waiting: int | None = None,
        max_wait_seconds: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        url = urlsplit(self.base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"{name}: {base_url!r} is not an http(s) URL")
        tls = ssl.create_default_context() if url.scheme == "https" else None
        self._prefix = url.path
        self._pool = Http1Pool(
            url.hostname, url.port or (443 if tls else 80), max_connections=max_connections,
            connect_timeout=min(timeout_seconds, 3.0), response_timeout=timeout_seconds, tls=tls,
            max_waiting=max_connections * DEFAULT_WAITING_PER_CONNECTION if max_waiting is None else max_waiting,
            max_wait_seconds=(min(timeout_seconds, DEFAULT_MAX_WAIT_SECONDS) if max_wait_seconds is None
                              else max_wait_seconds),
        )
        self._headers = [(k.lower().encode("latin-1"), _header_value(v)) for k, v in (headers or {}).items()]
        self._bearer: tuple[str | None, bytes] = (None, b"")

    async def aclose(self) -> None:
        await self._pool.aclose()
        if self.credentials is not None:
            await self.credentials.aclose()

    def _target(self, path: str, params: Mapping[str, Any] | None) -> str:
        target = self._prefix + path
        pairs = [(k, _query_value(item)) for k, v in (params or {}).items() if v is not None
                 for item in (v if isinstance(v, list | tuple) else (v,))]
        if pairs:
            target += ("&" if "?" in target else "?") + "&".join(
                _query_text(k) + "=" + _query_text(v) for k, v in pairs)
        return target

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        allow_statuses: frozenset[int] = frozenset(),
    ) -> Reply:
        """Send one request; raise a problem for any status >= 400 not in ``allow_statuses``. The body is ``json``
        (sent as application/json) or ``content``, bytes sent as they are under the caller's ``Content-Type``
        (a multipart/mixed OData batch, for one)."""
        # The ids are ours (a checked correlation id, hex trace and span ids): wire bytes without another check.
        # What a caller adds is checked for line breaks and NUL (``_header_value``) and replaces an id of the same
        # name; the token (below) replaces a caller's Authorization.
        ids = correlation.outbound_wire_headers()
        send_headers: dict[str, str] = {}
        if headers:
            send_headers.update(headers)
        if idempotency_key:
            send_headers["Idempotency-Key"] = idempotency_key
        body = b""
        if json is not None:
            body = msgspec.json.encode(json)
            send_headers["Content-Type"] = "application/json"
        elif content is not None:
            body = content
        extra = [(k.lower().encode("latin-1"), _header_value(v)) for k, v in send_headers.items()]
        if extra:
            names = {name for name, _ in extra}
            ids = [header for header in ids if header[0] not in names]
            if self.credentials is not None:
                extra = [header for header in extra if header[0] != b"authorization"]
        target = self._target(path, params)
        repeatable = method in IDEMPOTENT_METHODS or bool(idempotency_key)
        started = time.perf_counter()
        outcome: int | str = "error"
        try:
            token_refreshed = stale_retried = False
            while True:
                wire = self._headers + ids + extra
                if self.credentials is not None:
                    wire.append((b"authorization", self._authorization(await self.credentials.token())))
                try:
                    answer = await self._pool.request(method, target, wire, body)
                except ConnectionDropped as exc:
                    if exc.reused and not exc.got_bytes and repeatable and not stale_retried:
                        # A keep-alive connection the server had closed while idle: nothing was processed.
                        stale_retried = True
                        metrics.record_downstream_retry(self.name, "stale_connection")
                        continue
                    outcome = "unavailable"
                    raise DownstreamProblem(f"{self.name} is unavailable ({exc})", status=503,
                                            slug="downstream-unavailable", downstream=self.name) from exc
                except PoolSaturated as exc:
                    outcome = "saturated"
                    raise DownstreamProblem(f"{self.name} is saturated: {exc}; retry shortly", status=503,
                                            slug="downstream-saturated", downstream=self.name,
                                            headers={"Retry-After": SATURATED_RETRY_AFTER}) from exc
                except (ConnectTimedOut, ResponseTimedOut) as exc:
                    outcome = "timeout"
                    raise DownstreamProblem(f"{self.name} did not answer in time", status=504,
                                            slug="downstream-timeout", downstream=self.name) from exc
                except UpstreamError as exc:
                    outcome = "unavailable"
                    raise DownstreamProblem(f"{self.name} is unavailable ({type(exc).__name__})", status=503,
                                            slug="downstream-unavailable", downstream=self.name) from exc
                if answer.status == 401 and self.credentials is not None and not token_refreshed:
                    # Our token may have been revoked or rotated: fetch a new one and try once more.
                    token_refreshed = True
                    self.credentials.invalidate()
                    metrics.record_downstream_retry(self.name, "token_refused")
                    continue
                break
            outcome = answer.status
        finally:
            self._observe(method, path, ids, started, outcome)
        response = Reply(answer.status, None, answer.body, answer.headers)
        if response.status_code >= 400 and response.status_code not in allow_statuses:
            raise self._problem_from(response)
        return response

    def _authorization(self, token: str) -> bytes:
        """``Bearer <token>`` as wire bytes, checked once per token (a token lives for minutes, a call for ms)."""
        if token != self._bearer[0]:
            self._bearer = (token, _header_value("Bearer " + token))
        return self._bearer[1]

    def _observe(self, method: str, path: str, ids: list[tuple[bytes, bytes]], started: float,
                 outcome: int | str) -> None:
        metrics.record_downstream(self.name, method, outcome, time.perf_counter() - started)
        if tracing.enabled():
            trace = correlation.current()
            traceparent = next((v.decode("latin-1") for k, v in ids if k == correlation.TRACEPARENT_WIRE), None)
            if trace is not None and traceparent:
                tracing.record_client_span(self.name, method, path, trace, traceparent, started,
                                           outcome if isinstance(outcome, int) else 0)

    def _problem_from(self, response: Reply) -> DownstreamProblem:
        body: dict[str, Any] = {}
        if response.headers.get("content-type", "").startswith((PROBLEM_CONTENT_TYPE, "application/json")):
            try:
                decoded = _decoder.decode(response.content)
                body = decoded if isinstance(decoded, dict) else {}
            except msgspec.DecodeError:
                body = {}
        status = response.status_code
        detail = str(body.get("detail") or body.get("title") or f"{self.name} answered {status}")
        extensions = {k: v for k, v in body.items()
                      if k not in {"type", "title", "status", "detail", "instance", "correlation_id", "errors"}}
        extensions.setdefault("downstream", self.name)
        errors = None
        if isinstance(body.get("errors"), list):
            errors = [msgspec.convert(e, FieldError) for e in body["errors"] if isinstance(e, dict)
                      and "pointer" in e and "detail" in e]
        slug = str(body.get("type", "")).rsplit("/", 1)[-1] or None
        if status in (502, 503, 504):
            return DownstreamProblem(detail, status=status, slug=slug, errors=errors,
                                     headers=_passthrough_headers(response), **extensions)
        if status >= 500:
            return DownstreamProblem(f"{self.name} failed: {detail}", status=502, slug="downstream-error",
                                     **extensions)
        return DownstreamProblem(detail, status=status, slug=slug, errors=errors,
                                 headers=_passthrough_headers(response), **extensions)

    async def get_json(self, path: str, type_: type[T], *, params: Mapping[str, Any] | None = None,
                       headers: Mapping[str, str] | None = None) -> T:
        response = await self.request("GET", path, params=params, headers=headers)
        return msgspec.json.decode(response.content, type=type_)


def _passthrough_headers(response: Reply) -> dict[str, str]:
    retry_after = response.headers.get("retry-after")
    return {"Retry-After": retry_after} if retry_after else {}


def _header_dict(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1")
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def _header_value(value: str) -> bytes:
    if "\r" in value or "\n" in value or "\0" in value:  # three substring scans: ~5x cheaper than any(genexpr)
        # Never let a value from a request split the outbound request into two.
        raise ProblemError("a header value carries a line break or NUL", status=400, slug="validation-error")
    return value.encode("latin-1", "replace")


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def _query_text(text: str) -> str:
    """``text`` in a query string as ``urlencode`` writes it (``quote_plus``); ids, numbers and dates are all
    unreserved characters and are left as they are without the four calls ``quote_plus`` makes."""
    return text if _UNRESERVED.fullmatch(text) else quote_plus(text)


def _query_value(value: Any) -> str:
    """As httpx spells query values: booleans lower-case, everything else as its text (a list: the key repeated)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)
