"""Calls to a vendor within its API limits: the one place the system tier's limit rule lives.

Every bundled vendor connector sends through a :class:`VendorDownstream`:

- at most ``max_concurrency`` calls to one vendor at once (a semaphore per vendor, from settings);
- a vendor's 429 or 503 with ``Retry-After`` is waited out and the call sent again when that is safe (a read, or a
  write carrying an Idempotency-Key the vendor honours), as long as the waits stay within ``max_wait_seconds``;
- otherwise the limit is the caller's 503 ``vendor-limit-exceeded`` problem naming the vendor, with ``Retry-After``
  (never a 502: nothing is broken, the vendor's budget is spent);
- a dialect's own "budget spent" answer (Salesforce's 403 ``REQUEST_LIMIT_EXCEEDED``) is exhaustion too, with the
  configured wait as ``Retry-After`` since such a vendor does not say when.

Counted per vendor: ``psgw_vendor_limited_total`` (429/503/budget answers), ``psgw_vendor_waits_total`` and
``psgw_vendor_wait_seconds_total`` (Retry-After honoured), ``psgw_vendor_exhausted_total`` (503s given to callers);
calls themselves are ``psgw_downstream_requests_total`` (``runtime.downstream``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client import Counter

from runtime.downstream import IDEMPOTENT_METHODS, Downstream, Reply
from runtime.problems import ProblemError
from system_apis.vendor_auth import VendorCredentials, VendorToken, token_source

LIMITED = Counter("psgw_vendor_limited_total", "Vendor answers saying a call limit was reached", ["vendor", "status"])
WAITS = Counter("psgw_vendor_waits_total", "Vendor Retry-After waits honoured before calling again", ["vendor"])
WAIT_SECONDS = Counter("psgw_vendor_wait_seconds_total", "Seconds spent waiting out vendor Retry-After", ["vendor"])
EXHAUSTED = Counter(
    "psgw_vendor_exhausted_total", "Calls answered 503 because a vendor's limit was reached", ["vendor"]
)
LIMIT_STATUSES = frozenset({429, 503})
# ``allow_statuses | LIMIT_STATUSES`` per set a connector passes (a handful of constants), not built on every call.
_WITH_LIMITS: dict[frozenset[int], frozenset[int]] = {}


def _with_limits(allow_statuses: frozenset[int]) -> frozenset[int]:
    found = _WITH_LIMITS.get(allow_statuses)
    if found is None:
        found = allow_statuses | LIMIT_STATUSES
        if len(_WITH_LIMITS) < 256:  # connectors pass constants; the cap only guards against a computed set
            _WITH_LIMITS[allow_statuses] = found
    return found


@dataclass(frozen=True)
class VendorLimits:
    """The system tier's settings for one vendor's limits (``SystemSettings``)."""

    max_concurrency: int = 16
    max_wait_seconds: float = 10.0
    # What to tell callers when the vendor says its budget is spent without saying when it comes back.
    exhausted_retry_after_seconds: int = 3600
    # Does the vendor honour Idempotency-Key on writes (then a limited write may be sent again)? Per connector.
    honours_idempotency_key: bool = False


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` as seconds (delta-seconds form; an HTTP date or garbage counts as absent)."""
    value = headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 and math.isfinite(seconds) else None


def vendor_exhausted(vendor: str, retry_after: float) -> ProblemError:
    seconds = max(1, math.ceil(retry_after))
    return ProblemError(
        f"{vendor} API limit reached; retry after {seconds} s",
        status=503,
        slug="vendor-limit-exceeded",
        downstream=vendor,
        headers={"Retry-After": str(seconds)},
    )


class VendorDownstream(Downstream):
    """A :class:`Downstream` to a vendor, authenticated and sent within the vendor's limits (module docstring).

    ``grant`` at ``token_path`` (``system_apis.vendor_auth``) with ``credentials`` authenticates the calls (none
    without credentials); ``honours_idempotency_key``: the vendor answers a repeated keyed write with the first
    outcome, so a limited write may be sent again; ``budget_spent(reply)`` recognises the dialect's own exhaustion
    answer (default: none beyond 429/503).
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        timeout_seconds: float,
        grant: type[VendorToken],
        token_path: str,
        credentials: VendorCredentials | None = None,
        limits: VendorLimits | None = None,
        honours_idempotency_key: bool = False,
        budget_spent: Callable[[Reply], bool] | None = None,
    ) -> None:
        tokens = token_source(grant, name, base_url.rstrip("/") + token_path, credentials, timeout_seconds)
        super().__init__(name, base_url, timeout_seconds=timeout_seconds, credentials=tokens)
        self.limits = replace(limits or VendorLimits(), honours_idempotency_key=honours_idempotency_key)
        self._slots = asyncio.Semaphore(self.limits.max_concurrency)
        self._budget_spent = budget_spent or (lambda _reply: False)

    async def request(
        self,
        method: str,
        path: str,
        *,
        allow_statuses: frozenset[int] = frozenset(),
        idempotency_key: str | None = None,
        reads_only: bool = False,
        **kwargs: Any,
    ) -> Reply:
        """``reads_only``: a POST that changes nothing (a query sent as a body, NetSuite's SuiteQL) is as safe to
        send again after a 429 as a GET."""
        repeatable = (reads_only or method in IDEMPOTENT_METHODS
                      or (bool(idempotency_key) and self.limits.honours_idempotency_key))
        waited = 0.0
        while True:
            async with self._slots:
                reply = await super().request(
                    method,
                    path,
                    allow_statuses=_with_limits(allow_statuses),
                    idempotency_key=idempotency_key,
                    **kwargs,
                )
            spent = self._budget_spent(reply)
            if reply.status_code not in LIMIT_STATUSES and not spent:
                return reply
            LIMITED.labels(self.name, str(reply.status_code)).inc()
            retry_after = retry_after_seconds(reply.headers)
            if spent or retry_after is None:
                if not spent and reply.status_code in allow_statuses:
                    return reply
                if not spent and reply.status_code == 503:  # an outage, not a limit: as any downstream 503
                    raise self._problem_from(reply)
                EXHAUSTED.labels(self.name).inc()
                raise vendor_exhausted(self.name, retry_after or self.limits.exhausted_retry_after_seconds)
            if not repeatable or waited + retry_after > self.limits.max_wait_seconds:
                EXHAUSTED.labels(self.name).inc()
                raise vendor_exhausted(self.name, retry_after)
            WAITS.labels(self.name).inc()
            WAIT_SECONDS.labels(self.name).inc(retry_after)
            waited += retry_after
            await asyncio.sleep(retry_after)
