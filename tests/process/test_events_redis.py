"""Events on real Redis Streams: relay from the SQL outbox, replay, consumer groups, dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
import redis.asyncio as redis

from process_apis.events.bus import RedisStreamBus
from process_apis.events.consumer import StreamConsumer
from process_apis.events.models import Event
from process_apis.events.outbox import record_event, record_events
from process_apis.events.relay import EventRelay
from process_apis.store import metadata
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.storage import Database, database_url

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def outbox_with(tmp_path: Path, count: int) -> Database:
    db = Database(database_url("", tmp_path, "events"), metadata)
    await db.create_all()
    async with db.transaction() as conn:
        for n in range(count):
            await record_event(conn, "time.posted", {"time_entry_id": f"te_{n}"}, {"n": n})
    return db


async def test_relay_publishes_each_event_once_and_refills_a_redis_that_lost_them(
        tmp_path: Path, redis_client: redis.Redis, stream_name: str) -> None:
    db = await outbox_with(tmp_path, 5)
    relay = EventRelay(UnitOfWorkFactory(db), RedisStreamBus(redis_client, stream_name))
    try:
        assert await relay.relay_once() == 5
        assert await relay.relay_once() == 0  # relayed again: nothing doubles
        assert await redis_client.xlen(stream_name) == 5

        await redis_client.delete(stream_name)  # Redis restarted without its data
        assert await relay.relay_once() == 5

        ids = [entry_id.decode() for entry_id, _ in await redis_client.xrange(stream_name)]
        assert ids == [f"{n}-0" for n in range(1, 6)]
    finally:
        await redis_client.delete(stream_name)
        await db.dispose()


async def test_events_written_while_redis_is_down_are_relayed_when_it_is_back(
        tmp_path: Path, redis_client: redis.Redis, stream_name: str) -> None:
    db = await outbox_with(tmp_path, 3)
    down = redis.Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.5)
    try:
        with pytest.raises(redis.ConnectionError):
            await EventRelay(UnitOfWorkFactory(db), RedisStreamBus(down, stream_name)).relay_once()
        assert await EventRelay(UnitOfWorkFactory(db), RedisStreamBus(redis_client, stream_name)).relay_once() == 3
        assert await redis_client.xlen(stream_name) == 3
    finally:
        await down.aclose()
        await redis_client.delete(stream_name)
        await db.dispose()


async def test_replay_from_an_offset(tmp_path: Path, redis_client: redis.Redis, stream_name: str) -> None:
    db = await outbox_with(tmp_path, 6)
    bus = RedisStreamBus(redis_client, stream_name)
    try:
        await EventRelay(UnitOfWorkFactory(db), bus).relay_once()
        replayed = await bus.replay(after=4)
        assert [(e.position, e.subject["time_entry_id"]) for e in replayed] == [(5, "te_4"), (6, "te_5")]
    finally:
        await redis_client.delete(stream_name)
        await db.dispose()


async def test_a_consumer_group_shares_the_work_and_acknowledges_it(
        tmp_path: Path, redis_client: redis.Redis, stream_name: str) -> None:
    db = await outbox_with(tmp_path, 10)
    try:
        await EventRelay(UnitOfWorkFactory(db), RedisStreamBus(redis_client, stream_name)).relay_once()
        seen: dict[str, list[int]] = {"a": [], "b": []}

        def handler(name: str):  # type: ignore[no-untyped-def]
            async def handle(event: Event) -> None:
                seen[name].append(event.position)
            return handle

        a = StreamConsumer(redis_client, stream_name, "billing-dashboards", "a")
        b = StreamConsumer(redis_client, stream_name, "billing-dashboards", "b")
        await a.ensure_group(0)
        await b.ensure_group(0)  # the group exists already: harmless
        await a.poll(handler("a"), count=4)
        await b.poll(handler("b"), count=100)

        assert sorted(seen["a"] + seen["b"]) == list(range(1, 11))
        assert set(seen["a"]).isdisjoint(seen["b"]) and seen["a"] and seen["b"]
        pending = await redis_client.xpending(stream_name, "billing-dashboards")
        assert pending["pending"] == 0

        late = StreamConsumer(redis_client, stream_name, "late-joiner", "c")
        await late.ensure_group(after_position=8)
        late_seen: list[int] = []

        async def remember(event: Event) -> None:
            late_seen.append(event.position)

        await late.poll(remember)
        assert late_seen == [9, 10]
    finally:
        await redis_client.delete(stream_name)
        await db.dispose()


async def test_a_poison_message_goes_to_the_dead_letters_after_max_deliveries(
        tmp_path: Path, redis_client: redis.Redis, stream_name: str) -> None:
    db = await outbox_with(tmp_path, 3)
    dead = stream_name + ":dead"
    try:
        await EventRelay(UnitOfWorkFactory(db), RedisStreamBus(redis_client, stream_name)).relay_once()
        consumer = StreamConsumer(redis_client, stream_name, "invoicing", "worker-1", max_deliveries=3,
                                  min_idle_ms=0)
        await consumer.ensure_group(0)
        handled: list[str] = []

        async def handle(event: Event) -> None:
            if event.subject["time_entry_id"] == "te_1":
                raise ValueError("cannot handle te_1")
            handled.append(event.subject["time_entry_id"])

        for _ in range(5):
            await consumer.poll(handle)
            await asyncio.sleep(0.01)

        assert handled == ["te_0", "te_2"]
        letters = await consumer.dead_letters()
        assert len(letters) == 1
        assert letters[0][b"deliveries"] == b"3" and letters[0][b"group"] == b"invoicing"
        assert b"te_1" in letters[0][b"event"]
        assert (await redis_client.xpending(stream_name, "invoicing"))["pending"] == 0
    finally:
        await redis_client.delete(stream_name, dead)
        await db.dispose()


async def test_events_recorded_together_take_their_positions_in_order(
        tmp_path: Path, redis_client: redis.Redis, stream_name: str) -> None:
    db = await outbox_with(tmp_path, 1)
    bus = RedisStreamBus(redis_client, stream_name)
    try:
        async with db.transaction() as conn:
            ids = await record_events(conn, "time.posted", [({"time_entry_id": f"te_b{n}"}, {"n": n})
                                                            for n in range(4)])
            assert await record_events(conn, "time.posted", []) == []
            ids.append(await record_event(conn, "time.posted", {"time_entry_id": "te_after"}))
        assert await EventRelay(UnitOfWorkFactory(db), bus).relay_once() == 6
        relayed = await bus.replay(after=0)
        assert [(e.position, e.subject["time_entry_id"]) for e in relayed] == [
            (1, "te_0"), (2, "te_b0"), (3, "te_b1"), (4, "te_b2"), (5, "te_b3"), (6, "te_after")]
        assert [e.id for e in relayed[1:]] == ids and len(set(ids)) == len(ids)
        assert [e.data for e in relayed[1:5]] == [{"n": n} for n in range(4)]
    finally:
        await redis_client.delete(stream_name)
        await db.dispose()


async def test_a_page_handler_gets_whole_pages_and_only_its_failures_stay_pending(
        tmp_path: Path, redis_client: redis.Redis, stream_name: str) -> None:
    db = await outbox_with(tmp_path, 10)
    try:
        await EventRelay(UnitOfWorkFactory(db), RedisStreamBus(redis_client, stream_name)).relay_once()
        consumer = StreamConsumer(redis_client, stream_name, "dashboards", "worker-1", min_idle_ms=60_000)
        pages: list[list[int]] = []
        down = True

        async def handle_many(events: Sequence[Event]) -> list[BaseException | None]:
            if down:
                raise ConnectionError("the store is down")
            pages.append([e.position for e in events])
            return [ValueError("cannot") if e.position == 6 else None for e in events]

        assert await consumer.drain_pages(handle_many, count=4) == 0  # the page failed as a whole
        assert (await redis_client.xpending(stream_name, "dashboards"))["pending"] == 4

        down = False
        assert await consumer.drain_pages(handle_many, count=4) == 5
        assert pages == [[5, 6, 7, 8], [9, 10]]
        pending = await redis_client.xpending_range(stream_name, "dashboards", min="-", max="+", count=10)
        assert sorted(entry["message_id"] for entry in pending) == [b"1-0", b"2-0", b"3-0", b"4-0", b"6-0"]

        consumer.min_idle_ms = 0  # the pending ones are retried as one page
        assert await consumer.drain_pages(handle_many, count=10) == 4
        assert pages[2] == [1, 2, 3, 4, 6]
    finally:
        await redis_client.delete(stream_name)
        await db.dispose()
