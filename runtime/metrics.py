"""Prometheus metrics every process exposes at ``/metrics``: calls served, calls made downstream, and whatever a
tier adds (the process tier's business gauges).

Labels are bounded by construction: the route is the template the router matched (``/approvals/{approval_id}``),
never the raw path, and a request no route matched is counted under ``-``; clients are the configured client ids.
Recording is a dictionary look-up and two increments per call, on the request's own task (no lock, no I/O).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
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


class _Labels:
    """Label children cached per label tuple: ``labels()`` parses and locks, a dict hit does not."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, ...], tuple[Any, Any]] = {}

    def observe(self, labels: tuple[str, ...], seconds: float) -> None:
        pair = self._children.get(labels)
        if pair is None:
            pair = self._children[labels] = (REQUESTS.labels(*labels), LATENCY.labels(*labels))
        pair[0].inc()
        pair[1].observe(seconds)


_served = _Labels()
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
    _served.observe((service, api, version, route_label, client or "-", str(status)), seconds)


_downstream_children: dict[tuple[str, str, int | str], tuple[Any, Any]] = {}


def record_downstream(downstream: str, method: str, status: int | str, seconds: float) -> None:
    # Label children cached as for calls served: ``labels()`` validates and locks on every call, a dict hit does not.
    pair = _downstream_children.get((downstream, method, status))
    if pair is None:
        status_label = str(status)
        pair = _downstream_children[(downstream, method, status)] = (
            DOWNSTREAM_REQUESTS.labels(downstream, method, status_label),
            DOWNSTREAM_LATENCY.labels(downstream, status_label),
        )
    pair[0].inc()
    pair[1].observe(seconds)


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
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, directory)
    return generate_latest(registry)


__all__ = ["CONTENT_TYPE_LATEST", "ScrapeHook", "display_template", "exposition", "latest", "record_downstream",
           "record_downstream_retry", "record_served", "split_template"]
