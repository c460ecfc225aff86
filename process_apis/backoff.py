"""Retry timing for the outboxes: exponential backoff with jitter, and which failures are worth retrying."""

from __future__ import annotations

import datetime as dt
import random

from runtime.downstream import DownstreamProblem
from runtime.storage import utcnow

# A downstream that is down, slow, overloaded or briefly refusing our token will answer differently later.
TRANSIENT_STATUSES = frozenset({401, 403, 408, 425, 429, 500, 502, 503, 504})

_random = random.SystemRandom()


def delay_seconds(attempts: int, base: float, cap: float) -> float:
    """Equal jitter: half the exponential delay fixed, half random, so retries of many rows spread out."""
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    return ceiling / 2 + _random.uniform(0, ceiling / 2)


def next_attempt_at(attempts: int, base: float, cap: float) -> dt.datetime:
    return utcnow() + dt.timedelta(seconds=delay_seconds(attempts, base, cap))


def is_transient(exc: BaseException) -> bool:
    """True when trying again later may succeed; False when the downstream refused the request itself."""
    if isinstance(exc, DownstreamProblem):
        return exc.status in TRANSIENT_STATUSES
    return True


def describe(exc: BaseException) -> str:
    if isinstance(exc, DownstreamProblem):
        return f"{exc.status} {exc.slug or ''}: {exc.detail or ''}".strip()
    return f"{type(exc).__name__}: {exc}"
