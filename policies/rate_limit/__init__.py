"""Rate limits and quotas: per client by SLA tier (rate + burst, daily and monthly quotas), per person within a
client for user tokens (the tier's ``per_subject`` rate and daily quota, so one consultant cannot spend a whole
app's budget), plus per-API or per-route limits, all checked in one store call (one Redis round trip) per request.

The rate is GCRA (a leaky bucket without a timer: one timestamp per key), so bursts up to ``burst`` pass and
then calls are spaced at ``1/requests_per_second``. Quotas are fixed UTC windows (day, month). Answers carry
the IETF draft ``RateLimit-Policy`` / ``RateLimit`` headers (or the older ``RateLimit-Limit/-Remaining/-Reset``),
and a refusal is 429 problem+json with ``Retry-After``, which is the ``t`` of the limit that refused (for a
rate: when its next call passes). When Redis cannot answer, the policy fails open or
closed as configured, counts it in ``psgw_rate_limit_store_failures_total`` and logs it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import msgspec
from prometheus_client import Counter

from policies.exchange import ApiTarget, Exchange
from policies.rate_limit.store import (
    MemoryStore,
    QuotaCheck,
    RateCheck,
    RateLimitStore,
    RedisStore,
    StoreUnavailable,
    Verdict,
    interval_us,
)
from policies.registry import BuildContext, PolicySpec, StoreSpec
from runtime.problems import ProblemError

log = logging.getLogger("policies.rate_limit")

STORE_FAILURES = Counter(
    "psgw_rate_limit_store_failures_total",
    "Rate-limit store (Redis) failures, by store and the fail mode applied",
    ["store", "mode"],
)
RATE_LIMITED = Counter("psgw_rate_limited_total", "Calls refused with 429", ["api", "version", "client"])

__all__ = [
    "POLICY",
    "LimitConfig",
    "MemoryStore",
    "RateLimit",
    "RateLimitConfig",
    "RateLimitStore",
    "RedisStore",
    "SubjectLimits",
    "TierLimits",
    "create_store",
    "store_required",
]


class LimitConfig(msgspec.Struct, kw_only=True, frozen=True):
    """An extra limit per client on one API version, or on one of its routes (``"POST /time-entries"``)."""

    api: str  # "experience/mobile-time"
    version: int | None = None  # every version when absent
    route: str | None = None  # "<METHOD> <path template>" or "<path template>" (any method)
    requests_per_second: float
    burst: int

    def __post_init__(self) -> None:
        if self.requests_per_second <= 0 or self.burst < 1:
            raise ValueError(f"limit on {self.api}: requests_per_second must be > 0 and burst >= 1")


class RateLimitConfig(msgspec.Struct, kw_only=True, frozen=True):
    enabled: bool = True
    # Empty: in-process counters (one gateway). Set it to share exact budgets across instances.
    redis_url: str | None = None
    key_prefix: str = "psgw"
    # When Redis cannot answer: "open" lets calls through (availability), "closed" refuses them with 503.
    failure_mode: Literal["open", "closed"] = "open"
    redis_timeout_seconds: float = 0.25
    retry_redis_after_seconds: float = 1.0
    # "draft": RateLimit-Policy + RateLimit (draft-ietf-httpapi-ratelimit-headers); "legacy":
    # RateLimit-Limit/-Remaining/-Reset of the most restrictive limit; "none".
    headers: Literal["draft", "legacy", "none"] = "draft"
    limits: list[LimitConfig] = []


class SubjectLimits(msgspec.Struct, kw_only=True, frozen=True):
    """What one person (a user token's subject) may spend of their client's budget, per SLA tier."""

    requests_per_second: float
    burst: int
    daily_quota: int | None = None

    def __post_init__(self) -> None:
        if self.requests_per_second <= 0 or self.burst < 1:
            raise ValueError("per_subject needs requests_per_second > 0 and burst >= 1")
        if self.daily_quota is not None and self.daily_quota < 1:
            raise ValueError("per_subject.daily_quota must be >= 1 when set")


@dataclass(frozen=True, slots=True)
class TierLimits:
    requests_per_second: float
    burst: int
    daily_quota: int | None = None
    monthly_quota: int | None = None
    per_subject: SubjectLimits | None = None


@dataclass(frozen=True, slots=True)
class _Rate:
    name: str  # appears in RateLimit-Policy: "tier", "api", "route"
    scope: str  # key part: what the budget covers
    interval_us: int
    burst: int

    @property
    def window_seconds(self) -> int:
        return max(1, math.ceil(self.burst * self.interval_us / 1_000_000))


@dataclass(frozen=True, slots=True)
class _Plan:
    """Everything fixed for one (tier, API, route, user token or not) combination, computed once."""

    rates: tuple[_Rate, ...]  # the client's; then the subject's rate, when ``subject_rate``
    daily: int | None
    monthly: int | None
    subject_daily: int | None
    policy_header: bytes
    limit_names: tuple[str, ...]  # rates then quotas, for the RateLimit header
    subject_rate: bool = False


class RateLimited(ProblemError):
    status = 429
    slug = "rate-limited"
    title = "Too many requests"


class RateLimitUnavailable(ProblemError):
    status = 503
    slug = "rate-limit-unavailable"
    title = "Rate limiting unavailable"


@dataclass(frozen=True, slots=True)
class _QuotaWindows:
    """The current UTC day and month (key suffixes) and when each ends (epoch seconds)."""

    day: str
    day_end: float
    month: str
    month_end: float


_windows_cache: list[_QuotaWindows] = []


def _quota_windows(now: float) -> _QuotaWindows:
    # Computed once per UTC day rather than per call: calendar arithmetic cost more than the rest of the policy.
    cached = _windows_cache[0] if _windows_cache else None
    if cached is not None and now < cached.day_end:
        return cached
    today = dt.datetime.fromtimestamp(now, dt.UTC)
    midnight = dt.datetime(today.year, today.month, today.day, tzinfo=dt.UTC)
    first_next = dt.datetime(today.year + today.month // 12, today.month % 12 + 1, 1, tzinfo=dt.UTC)
    windows = _QuotaWindows(f"{today:%Y%m%d}", (midnight + dt.timedelta(days=1)).timestamp(), f"{today:%Y%m}",
                            first_next.timestamp())
    _windows_cache[:] = [windows]
    return windows


_CHECKS_CACHE_MAX = 10_000


def store_required(config: RateLimitConfig) -> bool:
    """With ``failure_mode: closed`` every call is refused while the store is down: readiness must follow it,
    so the instance leaves the load balancer until the store is back."""
    return config.enabled and config.failure_mode == "closed"


def create_store(config: RateLimitConfig) -> RateLimitStore:
    if config.redis_url:
        return RedisStore(config.redis_url, timeout_seconds=config.redis_timeout_seconds,
                          retry_after_seconds=config.retry_redis_after_seconds)
    return MemoryStore()


def subject_key(subject: str) -> str:
    """The subject as a key part: as it is when short and plain, else a digest (a token's ``sub`` is free text)."""
    if len(subject) <= 64 and subject.isascii() and subject.isprintable() and ":" not in subject \
            and "{" not in subject:
        return subject
    return "h." + hashlib.sha256(subject.encode()).hexdigest()[:32]


def _route_key(route: str) -> tuple[str | None, str]:
    method, sep, path = route.partition(" ")
    return (method.upper(), path.strip()) if sep else (None, route.strip())


class RateLimit:
    """The rate-limit policy bound to one API version."""

    name = "rate_limit"

    def __init__(self, config: RateLimitConfig, api: ApiTarget, tiers: Mapping[str, TierLimits],
                 store: RateLimitStore) -> None:
        self.config = config
        self.api = api
        self.store = store
        self.prefix = config.key_prefix
        self.tiers = dict(tiers)
        api_limits: list[_Rate] = []
        self.route_limits: dict[tuple[str | None, str], _Rate] = {}
        for limit in config.limits:
            if limit.api != api.api_id or (limit.version is not None and limit.version != api.version):
                continue
            if limit.route is None:
                api_limits.append(_Rate("api", f"api:{api.base_path}", interval_us(limit.requests_per_second),
                                        limit.burst))
            else:
                method, path = _route_key(limit.route)
                self.route_limits[(method, path)] = _Rate(
                    "route", f"route:{method or '*'}:{api.base_path}{path}",
                    interval_us(limit.requests_per_second), limit.burst)
        self.api_limits = tuple(api_limits)
        self._plans: dict[tuple[str, str | None, str | None, bool], _Plan] = {}
        # Store keys per (plan, client, person), built once rather than per call (bounded: people are many).
        self._checks: dict[tuple[int, str, str | None], tuple[tuple[RateCheck, ...], str, str]] = {}

    def _plan(self, tier: str, method: str, route: str | None, user: bool) -> _Plan:
        cache_key = (tier, method, route, user)
        plan = self._plans.get(cache_key)
        if plan is not None:
            return plan
        rates: list[_Rate] = []
        limits = self.tiers.get(tier)
        if limits is not None:
            rates.append(_Rate("tier", "tier", interval_us(limits.requests_per_second), limits.burst))
        rates.extend(self.api_limits)
        if route is not None:
            found = self.route_limits.get((method, route)) or self.route_limits.get((None, route))
            if found is not None:
                rates.append(found)
        per_subject = limits.per_subject if limits is not None and user else None
        if per_subject is not None:
            rates.append(_Rate("subject", "tier", interval_us(per_subject.requests_per_second), per_subject.burst))
        daily = limits.daily_quota if limits else None
        monthly = limits.monthly_quota if limits else None
        subject_daily = per_subject.daily_quota if per_subject is not None else None
        items = [f'"{r.name}";q={r.burst};w={r.window_seconds}' for r in rates]
        names = [r.name for r in rates]
        for name, quota, window in (("day", daily, 86400), ("month", monthly, 2592000),
                                    ("subject-day", subject_daily, 86400)):
            if quota is not None:
                items.append(f'"{name}";q={quota};w={window}')
                names.append(name)
        plan = _Plan(tuple(rates), daily, monthly, subject_daily, ", ".join(items).encode(), tuple(names),
                     subject_rate=per_subject is not None)
        self._plans[cache_key] = plan
        return plan

    def _checks_for(self, plan: _Plan, client_id: str, subject: str | None
                    ) -> tuple[tuple[RateCheck, ...], str, str]:
        """The rate checks (their store keys) of one client or person under one plan, and the key bases."""
        base = f"{self.prefix}:rl:{{{client_id}}}:"  # one hash slot per client (Redis Cluster)
        subject_base = f"{base}sub:{subject_key(subject)}:" if subject is not None else base
        rates = tuple(RateCheck((subject_base if r.name == "subject" else base) + r.scope, r.interval_us, r.burst)
                      for r in plan.rates)
        return rates, base, subject_base

    async def access(self, exchange: Exchange) -> None:
        client = exchange.client
        assert client is not None  # authenticate runs first
        principal = exchange.principal
        # A user token acts for a person (its subject); a client's own token has the client as its subject.
        subject = principal.subject if principal is not None and principal.subject != client.id else None
        plan = self._plan(client.sla_tier, exchange.method, exchange.route, subject is not None)
        if not plan.rates and plan.daily is None and plan.monthly is None:
            exchange.decisions[self.name] = "unlimited"
            return
        checks_key = (id(plan), client.id, subject)
        checks = self._checks.get(checks_key)
        if checks is None:
            checks = self._checks_for(plan, client.id, subject)
            if len(self._checks) >= _CHECKS_CACHE_MAX:
                self._checks.clear()
            self._checks[checks_key] = checks
        rates, base, subject_base = checks
        quotas: tuple[QuotaCheck, ...] = ()
        if plan.daily is not None or plan.monthly is not None or plan.subject_daily is not None:
            quotas = self._quota_checks(base, subject_base, plan)
        try:
            verdict = await self.store.acquire(rates, quotas)
        except StoreUnavailable as exc:
            self._store_failed(exchange, exc)
            return
        self._headers(exchange, plan, verdict)
        if verdict.allowed:
            exchange.decisions[self.name] = "ok"
            return
        exchange.decisions[self.name] = "limited"
        RATE_LIMITED.labels(self.api.api_id, str(self.api.version), client.id).inc()
        # Each refusing limit reports r=0 and, as t, when it lets a call through again: Retry-After is the latest.
        retry_after = max(1, math.ceil(verdict.retry_after_us / 1_000_000))
        exhausted = [name for name, (remaining, _) in zip(plan.limit_names, verdict.rates + verdict.quotas,
                                                         strict=True) if remaining <= 0]
        which = exhausted[0] if exhausted else plan.limit_names[0]
        who = f"subject {subject!r} of client {client.id!r}" if which.startswith("subject") else \
            f"client {client.id!r}"
        raise RateLimited(
            f"{who} is over its {which} limit on {self.api.base_path}; retry in {retry_after}s",
            reason="quota_exhausted" if which in ("day", "month", "subject-day") else "rate_limited",
            limit=which, retry_after=retry_after, headers={"Retry-After": str(retry_after)},
        )

    @staticmethod
    def _quota_checks(base: str, subject_base: str, plan: _Plan) -> tuple[QuotaCheck, ...]:
        now = time.time()
        windows = _quota_windows(now)
        day_ms = int((windows.day_end - now) * 1000) + 1
        checks: list[QuotaCheck] = []
        if plan.daily is not None:
            checks.append(QuotaCheck(f"{base}day:{windows.day}", plan.daily, day_ms))
        if plan.monthly is not None:
            checks.append(QuotaCheck(f"{base}month:{windows.month}", plan.monthly,
                                     int((windows.month_end - now) * 1000) + 1))
        if plan.subject_daily is not None:
            checks.append(QuotaCheck(f"{subject_base}day:{windows.day}", plan.subject_daily, day_ms))
        return tuple(checks)

    def _headers(self, exchange: Exchange, plan: _Plan, verdict: Verdict) -> None:
        mode = self.config.headers
        if mode == "none":
            return
        states = verdict.rates + verdict.quotas
        if mode == "draft":
            current = ", ".join(
                f'"{name}";r={remaining};t={math.ceil(reset_us / 1_000_000)}'
                for name, (remaining, reset_us) in zip(plan.limit_names, states, strict=True))
            exchange.response_headers.append((b"ratelimit-policy", plan.policy_header))
            exchange.response_headers.append((b"ratelimit", current.encode()))
            return
        index = min(range(len(states)), key=lambda i: states[i][0])
        remaining, reset_us = states[index]
        quota_limits = {"day": plan.daily, "month": plan.monthly, "subject-day": plan.subject_daily}
        limit = plan.rates[index].burst if index < len(plan.rates) else quota_limits[plan.limit_names[index]]
        exchange.response_headers.extend([
            (b"ratelimit-limit", str(limit).encode()),
            (b"ratelimit-remaining", str(remaining).encode()),
            (b"ratelimit-reset", str(math.ceil(reset_us / 1_000_000)).encode()),
        ])

    _last_failure_log = 0.0
    _failures_since_log = 0

    def _store_failed(self, exchange: Exchange, exc: StoreUnavailable) -> None:
        mode = self.config.failure_mode
        STORE_FAILURES.labels(self.store.name, mode).inc()
        cls = type(self)
        cls._failures_since_log += 1
        now = time.monotonic()
        if now - cls._last_failure_log >= 10.0:  # one line per 10 s, with the count, not one per call
            log.warning("rate-limit store unavailable; failing %s", mode,
                        extra={"store": self.store.name, "failure_mode": mode, "error": str(exc),
                               "failures": cls._failures_since_log})
            cls._last_failure_log = now
            cls._failures_since_log = 0
        if mode == "open":
            exchange.decisions[self.name] = "store_unavailable_open"
            return
        exchange.decisions[self.name] = "store_unavailable_closed"
        raise RateLimitUnavailable("rate limiting is unavailable, so the call is refused (fail-closed)",
                                   reason="rate_limit_store_unavailable", headers={"Retry-After": "1"})


def _tiers(tiers: Mapping[str, object]) -> dict[str, TierLimits]:
    return {name: TierLimits(t.requests_per_second, t.burst, t.daily_quota,  # type: ignore[attr-defined]
                             t.monthly_quota, t.per_subject)  # type: ignore[attr-defined]
            for name, t in tiers.items()}


def _build(config: RateLimitConfig, ctx: BuildContext) -> RateLimit | None:
    if not config.enabled:
        return None
    tiers = ctx.once("rate_limit.tiers", lambda: _tiers(ctx.services.sla_tiers))
    return RateLimit(config, ctx.api, tiers, ctx.store)


def _store_key(config: RateLimitConfig) -> tuple[object, ...]:
    return (config.redis_url, config.redis_timeout_seconds, config.retry_redis_after_seconds)


POLICY = PolicySpec(
    name="rate_limit", config=RateLimitConfig, priority=1300, build=_build, enabled_by_default=True,
    store=StoreSpec(key=_store_key, open=create_store, required=store_required),
    summary="rates and quotas per client, per person of a client, per API version and per route",
)
