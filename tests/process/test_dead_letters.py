"""Dead letters kept in SQL for operators: what a consumer gave up on, with its error and attempts, re-driven to
the same consumer exactly once however often and however concurrently the re-drive is asked for. On both
databases, with a real Redis consumer group where a stream is involved."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence

import pytest
import redis.asyncio as redis
import sqlalchemy as sa

from process_apis.events.bus import encode_event
from process_apis.events.consumer import StreamConsumer
from process_apis.events.dead_letters import DeadLetters
from process_apis.events.models import DeadLetterRecord, Event
from process_apis.events.projection import CONSUMER, PostedTimeProjection
from process_apis.store import consumed_events, dead_letters, posted_time_projects
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.problems import BadRequest, NotFound
from runtime.storage import Database

pytestmark = pytest.mark.asyncio(loop_scope="session")


def posted(entry: str, *, amount: str = "1400.00", position: int = 7) -> Event:
    return Event(id="evt_" + uuid.uuid4().hex, type="time.posted", version=1, occurred_at=dt.datetime.now(dt.UTC),
                 correlation_id=None, position=position,
                 subject={"time_entry_id": entry, "project_id": "prj_dl", "contract_id": "ctr_dl", "posting_id": "p"},
                 data={"amount": amount, "currency": "USD", "hours": "8", "work_date": "2026-11-20",
                       "entry_version": 1, "psa_state": "posted"})


class CountingConsumer:
    """The posted-time projection, counting the events handed to it (a re-drive must hand each over once)."""

    def __init__(self, db: Database) -> None:
        self.projection = PostedTimeProjection(UnitOfWorkFactory(db))
        self.delivered: list[str] = []

    async def handle_many(self, events: Sequence[Event]) -> list[Exception | None]:
        self.delivered.extend(event.id for event in events)
        await asyncio.sleep(0.01)  # let concurrent re-drives interleave with this one
        return await self.projection.handle_many(events)


async def project_entries(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(sa.select(sa.func.coalesce(sa.func.sum(posted_time_projects.c.entries), 0))
                                       .where(posted_time_projects.c.project_id == "prj_dl"))).scalar_one())


async def test_a_poison_event_on_the_stream_becomes_a_dead_letter_with_its_error_and_attempts(
        db: Database, redis_client: redis.Redis, stream_name: str) -> None:
    consumer = CountingConsumer(db)
    letters = DeadLetters(UnitOfWorkFactory(db), {CONSUMER: consumer.handle_many})
    poison = posted("te_poison", amount="twelve")
    try:
        await redis_client.xadd(stream_name, encode_event(poison), id="7-0")  # type: ignore[arg-type]
        await redis_client.xadd(stream_name, {"type": "time.posted", "event": b"{not json"}, id="8-0")
        stream = StreamConsumer(redis_client, stream_name, CONSUMER, "replica-1", max_deliveries=2, min_idle_ms=0,
                                on_dead_letter=letters.record)
        for _ in range(4):
            await stream.drain_pages(consumer.handle_many)

        page = await letters.page(state="dead", consumer=None, event_type=None, cursor=None, limit=10)
        by_reason = {item.reason: item for item in page.items}
        assert set(by_reason) == {"max_deliveries", "undecodable"}
        letter = await letters.get(by_reason["max_deliveries"].id)
        assert (letter.consumer, letter.event_id, letter.event_type, letter.position, letter.attempts) == (
            CONSUMER, poison.id, "time.posted", 7, 2)
        assert letter.event == poison
        assert "ValidationError" in letter.error and "decimal" in letter.error
        undecodable = await letters.get(by_reason["undecodable"].id)
        assert (undecodable.event, undecodable.raw, undecodable.event_id) == (None, "{not json", "msg_8-0")
        assert (await redis_client.xpending(stream_name, CONSUMER))["pending"] == 0

        # The consumer still refuses it: the re-drive fails, the letter stays dead with one more attempt.
        [outcome] = await letters.redrive([letter.id])
        assert outcome.result == "failed" and outcome.error and "ValidationError" in outcome.error
        assert ((await letters.get(letter.id)).state, (await letters.get(letter.id)).attempts) == ("dead", 3)
        assert [o.result for o in await letters.redrive([undecodable.id])] == ["not_redrivable"]
    finally:
        await redis_client.delete(stream_name, stream_name + ":dead")


async def test_concurrent_and_repeated_redrives_deliver_the_event_once(db: Database) -> None:
    consumer = CountingConsumer(db)
    letters = DeadLetters(UnitOfWorkFactory(db), {CONSUMER: consumer.handle_many})
    event = posted("te_once")
    letter_id = await letters.record(DeadLetterRecord(consumer=CONSUMER, event_id=event.id, event=event,
                                                      reason="max_deliveries", error="OperationalError: locked",
                                                      attempts=5))

    raced = await asyncio.gather(*(letters.redrive([letter_id]) for _ in range(8)))
    results = sorted(outcome.result for [outcome] in raced)
    assert results.count("redriven") == 1, results
    assert set(results) <= {"redriven", "in_progress", "already_redriven"}
    again = await letters.redrive([letter_id, letter_id])
    assert [o.result for o in again] == ["already_redriven", "already_redriven"]

    assert consumer.delivered == [event.id]
    assert await project_entries(db) == 1
    letter = await letters.get(letter_id)
    assert (letter.state, letter.attempts, letter.redriven_at is not None) == ("redriven", 6, True)


async def test_a_redrive_that_crashed_is_taken_over_after_its_lease_and_applies_once(db: Database) -> None:
    consumer = CountingConsumer(db)
    letters = DeadLetters(UnitOfWorkFactory(db), {CONSUMER: consumer.handle_many})
    event = posted("te_crash")
    letter_id = await letters.record(DeadLetterRecord(consumer=CONSUMER, event_id=event.id, event=event,
                                                      reason="handler_failed", error="boom", attempts=1))
    # A re-drive claimed it, delivered it and died before settling: the event took effect, the letter is stuck.
    await consumer.projection.apply(event)
    async with db.transaction() as conn:
        await conn.execute(dead_letters.update().where(dead_letters.c.id == letter_id).values(
            state="redriving", lease_until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)))
    assert [o.result for o in await letters.redrive([letter_id])] == ["in_progress"]
    async with db.transaction() as conn:
        await conn.execute(dead_letters.update().where(dead_letters.c.id == letter_id).values(
            lease_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert [o.result for o in await letters.redrive([letter_id])] == ["redriven"]
    assert await project_entries(db) == 1
    async with db.read() as conn:
        outcomes = (await conn.execute(sa.select(consumed_events.c.outcome).where(
            consumed_events.c.event_id == event.id))).scalars().all()
    assert outcomes == ["applied"]


async def test_the_in_process_bus_keeps_what_the_projection_fails_as_a_dead_letter(db: Database) -> None:
    consumer = CountingConsumer(db)
    letters = DeadLetters(UnitOfWorkFactory(db), {CONSUMER: consumer.handle_many})
    good, bad = posted("te_good", position=1), posted("te_bad", amount="x", position=2)
    handle = letters.keeping(CONSUMER, consumer.handle_many)
    assert await handle([good, bad]) == [None, None]  # the failed one is now the dead letters' to keep
    page = await letters.page(state=None, consumer=CONSUMER, event_type="time.posted", cursor=None, limit=10)
    assert [(item.event_id, item.reason, item.attempts) for item in page.items] == [(bad.id, "handler_failed", 1)]
    # Failing again later (delivered once more) updates the same letter.
    await handle([bad])
    [item] = (await letters.page(state="dead", consumer=None, event_type=None, cursor=None, limit=10)).items
    assert item.attempts == 2


async def test_dead_letters_page_with_filters_and_cursors(db: Database) -> None:
    letters = DeadLetters(UnitOfWorkFactory(db), {})
    ids = [await letters.record(DeadLetterRecord(consumer="posted-time" if n % 2 else "other", event_id=f"evt_{n}",
                                                 event=posted(f"te_{n}"), reason="handler_failed", error="e",
                                                 attempts=1)) for n in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await letters.page(state=None, consumer=None, event_type=None, cursor=cursor, limit=2)
        seen.extend(item.id for item in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ids
    only = await letters.page(state="dead", consumer="other", event_type="time.posted", cursor=None, limit=10)
    assert [item.id for item in only.items] == ids[0::2]
    assert (await letters.page(state="redriven", consumer=None, event_type=None, cursor=None, limit=10)).items == []
    with pytest.raises(BadRequest):
        await letters.page(state=None, consumer=None, event_type=None, cursor="bm90LWEtY3Vyc29y", limit=2)
    with pytest.raises(NotFound):
        await letters.get("dl_" + "0" * 32)
    # A letter of a consumer that does not run here fails its re-drive and stays dead.
    [outcome] = await letters.redrive([ids[1]])
    assert (outcome.result, outcome.error) == ("failed", "LookupError: no consumer 'posted-time' runs in this tier")
    assert [o.result for o in await letters.redrive(["dl_" + "f" * 32])] == ["not_found"]


async def test_a_dead_letter_that_cannot_be_kept_stays_pending_on_the_stream_until_it_can(
        db: Database, redis_client: redis.Redis, stream_name: str) -> None:
    consumer = CountingConsumer(db)
    letters = DeadLetters(UnitOfWorkFactory(db), {CONSUMER: consumer.handle_many})
    down = [True]

    async def keep(letter: DeadLetterRecord) -> str:
        if down[0]:
            raise ConnectionError("the database is unavailable")
        return await letters.record(letter)

    poison = posted("te_kept_later", amount="x")
    try:
        await redis_client.xadd(stream_name, encode_event(poison), id="7-0")  # type: ignore[arg-type]
        stream = StreamConsumer(redis_client, stream_name, CONSUMER, "replica-1", max_deliveries=1, min_idle_ms=0,
                                on_dead_letter=keep)
        await stream.drain_pages(consumer.handle_many)
        with pytest.raises(ConnectionError):
            await stream.drain_pages(consumer.handle_many)
        assert (await redis_client.xpending(stream_name, CONSUMER))["pending"] == 1
        assert await redis_client.xlen(stream_name + ":dead") == 0

        down[0] = False
        await stream.drain_pages(consumer.handle_many)
        assert (await redis_client.xpending(stream_name, CONSUMER))["pending"] == 0
        [letter] = (await letters.page(state="dead", consumer=None, event_type=None, cursor=None, limit=10)).items
        assert (letter.event_id, letter.reason) == (poison.id, "max_deliveries")
        assert "ValidationError" in letter.error
    finally:
        await redis_client.delete(stream_name, stream_name + ":dead")
