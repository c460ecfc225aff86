"""The timesheet rule's copy of every worker's last day (process_apis/timesheets/employment.py) is never the reason
time after a termination gets in: a termination counts as soon as this process's HR feed records it (in the middle
of its turn, before its event can be seen), one written by another replica counts after that replica's turn once
the copy is read again, and a rescinded termination lets time in again the same way.

The feed, the SQL store (SQLite and PostgreSQL: tests/process/conftest.py's ``db``) and the unit of work are
the real ones; HR and the PSA are in-memory stand-ins answering as their system APIs do (as in
tests/process/test_hr_feed_model.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa

from contracts.canonical import Assignment, Worker
from process_apis.staffing.hr_feed import HrChangeFeed
from process_apis.store import hr_workers
from process_apis.systems import Systems
from process_apis.timesheets.employment import Employment, WorkerTerminated
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.storage import Database, utcnow

LAST_DAY = dt.date(2026, 3, 31)
AFTER = LAST_DAY + dt.timedelta(days=1)


def worker(worker_id: str, termination_date: dt.date | None = None) -> Worker:
    return Worker(id=worker_id, name="A B", email="a@b.example", role="consultant", status="active",
                  business_unit_id="bu_a", cost_center_id="cc_a", legal_entity_id="le_us",
                  termination_date=termination_date)


class Hr:
    def __init__(self, *people: Worker) -> None:
        self.people = list(people)

    async def workers(self, **_filters: Any) -> list[Worker]:
        return list(self.people)


class Psa:
    """Each worker has one assignment starting after LAST_DAY; ``during_turn`` runs when the feed reads one."""

    def __init__(self) -> None:
        self.during_turn: dict[str, Any] = {}

    async def assignments(self, *, worker_id: str, **_filters: Any) -> list[Assignment]:
        check = self.during_turn.get(worker_id)
        if check is not None:
            await check()
        return [Assignment(id=f"asg_{worker_id}", worker_id=worker_id, project_id="prj_1", role="consultant",
                           planned_hours_per_week=Decimal(8), start_date=AFTER + dt.timedelta(days=7),
                           end_date=None, status="ended")]

    async def transition_assignment(self, assignment_id: str, to_status: str, idempotency_key: str) -> Assignment:
        raise AssertionError("the assignments are ended already")


def feed_of(db: Database, hr: Hr, psa: Psa, employment: Employment) -> HrChangeFeed:
    systems = cast(Systems, type("FakeSystems", (), {"hr": hr, "psa": psa})())
    return HrChangeFeed(UnitOfWorkFactory(db), systems, employment)


async def refused(employment: Employment, worker_id: str, work_date: dt.date = AFTER) -> bool:
    try:
        await employment.refuse_after_last_day(worker_id, work_date, "/work_date")
    except WorkerTerminated:
        return True
    return False


async def test_a_termination_counts_as_soon_as_the_feed_records_it_not_at_the_end_of_its_turn(db: Database) -> None:
    copy = Employment(db, max_age_seconds=math.inf)  # renewed by its feed alone
    await copy.reload()
    hr, psa = Hr(worker("wrk_a", LAST_DAY), worker("wrk_b", LAST_DAY)), Psa()
    seen_mid_turn: list[bool] = []

    async def while_handling_b() -> None:  # wrk_a's change has committed; the turn goes on
        seen_mid_turn.append(await refused(copy, "wrk_a"))

    psa.during_turn["wrk_b"] = while_handling_b
    assert await feed_of(db, hr, psa, copy).poll_once() == 2
    assert seen_mid_turn == [True]
    assert await refused(copy, "wrk_b")
    assert not await refused(copy, "wrk_a", LAST_DAY), "the last day itself is still a working day"


async def test_a_change_another_replica_recorded_counts_after_a_turn_or_once_the_copy_is_too_old(
        db: Database) -> None:
    ours = Employment(db, max_age_seconds=math.inf)
    ageing = Employment(db, max_age_seconds=0.05)
    for copy in (ours, ageing):
        assert not await refused(copy, "wrk_a")
    # Another replica's feed records a termination (the row as that feed writes it).
    async with db.transaction() as conn:
        await conn.execute(hr_workers.insert().values(worker_id="wrk_a", termination_date=LAST_DAY, leaves=[],
                                                      revision=1, updated_at=utcnow()))
    assert not await refused(ours, "wrk_a"), "the copy is used as read: no table read per write"
    await asyncio.sleep(0.1)
    assert await refused(ageing, "wrk_a"), "a copy older than its age is read again"
    # Our feed's turn sees nothing to handle (the row is HR's already), and still renews the copy.
    assert await feed_of(db, Hr(worker("wrk_a", LAST_DAY)), Psa(), ours).poll_once() == 0
    assert await refused(ours, "wrk_a")


async def test_a_rescinded_termination_lets_time_in_again_from_the_turn_that_saw_it(db: Database) -> None:
    copy = Employment(db, max_age_seconds=math.inf)
    hr, psa = Hr(worker("wrk_a", LAST_DAY)), Psa()
    feed = feed_of(db, hr, psa, copy)
    await feed.poll_once()
    assert await refused(copy, "wrk_a")
    hr.people = [worker("wrk_a")]
    assert await feed.poll_once() == 1
    assert not await refused(copy, "wrk_a")
    async with db.read() as conn:
        assert (await conn.execute(sa.select(hr_workers.c.termination_date))).scalar_one() is None
