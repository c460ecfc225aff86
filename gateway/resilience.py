"""Upstream resilience: a circuit breaker per upstream and a retry budget, both in-process and lock-free
(the event loop is single-threaded, so plain attributes are consistent).

Breaker: ``closed`` counts consecutive upstream faults (gateway.upstreams decides what is one); at
``failure_threshold`` it opens and refuses calls at once (503 naming the upstream, with Retry-After) for
``open_seconds``; then ``half_open`` lets a few trial calls through: a success closes it, a failure opens it again.
"""

from __future__ import annotations

import enum
import logging
import time

from prometheus_client import Counter, Gauge

from gateway.config import BreakerConfig, RetryConfig

log = logging.getLogger("gateway.resilience")

BREAKER_STATE = Gauge("psgw_upstream_breaker_state", "Circuit breaker state (0 closed, 1 open, 2 half-open)",
                      ["upstream"])
BREAKER_TRANSITIONS = Counter("psgw_upstream_breaker_transitions_total", "Circuit breaker state changes",
                              ["upstream", "state"])
RETRIES = Counter("psgw_upstream_retries_total", "Retried upstream calls", ["upstream", "reason"])
RETRY_BUDGET_EXHAUSTED = Counter("psgw_upstream_retry_budget_exhausted_total",
                                 "Retries skipped because the retry budget was spent", ["upstream"])


class BreakerState(enum.IntEnum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitBreaker:
    def __init__(self, upstream: str, config: BreakerConfig) -> None:
        self.upstream = upstream
        self.config = config
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at = 0.0
        self.trials = 0
        self.failure_statuses = frozenset(config.failure_statuses)
        BREAKER_STATE.labels(upstream).set(0)

    def allow(self) -> bool:
        if not self.config.enabled or self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            if time.monotonic() - self.opened_at < self.config.open_seconds:
                return False
            self._move(BreakerState.HALF_OPEN)
            self.trials = 0
        if self.trials < self.config.half_open_max_calls:
            self.trials += 1
            return True
        return False

    def retry_after_seconds(self) -> int:
        if self.state is BreakerState.OPEN:
            return max(1, int(self.config.open_seconds - (time.monotonic() - self.opened_at)) + 1)
        return 1

    def record_success(self) -> None:
        self.consecutive_failures = 0
        if self.state is not BreakerState.CLOSED:
            self._move(BreakerState.CLOSED)

    def record_healthy_probe(self) -> None:
        """The upstream passed a health check after an ambiguous failure (a dropped connection): not its fault.
        Closed: nothing changes. Half-open: the trial's drop was the call's, and the upstream is up, so close."""
        if self.state is BreakerState.HALF_OPEN:
            self.record_success()

    def record_failure(self) -> None:
        if not self.config.enabled:
            return
        self.consecutive_failures += 1
        if self.state is BreakerState.HALF_OPEN or (
                self.state is BreakerState.CLOSED and self.consecutive_failures >= self.config.failure_threshold):
            self.opened_at = time.monotonic()
            self._move(BreakerState.OPEN)

    def _move(self, state: BreakerState) -> None:
        if state is self.state:
            return
        log.warning("circuit breaker %s -> %s", self.state.name.lower(), state.name.lower(),
                    extra={"upstream": self.upstream, "consecutive_failures": self.consecutive_failures})
        self.state = state
        BREAKER_STATE.labels(self.upstream).set(int(state))
        BREAKER_TRANSITIONS.labels(self.upstream, state.name.lower()).inc()

    def snapshot(self) -> dict[str, object]:
        return {"state": self.state.name.lower(), "consecutive_failures": self.consecutive_failures,
                "retry_after_seconds": self.retry_after_seconds() if self.state is BreakerState.OPEN else 0}


class RetryBudget:
    """Retries earn ``budget_ratio`` of a token per call, plus ``budget_min_per_second`` over time."""

    def __init__(self, config: RetryConfig) -> None:
        self.ratio = config.budget_ratio
        self.per_second = config.budget_min_per_second
        self.cap = max(10.0, self.per_second * 10)
        self.tokens = self.cap
        self.refilled_at = time.monotonic()

    def deposit(self) -> None:
        tokens = self.tokens + self.ratio
        self.tokens = tokens if tokens < self.cap else self.cap

    def withdraw(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.cap, self.tokens + (now - self.refilled_at) * self.per_second)
        self.refilled_at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
