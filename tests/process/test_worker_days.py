"""Claims on a worker's day (process_apis/timesheets/days.py) on both databases: concurrent writers never put more
than 24 hours on a day; a write whose outcome is unknown keeps its minutes claimed until the claim expires, then
the day is the PSA's alone again (the expired claim purged); a retry of the same create is never held back by its
own claim; a check that cannot get a fresh read of the day answers a 503 problem instead of guessing.

The PSA here is the day book below: the tier reads the day and writes entries through it, so a test controls
what the PSA holds and when a write fails, while the claims live in the real database."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from contracts.canonical import TimeEntry, hours_of_minutes
from process_apis.store import worker_day_claims
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


def days_of(db: Database, book: DayBook, **options: float) -> WorkerDays:
    return WorkerDays(UnitOfWorkFactory(db), SimpleNamespace(psa=book), **options)  # type: ignore[arg-type]


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
