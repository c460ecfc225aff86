"""Upstream connection pools: one per tier, timeouts always set, a circuit breaker, retries of idempotent calls
within a budget, and failures named after the tier (503 unavailable or circuit open, 504 timeout).

The breaker counts upstream faults only, so that no caller can open it for everyone with hostile input:
- no connection (refused, connect timeout) and no answer in time: always the upstream's fault;
- a connection dropped mid-answer, or an answer that does not parse: ambiguous, since one request can make a
  healthy server hang up (a route that writes input into a header). It counts only when the upstream then fails
  its health check too; one probe at a time judges every drop, and a healthy verdict holds for a second;
- an answer with a status in ``breaker.failure_statuses``: only the upstream's own, not a failure it relays
  from its own dependency (problem+json naming a ``downstream``), whose own upstream's breaker is the one to open.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from urllib.parse import urlsplit

from gateway.config import UpstreamConfig
from gateway.http1 import (
    ConnectionDropped,
    ConnectTimedOut,
    Http1Pool,
    Response,
    ResponseTimedOut,
    UpstreamError,
)
from gateway.resilience import RETRIES, RETRY_BUDGET_EXHAUSTED, CircuitBreaker, RetryBudget
from runtime.problems import PROBLEM_CONTENT_TYPE, ProblemError

log = logging.getLogger("gateway.upstreams")

# Hop-by-hop headers (RFC 9110 section 7.6.1) and ones the gateway sets itself.
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
    b"transfer-encoding", b"upgrade", b"host", b"content-length", b"x-correlation-id", b"traceparent",
    b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host",
})

# Upstream response headers the gateway's own server writes.
RESPONSE_SKIP = HOP_BY_HOP | {b"date", b"server"}

HEALTH_TIMEOUT_SECONDS = 2.0
# After a dropped connection, how long a health probe's verdict stands for further drops.
PROBE_VERDICT_SECONDS = 1.0

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})



class UpstreamUnavailable(ProblemError):
    status = 503
    slug = "upstream-unavailable"
    title = "Upstream unavailable"


class UpstreamTimeout(ProblemError):
    status = 504
    slug = "upstream-timeout"
    title = "Upstream timeout"


class CircuitOpen(ProblemError):
    status = 503
    slug = "upstream-circuit-open"
    title = "Upstream unavailable"


def is_idempotent(method: str, headers: list[tuple[bytes, bytes]]) -> bool:
    if method in IDEMPOTENT_METHODS:
        return True
    return method == "POST" and any(key == b"idempotency-key" for key, _ in headers)


class Upstream:
    def __init__(self, name: str, config: UpstreamConfig) -> None:
        self.name = name
        self.config = config
        origin = urlsplit(config.url)
        if origin.scheme not in ("http", "https") or not origin.hostname:
            raise ValueError(f"upstream {name}: {config.url!r} is not an http(s) URL")
        tls = ssl.create_default_context() if origin.scheme == "https" else None
        self.pool = Http1Pool(
            origin.hostname, origin.port or (443 if tls else 80), max_connections=config.max_connections,
            connect_timeout=config.connect_timeout_seconds, response_timeout=config.timeout_seconds, tls=tls,
        )
        self.breaker = CircuitBreaker(name, config.breaker)
        self.budget = RetryBudget(config.retries)
        self.retry_statuses = frozenset(config.retries.on_statuses)
        self._probe: asyncio.Task[None] | None = None
        self._probed_at = float("-inf")
        self._probe_healthy = True

    async def send(self, method: str, target: str, headers: list[tuple[bytes, bytes]],
                   body: bytes) -> tuple[Response, int]:
        """The upstream's response and how many retries it took."""
        breaker = self.breaker
        if not breaker.allow():
            retry_after = breaker.retry_after_seconds()
            raise CircuitOpen(f"the {self.name} tier is failing; its circuit breaker is open", upstream=self.name,
                              reason="circuit_open", headers={"Retry-After": str(retry_after)})
        self.budget.deposit()
        idempotent = is_idempotent(method, headers)
        max_retries = self.config.retries.max_retries
        attempt = 0
        while True:
            try:
                response = await self.pool.request(method, target, headers, body)
            except ResponseTimedOut as exc:
                # Not retried: a slow upstream may have acted, and retries would only add to its load.
                breaker.record_failure()
                raise UpstreamTimeout(f"the {self.name} tier did not answer within {self.config.timeout_seconds:g}s",
                                      upstream=self.name, reason="upstream_timeout") from exc
            except UpstreamError as exc:
                if isinstance(exc, ConnectionDropped):
                    self._judge_drop()
                else:
                    breaker.record_failure()
                # A request that never left (no connection) is safe to retry whatever its method; one that may
                # have reached the upstream only when it is idempotent.
                retryable = not exc.maybe_processed or idempotent
                if retryable and attempt < max_retries and await self._backoff(attempt, "connection"):
                    attempt += 1
                    continue
                if isinstance(exc, ConnectTimedOut):
                    raise UpstreamTimeout(f"the {self.name} tier did not accept a connection within "
                                          f"{self.config.connect_timeout_seconds:g}s", upstream=self.name,
                                          reason="upstream_timeout") from exc
                raise UpstreamUnavailable(f"the {self.name} tier is unavailable", upstream=self.name,
                                          reason="upstream_unavailable") from exc
            status = response.status
            if status in breaker.failure_statuses and not relays_a_failure(response):
                breaker.record_failure()
            else:
                breaker.record_success()
            if (status in self.retry_statuses and idempotent and attempt < max_retries
                    and await self._backoff(attempt, str(status))):
                attempt += 1
                continue
            return response, attempt

    def _judge_drop(self) -> None:
        """Count a dropped connection against the upstream only when its health check fails too (see above)."""
        if self._probe is not None and not self._probe.done():
            return  # the probe in flight judges this drop as well
        if time.monotonic() - self._probed_at < PROBE_VERDICT_SECONDS:
            if self._probe_healthy:
                self.breaker.record_healthy_probe()
            else:
                self.breaker.record_failure()
            return
        self._probe = asyncio.get_running_loop().create_task(self._probe_after_drop())

    async def _probe_after_drop(self) -> None:
        verdict = await self.health()
        self._probed_at = time.monotonic()
        self._probe_healthy = verdict == "ok"
        if self._probe_healthy:
            log.warning("the upstream dropped a call but answers its health check: not counted as its failure",
                        extra={"upstream": self.name})
            self.breaker.record_healthy_probe()
        else:
            self.breaker.record_failure()

    async def _backoff(self, attempt: int, reason: str) -> bool:
        """Wait before retry ``attempt + 1`` (full jitter); False when the budget or the breaker says no."""
        if not self.budget.withdraw():
            RETRY_BUDGET_EXHAUSTED.labels(self.name).inc()
            return False
        if not self.breaker.allow():
            return False
        retries = self.config.retries
        delay = min(retries.backoff_max_seconds, retries.backoff_base_seconds * (2 ** attempt))
        await asyncio.sleep(random.uniform(0, delay))  # noqa: S311 - jitter, not security
        RETRIES.labels(self.name, reason).inc()
        return True

    async def health(self) -> str:
        """"ok", or why the tier's /healthz does not answer 200 (for the gateway's /readyz)."""
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
                response = await self.pool.request("GET", "/healthz", [(b"accept", b"application/json")], b"")
        except TimeoutError:
            return "unreachable: no answer in time"
        except UpstreamError as exc:
            return f"unreachable: {type(exc).__name__}"
        return "ok" if response.status == 200 else f"status {response.status}"

    async def aclose(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        await self.pool.aclose()


def relays_a_failure(response: Response) -> bool:
    """A problem+json answer naming a ``downstream``: the upstream reports its own dependency's failure."""
    content_type = response.header(b"content-type") or ""
    return content_type.startswith(PROBLEM_CONTENT_TYPE) and b'"downstream"' in response.body
