"""A worker's day, held while time is written to it: the 24-hours-a-day rule is atomic.

The rule reads the day from the PSA, checks it and writes; two requests doing that at once would both see room
and both write (32 concurrent creates once put 31 hours on one day). So every write that adds hours to a day
(a create, an edit, an offline batch item, a correction request) runs inside :meth:`WorkerDays.held`: a unit of
work that has locked the day's row in ``process_worker_days`` (``INSERT ... ON CONFLICT DO NOTHING`` then
``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the write transaction is serialized already). The lock is in
the database every replica of this tier shares and is released by the COMMIT or ROLLBACK, or when a crashed
holder's connection closes, so it holds across replicas and never outlives its holder. One day per unit: a
holder never waits for a second lock, so two writers cannot deadlock.

The PSA is read and written while the row is held (the day's truth is in the PSA). On PostgreSQL only that
worker's date waits; on SQLite, the embedded single-process default, the write transaction serializes the
tier's writers for those calls.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from process_apis.store import time_corrections, worker_days
from process_apis.systems import Systems
from process_apis.timesheets.entry_rules import day_errors
from process_apis.unit_of_work import UnitOfWork, UnitOfWorkFactory
from runtime.problems import FieldError

OPEN_CORRECTIONS = ("requested", "approved")


class WorkerDays:
    def __init__(self, uow: UnitOfWorkFactory, systems: Systems) -> None:
        self.uow = uow
        self.systems = systems

    @asynccontextmanager
    async def held(self, worker_id: str, work_date: dt.date) -> AsyncIterator[UnitOfWork]:
        """A unit of work holding the worker's date until it ends: check and write inside it."""
        async with self.uow() as uow:
            key = {"worker_id": worker_id, "work_date": work_date}
            await uow.conn.execute(
                self.uow.db.insert_ignoring_conflicts(worker_days, ["worker_id", "work_date"]).values(**key)
            )
            await uow.conn.execute(
                sa.select(worker_days.c.worker_id)
                .where(worker_days.c.worker_id == worker_id, worker_days.c.work_date == work_date)
                .with_for_update()
            )
            yield uow

    async def errors(
        self,
        uow: UnitOfWork,
        worker_id: str,
        work_date: dt.date,
        hours: Decimal,
        pointer: str,
        *,
        client_ref: str | None = None,
        time_entry_id: str | None = None,
    ) -> list[FieldError]:
        """The day rule for ``hours`` on the held date. The entry itself (by id, or by its client ref on a re-sent
        create) is left out of the day, so a replay or an edit never counts twice."""
        day = await self.systems.psa.time_entries(worker_id=worker_id, from_date=work_date, to_date=work_date)
        others = [e for e in day if e.id != time_entry_id and (client_ref is None or e.client_ref != client_ref)]
        pending = await self._pending(uow.conn, worker_id, work_date, {e.id: e.work_date for e in day})
        pending.pop(time_entry_id or "", None)
        return day_errors(others, hours, pointer, pending=pending)

    async def _pending(
        self, conn: AsyncConnection, worker_id: str, work_date: dt.date, on_the_day: dict[str, dt.date]
    ) -> dict[str, Decimal]:
        """The hours open correction requests of the worker would put on this date, by entry."""
        rows = (
            await conn.execute(
                sa.select(time_corrections.c.time_entry_id, time_corrections.c.changes).where(
                    time_corrections.c.worker_id == worker_id, time_corrections.c.state.in_(OPEN_CORRECTIONS)
                )
            )
        ).all()
        pending: dict[str, Decimal] = {}
        for row in rows:
            changes = row.changes or {}
            moved_to = dt.date.fromisoformat(changes["work_date"]) if changes.get("work_date") else None
            if moved_to is None and changes.get("hours") is None:
                continue  # the notes only
            if (moved_to or on_the_day.get(row.time_entry_id)) != work_date:
                continue
            if changes.get("hours") is not None:
                pending[row.time_entry_id] = Decimal(changes["hours"])
            else:  # moved here at its present hours
                pending[row.time_entry_id] = (await self.systems.psa.time_entry(row.time_entry_id)).hours
        return pending
