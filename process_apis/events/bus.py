"""Where relayed events go: a Redis Stream (``PSGW_REDIS_URL`` set) or an in-process bus (single node).

Each event is added under the stream id ``<position>-0``, so the stream's own "last id" says how far the relay
got: publishing again from there is harmless (Redis refuses ids not above its top), and a Redis that lost its
data (restart without persistence) is simply refilled from the SQL outbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import msgspec
import redis.asyncio as redis
from redis.exceptions import ResponseError

from process_apis.events.models import Event

Listener = Callable[[Event], Awaitable[None]]
# Handles a page of events at once (one transaction, say): each event's error, or None once it took effect.
PageHandler = Callable[[Sequence[Event]], Awaitable[Sequence[BaseException | None]]]

log = logging.getLogger("process_apis.events")

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Event)


def stream_id(position: int) -> str:
    return f"{position}-0"


def position_of(stream_id_: bytes | str) -> int:
    text = stream_id_.decode() if isinstance(stream_id_, bytes) else stream_id_
    return int(text.split("-", 1)[0])


def encode_event(event: Event) -> dict[str, bytes | str]:
    return {"type": event.type, "event": _encoder.encode(event)}


def decode_event(fields: dict[bytes, bytes]) -> Event:
    return _decoder.decode(fields[b"event"])


class EventBus(Protocol):
    async def published_position(self) -> int:
        """The position of the last event the bus holds (0 when none)."""
        ...

    async def publish(self, batch: Sequence[Event]) -> None:
        """Publish events in position order; events at or below :meth:`published_position` are skipped."""
        ...

    async def aclose(self) -> None: ...


class RedisStreamBus:
    def __init__(self, client: redis.Redis, stream: str, *, maxlen: int = 1_000_000) -> None:
        self.client = client
        self.stream = stream
        self.maxlen = maxlen

    @classmethod
    def from_url(cls, url: str, stream: str, *, maxlen: int = 1_000_000) -> RedisStreamBus:
        return cls(redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3), stream, maxlen=maxlen)

    async def published_position(self) -> int:
        try:
            info = await self.client.xinfo_stream(self.stream)
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return 0
            raise
        return position_of(info["last-generated-id"])

    async def publish(self, batch: Sequence[Event]) -> None:
        if not batch:
            return
        top = await self.published_position()
        pending = [e for e in batch if e.position > top]
        if not pending:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for event in pending:
                pipe.xadd(self.stream, encode_event(event), id=stream_id(event.position),  # type: ignore[arg-type]
                          maxlen=self.maxlen, approximate=True)
            results = await pipe.execute(raise_on_error=False)
        for result in results:
            # "equal or smaller than the target stream top item": another relay got there first; harmless.
            if isinstance(result, ResponseError) and "equal or smaller" not in str(result):
                raise result

    async def replay(self, after: int, count: int = 100) -> list[Event]:
        entries: Any = await self.client.xrange(self.stream, min=f"({stream_id(after)}", max="+", count=count)
        return [decode_event(fields) for _id, fields in entries]

    async def aclose(self) -> None:
        await self.client.aclose()


class InProcessBus:
    """The single-node stand-in: keeps the relayed events in memory and calls local listeners in order."""

    def __init__(self, retain: int = 100_000) -> None:
        self.retain = retain
        self.events: list[Event] = []
        self.listeners: list[Listener] = []
        self.page_listeners: list[PageHandler] = []
        self._top = 0
        self._lock = asyncio.Lock()

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def subscribe_pages(self, listener: PageHandler) -> None:
        """Receive each published batch at once, after the event-by-event listeners have seen it."""
        self.page_listeners.append(listener)

    async def published_position(self) -> int:
        return self._top

    async def publish(self, batch: Sequence[Event]) -> None:
        async with self._lock:
            fresh: list[Event] = []
            for event in batch:
                if event.position <= self._top:
                    continue
                fresh.append(event)
                self.events.append(event)
                self._top = event.position
                for listener in self.listeners:
                    try:
                        await listener(event)
                    except Exception:
                        # A failing listener must not stop the relay; the event stays replayable over HTTP.
                        log.exception("event listener failed", extra={"event_id": event.id})
            for page_listener in self.page_listeners if fresh else ():
                try:
                    errors = await page_listener(fresh)
                except Exception:
                    log.exception("event listener failed", extra={
                        "events": len(fresh), "first_position": fresh[0].position, "last_position": self._top})
                    continue
                for event, error in zip(fresh, errors, strict=True):
                    if error is not None:
                        log.error("event listener failed", extra={"event_id": event.id}, exc_info=error)
            if len(self.events) > self.retain:
                del self.events[: len(self.events) - self.retain]

    async def aclose(self) -> None:
        self.listeners.clear()
