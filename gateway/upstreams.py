"""Upstream connection pools: one per tier, timeouts always set, a circuit breaker, retries of idempotent calls
within a budget, and failures named after the tier (503 unavailable or circuit open, 504 timeout)."""

from __future__ import annotations

import asyncio
import random

import httpx

from gateway.config import UpstreamConfig
from gateway.resilience import RETRIES, RETRY_BUDGET_EXHAUSTED, CircuitBreaker, RetryBudget
from runtime.problems import ProblemError

# Hop-by-hop headers (RFC 9110 section 7.6.1) and ones the gateway sets itself.
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
    b"transfer-encoding", b"upgrade", b"host", b"content-length", b"x-correlation-id", b"traceparent",
    b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host",
})

# Upstream response headers the gateway's own server writes.
RESPONSE_SKIP = HOP_BY_HOP | {b"date", b"server"}

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

# The upstream may not have seen the call at all (or could not have acted on it): safe to retry when idempotent.
_RETRYABLE_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError,
                     httpx.WriteError)


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
        self.client = httpx.AsyncClient(
            base_url=config.url.rstrip("/"),
            timeout=httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds),
            limits=httpx.Limits(max_connections=config.max_connections,
                                max_keepalive_connections=config.max_connections),
            follow_redirects=False,
        )
        self.breaker = CircuitBreaker(name, config.breaker)
        self.budget = RetryBudget(config.retries)
        self.retry_statuses = frozenset(config.retries.on_statuses)

    async def send(self, method: str, target: str, headers: list[tuple[bytes, bytes]],
                   body: bytes) -> tuple[httpx.Response, int]:
        """The upstream's response and how many retries it took."""
        breaker = self.breaker
        if not breaker.allow():
            retry_after = breaker.retry_after_seconds()
            raise CircuitOpen(f"the {self.name} tier is failing; its circuit breaker is open", upstream=self.name,
                              reason="circuit_open", headers={"Retry-After": str(retry_after)})
        self.budget.deposit()
        retries_left = self.config.retries.max_retries if is_idempotent(method, headers) else 0
        attempt = 0
        while True:
            try:
                response = await self.client.request(method, target, headers=headers, content=body or None)
            except _RETRYABLE_ERRORS as exc:
                breaker.record_failure()
                if attempt < retries_left and await self._backoff(attempt, "connection"):
                    attempt += 1
                    continue
                if isinstance(exc, httpx.ConnectTimeout):
                    raise UpstreamTimeout(f"the {self.name} tier did not accept a connection within "
                                          f"{self.config.connect_timeout_seconds:g}s", upstream=self.name,
                                          reason="upstream_timeout") from exc
                raise UpstreamUnavailable(f"the {self.name} tier is unavailable", upstream=self.name,
                                          reason="upstream_unavailable") from exc
            except httpx.TimeoutException as exc:
                # Not retried: a slow upstream may have acted, and retries would only add to its load.
                breaker.record_failure()
                raise UpstreamTimeout(f"the {self.name} tier did not answer within {self.config.timeout_seconds:g}s",
                                      upstream=self.name, reason="upstream_timeout") from exc
            except httpx.TransportError as exc:
                breaker.record_failure()
                raise UpstreamUnavailable(f"the {self.name} tier is unavailable", upstream=self.name,
                                          reason="upstream_unavailable") from exc
            status = response.status_code
            if status in breaker.failure_statuses:
                breaker.record_failure()
            else:
                breaker.record_success()
            if status in self.retry_statuses and attempt < retries_left and await self._backoff(attempt, str(status)):
                await response.aclose()
                attempt += 1
                continue
            return response, attempt

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

    async def aclose(self) -> None:
        await self.client.aclose()
