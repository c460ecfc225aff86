"""The unit of work: what a transaction queued is seen, and its worker woken, only once the transaction commits."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import dataclasses
import datetime as dt
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

import process_apis
from process_apis.events.outbox import record_event
from process_apis.jobs import enqueue_job, run_now
from process_apis.store import events, jobs
from process_apis.unit_of_work import Outbox, UnitOfWorkFactory, Workers
from runtime.storage import Database, utcnow

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Woken(Counter[str]):
    def workers(self) -> Workers:
        return Workers(relay=lambda: self.update(["relay"]), jobs=lambda: self.update(["jobs"]),
                       dispatcher=lambda: self.update(["dispatcher"]))


async def committed(db: Database) -> tuple[int, int]:
    async with db.read() as conn:
        return (int((await conn.execute(sa.select(sa.func.count()).select_from(events))).scalar_one()),
                int((await conn.execute(sa.select(sa.func.count()).select_from(jobs))).scalar_one()))


async def test_events_and_jobs_are_seen_and_their_workers_woken_only_after_commit(db: Database) -> None:
    woken = Woken()
    seen_by_relay: list[int] = []

    def relay() -> None:
        woken.update(["relay"])
        if db.engine.dialect.name == "sqlite":  # what a worker woken now reads (a plain reader: no async here)
            with contextlib.closing(sqlite3.connect(str(db.engine.url.database))) as reader:
                seen_by_relay.append(reader.execute(f"SELECT count(*) FROM {events.name}").fetchone()[0])

    workers = dataclasses.replace(woken.workers(), relay=relay)
    async with UnitOfWorkFactory(db, workers)() as uow:
        await record_event(uow.conn, "time.approved", {"time_entry_id": "te_1"})
        await enqueue_job(db, uow.conn, "psa.milestone.invoiced", "invoice:inv_1:ms_1", {"milestone_id": "ms_1"})
        assert await committed(db) == (0, 0)
        assert woken == {}
    assert await committed(db) == (1, 1)
    assert woken == {"relay": 1, "jobs": 1}
    assert seen_by_relay in ([1], [])  # [] on PostgreSQL


async def test_only_the_workers_with_something_new_are_woken(db: Database) -> None:
    woken = Woken()
    uow = UnitOfWorkFactory(db, woken.workers())
    async with uow() as unit:
        await record_event(unit.conn, "time.approved", {"time_entry_id": "te_1"})
    assert woken == {"relay": 1}
    async with uow() as unit:
        await enqueue_job(db, unit.conn, "psa.milestone.invoiced", "invoice:inv_1:ms_1", {"milestone_id": "ms_1"})
    assert woken == {"relay": 1, "jobs": 1}
    async with uow() as unit:
        unit.queued(Outbox.POSTINGS)
    assert woken == {"relay": 1, "jobs": 1, "dispatcher": 1}
    async with uow() as unit:  # a write that queues nothing wakes no one
        await unit.conn.execute(sa.select(1))
    assert woken == {"relay": 1, "jobs": 1, "dispatcher": 1}


async def test_a_rollback_keeps_nothing_and_wakes_no_one(db: Database) -> None:
    woken = Woken()
    with pytest.raises(LookupError):
        async with UnitOfWorkFactory(db, woken.workers())() as uow:
            await record_event(uow.conn, "time.approved", {"time_entry_id": "te_1"})
            await enqueue_job(db, uow.conn, "psa.milestone.invoiced", "invoice:inv_1:ms_1", {"milestone_id": "ms_1"})
            uow.queued(Outbox.POSTINGS)
            raise LookupError("the decision failed after its writes")
    assert await committed(db) == (0, 0)
    assert woken == {}


async def test_a_unit_inside_a_unit_is_refused_and_the_outer_one_rolls_back(db: Database) -> None:
    woken = Woken()
    uow = UnitOfWorkFactory(db, woken.workers())
    with pytest.raises(RuntimeError, match="already open"):
        async with uow() as outer:
            await record_event(outer.conn, "time.approved", {"time_entry_id": "te_1"})
            async with uow():
                pass
    assert await committed(db) == (0, 0)
    assert woken == {}
    async with uow() as after:  # the refused attempt left no unit marked open
        await record_event(after.conn, "time.approved", {"time_entry_id": "te_2"})
    assert await committed(db) == (1, 0)


async def test_an_operators_retry_makes_a_waiting_job_due_now_and_leaves_a_running_one_alone(db: Database) -> None:
    """jobs.run_now, the command the jobs outbox offers (invoicing's retry of a draft held for tax uses it): a
    pending or failed job waiting for its back-off turn runs at once; one leased by a runner is not touched."""
    woken = Woken()
    uow = UnitOfWorkFactory(db, woken.workers())
    later = utcnow() + dt.timedelta(hours=1)
    async with uow() as unit:
        for key in ("tax-hold:exc_1", "tax-hold:exc_2"):
            await enqueue_job(db, unit.conn, "invoice.tax.draft", key, {})
        await unit.conn.execute(jobs.update().where(jobs.c.dedupe_key == "tax-hold:exc_1").values(
            state="failed", next_attempt_at=later))
        await unit.conn.execute(jobs.update().where(jobs.c.dedupe_key == "tax-hold:exc_2").values(
            next_attempt_at=later, lease_until=later))
    woken.clear()
    async with uow() as unit:
        await run_now(unit.conn, "tax-hold:exc_1")
        await run_now(unit.conn, "tax-hold:exc_2")
    assert woken == {"jobs": 1}
    async with db.read() as conn:
        rows = {r.dedupe_key: r for r in (await conn.execute(sa.select(jobs))).all()}
    assert rows["tax-hold:exc_1"].state == "pending"
    assert rows["tax-hold:exc_1"].next_attempt_at.replace(tzinfo=dt.UTC) <= utcnow()
    assert rows["tax-hold:exc_2"].next_attempt_at.replace(tzinfo=dt.UTC) > utcnow()


async def test_units_in_concurrent_tasks_are_each_their_own(db: Database) -> None:
    woken = Woken()
    uow = UnitOfWorkFactory(db, woken.workers())

    async def approve(entry: str) -> None:
        async with uow() as unit:
            await record_event(unit.conn, "time.approved", {"time_entry_id": entry})

    await asyncio.gather(*(approve(f"te_{n}") for n in range(4)))
    assert await committed(db) == (4, 0)
    assert woken == {"relay": 4}


async def test_no_code_of_the_tier_opens_a_transaction_by_hand_nor_calls_on_events() -> None:
    """Every write transaction of the process tier is a unit of work (so what it queues wakes its worker after the
    commit, and a second transaction inside one is refused); services do not drive each other's event handlers
    (a consumer is fed by the event relay). Read by the code's syntax: a call of ``.transaction()`` or
    ``.engine.begin()`` anywhere but in unit_of_work.py, or of ``.on_events(``, is named here."""
    root = Path(process_apis.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "unit_of_work.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
                    node.func.attr in ("transaction", "on_events")
                    or (node.func.attr == "begin" and "engine" in ast.unparse(node.func.value))):
                found.append(f"{path.relative_to(root)}:{node.lineno} {ast.unparse(node.func)}()")
    assert found == []
