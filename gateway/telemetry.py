"""What the gateway itself reports about each call, off the hot path: request metrics and the access log.

The hot path hands one :class:`CallEntry` to :meth:`Telemetry.record` (a deque append, plus the access log
line unless ``access_log: false``). A background task drains the queue every ``interval`` seconds into the
metrics (``/metrics`` drains it first, so a scrape is always current). Policies own their metrics (each counts
its refusals where it decides them) and the audit log is a log-phase policy (policies/audit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from bisect import bisect_left
from collections import deque
from typing import Any

from prometheus_client import Counter, Histogram

from policies.audit import CallEntry

log = logging.getLogger("gateway.access")

_LABELS = ["api", "version", "route", "client", "status"]
REQUESTS = Counter("psgw_requests_total", "Calls through the gateway", _LABELS)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LATENCY = Histogram("psgw_request_duration_seconds", "Call latency at the gateway (policies + upstream)", _LABELS,
                    buckets=LATENCY_BUCKETS)
UPSTREAM_LATENCY = Histogram("psgw_upstream_duration_seconds", "Upstream call latency (retries included)",
                             ["upstream", "status"],
                             buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                                      30.0))
DECISIONS = Counter("psgw_policy_decisions_total", "Policy outcomes", ["policy", "outcome"])

# Event-loop time one drain turn may take before it yields to the calls in flight. A fixed slice of 200 calls
# measured 1.2 ms (median) to 2.1 ms of CPU per turn under wrk, more on a loaded machine: each turn is a stall
# every call in flight pays, so a turn is bounded by time instead (checked every DRAIN_CHECK_EVERY calls).
# A turn still takes at least 1/DRAIN_MIN_SHARE of the queue, so under any load the queue stays bounded
# (at most DRAIN_MIN_SHARE times the calls that end in one loop turn) rather than falling ever further behind.
DRAIN_TURN_SECONDS = 0.0003
# How often the queue is drained. Every 0.5 s, ~2,500 calls at 5,000 req/s made ~12 budgeted turns in a row, each
# a stall for the calls in flight then; every 0.05 s the same work comes in one or two turns at a time.
DRAIN_INTERVAL_SECONDS = 0.05
DRAIN_CHECK_EVERY = 16
DRAIN_MIN_SHARE = 16


class Telemetry:
    def __init__(self, *, interval: float = DRAIN_INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._pending: deque[CallEntry] = deque()
        self._task: asyncio.Task[None] | None = None
        self._children: dict[tuple[Any, ...], Any] = {}

    def record(self, entry: CallEntry, *, access_log: bool = True) -> None:
        """Hot path: queue the call for metrics; write the access log line now (when on), so a log line exists
        by the time the caller has its answer."""
        self._pending.append(entry)
        if access_log:
            self._log(entry)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="telemetry")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                # In slices, yielding between them: draining thousands of calls in one go stalled the loop for
                # tens of milliseconds, which showed as the gateway's p99 (bench/gateway.py).
                while self._pending:
                    self.drain(budget_seconds=DRAIN_TURN_SECONDS)
                    await asyncio.sleep(0)
            except Exception:
                log.exception("telemetry drain failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.drain()

    def _child(self, metric: Any, *labels: Any) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def drain(self, limit: int | None = None, *, budget_seconds: float | None = None) -> None:
        """Turn queued calls into metrics: all of them, at most ``limit``, or as many as ``budget_seconds``
        allow (but at least DRAIN_CHECK_EVERY calls and 1/DRAIN_MIN_SHARE of the queue)."""
        pending = self._pending
        count = len(pending) if limit is None else min(limit, len(pending))
        deadline = time.perf_counter() + budget_seconds if budget_seconds is not None else None
        floor = max(DRAIN_CHECK_EVERY, len(pending) // DRAIN_MIN_SHARE)
        # Calls are added up per label set first and each metric is incremented once per label set: a call made
        # ~10 counter increments and two histogram observations, each a lock and a label lookup.
        calls: dict[tuple[str, ...], list[float]] = {}  # request labels -> latencies (ms)
        upstreams: dict[tuple[str, str], list[float]] = {}  # (upstream, status) -> upstream latencies (ms)
        decisions: dict[tuple[tuple[str, str], ...], int] = {}  # a call's decisions -> calls that made them
        for done in range(count):
            if (deadline is not None and done >= floor and not done % DRAIN_CHECK_EVERY
                    and time.perf_counter() > deadline):
                break
            self._observe(pending.popleft(), calls, upstreams, decisions)
        for labels, latencies in calls.items():
            self._child(REQUESTS, *labels).inc(len(latencies))
            observe_all(self._child(LATENCY, *labels), [ms / 1000 for ms in latencies])
        for labels, latencies in upstreams.items():
            observe_all(self._child(UPSTREAM_LATENCY, *labels), [ms / 1000 for ms in latencies])
        outcomes: dict[tuple[str, str], int] = {}
        for made, times in decisions.items():
            for decision in made:
                outcomes[decision] = outcomes.get(decision, 0) + times
        for decision, times in outcomes.items():
            self._child(DECISIONS, *decision).inc(times)

    @staticmethod
    def _log(entry: CallEntry) -> None:
        log.info("call", extra={
            "correlation_id": entry.correlation_id,
            "trace_id": entry.trace_id,
            "method": entry.method,
            "path": entry.path,
            "status": entry.status,
            "api": entry.api,
            "version": entry.version,
            "route": entry.route,
            "client_id": entry.client_id,
            "subject": entry.subject,
            "issuer": entry.issuer,
            "decisions": entry.outcome,
            "duration_ms": entry.latency_ms,
            "upstream_ms": entry.upstream_ms,
        })

    @staticmethod
    def _observe(entry: CallEntry, calls: dict[tuple[str, ...], list[float]],
                 upstreams: dict[tuple[str, str], list[float]],
                 decisions: dict[tuple[tuple[str, str], ...], int]) -> None:
        status = str(entry.status)
        labels = (entry.api or "-", str(entry.version) if entry.version is not None else "-", entry.route or "-",
                  entry.client_id or "-", status)
        if (latencies := calls.get(labels)) is None:
            latencies = calls[labels] = []
        latencies.append(entry.latency_ms)
        if entry.upstream_ms is not None and entry.upstream:
            key = (entry.upstream, status)
            if (upstream := upstreams.get(key)) is None:
                upstream = upstreams[key] = []
            upstream.append(entry.upstream_ms)
        made = tuple(entry.outcome.items())
        decisions[made] = decisions.get(made, 0) + 1


def observe_all(histogram: Any, amounts: list[float]) -> None:
    """``histogram.observe(a)`` for every amount, with each bucket and the sum incremented once.

    One observe takes the sum's lock and a bucket's lock and walks the bucket bounds in Python; the drain made two
    per call (~1.7 us of its ~4 us per call). This is prometheus_client's Histogram.observe (0.2x) for many
    amounts at once: an amount is counted in the first bucket whose upper bound is >= it (bisect_left on the
    sorted bounds, the last being +Inf), the sum adds them all. tests/gateway/test_off_loop_batches.py checks
    it against observe itself, so a prometheus_client that changes these internals fails there first."""
    bounds = histogram._upper_bounds
    buckets = [0] * len(bounds)
    for amount in amounts:
        buckets[bisect_left(bounds, amount)] += 1
    histogram._sum.inc(math.fsum(amounts))
    for index, count in enumerate(buckets):
        if count:
            histogram._buckets[index].inc(count)
