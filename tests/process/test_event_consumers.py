"""The posted-time projection, fed by a real Redis Stream consumer group: duplicates, events out of order and a
crash between applying an event and acknowledging it all end in the projection a clean in-order delivery gives."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis
import sqlalchemy as sa

from process_apis.events.bus import InProcessBus, RedisStreamBus, decode_event, encode_event
from process_apis.events.consumer import StreamConsumer
from process_apis.events.models import Event
from process_apis.events.outbox import record_event
from process_apis.events.projection import CONSUMER, PostedTimeProjection
from process_apis.events.relay import EventRelay
from process_apis.events.service import events_after
from process_apis.store import consumed_events, metadata, posted_time_entries, posted_time_projects
from runtime.storage import Database, database_url

pytestmark = pytest.mark.asyncio(loop_scope="session")

# (time entry, project, version, hours, amount): te_2 and te_4 were corrected and posted again at a new version.
POSTINGS = [
    ("te_1", "prj_1", 1, "8", "1400.00"),
    ("te_2", "prj_1", 1, "6", "1050.00"),
    ("te_3", "prj_2", 1, "7.5", "1312.50"),
    ("te_2", "prj_1", 2, "4", "700.00"),
    ("te_4", "prj_2", 1, "2", "350.00"),
    ("te_4", "prj_3", 3, "3", "525.00"),  # the correction moved it to another project
    ("te_5", "prj_3", 1, "1.25", "218.75"),
]


async def events_of(db: Database) -> list[Event]:
    """The scenario's events, written to the outbox as the posting dispatcher writes them (in position order)."""
    async with db.transaction() as conn:
        for entry, project, version, hours, amount in POSTINGS:
            await record_event(conn, "time.approved", {"time_entry_id": entry, "project_id": project},
                               {"version": version})
            await record_event(conn, "time.posted", {
                "time_entry_id": entry, "project_id": project, "contract_id": f"ctr_{project}",
                "posting_id": f"pst_{entry}_{version}"},
                {"amount": amount, "currency": "USD", "hours": hours, "work_date": "2026-11-20",
                 "entry_version": version, "psa_state": "posted"})
    await EventRelay(db, InProcessBus()).sequence()  # positions only: each test fills its stream itself
    return (await events_after(db, 0, None, 1000)).items


async def snapshot(db: Database) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    async with db.read() as conn:
        entries = [tuple(r) for r in (await conn.execute(
            sa.select(posted_time_entries).order_by(posted_time_entries.c.time_entry_id))).all()]
        projects = [tuple(r) for r in (await conn.execute(
            sa.select(posted_time_projects).order_by(posted_time_projects.c.project_id))).all()]
    return entries, projects


@pytest.fixture
async def clean(tmp_path: Path) -> AsyncIterator[tuple[list[Event], tuple[Any, Any]]]:
    """The events, and the projection one clean delivery in position order gives (its own SQLite store)."""
    database = Database(database_url("", tmp_path / "clean", "process"), metadata)
    await database.create_all()
    try:
        events = await events_of(database)
        projection = PostedTimeProjection(database)
        for event in events:
            await projection.apply(event)
        yield events, await snapshot(database)
    finally:
        await database.dispose()


async def put_on_stream(client: redis.Redis, stream: str, events: Sequence[Event]) -> None:
    """Deliver these events in this order (the stream's own ids: as a refilled or replayed stream would)."""
    for event in events:
        await client.xadd(stream, encode_event(event))  # type: ignore[arg-type]


async def test_the_clean_projection_counts_each_entry_once_at_its_latest_version(
        clean: tuple[list[Event], tuple[Any, Any]]) -> None:
    _events, (entries, projects) = clean
    by_entry = {row[0]: row for row in entries}
    assert {e: (row[1], row[2], row[6]) for e, row in by_entry.items()} == {
        "te_1": (1, "prj_1", Decimal("8")), "te_2": (2, "prj_1", Decimal("4")), "te_3": (1, "prj_2", Decimal("7.5")),
        "te_4": (3, "prj_3", Decimal("3")), "te_5": (1, "prj_3", Decimal("1.25"))}
    assert [(p[0], p[3], p[4], p[5]) for p in projects] == [
        ("prj_1", 2, Decimal("12"), Decimal("2100.00")),
        ("prj_2", 1, Decimal("7.5"), Decimal("1312.50")),
        ("prj_3", 2, Decimal("4.25"), Decimal("743.75")),
    ]


async def test_every_event_delivered_twice_changes_nothing(
        db: Database, redis_client: redis.Redis, stream_name: str,
        clean: tuple[list[Event], tuple[Any, Any]]) -> None:
    events, expected = clean
    projection = PostedTimeProjection(db)
    outcomes: list[str] = []

    async def handle(event: Event) -> None:
        outcomes.append(await projection.apply(event))

    try:
        # The relay published everything, then a second relay (or a refill after Redis lost data) did again.
        await put_on_stream(redis_client, stream_name, events + events)
        consumer = StreamConsumer(redis_client, stream_name, CONSUMER, "replica-1")
        assert await consumer.drain(handle) == 2 * len(events)

        assert await snapshot(db) == expected
        posted = sum(1 for e in events if e.type == "time.posted")
        assert outcomes.count("duplicate") == posted
        assert (await redis_client.xpending(stream_name, CONSUMER))["pending"] == 0
    finally:
        await redis_client.delete(stream_name)


async def test_events_out_of_order_end_in_the_in_order_projection(
        db: Database, redis_client: redis.Redis, stream_name: str,
        clean: tuple[list[Event], tuple[Any, Any]]) -> None:
    events, expected = clean
    projection = PostedTimeProjection(db)
    outcomes: dict[str, str] = {}

    async def handle(event: Event) -> None:
        outcomes[event.id] = await projection.apply(event)

    try:
        await put_on_stream(redis_client, stream_name, list(reversed(events)))  # newest versions first
        await StreamConsumer(redis_client, stream_name, CONSUMER, "replica-1").drain(handle)

        assert await snapshot(db) == expected
        stale = [e for e in events if outcomes[e.id] == "stale"]
        assert {(e.subject["time_entry_id"], e.data["entry_version"]) for e in stale} == {("te_2", 1), ("te_4", 1)}
        async with db.read() as conn:
            recorded = dict((await conn.execute(sa.select(consumed_events.c.event_id, consumed_events.c.outcome)
                                                .where(consumed_events.c.consumer == CONSUMER))).all())
        assert recorded == {e.id: outcomes[e.id] for e in events if e.type == "time.posted"}
    finally:
        await redis_client.delete(stream_name)


async def test_a_crash_between_apply_and_ack_redelivers_and_nothing_doubles(
        db: Database, redis_client: redis.Redis, stream_name: str,
        clean: tuple[list[Event], tuple[Any, Any]]) -> None:
    events, expected = clean
    projection = PostedTimeProjection(db)
    bus = RedisStreamBus(redis_client, stream_name)
    try:
        await bus.publish(events)
        crashed = StreamConsumer(redis_client, stream_name, CONSUMER, "replica-1")
        await crashed.ensure_group(0)
        # replica-1 reads the first half and applies it (committed), then dies before its XACKs.
        reply: Any = await redis_client.xreadgroup(CONSUMER, "replica-1", {stream_name: ">"}, count=len(events) // 2)
        first_half = [fields for _id, fields in reply[0][1]]
        for fields in first_half:
            await projection.apply(decode_event(fields))
        assert (await redis_client.xpending(stream_name, CONSUMER))["pending"] == len(first_half)

        # replica-2 takes over: it claims the dead replica's pending messages and reads the rest.
        outcomes: list[str] = []

        async def handle(event: Event) -> None:
            outcomes.append(await projection.apply(event))

        survivor = StreamConsumer(redis_client, stream_name, CONSUMER, "replica-2", min_idle_ms=0)
        assert await survivor.drain(handle) == len(events)

        assert await snapshot(db) == expected
        assert outcomes.count("duplicate") == sum(1 for f in first_half if f[b"type"] == b"time.posted")
        assert (await redis_client.xpending(stream_name, CONSUMER))["pending"] == 0
    finally:
        await redis_client.delete(stream_name)


async def test_a_malformed_time_posted_event_is_dead_lettered_not_applied(
        db: Database, redis_client: redis.Redis, stream_name: str) -> None:
    broken = Event(id="evt_broken", type="time.posted", version=1, occurred_at=dt.datetime.now(dt.UTC),
                   correlation_id=None, subject={"time_entry_id": "te_9"}, data={"amount": "x"}, position=1)
    projection = PostedTimeProjection(db)
    try:
        await put_on_stream(redis_client, stream_name, [broken])
        consumer = StreamConsumer(redis_client, stream_name, CONSUMER, "replica-1", max_deliveries=2,
                                  min_idle_ms=0)
        for _ in range(3):
            await consumer.drain(projection.handle)
        assert len(await consumer.dead_letters()) == 1
        assert await snapshot(db) == ([], [])
    finally:
        await redis_client.delete(stream_name, stream_name + ":dead")
