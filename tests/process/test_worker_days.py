"""Claims on a worker's day (process_apis/timesheets/days.py) on both databases: concurrent writers never put more
than 24 hours on a day; a write whose outcome is unknown keeps its minutes claimed until the claim expires, then
the day is the PSA's alone again (the expired claim purged); a retry of the same create is never held back by its
own claim; a check that cannot get a fresh read of the day answers a 503 problem instead of guessing. A burst of
writes on one day reads the PSA day once, not once a write, and still never passes 24 hours, whether the writers
share one process or are replicas each with reads of its own; what a process writes or deletes counts at once, and
a correction applied after the day was read counts at its corrected hours.

The PSA here is the day book below: the tier reads the day and writes entries through it, so a test controls
what the PSA holds and when a write fails, while the claims live in the real database."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from contracts.canonical import TimeEntry, hours_of_minutes
from process_apis.store import time_corrections, worker_day_claims
from process_apis.timesheets.days import READS, Claim, WorkerDays
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.downstream import DownstreamProblem
from runtime.problems import ProblemError
from runtime.storage import Database, utcnow

WORKER = "wrk_e1001"
DAY = dt.date(2026, 12, 7)


class DayBook:
    """The PSA's time entries as the tier sees them: read by day, written one by one (yielding to other tasks in
    between, as a call over the network would)."""

    def __init__(self) -> None:
        self.entries: dict[str, TimeEntry] = {}
        self.reads = 0

    async def time_entries(self, *, worker_id: str, from_date: dt.date, to_date: dt.date) -> list[TimeEntry]:
        self.reads += 1
        await asyncio.sleep(0)
        return [e for e in self.entries.values()
                if e.worker_id == worker_id and from_date <= e.work_date <= to_date]

    async def time_entry(self, time_entry_id: str) -> TimeEntry:
        return self.entries[time_entry_id]

    async def create(self, minutes: int, client_ref: str | None = None) -> TimeEntry:
        await asyncio.sleep(0)
        entry = TimeEntry(id="te_" + uuid.uuid4().hex[:12], worker_id=WORKER, project_id="prj_4001", work_date=DAY,
                          hours=hours_of_minutes(minutes), minutes=minutes, state="draft", client_ref=client_ref)
        self.entries[entry.id] = entry
        return entry

    def minutes(self) -> int:
        return sum(e.minutes or 0 for e in self.entries.values())


class Replica:
    """The same PSA seen through another process's client: a replica keeps reads of its own."""

    def __init__(self, book: DayBook) -> None:
        self.book = book

    async def time_entries(self, **filters: Any) -> list[TimeEntry]:
        return await self.book.time_entries(**filters)

    async def time_entry(self, time_entry_id: str) -> TimeEntry:
        return await self.book.time_entry(time_entry_id)


def days_of(db: Database, book: DayBook | Replica, **options: float) -> WorkerDays:
    return WorkerDays(UnitOfWorkFactory(db), SimpleNamespace(psa=book), **options)  # type: ignore[arg-type]


# A read held as long as any of these tests can take, however slow the machine (the grace bounds the reuse).
HELD = {"grace_seconds": 3600.0, "reuse_seconds": 1200.0}


async def claim(days: WorkerDays, hours: int, client_ref: str | None = None) -> Claim | None:
    refused, claimed = await days.claim(WORKER, DAY, Decimal(hours), "/hours", client_ref=client_ref)
    assert bool(refused) == (claimed is None)
    return claimed


async def claims_held(db: Database) -> list[str]:
    async with db.read() as conn:
        return list((await conn.execute(sa.select(worker_day_claims.c.id))).scalars())


async def test_concurrent_writers_fill_a_day_to_24_hours_and_never_past(db: Database) -> None:
    book = DayBook()
    days = days_of(db, book)

    async def log_an_hour() -> bool:
        claimed = await claim(days, 1)
        if claimed is None:
            return False
        async with days.writing(claimed) as written:
            written(await book.create(60))
        return True

    logged = await asyncio.gather(*(log_an_hour() for _ in range(40)))

    assert book.minutes() == 24 * 60  # every refusal was for want of room
    assert sum(logged) == 24


async def test_on_sqlite_concurrent_claims_and_settles_share_transactions_and_still_never_pass_24_hours(
        db: Database) -> None:
    """Writes arriving together take a turn of the database between them (claims, and the settles of the writes
    before them), not two each; the claims of one transaction still count each other."""
    if db.dialect != "sqlite":
        pytest.skip("on PostgreSQL each claim holds its own day's row in a transaction of its own")
    book = DayBook()
    days = days_of(db, book, **HELD)
    transactions = [0]

    def began(_conn: Any) -> None:
        transactions[0] += 1

    sa.event.listen(db.engine.sync_engine, "begin", began)
    try:
        async def log_two_hours(n: int) -> bool:
            claimed = await claim(days, 2, client_ref=f"phone-{n}")
            if claimed is None:
                return False
            async with days.writing(claimed) as written:
                written(await book.create(120, client_ref=f"phone-{n}"))
            return True

        await claim(days, 0)  # the day read once, before the burst
        transactions[0] = 0
        logged = await asyncio.gather(*(log_two_hours(n) for n in range(20)))
    finally:
        sa.event.remove(db.engine.sync_engine, "begin", began)

    assert sum(logged) == 12 and book.minutes() == 24 * 60
    assert transactions[0] < 20, "one transaction a write at most, not a claim and a settle each"
    async with db.read() as conn:
        confirmed = (await conn.execute(sa.select(sa.func.count()).where(
            worker_day_claims.c.confirmed_at.is_not(None)))).scalar_one()
    assert confirmed == 12, "every write's claim was settled"


async def test_a_write_of_unknown_outcome_holds_its_minutes_until_its_claim_expires(db: Database) -> None:
    book = DayBook()
    days = days_of(db, book)
    claimed = await claim(days, 23, client_ref="phone-1")
    assert claimed is not None
    with pytest.raises(DownstreamProblem):
        async with days.writing(claimed):
            raise DownstreamProblem("the PSA did not answer in time", status=504)

    # The 23 hours may have been written: they count, except for a retry of that very create.
    assert await claim(days, 2) is None
    retry = await claim(days, 23, client_ref="phone-1")
    assert retry is not None
    async with days.writing(retry) as written:
        written(await book.create(23 * 60, client_ref="phone-1"))
    assert await claim(days, 2) is None

    # Time passes beyond both claims' time to live: the PSA's day alone counts (23 hours) ...
    async with db.transaction() as conn:
        await conn.execute(worker_day_claims.update().values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert await claim(days, 2) is None
    assert await claim(days, 1) is not None
    # ... and the expired claims are purged (by a process's first check, and every minute after).
    last = await claim(days_of(db, book), 0)
    assert last is not None
    assert len(await claims_held(db)) == 2  # the hour claimed above and this one


async def test_a_write_the_psa_refuses_releases_its_claim_at_once(db: Database) -> None:
    book = DayBook()
    days = days_of(db, book)
    claimed = await claim(days, 23)
    assert claimed is not None
    with pytest.raises(DownstreamProblem):
        async with days.writing(claimed):
            raise DownstreamProblem("no such project", status=422, slug="validation-failed")

    assert await claims_held(db) == []
    assert await claim(days, 24) is not None


async def test_a_check_without_a_fresh_read_of_the_day_answers_503(db: Database) -> None:
    book = DayBook()
    days = days_of(db, book, grace_seconds=0.0)  # every read is older than the grace by the time it is counted

    with pytest.raises(ProblemError) as refused:
        await days.claim(WORKER, DAY, Decimal(1), "/hours")

    assert (refused.value.status, refused.value.slug) == (503, "service-unavailable")
    assert book.reads == READS
    assert await claims_held(db) == []


async def test_a_burst_on_one_day_reads_the_day_once_and_never_passes_24_hours(db: Database) -> None:
    book = DayBook()
    days = days_of(db, book, **HELD)

    async def log_half_an_hour() -> bool:
        claimed = await days.claim(WORKER, DAY, Decimal("0.5"), "/hours")
        if claimed[1] is None:
            return False
        async with days.writing(claimed[1]) as written:
            written(await book.create(30))
        return True

    logged = await asyncio.gather(*(log_half_an_hour() for _ in range(60)))

    assert book.minutes() == 24 * 60
    assert sum(logged) == 48
    assert book.reads == 1  # the checks waited for the read in flight, then reused it


async def test_replicas_with_reads_of_their_own_never_put_more_than_24_hours_on_a_day(db: Database) -> None:
    book = DayBook()
    replicas = [days_of(db, Replica(book), **HELD) for _ in range(3)]
    await asyncio.gather(*(claim(r, 0) for r in replicas))  # each replica holds the empty day, read once

    async def log_an_hour(days: WorkerDays) -> bool:
        claimed = await claim(days, 1)
        if claimed is None:
            return False
        async with days.writing(claimed) as written:
            written(await book.create(60))
        return True

    logged = await asyncio.gather(*(log_an_hour(replicas[i % 3]) for i in range(45)))
    # Every claim settled: each replica's read of the day predates most entries, the confirmed claims count them.
    assert await claim(replicas[0], 1) is None

    assert book.minutes() == 24 * 60
    assert sum(logged) == 24
    assert book.reads == 3


async def test_what_this_process_deletes_or_shrinks_makes_room_at_once_despite_a_held_read(db: Database) -> None:
    book = DayBook()
    days = days_of(db, book, **HELD)
    entries = [await book.create(12 * 60) for _ in range(2)]
    assert await claim(days, 0) is not None  # the process now holds the day with its 24 hours
    assert await claim(days, 1) is None

    async with days.deleting(entries[0].id):
        del book.entries[entries[0].id]
    shrink = (await days.claim(WORKER, DAY, Decimal(2), "/hours", time_entry_id=entries[1].id))[1]
    assert shrink is not None
    async with days.writing(shrink) as written:
        smaller = msgspec.structs.replace(entries[1], hours=hours_of_minutes(120), minutes=120)
        book.entries[smaller.id] = smaller
        written(smaller)
    # The claims are past their grace: the day read held by the process is all that counts.
    async with db.transaction() as conn:
        await conn.execute(worker_day_claims.delete())

    assert await claim(days, 23) is None  # the 2 hours left count ...
    assert await claim(days, 22) is not None  # ... and the rest of the day is free, with no new read
    assert book.reads == 1


async def test_a_correction_applied_after_the_day_was_read_counts_at_its_corrected_hours(db: Database) -> None:
    book = DayBook()
    days = days_of(db, book, **HELD)
    old = await book.create(8 * 60)
    assert await claim(days, 0) is not None  # the process now holds the day with the 8 hours
    # Another process carries out a correction to 20 hours: the PSA's new version supersedes the old one ...
    new = msgspec.structs.replace(old, id="te_new", hours=hours_of_minutes(20 * 60), minutes=20 * 60)
    book.entries[old.id] = msgspec.structs.replace(old, superseded_by_id=new.id)
    book.entries[new.id] = new
    # ... and the request is applied, no longer open.
    async with db.transaction() as conn:
        await conn.execute(time_corrections.insert().values(
            id="cor_1", time_entry_id=old.id, worker_id=WORKER, project_id="prj_4001", changes={"hours": "20"},
            reason="forgot the afternoon", state="applied", approver_id="wrk_e1002", new_time_entry_id=new.id,
            created_at=utcnow(), decided_at=utcnow(), applied_at=utcnow()))

    assert await claim(days, 5) is None  # 20 + 5: the held read (8 hours) alone would have let it pass
    assert await claim(days, 4) is not None
    assert book.reads == 1
