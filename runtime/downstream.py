"""Outbound calls: one pooled httpx client per downstream, timeouts always set, ids always propagated.

Tier-to-tier calls go through the gateway with the calling tier's own client identity: a
:class:`ClientCredentials` source fetches and caches its token from the gateway's token endpoint.
Failures are translated once, here: the downstream down -> 503, too slow -> 504, a 5xx -> 502, each naming
the downstream; a 4xx problem from the downstream keeps its status and detail (404 stays 404).
Every call is counted and timed per downstream (``runtime.metrics``) and, with tracing on, recorded as a client span.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from runtime import correlation, metrics, tracing
from runtime.problems import PROBLEM_CONTENT_TYPE, FieldError, ProblemError

T = TypeVar("T")

_decoder = msgspec.json.Decoder()


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


class ClientCredentials:
    """OAuth2 client_credentials token source with caching and single-flight refresh."""

    def __init__(self, token_url: str, client_id: str, client_secret: str, scope: str | None = None,
                 http: httpx.AsyncClient | None = None) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(5.0))
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
            form = {"grant_type": "client_credentials"}
            if self.scope:
                form["scope"] = self.scope
            try:
                response = await self._http.post(
                    self.token_url, data=form, auth=(self.client_id, self.client_secret)
                )
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
            body = response.json()
            self._token = body["access_token"]
            # Renew a minute early (or at half-life for short tokens) so no call carries a dying token.
            lifetime = float(body.get("expires_in", 300))
            self._expires_at = time.monotonic() + max(lifetime - 60.0, lifetime / 2)
            return self._token

    async def aclose(self) -> None:
        await self._http.aclose()


class Downstream:
    """A named downstream with its own connection pool."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        timeout_seconds: float = 10.0,
        credentials: ClientCredentials | None = None,
        max_connections: int = 100,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 3.0)),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers=dict(headers or {}),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()
        if self.credentials is not None:
            await self.credentials.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        allow_statuses: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        """Send one request; raise a problem for any status >= 400 not in ``allow_statuses``."""
        send_headers = correlation.outbound_headers()
        if headers:
            send_headers.update(headers)
        if idempotency_key:
            send_headers["Idempotency-Key"] = idempotency_key
        content = None
        if json is not None:
            content = msgspec.json.encode(json)
            send_headers["Content-Type"] = "application/json"
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        started = time.perf_counter()
        outcome: int | str = "error"
        try:
            for attempt in (1, 2):
                if self.credentials is not None:
                    send_headers["Authorization"] = "Bearer " + await self.credentials.token()
                try:
                    response = await self._client.request(
                        method, path, params=clean_params, content=content, headers=send_headers
                    )
                except httpx.TimeoutException as exc:
                    outcome = "timeout"
                    raise DownstreamProblem(
                        f"{self.name} did not answer in time", status=504, slug="downstream-timeout",
                        downstream=self.name,
                    ) from exc
                except httpx.TransportError as exc:
                    outcome = "unavailable"
                    raise DownstreamProblem(
                        f"{self.name} is unavailable ({type(exc).__name__})", status=503,
                        slug="downstream-unavailable", downstream=self.name,
                    ) from exc
                if response.status_code == 401 and self.credentials is not None and attempt == 1:
                    # Our token may have been revoked or rotated: fetch a new one and try once more.
                    self.credentials.invalidate()
                    metrics.record_downstream_retry(self.name, "token_refused")
                    continue
                break
            outcome = response.status_code
        finally:
            self._observe(method, path, send_headers, started, outcome)
        if response.status_code >= 400 and response.status_code not in allow_statuses:
            raise self._problem_from(response)
        return response

    def _observe(self, method: str, path: str, sent_headers: Mapping[str, str], started: float,
                 outcome: int | str) -> None:
        metrics.record_downstream(self.name, method, outcome, time.perf_counter() - started)
        if tracing.enabled():
            trace = correlation.current()
            traceparent = sent_headers.get(correlation.TRACEPARENT_HEADER)
            if trace is not None and traceparent:
                tracing.record_client_span(self.name, method, path, trace, traceparent, started,
                                           outcome if isinstance(outcome, int) else 0)

    def _problem_from(self, response: httpx.Response) -> DownstreamProblem:
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
            return DownstreamProblem(detail, status=status, slug=slug, errors=errors, **extensions)
        if status >= 500:
            return DownstreamProblem(f"{self.name} failed: {detail}", status=502, slug="downstream-error",
                                     **extensions)
        return DownstreamProblem(detail, status=status, slug=slug, errors=errors,
                                 headers=_passthrough_headers(response), **extensions)

    async def get_json(self, path: str, type_: type[T], *, params: Mapping[str, Any] | None = None) -> T:
        response = await self.request("GET", path, params=params)
        return msgspec.json.decode(response.content, type=type_)


def _passthrough_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower() == "retry-after"}
