"""Response cache: the gateway answers a GET a contract marks ``x-psgw-cache: {ttl_seconds: N}`` from memory.

Rules (README.md "Response cache"):
- Only operations the contract marks, only ``GET``, only ``200`` responses, only after the policies of higher
  priority accepted the call (authentication, scopes, rate limits and validation all still run on a hit, which
  answers in the access phase; the response phase stores misses and invalidates after writes).
- The key is the principal (issuer, client, subject), the method, the path as sent, the query with its
  parameters in a stable order, and ``Accept``: a cache never serves one principal's data to another.
- The request's ``Cache-Control: no-store`` skips the cache both ways; ``no-cache``/``max-age=0`` (or
  ``Pragma: no-cache``) fetches afresh and stores the fresh answer. A response with ``Cache-Control``
  ``no-store``/``no-cache``/``private``, ``Set-Cookie`` or a ``Vary`` on anything but ``Accept`` is not stored;
  its ``max-age``/``s-maxage`` shortens the contract's TTL.
- A write (POST/PUT/PATCH/DELETE) through the gateway to an API invalidates, for every principal, the entries of
  that API under the same top-level resource (``/system/psa/v1/projects`` for ``PATCH .../projects/p1``):
  reference data is shared by the tier, so one caller's change is everyone's. Writes that reach the system of
  record another way (another API, the vendor's UI) are seen when the TTL runs out: keep TTLs short.
- The store is in-process (one per gateway worker, emptied by a config reload), LRU-bounded by entries and bytes.
  With several workers or instances a write invalidates only the worker it went through: the TTL bounds the rest.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlencode

import msgspec
from prometheus_client import Counter, Gauge

from policies.exchange import Answer, ApiTarget, Exchange, Reply
from policies.registry import BuildContext, PolicySpec
from policies.response_cache.store import ENTRY_OVERHEAD_BYTES, CachedResponse, CacheKey, ResponseStore

CACHE_LOOKUPS = Counter(
    "psgw_response_cache_lookups_total",
    "Calls to cacheable operations, by API and outcome (hit, miss, bypass: the caller asked or it is too large)",
    ["api", "version", "outcome"],
)
CACHE_INVALIDATIONS = Counter(
    "psgw_response_cache_invalidations_total",
    "Writes through the gateway that invalidated a resource prefix of the response cache",
    ["api", "version"],
)
CACHE_BYTES = Gauge("psgw_response_cache_bytes", "Bytes the response cache holds (bodies, keys, headers, overhead)",
                    multiprocess_mode="livesum")
CACHE_ENTRIES = Gauge("psgw_response_cache_entries", "Entries the response cache holds", multiprocess_mode="livesum")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Vary values the key already covers: the principal stands for the credentials, Accept is part of the key.
_VARY_COVERED = frozenset({"accept", "authorization", "x-api-key"})
# Written anew for every answer from the cache.
_PER_ANSWER_HEADERS = frozenset({b"age", b"x-cache"})


class ResponseCacheConfig(msgspec.Struct, kw_only=True, frozen=True):
    enabled: bool = True
    max_entries: int = 10_000
    max_bytes: int = 64 * 1024 * 1024
    # Larger bodies are not stored (reference data is small; a big export would evict everything else).
    max_entry_bytes: int = 256 * 1024
    # Path, query and Accept longer than this together are not cached: a huge query is not a reference read.
    max_key_bytes: int = 2048
    # Caps every contract's TTL (e.g. 1 second while investigating staleness); none: the contracts' TTLs.
    max_ttl_seconds: int | None = None

    def __post_init__(self) -> None:
        if self.max_entries < 1 or self.max_bytes < 1 or self.max_entry_bytes < 1 or self.max_key_bytes < 1:
            raise ValueError("response_cache bounds must be >= 1")
        if self.max_ttl_seconds is not None and self.max_ttl_seconds < 1:
            raise ValueError("response_cache.max_ttl_seconds must be >= 1 when set")


def _directives(value: str | None) -> dict[str, str]:
    """``Cache-Control`` as lower-case directive -> argument ("" when it has none)."""
    found: dict[str, str] = {}
    if value:
        for part in value.split(","):
            name, _, argument = part.strip().partition("=")
            found[name.strip().lower()] = argument.strip().strip('"')
    return found


def _seconds(argument: str | None) -> int | None:
    return int(argument) if argument is not None and argument.isdigit() else None


def normalized_query(raw_query: bytes) -> str:
    """The query with its parameters ordered by name (values of one name keep their order: it may matter)."""
    if not raw_query:
        return ""
    pairs = parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True)
    return urlencode(sorted(pairs, key=lambda pair: pair[0]))


class ResponseCache:
    """The response cache of one API version: its cacheable operations' TTLs and the gateway's shared store."""

    name = "response_cache"

    def __init__(self, config: ResponseCacheConfig, target: ApiTarget, store: ResponseStore,
                 ttls: dict[object, int]) -> None:
        self.config = config
        self.target = target
        self.store = store
        cap = config.max_ttl_seconds
        self.ttls = {operation: min(ttl, cap) if cap else ttl for operation, ttl in ttls.items()}
        self._version = str(target.version)

    def _prefix(self, exchange: Exchange) -> str:
        # The operation's template, not the request path: prefixes (and their generations) stay as few as the
        # contract's top-level resources, whatever paths callers send.
        template: str = exchange.operation.path
        return self.target.base_path + "/" + template.lstrip("/").split("/", 1)[0]

    def _count(self, exchange: Exchange, outcome: str) -> None:
        exchange.decisions[self.name] = outcome
        CACHE_LOOKUPS.labels(self.target.api_id, self._version, outcome).inc()

    async def access(self, exchange: Exchange) -> None:
        hit = self.lookup(exchange)
        if hit is not None:
            raise Reply(200, self.hit_headers(hit), hit.body)

    def response(self, exchange: Exchange, answer: Answer) -> None:
        if answer.from_upstream:
            answer.headers.extend(self.remember(exchange, answer.status, answer.headers[:answer.upstream_headers],
                                                answer.body))
        if exchange.forwarded:  # whatever the outcome: a timed-out write may still have changed the resource
            self.invalidate(exchange)

    def lookup(self, exchange: Exchange) -> CachedResponse | None:
        """The fresh entry for this call, or None (then ``remember`` may store the upstream's answer)."""
        ttl = self.ttls.get(exchange.operation)
        principal = exchange.principal
        if ttl is None or exchange.method != "GET" or principal is None:
            return None
        raw_path = exchange.raw_path or exchange.path.encode("utf-8")
        accept = exchange.header(b"accept") or ""
        if len(raw_path) + len(exchange.raw_query) + len(accept) > self.config.max_key_bytes:
            self._count(exchange, "bypass")
            return None
        asked = _directives(exchange.header(b"cache-control"))
        if "no-store" in asked:
            self._count(exchange, "bypass")
            return None
        key: CacheKey = (principal.issuer, principal.client_id, principal.subject, exchange.method, raw_path,
                         normalized_query(exchange.raw_query), accept)
        prefix = self._prefix(exchange)
        exchange.extra[self.name] = (key, ttl, prefix, self.store.generation(prefix))
        refresh = "no-cache" in asked or asked.get("max-age") == "0" or \
            "no-cache" in (exchange.header(b"pragma") or "").lower()
        if refresh:
            self._count(exchange, "bypass")
            return None
        found = self.store.get(key)
        self._count(exchange, "miss" if found is None else "hit")
        return found

    def remember(self, exchange: Exchange, status: int, headers: list[tuple[bytes, bytes]],
                 body: bytes) -> list[tuple[bytes, bytes]]:
        """Store the upstream's answer to a looked-up miss when it may be; the headers to add to the response."""
        pending = exchange.extra.pop(self.name, None)
        if pending is None:
            return []
        key, ttl, prefix, generation = pending
        if status == 200 and len(body) <= self.config.max_entry_bytes:
            ttl = self._response_ttl(headers, ttl)
            if ttl:
                now = time.monotonic()
                cost = len(body) + len(key[4]) + len(key[5]) + len(key[6]) + sum(len(k) + len(v) for k, v in headers) \
                    + ENTRY_OVERHEAD_BYTES
                kept = tuple((k, v) for k, v in headers if k not in _PER_ANSWER_HEADERS)
                self.store.put(key, CachedResponse(kept, body, now, now + ttl, prefix, cost), generation)
                self._gauge()
        return [(b"x-cache", b"miss")]

    def invalidate(self, exchange: Exchange) -> None:
        """After a write to a resource of this API: its prefix's entries are gone, for every principal."""
        if exchange.method in WRITE_METHODS and exchange.operation is not None:
            self.store.invalidate(self._prefix(exchange))
            exchange.decisions[self.name] = "invalidated"
            CACHE_INVALIDATIONS.labels(self.target.api_id, self._version).inc()
            self._gauge()

    def _gauge(self) -> None:
        CACHE_BYTES.set(self.store.bytes)
        CACHE_ENTRIES.set(len(self.store))

    @staticmethod
    def _response_ttl(headers: list[tuple[bytes, bytes]], ttl: int) -> int:
        """The contract's TTL, shortened by the response's own freshness; 0 when it must not be stored."""
        control: str | None = None
        for name, value in headers:
            if name == b"set-cookie":
                return 0
            if name == b"vary" and any(v.strip().lower() not in _VARY_COVERED
                                       for v in value.decode("latin-1").split(",")):
                return 0
            if name == b"cache-control":
                control = value.decode("latin-1")
        said = _directives(control)
        if "no-store" in said or "no-cache" in said or "private" in said:
            return 0
        limit = _seconds(said.get("s-maxage")) if "s-maxage" in said else _seconds(said.get("max-age"))
        return ttl if limit is None else min(ttl, limit)

    @staticmethod
    def hit_headers(entry: CachedResponse) -> list[tuple[bytes, bytes]]:
        age = int(time.monotonic() - entry.stored_at)
        return [*entry.headers, (b"x-cache", b"hit"), (b"age", str(age).encode())]


def _build(config: ResponseCacheConfig, ctx: BuildContext) -> ResponseCache | None:
    if not config.enabled or ctx.contract is None:
        return None
    ttls: dict[object, int] = {op: op.cache_ttl_seconds for op in ctx.contract.operations
                               if op.cache_ttl_seconds is not None}
    if not ttls:
        return None
    # One store for every API of a compiled state: a reload starts empty (and takes new bounds).
    store = ctx.once(("response_cache.store", config.max_entries, config.max_bytes),
                     lambda: ResponseStore(config.max_entries, config.max_bytes))
    return ResponseCache(config, ctx.api, store, ttls)


# Late in the access phase (a hit is served only to a call every earlier policy accepted), before the token
# exchange (a hit needs no internal token).
POLICY = PolicySpec(name="response_cache", config=ResponseCacheConfig, priority=150, build=_build,
                    enabled_by_default=True,
                    summary="answers GETs a contract marks x-psgw-cache from memory, per principal")
