"""The unit of work: one write transaction, what it queued for the background workers, and their wake-up.

A service writes through ``async with self.uow() as uow:`` and ``uow.conn``. Whatever the transaction adds to an
outbox is noted here (events by :func:`process_apis.events.outbox.record_events`, jobs by
:func:`process_apis.jobs.enqueue_job`, posting and reversal rows and re-queued jobs by :meth:`UnitOfWork.queued`),
and after the COMMIT the unit wakes exactly the workers that have something new: the event relay, the job
runner, the posting dispatcher. A rollback wakes nothing (there is nothing to see), and no service calls a
wake-up by hand.

Units do not nest: a second unit opened while one is open in the same task would be a second transaction (and on
SQLite a second writer waiting for the first): it is refused, so the open unit is passed down instead.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import Enum
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.storage import Database


def _nothing() -> None:
    return None


class Outbox(Enum):
    EVENTS = "events"
    JOBS = "jobs"
    POSTINGS = "postings"


@dataclass(frozen=True)
class Workers:
    """How to wake each background worker (a no-op by default: a test drives its workers by hand)."""

    relay: Callable[[], None] = _nothing
    jobs: Callable[[], None] = _nothing
    dispatcher: Callable[[], None] = _nothing

    def wake(self, written: set[Outbox]) -> None:
        if Outbox.EVENTS in written:
            self.relay()
        if Outbox.JOBS in written:
            self.jobs()
        if Outbox.POSTINGS in written:
            self.dispatcher()


_open: contextvars.ContextVar[UnitOfWork | None] = contextvars.ContextVar("psgw_unit_of_work", default=None)


class UnitOfWork:
    def __init__(self, db: Database, workers: Workers) -> None:
        self._db = db
        self._workers = workers
        self._transaction: AbstractAsyncContextManager[AsyncConnection] | None = None
        self._conn: AsyncConnection | None = None
        self._token: contextvars.Token[UnitOfWork | None] | None = None
        self.written: set[Outbox] = set()

    @property
    def conn(self) -> AsyncConnection:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open")
        return self._conn

    def queued(self, outbox: Outbox) -> None:
        """This transaction made rows of ``outbox`` due (a posting, a reversal, a re-queued job): its worker runs
        after commit. Events and new jobs need no call: their writers note them."""
        self.written.add(outbox)

    async def __aenter__(self) -> UnitOfWork:
        if _open.get() is not None:
            raise RuntimeError("a unit of work is already open in this task: pass it down instead of opening another")
        if self._transaction is not None:
            raise RuntimeError("a unit of work is used once")
        self._transaction = self._db.transaction()
        self._conn = await self._transaction.__aenter__()
        self._token = _open.set(self)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._transaction is not None and self._token is not None
        _open.reset(self._token)
        self._conn = None
        # Commits when the block ended cleanly, rolls back otherwise; a failed COMMIT raises from here.
        await self._transaction.__aexit__(exc_type, exc, tb)
        if exc_type is None:
            self._workers.wake(self.written)


class UnitOfWorkFactory:
    """Wired once per process (process_apis/services.py) and handed to every service that writes."""

    def __init__(self, db: Database, workers: Workers | None = None) -> None:
        self.db = db
        self.workers = workers or Workers()

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self.db, self.workers)


def note_written(conn: AsyncConnection, outbox: Outbox) -> None:
    """Called by the outbox writers: the unit that owns ``conn`` wakes that outbox's worker after commit."""
    unit = _open.get()
    if unit is not None and unit._conn is conn:
        unit.written.add(outbox)
