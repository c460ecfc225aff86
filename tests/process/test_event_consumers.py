"""The posted-time projection, fed by a real Redis Stream consumer group: duplicates, events out of order and a
crash between applying an event and acknowledging it all end in the projection a clean in-order delivery gives.
Applied a page at a time (one transaction per page), it gives what applying the page's events one by one gives."""

from __future__ import annotations

import datetime as dt
import logging
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
from process_apis.store import consumed_events, event_consumers, metadata, posted_time_entries, posted_time_projects
from process_apis.unit_of_work import UnitOfWorkFactory
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
    # positions only: each test fills its stream itself
    await EventRelay(UnitOfWorkFactory(db), InProcessBus()).sequence()
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
        projection = PostedTimeProjection(UnitOfWorkFactory(database))
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
    projection = PostedTimeProjection(UnitOfWorkFactory(db))
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
    projection = PostedTimeProjection(UnitOfWorkFactory(db))
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
    projection = PostedTimeProjection(UnitOfWorkFactory(db))
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
    projection = PostedTimeProjection(UnitOfWorkFactory(db))
    try:
        await put_on_stream(redis_client, stream_name, [broken])
        consumer = StreamConsumer(redis_client, stream_name, CONSUMER, "replica-1", max_deliveries=2,
                                  min_idle_ms=0)
        for _ in range(3):
            await consumer.drain(projection.apply)
        assert len(await consumer.dead_letters()) == 1
        assert await snapshot(db) == ([], [])
    finally:
        await redis_client.delete(stream_name, stream_name + ":dead")


T0 = dt.datetime(2026, 11, 30, 18, 0, tzinfo=dt.UTC)


def posted(position: int, entry: str, project: str, version: int, hours: str, amount: str, *,
           event_id: str | None = None, contract: str | None = None) -> Event:
    return Event(id=event_id or f"evt_{position:04d}", type="time.posted", version=1,
                 occurred_at=T0 + dt.timedelta(minutes=position), correlation_id=None,
                 subject={"time_entry_id": entry, "project_id": project,
                          "contract_id": contract or f"ctr_{project}", "posting_id": f"pst_{entry}_{version}"},
                 data={"amount": amount, "currency": "USD", "hours": hours, "work_date": "2026-11-20",
                       "entry_version": version, "psa_state": "posted"}, position=position)


# Applied before the page (so the page meets ids seen and entries held in the store) ...
EARLIER = [
    posted(1, "te_1", "prj_1", 1, "8", "1400.00"),
    posted(2, "te_2", "prj_1", 2, "4", "700.00"),
    posted(3, "te_7", "prj_9", 1, "2.50", "437.50"),
]
# ... and the page: duplicates (of the store and within the page), stale versions (older than the store's and
# than an earlier event of the page), the same entry twice in order, a project emptied then filled again, an
# event that cannot be read and one of another type.
PAGE = [
    posted(1, "te_1", "prj_1", 1, "8", "1400.00"),  # duplicate of the store
    Event(id="evt_unreadable", type="time.posted", version=1, occurred_at=T0, correlation_id=None,
          subject={"time_entry_id": "te_x"}, data={"amount": "x"}, position=4),
    posted(5, "te_2", "prj_1", 1, "6", "1050.00"),  # stale: the store holds version 2
    posted(6, "te_3", "prj_2", 1, "7.5", "1312.50"),
    posted(6, "te_3", "prj_2", 1, "7.5", "1312.50"),  # duplicate within the page
    posted(7, "te_4", "prj_3", 3, "3", "525.00"),
    posted(8, "te_4", "prj_2", 1, "2", "350.00"),  # stale: the page's earlier event holds version 3
    posted(9, "te_5", "prj_3", 1, "1.25", "218.75"),
    posted(10, "te_5", "prj_4", 2, "1.5", "262.50"),  # the same entry again, newer: moves project
    posted(11, "te_7", "prj_8", 2, "2.5", "437.5"),  # prj_9 loses its only entry ...
    posted(12, "te_8", "prj_9", 1, "6", "1050", contract="ctr_other"),  # ... and gets another
    Event(id="evt_approved", type="time.approved", version=1, occurred_at=T0, correlation_id=None,
          subject={"time_entry_id": "te_3"}, data={"version": 1}, position=14),
    posted(15, "te_2", "prj_1", 3, "5", "875.00"),
    posted(2, "te_2", "prj_1", 2, "4", "700.00"),  # duplicate of the store, after a newer version
]
PAGE_OUTCOMES = ["duplicate", "error", "stale", "applied", "duplicate", "applied", "stale", "applied", "applied",
                 "applied", "applied", "ignored", "applied", "duplicate"]
# Readable, but a version no column holds: the database refuses the page, so it is applied one event at a time.
REFUSED = posted(13, "te_9", "prj_4", 2**63, "1", "175.00")


async def store_state(db: Database) -> tuple[Any, ...]:
    async with db.read() as conn:
        consumed = [tuple(r) for r in (await conn.execute(
            sa.select(consumed_events.c.event_id, consumed_events.c.position, consumed_events.c.outcome)
            .order_by(consumed_events.c.event_id))).all()]
        applied = (await conn.execute(sa.select(event_consumers.c.applied_events))).scalar_one()
    return await snapshot(db), consumed, applied


@pytest.mark.parametrize("refused_at", [None, 7])
async def test_a_page_in_one_transaction_equals_its_events_applied_one_by_one(
        db: Database, tmp_path: Path, refused_at: int | None) -> None:
    page, page_outcomes = list(PAGE), list(PAGE_OUTCOMES)
    if refused_at is not None:
        page.insert(refused_at, REFUSED)
        page_outcomes.insert(refused_at, "error")
    reference = Database(database_url("", tmp_path / "one-by-one", "process"), metadata)
    await reference.create_all()
    try:
        one_by_one = PostedTimeProjection(UnitOfWorkFactory(reference))
        for event in EARLIER:
            await one_by_one.apply(event)
        expected: list[str] = []
        for event in page:
            try:
                expected.append(await one_by_one.apply(event))
            except Exception:
                expected.append("error")

        paged = PostedTimeProjection(UnitOfWorkFactory(db))
        assert await paged.apply_many(EARLIER) == ["applied"] * len(EARLIER)
        transactions: list[object] = []

        def began(conn: object) -> None:
            transactions.append(conn)

        sa.event.listen(db.engine.sync_engine, "begin", began)
        try:
            results = await paged.apply_many(page)
        finally:
            sa.event.remove(db.engine.sync_engine, "begin", began)
        outcomes = ["error" if isinstance(r, Exception) else r for r in results]
        # The page in one transaction; refused, one per event read (the others take effect all the same).
        read = sum(o not in ("ignored", "error") for o in outcomes) + 1  # the refused event fails alone
        assert len(transactions) == (1 if refused_at is None else 1 + read)

        assert outcomes == expected == page_outcomes
        assert await store_state(db) == await store_state(reference)
        entries, projects = await snapshot(db)
        assert [(p[0], p[2], p[3], p[4], p[5]) for p in projects] == [
            ("prj_1", "ctr_prj_1", 2, Decimal("13"), Decimal("2275.00")),
            ("prj_2", "ctr_prj_2", 1, Decimal("7.5"), Decimal("1312.50")),
            ("prj_3", "ctr_prj_3", 1, Decimal("3"), Decimal("525.00")),
            ("prj_4", "ctr_prj_4", 1, Decimal("1.5"), Decimal("262.50")),
            ("prj_8", "ctr_prj_8", 1, Decimal("2.5"), Decimal("437.5")),
            ("prj_9", "ctr_other", 1, Decimal("6"), Decimal("1050")),
        ]
        assert {p[0]: p[6] for p in projects}["prj_1"] == T0 + dt.timedelta(minutes=15)
        assert "te_9" not in {e[0] for e in entries}
    finally:
        await reference.dispose()


async def test_pages_from_the_stream_skip_a_malformed_event_and_dead_letter_it(
        db: Database, redis_client: redis.Redis, stream_name: str,
        clean: tuple[list[Event], tuple[Any, Any]]) -> None:
    events, expected = clean
    broken = Event(id="evt_broken", type="time.posted", version=1, occurred_at=dt.datetime.now(dt.UTC),
                   correlation_id=None, subject={"time_entry_id": "te_9"}, data={"amount": "x"}, position=99)
    projection = PostedTimeProjection(UnitOfWorkFactory(db))
    pages: list[int] = []

    async def handle_many(page: Sequence[Event]) -> Sequence[BaseException | None]:
        pages.append(len(page))
        return await projection.handle_many(page)

    try:
        # Delivered twice, newest first the second time, with a poison message in the first page.
        middle = len(events) // 2
        await put_on_stream(redis_client, stream_name,
                            [*events[:middle], broken, *events[middle:], *reversed(events)])
        consumer = StreamConsumer(redis_client, stream_name, CONSUMER, "replica-1", max_deliveries=2,
                                  min_idle_ms=0)
        assert await consumer.drain_pages(handle_many, count=10) == 2 * len(events)
        assert pages[0] == 10  # a whole page, the poison message failing alone in it
        for _ in range(3):
            await consumer.drain_pages(handle_many, count=10)

        assert await snapshot(db) == expected
        letters = await consumer.dead_letters()
        assert [letter[b"reason"] for letter in letters] == [b"max_deliveries"]
        assert b"evt_broken" in letters[0][b"event"]
        assert (await redis_client.xpending(stream_name, CONSUMER))["pending"] == 0
    finally:
        await redis_client.delete(stream_name, stream_name + ":dead")


async def test_the_in_process_bus_hands_each_relayed_batch_over_at_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database = Database(database_url("", tmp_path / "single-node", "process"), metadata)
    reference = Database(database_url("", tmp_path / "one-by-one", "process"), metadata)
    await database.create_all()
    await reference.create_all()
    try:
        async with database.transaction() as conn:
            await record_event(conn, "time.posted", {"time_entry_id": "te_9"}, {"amount": "x"})
        await events_of(database)
        projection = PostedTimeProjection(UnitOfWorkFactory(database))
        bus = InProcessBus()
        pages: list[list[int]] = []

        async def handle_many(page: Sequence[Event]) -> Sequence[BaseException | None]:
            pages.append([e.position for e in page])
            return await projection.handle_many(page)

        bus.subscribe_pages(handle_many)
        with caplog.at_level(logging.ERROR, logger="process_apis.events"):
            assert await EventRelay(UnitOfWorkFactory(database), bus, batch_size=6).relay_once() == 15
        assert pages == [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12], [13, 14, 15]]
        failed = [r for r in caplog.records if r.getMessage() == "event listener failed"]
        assert [r.__dict__["event_id"] for r in failed] == [bus.events[0].id]

        one_by_one = PostedTimeProjection(UnitOfWorkFactory(reference))
        for event in bus.events[1:]:
            await one_by_one.apply(event)
        assert await store_state(database) == await store_state(reference)
        assert len((await snapshot(database))[0]) == 5
    finally:
        await database.dispose()
        await reference.dispose()
