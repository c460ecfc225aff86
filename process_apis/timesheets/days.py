"""A worker's day: the 24-hours-a-day rule holds under concurrent writes, with no transaction open across a call.

The rule reads the day from the PSA, checks it and writes; two requests doing that at once would both see room
and both write (32 concurrent creates once put 31 hours on one day). So every write that adds time to a day (a
create, an edit, an offline batch item) first *claims* its minutes on the day, in one short transaction that
holds the day and counts, beside the PSA's day, every claim still standing (``process_worker_day_claims``). Only
then is the PSA written, outside any transaction, and the claim settled:

- written: the claim is confirmed with the entry's id and stands ``grace`` seconds more, the time a concurrent
  check's read of the PSA day may predate the write. A check whose read started longer than that before its
  claim transaction reads again; so every check either counts the claim or sees the entry, and a claim and the
  entry it wrote count once (by entry id, or by client_ref while the write is in flight), at the larger minutes.
  An edit sends the date and hours it was checked for, so it lands exactly as claimed; once written it replaces
  the claims of the same entry confirmed before it was claimed (they describe a state the entry has left: a
  shrunk entry makes room at once). A deleted entry's confirmed claims go with it;
- nothing written (the PSA refused, a 4xx, or answered a re-sent create with the entry it has): released at once;
- outcome unknown (a timeout, a 5xx, the process stopped): the claim stands until it expires (``ttl``, longer
  than any call can stay in flight through the gateway and the system tier), after which the PSA's day alone is
  the truth again. Expired claims are not counted, and purged now and then. A retry of the same create (same
  client_ref) or of an edit of the same entry is never held back by its own claim.

Holding the day: ``INSERT ... ON CONFLICT DO NOTHING`` then ``SELECT ... FOR UPDATE`` on the day's row in
``process_worker_days`` on PostgreSQL (only that worker's date waits, across every replica sharing the database);
on SQLite the write transaction (``BEGIN IMMEDIATE``) serializes the tier's writers already, so there the claims
and settles a process asks for while one transaction commits go in the next one together (:class:`DayTurns`).
Either way the hold lasts a few statements, never a call to another system. On PostgreSQL one day per
transaction: no deadlock. Times are this
tier's clocks (replicas on one host, or NTP-synchronised: ``grace`` covers seconds of skew).

Reading the day: a check counts a read of the PSA day begun less than ``grace`` before its transaction (above),
so a read need not be its own. This process keeps the days it read lately (:class:`DayReads`, one per PSA client,
shared by every service of the process) and a check reuses a read begun less than ``reuse`` seconds ago (a third of
the grace at most, so the claim transaction has the rest); checks arriving while a read of their day is in flight
wait for it instead of reading again. Under a burst of writes on one day the PSA is read once, not once a write.
What this process writes or deletes is applied to the days it holds at once (the entry as the PSA answered it), so
a shrunk, moved or deleted entry makes room here at once; a change made through another replica, or in the PSA
itself, is seen when the read is renewed (within ``reuse`` seconds): a day is only ever counted fuller than it is,
never emptier, since a write newer than the read holds its claim until the read is too old to be used. A correction
is the one write that holds no claim: it makes a new version in the PSA and only then stops being open, so a
correction applied less than ``grace`` ago counts as still open unless the day read already shows its new version.

A correction request holds its hours on the day by its own row (open corrections count at the hours they would
give): :meth:`WorkerDays.record` checks the day and inserts that row in the same short transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.canonical import TimeEntry
from process_apis.store import time_corrections, worker_day_claims, worker_days
from process_apis.systems import Systems
from process_apis.timesheets.entry_rules import day_errors, minutes_of
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.downstream import DownstreamProblem
from runtime.problems import FieldError, ProblemError
from runtime.storage import Database, utcnow

OPEN_CORRECTIONS = ("requested", "approved")
# An unsettled claim stands this long: past every timeout of the call that writes (process 10 s, gateway, system
# tier and vendor behind it), so no write can land after its claim expired.
CLAIM_TTL_SECONDS = 120.0
# A confirmed claim stands this long: longer than a check's read of the PSA day may precede its claim transaction.
CONFIRMED_GRACE_SECONDS = 30.0
# Reads of the day a check may make before it gives up (each read found too old when its transaction began).
READS = 3
# Expired claims are purged by a process's first check and this often after.
PURGE_EVERY_SECONDS = 60.0
# A read of a worker's day is reused by the checks that follow it for this long (never more than a third of the
# grace: see the module docstring).
DAY_READ_REUSE_SECONDS = 10.0
# Days a process holds at most: past this, the reads too old to be reused go, then (if still too many) all of them.
DAY_READS_HELD = 4096


# On SQLite one writer at a time holds the database: this process's transactions on the day tables (the shared
# turns of claims and settles, a correction's check, a delete's forgetting) queue here instead, each handed the
# turn as the last one commits (SQLite's busy handler would sleep up to 100 ms between tries, and under load those
# sleeps, not the work, set the pace).
_sqlite_turns: weakref.WeakKeyDictionary[Database, asyncio.Lock] = weakref.WeakKeyDictionary()


def _turn(db: Database) -> AbstractAsyncContextManager[object]:
    if db.dialect != "sqlite":
        return contextlib.nullcontext()
    return _sqlite_turns.setdefault(db, asyncio.Lock())


Day = dict[str, TimeEntry]  # a worker's entries on one date, by id

# The statements of every claim and settle, built once (building and keying them again for each write cost more
# than running them).
_c, _k = worker_day_claims.c, time_corrections.c
_INSERT_CLAIM = worker_day_claims.insert()
_SUPERSEDED = sa.select(_c.id).where(_c.time_entry_id == sa.bindparam("time_entry_id"), _c.confirmed_at.is_not(None))
_CONFIRM = worker_day_claims.update().where(_c.id == sa.bindparam("claim_id")).values(
    time_entry_id=sa.bindparam("entry_id"), confirmed_at=sa.bindparam("confirmed"), expires_at=sa.bindparam("expires"))
# What stands on a worker's day beside the PSA's entries, in one statement (one round trip inside the held
# transaction): the unexpired claims of the date, and the worker's open correction requests with those applied
# less than the grace ago (the day read may predate them).
_STANDING = sa.union_all(
    sa.select(sa.literal("claim").label("kind"), _c.id, _c.minutes, _c.time_entry_id, _c.client_ref,
              sa.type_coerce(sa.null(), _k.changes.type).label("changes"), sa.null().label("new_time_entry_id")).where(
        _c.worker_id == sa.bindparam("worker_id"), _c.work_date == sa.bindparam("work_date"),
        _c.expires_at > sa.bindparam("now")),
    sa.select(sa.literal("correction"), sa.null(), sa.null(), _k.time_entry_id, sa.null(), _k.changes,
              _k.new_time_entry_id).where(
        _k.worker_id == sa.bindparam("worker_id"),
        sa.or_(_k.state.in_(OPEN_CORRECTIONS),
               sa.and_(_k.state == "applied", _k.applied_at > sa.bindparam("applied_after")))))
# A check's outcome: (the refusal, [] when the hours fit; None when the day must be read again) and the entries
# whose present hours it needs first.
_Checked = tuple[list[FieldError] | None, list[str]]


class DayReads:
    """The PSA days this process read lately, by worker and date, each with the moment its read began (the
    monotonic clock); kept current with what this process writes (:meth:`apply`, :meth:`forget`)."""

    def __init__(self) -> None:
        self._days: dict[str, dict[dt.date, tuple[float, Day]]] = {}
        self._reading: dict[tuple[str, dt.date], asyncio.Future[tuple[float, Day]]] = {}
        self._held = 0

    async def day(self, systems: Systems, worker_id: str, work_date: dt.date, *,
                  reuse: float) -> tuple[float, list[TimeEntry]]:
        """The worker's entries on the date and when their read began: a read begun less than ``reuse`` seconds
        ago, or the one in flight, or a new one (``reuse`` 0: always a new one)."""
        key = (worker_id, work_date)
        if reuse > 0:
            known = self._days.get(worker_id, {}).get(work_date)
            if known is not None and time.monotonic() - known[0] < reuse:
                return known[0], list(known[1].values())
            reading = self._reading.get(key)
            if reading is not None:
                with contextlib.suppress(Exception):  # the read in flight failed: read on our own
                    read_at, day = await asyncio.shield(reading)
                    return read_at, list(day.values())
        read_at = time.monotonic()
        reading = asyncio.get_running_loop().create_future()
        self._reading.setdefault(key, reading)
        try:
            entries = await systems.psa.time_entries(worker_id=worker_id, from_date=work_date, to_date=work_date)
        except BaseException as exc:
            if self._reading.get(key) is reading:
                del self._reading[key]
            # Those waiting read on their own (a plain exception: a cancelled read does not cancel them).
            reading.set_exception(exc if isinstance(exc, Exception) else RuntimeError("the read was given up"))
            reading.exception()  # retrieved: a read nobody waited for is no "exception never retrieved"
            raise
        day = {e.id: e for e in entries}
        if self._reading.get(key) is reading:
            del self._reading[key]
        reading.set_result((read_at, day))
        self._keep(worker_id, work_date, read_at, day)
        return read_at, entries

    def _keep(self, worker_id: str, work_date: dt.date, read_at: float, day: Day) -> None:
        days = self._days.setdefault(worker_id, {})
        known = days.get(work_date)
        if known is not None and known[0] > read_at:
            return  # a later read is held already
        if known is None:
            self._held += 1
            if self._held > DAY_READS_HELD:
                self._drop_older_than(time.monotonic() - DAY_READ_REUSE_SECONDS)
                days = self._days.setdefault(worker_id, {})
        days[work_date] = (read_at, dict(day))

    def _drop_older_than(self, moment: float) -> None:
        for worker_id, days in list(self._days.items()):
            for work_date, (read_at, _) in list(days.items()):
                if read_at < moment:
                    del days[work_date]
            if not days:
                del self._days[worker_id]
        self._held = sum(len(days) for days in self._days.values())
        if self._held > DAY_READS_HELD:
            self._days.clear()
            self._held = 0

    def apply(self, entry: TimeEntry) -> None:
        """The entry as the PSA holds it now (written by this process): off any other date held, on its own."""
        for work_date, (_, day) in self._days.get(entry.worker_id, {}).items():
            if work_date == entry.work_date:
                day[entry.id] = entry
            else:
                day.pop(entry.id, None)

    def forget(self, time_entry_id: str) -> None:
        """The entry is gone from the PSA (deleted by this process)."""
        for days in self._days.values():
            for _, day in days.values():
                day.pop(time_entry_id, None)


# One per PSA client (so per process), shared by every service checking days through it.
_day_reads: weakref.WeakKeyDictionary[object, DayReads] = weakref.WeakKeyDictionary()


def day_reads(systems: Systems) -> DayReads:
    return _day_reads.setdefault(systems.psa, DayReads())


T = TypeVar("T")
Work = Callable[[AsyncConnection], Awaitable[T]]


class DayTurns:
    """This process's claim and settle transactions. On SQLite, where one writer holds the whole database at a
    time, the claims and settles asked for while a transaction commits go together in the next one: the settles
    first (one UPDATE for the confirmed, one DELETE for the released and superseded), then each claim's check in
    the order asked, each seeing the claims of those before it. So concurrent writes take one turn of the database
    between them instead of two each (a claim, then a settle). On PostgreSQL a claim runs in a transaction of its
    own, holding its day's row only (a batch would hold several days: replicas could deadlock), and settles are
    batched alone. Either way a claim or settle returns once its transaction committed (a released claim is gone
    before the caller answers); a settle that fails leaves its claim to expire, and a failed transaction fails every
    claim in it, as it would have failed each alone. A claim's work only reads and inserts claims: it queues
    nothing for the background workers (a correction request, which does, has a transaction of its own:
    :meth:`WorkerDays.record`). One per database and process (:func:`_day_turns`). Each transaction is a unit of
    work like any other (process_apis/unit_of_work.py), so nothing here opens one by hand."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self.uow = uow
        self.db = uow.db
        self._checks: list[tuple[Work[Any], asyncio.Future[Any]]] = []
        self._settles: list[tuple[Claim, str | None, dt.timedelta, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def check(self, work: Work[T]) -> T:
        """Run ``work`` in a write transaction holding the day tables; its result once committed."""
        if self.db.dialect != "sqlite":
            async with self.uow() as uow:
                return await work(uow.conn)
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._checks.append((work, done))
        self._flush_soon()
        return await done

    async def settle(self, claim: Claim, time_entry_id: str | None, grace: dt.timedelta) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._settles.append((claim, time_entry_id, grace, done))
        self._flush_soon()
        await done

    def _flush_soon(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        while self._checks or self._settles:
            checks, self._checks = self._checks, []
            settles, self._settles = self._settles, []
            results: list[Any] = []
            try:
                async with _turn(self.db), self.uow() as uow:
                    if settles:
                        await _settle_all(uow.conn, [(claim, entry_id, grace) for claim, entry_id, grace, _ in settles])
                    for work, _ in checks:
                        results.append(await work(uow.conn))
            except Exception as exc:  # handed to every claim of the transaction
                for _, done in checks:
                    if not done.done():
                        done.set_exception(exc)
                        done.exception()  # retrieved: a caller gone (cancelled) leaves no warning behind
                results = []
            for (_, done), result in zip(checks, results, strict=False):
                if not done.done():
                    done.set_result(result)
            for *_, settled in settles:  # settled or failed: a claim left unsettled expires on its own
                if not settled.done():
                    settled.set_result(None)


async def _settle_all(conn: AsyncConnection, batch: list[tuple[Claim, str | None, dt.timedelta]]) -> None:
    c = worker_day_claims.c
    gone = [claim.id for claim, entry_id, _ in batch if entry_id is None]
    gone += [superseded for claim, entry_id, _ in batch if entry_id is not None for superseded in claim.supersedes]
    now = utcnow()
    confirmed = [{"claim_id": claim.id, "entry_id": entry_id, "confirmed": now, "expires": now + grace}
                 for claim, entry_id, grace in batch if entry_id is not None]
    if confirmed:
        await conn.execute(_CONFIRM, confirmed)
    if gone:
        await conn.execute(worker_day_claims.delete().where(c.id.in_(gone)))


_day_turns_of: weakref.WeakKeyDictionary[Database, DayTurns] = weakref.WeakKeyDictionary()


def _day_turns(uow: UnitOfWorkFactory) -> DayTurns:
    turns = _day_turns_of.get(uow.db)
    if turns is None:
        turns = _day_turns_of[uow.db] = DayTurns(uow)
    return turns


@dataclass(frozen=True)
class Claim:
    """Minutes claimed on a worker's day until the write is settled (:meth:`WorkerDays.writing`)."""

    id: str
    worker_id: str
    work_date: dt.date
    # Claims of the same entry confirmed before this one was made: this write, once made, replaces them.
    supersedes: tuple[str, ...] = ()


class Written:
    """What the write under a claim did, told by the caller once the PSA answered: the entry as the PSA holds it,
    and whether it was written (False: a re-sent create answered with the entry the PSA has, nothing written)."""

    def __init__(self) -> None:
        self.entry: TimeEntry | None = None
        self.wrote = False

    def __call__(self, entry: TimeEntry, *, wrote: bool = True) -> None:
        self.entry = entry
        self.wrote = wrote

    @property
    def time_entry_id(self) -> str | None:
        return self.entry.id if self.entry is not None else None


class WorkerDays:
    def __init__(self, uow: UnitOfWorkFactory, systems: Systems, *, ttl_seconds: float = CLAIM_TTL_SECONDS,
                 grace_seconds: float = CONFIRMED_GRACE_SECONDS,
                 reuse_seconds: float = DAY_READ_REUSE_SECONDS) -> None:
        self.uow = uow
        self.db = uow.db
        self.systems = systems
        self.ttl = dt.timedelta(seconds=ttl_seconds)
        self.grace = dt.timedelta(seconds=grace_seconds)
        self.reuse = max(min(reuse_seconds, grace_seconds / 3), 0.0)
        self.reads = day_reads(systems)
        self._purged_at = 0.0

    async def claim(self, worker_id: str, work_date: dt.date, hours: Decimal, pointer: str, *,
                    client_ref: str | None = None, time_entry_id: str | None = None
                    ) -> tuple[list[FieldError], Claim | None]:
        """Claim ``hours`` on the worker's date for the write about to be made: (refusal, None) when the day has
        no room, else ([], the claim). ``client_ref`` names a create (a re-sent one is the same entry),
        ``time_entry_id`` an edit: the entry itself is left out of the day, so a replay or an edit never counts
        twice."""
        claim_id = "wdc_" + uuid.uuid4().hex[:24]
        minutes = minutes_of(hours)
        supersedes: list[str] = []

        async def insert(conn: AsyncConnection, now: dt.datetime) -> None:
            if time_entry_id is not None:
                supersedes.extend((await conn.execute(_SUPERSEDED, {"time_entry_id": time_entry_id})).scalars())
            await conn.execute(_INSERT_CLAIM, {
                "id": claim_id, "worker_id": worker_id, "work_date": work_date, "minutes": minutes,
                "time_entry_id": time_entry_id, "client_ref": client_ref, "expires_at": now + self.ttl})

        refused = await self._checked(worker_id, work_date, hours, pointer, client_ref, time_entry_id, insert,
                                      _day_turns(self.uow).check)
        return (refused, None) if refused else ([], Claim(claim_id, worker_id, work_date, tuple(supersedes)))

    async def record(self, worker_id: str, work_date: dt.date, hours: Decimal, pointer: str, *, time_entry_id: str,
                     write: Callable[[AsyncConnection], Awaitable[None]]) -> list[FieldError]:
        """Check the day for an entry's new ``hours`` and, when it has room, ``write`` in the same transaction (a
        correction request: its own row holds its hours on the day)."""
        async def then(conn: AsyncConnection, _now: dt.datetime) -> None:
            await write(conn)

        return await self._checked(worker_id, work_date, hours, pointer, None, time_entry_id, then, self._alone)

    async def _alone(self, work: Work[T]) -> T:
        """``work`` in a unit of work of its own (what it writes may queue outbox rows; it may fail on its own)."""
        async with _turn(self.db), self.uow() as uow:
            return await work(uow.conn)

    @asynccontextmanager
    async def writing(self, claim: Claim) -> AsyncIterator[Written]:
        """Settle ``claim`` by the write made inside: confirmed with the entry the PSA answered (``written(entry)``),
        released when nothing was written (a 4xx from the PSA, ``wrote=False``, nothing named); left to expire
        when the outcome is unknown (any other failure)."""
        written = Written()
        try:
            yield written
        except DownstreamProblem as exc:
            if 400 <= exc.status < 500:
                await self._settle(claim, None)
            raise
        if written.entry is not None:
            self.reads.apply(written.entry)
        await self._settle(claim, written.time_entry_id if written.wrote else None)

    @asynccontextmanager
    async def deleting(self, time_entry_id: str) -> AsyncIterator[None]:
        """Delete an entry inside: once the PSA has deleted it, its claims confirmed before go too (the day has the
        room at once). Claims still in flight stay: their writes may land yet."""
        async with self.db.read() as conn:
            confirmed = list((await conn.execute(sa.select(worker_day_claims.c.id).where(
                worker_day_claims.c.time_entry_id == time_entry_id,
                worker_day_claims.c.confirmed_at.is_not(None)))).scalars())
        yield
        self.reads.forget(time_entry_id)
        if confirmed:
            await self._forget(confirmed)

    async def _settle(self, claim: Claim, time_entry_id: str | None) -> None:
        # Settling only shortens how long the claim counts: if it fails, the claim expires on its own.
        await _day_turns(self.uow).settle(claim, time_entry_id, self.grace)

    async def _forget(self, claim_ids: list[str]) -> None:
        try:
            async with _turn(self.db), self.uow() as uow:
                await uow.conn.execute(worker_day_claims.delete().where(worker_day_claims.c.id.in_(claim_ids)))
        except sa.exc.SQLAlchemyError:
            return

    async def _checked(self, worker_id: str, work_date: dt.date, hours: Decimal, pointer: str,
                       client_ref: str | None, time_entry_id: str | None,
                       then: Callable[[AsyncConnection, dt.datetime], Awaitable[None]],
                       transaction: Callable[[Work[_Checked]], Awaitable[_Checked]]) -> list[FieldError]:
        """Read the PSA day (outside any transaction; a recent read will do, see :class:`DayReads`), then in one
        short ``transaction`` holding the day: count it with the standing claims and open corrections, and ``then``
        when the hours fit."""
        present: dict[str, Decimal] = {}  # hours of entries that open corrections move here at their hours
        for attempt in range(READS):
            # A read found too old is read again, not reused.
            read_at, day = await self.reads.day(self.systems, worker_id, work_date,
                                                reuse=self.reuse if attempt == 0 else 0.0)

            async def check(conn: AsyncConnection, read_at: float = read_at,
                            day: list[TimeEntry] = day) -> _Checked:
                # A read older than the grace may predate writes whose claims expired since: read the day again.
                if time.monotonic() - read_at >= self.grace.total_seconds():
                    return None, []
                now = utcnow()
                await self._hold(conn, worker_id, work_date, now)
                claims, corrections = await self._standing(conn, worker_id, work_date, now)
                claimed = _claimed(claims, day, client_ref, time_entry_id)
                pending, unknown = _pending(corrections, work_date, day, present)
                if unknown:
                    return None, unknown
                others = [e for e in day
                          if e.id != time_entry_id and (client_ref is None or e.client_ref != client_ref)]
                pending.pop(time_entry_id or "", None)
                refused = day_errors(others, hours, pointer, pending=pending, claimed=claimed)
                if not refused:
                    await then(conn, now)
                return refused, []

            refused, unknown = await transaction(check)
            if refused is not None:
                return refused
            # Outside the transaction: the hours of entries a correction moves here, then count again.
            for entry_id in unknown:
                present[entry_id] = (await self.systems.psa.time_entry(entry_id)).hours
        raise ProblemError(f"the day of {worker_id} on {work_date.isoformat()} is too busy to check; retry shortly",
                           status=503, slug="service-unavailable", headers={"Retry-After": "1"})

    async def _hold(self, conn: AsyncConnection, worker_id: str, work_date: dt.date, now: dt.datetime) -> None:
        """Hold the day until the transaction ends."""
        if self.db.dialect != "sqlite":  # SQLite's write transaction holds every day already
            key = {"worker_id": worker_id, "work_date": work_date}
            await conn.execute(self.db.insert_ignoring_conflicts(worker_days, ["worker_id", "work_date"]).values(**key))
            await conn.execute(sa.select(worker_days.c.worker_id).where(
                worker_days.c.worker_id == worker_id, worker_days.c.work_date == work_date).with_for_update())
        # Expired claims are not counted (see _standing); purging them now and then keeps the table small
        # without a statement on every check.
        if time.monotonic() - self._purged_at >= PURGE_EVERY_SECONDS:
            self._purged_at = time.monotonic()
            await conn.execute(worker_day_claims.delete().where(worker_day_claims.c.expires_at <= now))

    async def _standing(self, conn: AsyncConnection, worker_id: str, work_date: dt.date,
                        now: dt.datetime) -> tuple[list[sa.Row[Any]], list[sa.Row[Any]]]:
        """What stands on the worker's day beside the PSA's entries, in one statement (one round trip inside the
        held transaction): the unexpired claims of the date, and the worker's open correction requests with those
        applied less than the grace ago (the day read may predate them)."""
        rows = (await conn.execute(_STANDING, {"worker_id": worker_id, "work_date": work_date, "now": now,
                                               "applied_after": now - self.grace})).all()
        return [r for r in rows if r.kind == "claim"], [r for r in rows if r.kind == "correction"]


def _claimed(rows: Iterable[sa.Row[Any]], day: Iterable[TimeEntry], client_ref: str | None,
             time_entry_id: str | None) -> dict[str, int]:
    """The standing claims of the day, in minutes by the entry they are for (an entry's id where known, else the
    claim's own): the write being checked is left out."""
    by_ref = {e.client_ref: e.id for e in day if e.client_ref is not None}
    claimed: dict[str, int] = {}
    for row in rows:
        if client_ref is not None and row.client_ref == client_ref:
            continue  # this very create, asked again
        # A create and its retries in flight share their client_ref: they are one entry, counted once.
        ref = row.client_ref
        key = row.time_entry_id or (by_ref.get(ref, f"ref:{ref}") if ref else None) or f"claim:{row.id}"
        if key == time_entry_id:
            continue  # the entry being edited: counted at its new hours
        claimed[key] = max(claimed.get(key, 0), row.minutes)
    return claimed


def _pending(rows: Iterable[sa.Row[Any]], work_date: dt.date, day: list[TimeEntry],
             present: dict[str, Decimal]) -> tuple[dict[str, Decimal], list[str]]:
    """The hours the correction requests would put on this date, by entry; and the entries a request moves here at
    hours not known yet (``present`` holds those already read). A request applied already counts as open unless
    the day read shows its new version."""
    on_the_day = {e.id: e for e in day}
    pending: dict[str, Decimal] = {}
    unknown: list[str] = []
    for row in rows:
        if row.new_time_entry_id is not None and row.new_time_entry_id in on_the_day:
            continue  # the read shows the new version: it counts as an entry of the day
        changes: dict[str, Any] = row.changes or {}
        moved_to = dt.date.fromisoformat(changes["work_date"]) if changes.get("work_date") else None
        if moved_to is None and changes.get("hours") is None:
            continue  # the notes only
        entry = on_the_day.get(row.time_entry_id)
        if (moved_to or (entry.work_date if entry else None)) != work_date:
            continue
        if changes.get("hours") is not None:
            pending[row.time_entry_id] = Decimal(changes["hours"])
        elif entry is not None:  # moved to the date it is on: its present hours
            pending[row.time_entry_id] = entry.hours
        elif row.time_entry_id in present:
            pending[row.time_entry_id] = present[row.time_entry_id]
        else:
            unknown.append(row.time_entry_id)
    return pending, unknown
