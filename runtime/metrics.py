"""Prometheus metrics every process exposes at ``/metrics``: calls served, calls made downstream, and whatever a
tier adds (the process tier's business gauges).

Labels are bounded by construction: the route is the template the router matched (``/approvals/{approval_id}``),
never the raw path, and a request no route matched is counted under ``-``; clients are the configured client ids.
Recording is a dictionary look-up and a few additions per call, on the request's own task (no lock, no I/O): the
counts wait as plain numbers and are added to the Prometheus metrics when they are read (:func:`latest`), where
``Counter.inc`` and ``Histogram.observe`` took a lock per value and searched the buckets in Python on every call
(~18 us of each tier call: one call served, one made). Worker processes sharing a port
(``PROMETHEUS_MULTIPROC_DIR``) record at once: any of them answers a scrape for all, from the shared files.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

log = logging.getLogger("runtime.metrics")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_LABELS = ["service", "api", "version", "route", "client", "status"]
REQUESTS = Counter("psgw_tier_requests_total", "Calls served by this process", _LABELS)
LATENCY = Histogram("psgw_tier_request_duration_seconds", "Time to answer a call in this process", _LABELS,
                    buckets=LATENCY_BUCKETS)
DOWNSTREAM_REQUESTS = Counter("psgw_downstream_requests_total", "Calls this process made to a downstream",
                              ["downstream", "method", "status"])
DOWNSTREAM_LATENCY = Histogram("psgw_downstream_duration_seconds",
                               "Latency of calls to a downstream (its retries included)", ["downstream", "status"],
                               buckets=LATENCY_BUCKETS)
DOWNSTREAM_RETRIES = Counter("psgw_downstream_retries_total", "Calls to a downstream sent again", ["downstream",
                                                                                                  "reason"])

# "/process/timesheets/v1/approvals/{approval_id:str}" -> api "process/timesheets", version "1",
# route "/approvals/{approval_id}" (the contract's spelling of the template).
_API_PATH = re.compile(r"^/(system|process|experience)/([a-z0-9][a-z0-9-]*)/v(\d+)(/.*)?$")
_PARAM_TYPE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):[^}]+\}")

ScrapeHook = Callable[[Any], Awaitable[None]]
"""Runs before each scrape with the app's state (e.g. refreshing gauges computed from a store)."""


_UPPER_BOUNDS = (*LATENCY_BUCKETS, float("inf"))  # as Histogram keeps them: the last bucket is +Inf
_DEFERRED = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")


class _Timed:
    """Calls counted and timed per label tuple for a counter and a histogram with the same labels' children.

    Between scrapes each label tuple holds ``[calls, seconds, bucket counts...]`` (a bucket by ``bisect``, as
    ``Histogram.observe`` picks it: the first upper bound >= the value); :meth:`flush` adds them to the metrics."""

    def __init__(self, counter: Counter, histogram: Histogram, histogram_labels: Any = None) -> None:
        self._counter = counter
        self._histogram = histogram
        # The histogram's labels from the counter's (None: the same ones).
        self._histogram_labels = histogram_labels
        self._pending: dict[tuple[Any, ...], list[Any]] = {}
        self._children: dict[tuple[Any, ...], tuple[Any, Any]] = {}

    def _pair(self, labels: tuple[Any, ...]) -> tuple[Any, Any]:
        pair = self._children.get(labels)
        if pair is None:
            texts = tuple(str(label) for label in labels)
            histogram_texts = texts if self._histogram_labels is None else self._histogram_labels(texts)
            pair = self._children[labels] = (self._counter.labels(*texts), self._histogram.labels(*histogram_texts))
        return pair

    def observe(self, labels: tuple[Any, ...], seconds: float) -> None:
        if not _DEFERRED:
            pair = self._pair(labels)
            pair[0].inc()
            pair[1].observe(seconds)
            return
        pending = self._pending.get(labels)
        if pending is None:
            self._pair(labels)  # the series exists from its first call on, as with an immediate inc
            pending = self._pending[labels] = [0, 0.0] + [0] * len(_UPPER_BOUNDS)
        pending[0] += 1
        pending[1] += seconds
        pending[2 + bisect_left(_UPPER_BOUNDS, seconds)] += 1

    def flush(self) -> None:
        for labels, pending in self._pending.items():
            calls = pending[0]
            if not calls:
                continue
            counter, histogram = self._pair(labels)
            counter.inc(calls)
            histogram._sum.inc(pending[1])
            for index, count in enumerate(pending[2:]):
                if count:
                    histogram._buckets[index].inc(count)
            pending[:] = [0, 0.0] + [0] * len(_UPPER_BOUNDS)


_served = _Timed(REQUESTS, LATENCY)
_template_cache: dict[str, tuple[str, str, str]] = {}


def split_template(template: str | None) -> tuple[str, str, str]:
    """(api, version, route) of a router path template; ``-`` for what no route matched."""
    if not template:
        return "-", "-", "-"
    cached = _template_cache.get(template)
    if cached is not None:
        return cached
    clean = _PARAM_TYPE.sub(r"{\1}", template)
    match = _API_PATH.match(clean)
    if match is None:
        result = ("-", "-", clean)
    else:
        layer, api, version, rest = match.groups()
        result = (f"{layer}/{api}", version, rest or "/")
    if len(_template_cache) < 10_000:  # templates are finite; the cap only guards against a router surprise
        _template_cache[template] = result
    return result


def display_template(template: str | None) -> str | None:
    """The template as the contract spells it (``/process/timesheets/v1/approvals/{approval_id}``)."""
    if not template:
        return None
    api, version, route = split_template(template)
    return route if api == "-" else f"/{api}/v{version}{route if route != '/' else ''}"


def record_served(service: str, method: str, template: str | None, client: str | None, status: int,
                  seconds: float) -> None:
    api, version, route = split_template(template)
    route_label = f"{method} {route}" if route != "-" else "-"
    _served.observe((service, api, version, route_label, client or "-", status), seconds)


# The latency histogram has no method label: (downstream, method, status) -> (downstream, status).
_downstream = _Timed(DOWNSTREAM_REQUESTS, DOWNSTREAM_LATENCY, histogram_labels=lambda texts: (texts[0], texts[2]))


def record_downstream(downstream: str, method: str, status: int | str, seconds: float) -> None:
    _downstream.observe((downstream, method, status), seconds)


def record_downstream_retry(downstream: str, reason: str) -> None:
    DOWNSTREAM_RETRIES.labels(downstream, reason).inc()


async def exposition(state: Any, hooks: Sequence[ScrapeHook], timeout_seconds: float = 5.0) -> bytes:
    """The text exposition, after the scrape hooks ran (a failing or slow hook is logged, never fatal:
    the gauges keep their last values and the rest of the scrape is still served)."""
    for hook in hooks:
        try:
            await asyncio.wait_for(hook(state), timeout=timeout_seconds)
        except Exception:
            log.warning("a metrics scrape hook failed; serving its last values", exc_info=True)
    return latest()


def latest() -> bytes:
    """This process's metrics, or, for workers sharing a port (PROMETHEUS_MULTIPROC_DIR set by
    gateway/workers.py), the sum over all of them, so any worker answers a scrape for the whole group."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        _served.flush()
        _downstream.flush()
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, directory)
    return generate_latest(registry)


__all__ = ["CONTENT_TYPE_LATEST", "ScrapeHook", "display_template", "exposition", "latest", "record_downstream",
           "record_downstream_retry", "record_served", "split_template"]
