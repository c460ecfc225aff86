"""The response cache's in-process store: LRU bounded by entries and by bytes, invalidated by resource prefix."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

# (issuer, client id, subject, method, raw path, normalized query, accept): one principal's view of one resource.
CacheKey = tuple[str, str, str, str, bytes, str, str]

# What an entry costs besides its key and body (the tuple, the headers list, the dict slot), so that a flood of
# tiny entries is bounded by bytes too.
ENTRY_OVERHEAD_BYTES = 256


@dataclass(frozen=True, slots=True)
class CachedResponse:
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    stored_at: float  # time.monotonic()
    expires_at: float
    prefix: str  # the resource prefix a write invalidates
    cost: int


class ResponseStore:
    """Entries in least-recently-used order; ``put`` evicts the oldest until both bounds hold.

    Each resource prefix has a generation, bumped by every write to it: a miss remembers the generation it saw,
    and its response is stored only if no write finished meanwhile (else a read racing a write could store the
    pre-write body after the write invalidated the prefix).
    """

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[CacheKey, CachedResponse] = OrderedDict()
        self._by_prefix: dict[str, set[CacheKey]] = {}
        self._generations: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey, now: float | None = None) -> CachedResponse | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= (time.monotonic() if now is None else now):
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def generation(self, prefix: str) -> int:
        return self._generations.get(prefix, 0)

    def put(self, key: CacheKey, entry: CachedResponse, seen_generation: int) -> bool:
        if entry.cost > self.max_bytes or self._generations.get(entry.prefix, 0) != seen_generation:
            return False
        if key in self._entries:
            self._remove(key)
        self._entries[key] = entry
        self._by_prefix.setdefault(entry.prefix, set()).add(key)
        self.bytes += entry.cost
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            self._remove(next(iter(self._entries)))
        return True

    def invalidate(self, prefix: str) -> int:
        """Drop every entry under ``prefix`` (every principal's) and refuse stores of reads that started before."""
        self._generations[prefix] = self._generations.get(prefix, 0) + 1
        keys = self._by_prefix.pop(prefix, set())
        for key in keys:
            entry = self._entries.pop(key, None)
            if entry is not None:
                self.bytes -= entry.cost
        return len(keys)

    def _remove(self, key: CacheKey) -> None:
        entry = self._entries.pop(key)
        self.bytes -= entry.cost
        keys = self._by_prefix.get(entry.prefix)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_prefix[entry.prefix]
