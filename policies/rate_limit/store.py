"""Where rate-limit state lives: one small protocol, two stores (in-process, Redis).

One call of :meth:`RateLimitStore.acquire` checks every limit of a request at once (GCRA rates with burst,
then fixed-window quotas) and commits only when all of them allow it: a refused call consumes nothing.
In Redis that is ONE ``EVALSHA`` round trip per request, atomic, using Redis' clock so several gateway
instances share one exact budget.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import Protocol

from policies.rate_limit.resp import RespClient, RespError, RespUnavailable, encode_command


class StoreUnavailable(Exception):
    """The store could not answer (Redis down or slow); the policy applies its fail-open/closed choice."""


@dataclass(frozen=True, slots=True)
class RateCheck:
    """A GCRA limit: ``interval_us`` between requests on average, up to ``burst`` at once."""

    key: str
    interval_us: int
    burst: int


@dataclass(frozen=True, slots=True)
class QuotaCheck:
    """A fixed-window count (a day, a month): at most ``limit`` calls until the key expires."""

    key: str
    limit: int
    ttl_ms: int


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after_us: int
    # Per check, in the order given: (remaining after this call, microseconds until it is whole again).
    rates: tuple[tuple[int, int], ...]
    quotas: tuple[tuple[int, int], ...]


class RateLimitStore(Protocol):
    name: str

    async def acquire(self, rates: tuple[RateCheck, ...], quotas: tuple[QuotaCheck, ...]) -> Verdict:
        """Check and (when every check allows it) consume one call. Raises StoreUnavailable."""

    async def ping(self) -> str | None:
        """None when the store answers, else why not (for readiness)."""

    async def aclose(self) -> None: ...


# KEYS: the rate keys, then the quota keys. ARGV[1]: number of rate keys; then interval_us, burst per rate;
# then limit, ttl_ms per quota. Returns {allowed, retry_us, remaining_1, reset_1, ...} (rates then quotas).
GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
local allowed = 1
local retry = 0
local out = {}
local tats = {}
local new_tats = {}
local passes = {}
for i = 1, n do
  local interval = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - burst * interval
  tats[i] = tat
  new_tats[i] = new_tat
  if allow_at > now then
    allowed = 0
    passes[i] = false
    if allow_at - now > retry then retry = allow_at - now end
    -- Exhausted: its reset is when the next call passes, the same instant Retry-After names.
    out[#out + 1] = 0
    out[#out + 1] = allow_at - now
  else
    passes[i] = true
    out[#out + 1] = math.floor((now - allow_at) / interval)
    out[#out + 1] = new_tat - now
  end
end
local counts = {}
for j = 1, #KEYS - n do
  local key = KEYS[n + j]
  local limit = tonumber(ARGV[2 * n + 2 * j])
  local count = tonumber(redis.call('GET', key) or '0')
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then ttl = tonumber(ARGV[2 * n + 2 * j + 1]) end
  counts[j] = count
  if count + 1 > limit then
    allowed = 0
    if ttl * 1000 > retry then retry = ttl * 1000 end
    out[#out + 1] = 0
  else
    out[#out + 1] = limit - count - 1
  end
  out[#out + 1] = ttl * 1000
end
if allowed == 1 then
  for i = 1, n do
    -- %.0f: tostring() would round a microsecond timestamp to 14 significant digits.
    redis.call('SET', KEYS[i], string.format('%.0f', new_tats[i]), 'PX', math.ceil((new_tats[i] - now) / 1000) + 1000)
  end
  for j = 1, #KEYS - n do
    local key = KEYS[n + j]
    if redis.call('INCR', key) == 1 then
      redis.call('PEXPIRE', key, tonumber(ARGV[2 * n + 2 * j + 1]))
    end
  end
else
  -- A refused call consumes nothing: every limit that would have passed reports what it has as it stands,
  -- so only the limits that refused show r=0.
  for i = 1, n do
    if passes[i] then
      out[2 * i - 1] = out[2 * i - 1] + 1
      out[2 * i] = tats[i] - now
    end
  end
  for j = 1, #KEYS - n do
    local limit = tonumber(ARGV[2 * n + 2 * j])
    local left = limit - counts[j]
    if left < 0 then left = 0 end
    out[2 * n + 2 * j - 1] = left
  end
end
local result = {allowed, retry}
for k = 1, #out do result[#result + 1] = out[k] end
return result
"""

GCRA_SHA = hashlib.sha1(GCRA_LUA.encode(), usedforsecurity=False).hexdigest()


def _split(raw: list[int], n_rates: int, n_quotas: int) -> Verdict:
    values = [int(v) for v in raw]
    rates = tuple((values[2 + 2 * i], values[3 + 2 * i]) for i in range(n_rates))
    base = 2 + 2 * n_rates
    quotas = tuple((values[base + 2 * j], values[base + 1 + 2 * j]) for j in range(n_quotas))
    return Verdict(allowed=values[0] == 1, retry_after_us=values[1], rates=rates, quotas=quotas)


class MemoryStore:
    """In-process state for a single gateway (the embedded default): the same algorithm, no I/O."""

    name = "memory"

    def __init__(self, max_keys: int = 100_000) -> None:
        self._tats: dict[str, int] = {}
        self._counts: dict[str, tuple[int, int]] = {}  # key -> (count, expires_at_us)
        self._max_keys = max_keys

    async def acquire(self, rates: tuple[RateCheck, ...], quotas: tuple[QuotaCheck, ...]) -> Verdict:
        now = time.time_ns() // 1000
        allowed = True
        retry = 0
        rate_out: list[tuple[int, int]] = []
        tats: list[int] = []
        new_tats: list[int] = []
        passes: list[bool] = []
        for check in rates:
            tat = max(self._tats.get(check.key, 0), now)
            new_tat = tat + check.interval_us
            allow_at = new_tat - check.burst * check.interval_us
            if allow_at > now:
                allowed = False
                retry = max(retry, allow_at - now)
                rate_out.append((0, allow_at - now))  # exhausted: reset when the next call passes (= Retry-After)
            else:
                rate_out.append(((now - allow_at) // check.interval_us, new_tat - now))
            passes.append(allow_at <= now)
            tats.append(tat)
            new_tats.append(new_tat)
        quota_out: list[tuple[int, int]] = []
        counts: list[int] = []
        for quota in quotas:
            count, expires = self._counts.get(quota.key, (0, 0))
            if expires <= now:
                count, expires = 0, now + quota.ttl_ms * 1000
            counts.append(count)
            ttl_us = expires - now
            if count + 1 > quota.limit:
                allowed = False
                retry = max(retry, ttl_us)
                quota_out.append((max(quota.limit - count, 0), ttl_us))
            else:
                quota_out.append((quota.limit - count - 1, ttl_us))
        if allowed:
            for check, new_tat in zip(rates, new_tats, strict=True):
                self._tats[check.key] = new_tat
            for quota, count, (_, ttl_us) in zip(quotas, counts, quota_out, strict=True):
                self._counts[quota.key] = (count + 1, now + ttl_us)
            if len(self._tats) > self._max_keys or len(self._counts) > self._max_keys:
                self._evict(now)
        else:
            # A refused call consumes nothing: every limit that would have passed reports what it has as it
            # stands, so only the limits that refused show r=0.
            rate_out = [(remaining + 1, tat - now) if passed else (remaining, reset)
                        for (remaining, reset), tat, passed in zip(rate_out, tats, passes, strict=True)]
            quota_out = [(max(q.limit - c, 0), o[1]) for q, c, o in zip(quotas, counts, quota_out, strict=True)]
        return Verdict(allowed, retry, tuple(rate_out), tuple(quota_out))

    async def ping(self) -> str | None:
        return None

    def _evict(self, now: int) -> None:
        # A TAT in the past carries no state (the bucket is full), an expired count neither.
        self._tats = {k: v for k, v in self._tats.items() if v > now}
        self._counts = {k: v for k, v in self._counts.items() if v[1] > now}

    async def aclose(self) -> None:
        return None


_ENCODED_MAX = 10_000


def script_args(rates: tuple[RateCheck, ...], quotas: tuple[QuotaCheck, ...]) -> list[str | int]:
    """GCRA_LUA's numkeys, KEYS and ARGV for these checks."""
    args: list[str | int] = [len(rates) + len(quotas), *(r.key for r in rates), *(q.key for q in quotas),
                             len(rates)]
    for rate in rates:
        args += (rate.interval_us, rate.burst)
    for quota in quotas:
        args += (quota.limit, quota.ttl_ms)
    return args


class RedisStore:
    """Shared state in Redis: one pipelined ``EVALSHA`` per request (``EVAL`` once after a Redis restart)."""

    name = "redis"

    def __init__(self, url: str, *, timeout_seconds: float = 0.25, retry_after_seconds: float = 1.0) -> None:
        self.url = url
        self._client = RespClient(url, timeout=timeout_seconds)
        self._retry_after = retry_after_seconds
        # After a failure, skip Redis for a moment: an unreachable host must not cost every call a timeout.
        self._down_until = 0.0
        # Encoded EVALSHA commands without the quotas' TTLs, per set of checks (see evalsha).
        self._encoded: dict[tuple[object, ...], tuple[bytes, tuple[bytes, ...]]] = {}

    async def acquire(self, rates: tuple[RateCheck, ...], quotas: tuple[QuotaCheck, ...]) -> Verdict:
        if self._down_until and time.monotonic() < self._down_until:
            raise StoreUnavailable(f"redis at {self.url} failed recently")
        try:
            try:
                raw = await self._client.execute(self.evalsha(rates, quotas))
            except RespError as exc:
                if not str(exc).startswith("NOSCRIPT"):
                    raise
                raw = await self._client.execute(encode_command(("EVAL", GCRA_LUA, *script_args(rates, quotas))))
        except (RespError, RespUnavailable, OSError) as exc:
            self._down_until = time.monotonic() + self._retry_after
            raise StoreUnavailable(f"redis at {self.url}: {type(exc).__name__}: {exc}") from exc
        self._down_until = 0.0
        return _split(raw, len(rates), len(quotas))

    def evalsha(self, rates: tuple[RateCheck, ...], quotas: tuple[QuotaCheck, ...]) -> bytes:
        """``encode_command(("EVALSHA", GCRA_SHA, *script_args(rates, quotas)))``, with everything but the quotas'
        TTLs (the same for a client's calls all day) encoded once and kept: encoding the command afresh was the
        policy's largest cost after the round trip itself."""
        key = (rates, tuple((q.key, q.limit) for q in quotas))
        parts = self._encoded.get(key)
        if parts is None:
            if len(self._encoded) >= _ENCODED_MAX:
                self._encoded.clear()
            whole = encode_command(("EVALSHA", GCRA_SHA, *script_args(rates, quotas)))
            if not quotas:
                parts = self._encoded[key] = (whole, ())
            else:
                # The quota arguments come last, as (limit, ttl_ms) pairs: keep the bytes before them and
                # each limit's encoding; a call adds only its TTLs.
                tail = b"".join(encode_command((q.limit, q.ttl_ms))[4:] for q in quotas)
                limits = tuple(encode_command((q.limit,))[4:] for q in quotas)
                parts = self._encoded[key] = (whole[:len(whole) - len(tail)], limits)
        prefix, limits = parts
        if not limits:
            return prefix
        pieces = [prefix]
        for limit, quota in zip(limits, quotas, strict=True):
            ttl = b"%d" % quota.ttl_ms
            pieces += (limit, b"$%d\r\n%s\r\n" % (len(ttl), ttl))
        return b"".join(pieces)

    async def ping(self) -> str | None:
        try:
            await self._client.execute(encode_command(("PING",)))
        except (RespError, RespUnavailable, OSError) as exc:
            return f"redis at {self.url} does not answer: {type(exc).__name__}"
        return None

    async def aclose(self) -> None:
        await self._client.aclose()


def interval_us(requests_per_second: float) -> int:
    return max(1, math.ceil(1_000_000 / requests_per_second))
