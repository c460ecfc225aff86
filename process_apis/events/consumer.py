"""Consuming the event stream with Redis consumer groups: at-least-once, with a dead-letter stream.

A handler that returns acknowledges the message (a page handler takes a read page at once and says which
events failed; the others are acknowledged together). One that raises leaves it pending; after ``min_idle_ms`` any
consumer of the group claims and retries it. A message delivered ``max_deliveries`` times without success is a
poison message: it is copied to the dead-letter stream (with who failed it and how often) and acknowledged, so
it no longer blocks the group. Events carry their id, so handlers deduplicate redeliveries by ``event.id``.
Given ``on_dead_letter``, the consumer also hands each one over (with the last error it saw) before acknowledging
it, for the tier's operators to inspect and re-drive (events/dead_letters.py); if that fails it stays pending.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as redis
from redis.exceptions import ResponseError

from process_apis.events.bus import PageHandler, decode_event, stream_id
from process_apis.events.models import DeadLetterRecord, Event

log = logging.getLogger("process_apis.events")

Handler = Callable[[Event], Awaitable[None]]
DeadLetterSink = Callable[[DeadLetterRecord], Awaitable[object]]
# The last error seen per pending message is kept in memory for its dead letter; bounded, as messages another
# consumer settles are never seen again here.
_LAST_ERRORS_KEPT = 10_000


class StreamConsumer:
    def __init__(self, client: redis.Redis, stream: str, group: str, consumer: str, *, max_deliveries: int = 5,
                 dead_letter_stream: str | None = None, min_idle_ms: int = 30_000,
                 on_dead_letter: DeadLetterSink | None = None) -> None:
        # redis-py's stream replies are loosely typed unions; this module reads them by their documented shapes.
        self.client: Any = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.max_deliveries = max_deliveries
        self.dead_letter_stream = dead_letter_stream or f"{stream}:dead"
        self.min_idle_ms = min_idle_ms
        self.on_dead_letter = on_dead_letter
        self._group_ready = False
        self._last_errors: dict[bytes | str, str] = {}

    async def ensure_group(self, after_position: int | None = 0) -> None:
        """Create the group reading after ``after_position`` (0: from the start; None: only new events)."""
        start = "$" if after_position is None else stream_id(after_position)
        try:
            await self.client.xgroup_create(self.stream, self.group, id=start, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def poll(self, handler: Handler, *, count: int = 100, block_ms: int | None = None) -> int:
        """Retry stale pending messages (dead-lettering poison ones), then read new ones; returns how many were
        handled successfully."""
        return await self.poll_pages(one_by_one(handler), count=count, block_ms=block_ms)

    async def poll_pages(self, handler: PageHandler, *, count: int = 100, block_ms: int | None = None) -> int:
        """:meth:`poll` handing each page read (up to ``count`` messages) to ``handler`` at once."""
        handled = await self._retry_stale(handler, count)
        reply = await self.client.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=count,
                                             block=block_ms)
        for _stream, messages in reply or []:
            handled += await self._handle_page(handler, messages)
        return handled

    async def drain(self, handler: Handler, *, count: int = 200) -> int:
        """Poll until nothing more is handled (the background loop's turn); returns how many were handled.

        The group is created on first use, reading from the start of the stream, and again when Redis lost it
        (a restart without persistence, after which the relay refills the stream): handlers see those events
        again and recognize them by id."""
        return await self.drain_pages(one_by_one(handler), count=count)

    async def drain_pages(self, handler: PageHandler, *, count: int = 200) -> int:
        """:meth:`drain` handing each page read to ``handler`` at once."""
        if not self._group_ready:
            await self.ensure_group(0)
            self._group_ready = True
        handled = 0
        try:
            while batch := await self.poll_pages(handler, count=count):
                handled += batch
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                self._group_ready = False
            raise
        return handled

    async def _retry_stale(self, handler: PageHandler, count: int) -> int:
        stale = await self.client.xpending_range(self.stream, self.group, min="-", max="+", count=count,
                                                 idle=self.min_idle_ms)
        retry: list[bytes] = []
        for entry in stale:
            if entry["times_delivered"] >= self.max_deliveries:
                await self._dead_letter(entry["message_id"], entry["times_delivered"], str(entry["consumer"]))
            else:
                retry.append(entry["message_id"])
        if not retry:
            return 0
        claimed = await self.client.xclaim(self.stream, self.group, self.consumer, self.min_idle_ms, retry)
        return await self._handle_page(handler, [(claimed_id, fields) for claimed_id, fields in claimed if fields])

    async def _handle_page(self, handler: PageHandler, messages: Sequence[tuple[bytes, dict[bytes, bytes]]]) -> int:
        """Hand the page's events to ``handler``; acknowledge those it handled in one XACK."""
        read: list[tuple[bytes, Event]] = []
        for message_id, fields in messages:
            try:
                read.append((message_id, decode_event(fields)))
            except Exception as exc:
                # Undecodable: it can never succeed, so it goes to the dead letters at once.
                self._remember(message_id, exc)
                await self._dead_letter(message_id, 1, self.consumer, reason="undecodable")
        if not read:
            return 0
        try:
            errors = await handler([event for _id, event in read])
        except Exception as exc:
            log.warning("event handler failed; the events stay pending", extra={
                "events": len(read), "group": self.group, "error": f"{type(exc).__name__}: {exc}"})
            for message_id, _event in read:
                self._remember(message_id, exc)
            return 0
        done: list[bytes] = []
        for (message_id, event), error in zip(read, errors, strict=True):
            if error is None:
                done.append(message_id)
                self._last_errors.pop(message_id, None)
            else:
                self._remember(message_id, error)
                log.warning("event handler failed; the event stays pending", extra={
                    "event_id": event.id, "group": self.group, "error": f"{type(error).__name__}: {error}"})
        if done:
            await self.client.xack(self.stream, self.group, *done)
        return len(done)

    async def _dead_letter(self, message_id: bytes | str, deliveries: int, consumer: str,
                           reason: str = "max_deliveries") -> None:
        entries = await self.client.xrange(self.stream, min=message_id, max=message_id, count=1)
        fields: dict[bytes | str, bytes | str] = dict(entries[0][1]) if entries else {}
        if self.on_dead_letter is not None:
            await self.on_dead_letter(self._record(message_id, fields, deliveries, reason))
        fields.update({"source_id": message_id, "group": self.group, "deliveries": str(deliveries),
                       "last_consumer": consumer, "reason": reason})
        await self.client.xadd(self.dead_letter_stream, fields)
        await self.client.xack(self.stream, self.group, message_id)
        self._last_errors.pop(message_id, None)

    def _remember(self, message_id: bytes | str, error: BaseException) -> None:
        if len(self._last_errors) >= _LAST_ERRORS_KEPT:
            self._last_errors.clear()
        self._last_errors[message_id] = f"{type(error).__name__}: {error}"

    def _record(self, message_id: bytes | str, fields: dict[bytes | str, bytes | str], deliveries: int,
                reason: str) -> DeadLetterRecord:
        source = message_id.decode() if isinstance(message_id, bytes) else message_id
        error = self._last_errors.get(message_id) or (
            "the message was trimmed from the stream" if not fields
            else f"delivered {deliveries} times without success (the failures were seen by another consumer)")
        try:
            event: Event | None = decode_event(fields)  # type: ignore[arg-type]
        except Exception:
            raw = fields.get(b"event", fields.get("event", b""))
            return DeadLetterRecord(consumer=self.group, event_id=f"msg_{source}", event=None,
                                    raw=raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw),
                                    reason="undecodable", error=error, attempts=deliveries)
        assert event is not None
        return DeadLetterRecord(consumer=self.group, event_id=event.id, event=event,
                                reason="max_deliveries" if reason == "max_deliveries" else "undecodable",
                                error=error, attempts=deliveries)

    async def dead_letters(self, count: int = 100) -> list[dict[bytes, bytes]]:
        return [fields for _id, fields in await self.client.xrange(self.dead_letter_stream, count=count)]


def one_by_one(handler: Handler) -> PageHandler:
    """A page handler calling ``handler`` for each event in turn: one failing leaves the others handled."""
    async def handle_page(events: Sequence[Event]) -> list[BaseException | None]:
        errors: list[BaseException | None] = []
        for event in events:
            try:
                await handler(event)
            except Exception as exc:
                errors.append(exc)
            else:
                errors.append(None)
        return errors

    return handle_page
