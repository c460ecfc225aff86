"""Throttling password guesses at the sign-in page (``POST /authorize``).

Failed sign-ins are counted per person and address, and per address, in a fixed window; once either count has
reached its limit the page refuses further tries from there (429 with ``Retry-After``) without checking the
password, so guessing gains nothing while it waits. The person is never locked out everywhere: a lock-out per
account is a denial of service anyone who knows a username can cause (OWASP Authentication Cheat Sheet, "Account
Lockout"), so the same person signs in from another address as usual. A successful sign-in clears its
person-and-address count.

With ``redis_url`` every gateway instance shares the counts (an attacker spreading guesses over instances gains
nothing); without it, or while Redis does not answer, each process counts on its own.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import time
from dataclasses import dataclass

import msgspec

from policies.ip_allow import client_address, networks
from policies.rate_limit.resp import RespClient, RespError, RespUnavailable, encode_command

log = logging.getLogger("psgw.signin")


class SignInAttemptsConfig(msgspec.Struct, kw_only=True, frozen=True):
    """``issuer.sign_in.attempts`` in gateway.yaml."""

    failures_per_person_and_address: int = 5
    # Higher: an office behind one NAT address shares it.
    failures_per_address: int = 50
    window_seconds: int = 900
    # Empty: each gateway process counts alone. Set it (PSGW_REDIS_URL) when several instances serve sign-in.
    redis_url: str | None = None
    redis_timeout_seconds: float = 0.25
    # Load balancers in front of the gateway: the address is then the right-most X-Forwarded-For entry that is not
    # one of them (as for ip_allow).
    trusted_proxies: list[str] = []

    def __post_init__(self) -> None:
        if not 1 <= self.failures_per_person_and_address <= 1000:
            raise ValueError("issuer.sign_in.attempts.failures_per_person_and_address must be between 1 and 1000")
        if not self.failures_per_person_and_address <= self.failures_per_address <= 100_000:
            raise ValueError("issuer.sign_in.attempts.failures_per_address must be between "
                             "failures_per_person_and_address and 100000")
        if not 1 <= self.window_seconds <= 86_400:
            raise ValueError("issuer.sign_in.attempts.window_seconds must be between 1 and 86400")
        for cidr in self.trusted_proxies:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"issuer.sign_in.attempts.trusted_proxies: {cidr!r} is not a network") from exc


@dataclass(frozen=True, slots=True)
class Counter:
    key: str
    limit: int


# KEYS: the counters; ARGV: their limits. The milliseconds until the first full counter empties, or 0.
_CHECK_LUA = """
for i = 1, #KEYS do
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  if n >= tonumber(ARGV[i]) then
    local left = redis.call('PTTL', KEYS[i])
    if left < 1 then left = 1 end
    return left
  end
end
return 0
"""
# KEYS: the counters; ARGV[1]: the window in ms. A counter's window starts at its first failure.
_FAIL_LUA = """
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
end
return 0
"""


class _MemoryCounts:
    def __init__(self, max_keys: int = 100_000) -> None:
        self._counts: dict[str, tuple[int, float]] = {}  # key -> (failures, window end, monotonic)
        self._max_keys = max_keys

    def wait_ms(self, counters: tuple[Counter, ...]) -> int:
        now = time.monotonic()
        for counter in counters:
            count, until = self._counts.get(counter.key, (0, 0.0))
            if until > now and count >= counter.limit:
                return max(1, int((until - now) * 1000))
        return 0

    def fail(self, counters: tuple[Counter, ...], window_seconds: int) -> None:
        now = time.monotonic()
        if len(self._counts) >= self._max_keys:  # bounded: drop what has expired, else start over
            self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            if len(self._counts) >= self._max_keys:
                self._counts.clear()
        for counter in counters:
            count, until = self._counts.get(counter.key, (0, 0.0))
            self._counts[counter.key] = (count + 1, until) if until > now else (1, now + window_seconds)

    def clear(self, key: str) -> None:
        self._counts.pop(key, None)


class SignInAttempts:
    def __init__(self, config: SignInAttemptsConfig, prefix: str = "psgw:signin") -> None:
        self.config = config
        self._prefix = prefix
        self._proxies = networks(config.trusted_proxies)
        self._redis = RespClient(config.redis_url, timeout=config.redis_timeout_seconds) if config.redis_url else None
        self._memory = _MemoryCounts()

    def address_of(self, peer: str, forwarded_for: str | None) -> str:
        return client_address(peer, forwarded_for, self._proxies)

    def _counters(self, username: str, address: str) -> tuple[Counter, ...]:
        # Hashed: a username is free text from the form, and neither it nor the address belongs in Redis keys.
        person = hashlib.sha256(f"{username.strip().lower()}\n{address}".encode()).hexdigest()[:32]
        where = hashlib.sha256(address.encode()).hexdigest()[:32]
        return (Counter(f"{self._prefix}:pa:{person}", self.config.failures_per_person_and_address),
                Counter(f"{self._prefix}:a:{where}", self.config.failures_per_address))

    async def wait_seconds(self, username: str, address: str) -> int:
        """0 when this person may try from this address now, else the seconds until they may."""
        counters = self._counters(username, address)
        if self._redis is not None:
            try:
                waited = await self._redis.execute(encode_command((
                    "EVAL", _CHECK_LUA, len(counters), *(c.key for c in counters), *(c.limit for c in counters))))
                return -(-int(waited) // 1000)
            except (RespError, RespUnavailable, OSError) as exc:
                log.warning("sign-in attempts: redis did not answer (%s); counting in this process", exc)
        return -(-self._memory.wait_ms(counters) // 1000)

    async def failed(self, username: str, address: str) -> None:
        counters = self._counters(username, address)
        self._memory.fail(counters, self.config.window_seconds)
        if self._redis is not None:
            try:
                await self._redis.execute(encode_command((
                    "EVAL", _FAIL_LUA, len(counters), *(c.key for c in counters),
                    self.config.window_seconds * 1000)))
            except (RespError, RespUnavailable, OSError) as exc:
                log.warning("sign-in attempts: redis did not answer (%s); counting in this process", exc)

    async def succeeded(self, username: str, address: str) -> None:
        person = self._counters(username, address)[0].key
        self._memory.clear(person)
        if self._redis is not None:
            try:
                await self._redis.execute(encode_command(("DEL", person)))
            except (RespError, RespUnavailable, OSError) as exc:
                log.warning("sign-in attempts: redis did not answer (%s)", exc)

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
