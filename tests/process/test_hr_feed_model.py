"""The HR change feed driven through any sequence of HR changes and turns, two replicas polling at once included:
each termination and each leave is announced exactly once, the assignments after a last day are ended, the
timesheet rule follows the last day HR holds now, and nothing else is touched (process_apis/staffing/hr_feed.py).

HR and the PSA are the system APIs' stand-ins here (in memory, answering as those APIs do); the feed, the SQL
store (SQLite), the unit of work and the event outbox are the real ones. The gateway path is tested in
tests/process/test_hr_termination_and_leave.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import msgspec
import sqlalchemy as sa
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from contracts.canonical import Assignment, Worker, WorkerLeave
from process_apis.staffing.hr_feed import HrChangeFeed
from process_apis.store import events, metadata
from process_apis.systems import Systems
from process_apis.timesheets.employment import Employment, WorkerTerminated
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.storage import Database, database_url

WORKERS = ("wrk_e1", "wrk_e2", "wrk_e3")
DAY0 = dt.date(2026, 1, 5)
days = st.integers(min_value=0, max_value=60)


class Hr:
    def __init__(self) -> None:
        self.people = {
            w: Worker(
                id=w,
                name="A B",
                email="a@b.example",
                role="consultant",
                status="active",
                business_unit_id="bu_a",
                cost_center_id="cc_a",
                legal_entity_id="le_us",
            )
            for w in WORKERS
        }

    async def workers(self, **_filters: Any) -> list[Worker]:
        return [msgspec.structs.replace(w) for w in self.people.values()]


class Psa:
    def __init__(self) -> None:
        self.items = {
            f"asg_{w}_{n}": Assignment(
                id=f"asg_{w}_{n}",
                worker_id=w,
                project_id="prj_1",
                role="consultant",
                planned_hours_per_week=Decimal(8),
                start_date=DAY0 + dt.timedelta(days=15 * n),
                end_date=None,
                status="confirmed",
            )
            for w in WORKERS
            for n in range(4)
        }
        self.keys: dict[str, str] = {}

    async def assignments(self, *, worker_id: str, **_filters: Any) -> list[Assignment]:
        return [a for a in self.items.values() if a.worker_id == worker_id]

    async def transition_assignment(self, assignment_id: str, to_status: str, idempotency_key: str) -> Assignment:
        assert self.keys.setdefault(idempotency_key, assignment_id) == assignment_id, "a key names one assignment"
        self.items[assignment_id] = msgspec.structs.replace(self.items[assignment_id], status=to_status)
        return self.items[assignment_id]


class HrFeedMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.directory = tempfile.TemporaryDirectory()
        self.db = Database(database_url("", Path(self.directory.name), "process"), metadata)
        self.run(self.db.create_all())
        self.hr, self.psa = Hr(), Psa()
        systems = cast(Systems, type("FakeSystems", (), {"hr": self.hr, "psa": self.psa})())
        uow = UnitOfWorkFactory(self.db)
        # Two replicas, each with the timesheet rule's copy of the last days renewed only by its own feed (never
        # by age here), and a third reading the table at every check (as a replica whose copy is always too old).
        self.copies = (Employment(self.db, max_age_seconds=math.inf), Employment(self.db, max_age_seconds=math.inf))
        self.feeds = (HrChangeFeed(uow, systems, self.copies[0]), HrChangeFeed(uow, systems, self.copies[1]))
        self.reader = Employment(self.db, max_age_seconds=0)
        self.fresh: set[int] = set()  # the replicas whose feed polled last, alone
        self.seen: dict[str, tuple[dt.date | None, list[WorkerLeave]]] = {w: (None, []) for w in WORKERS}
        self.terminations = {w: 0 for w in WORKERS}
        self.leaves = {w: 0 for w in WORKERS}
        self.ended_by_feed: set[str] = set()

    def run(self, call: Any) -> Any:
        return self.loop.run_until_complete(call)

    def teardown(self) -> None:
        self.run(self.db.dispose())
        self.loop.close()
        self.directory.cleanup()

    # -- HR changes ------------------------------------------------------------------------------------------

    @rule(worker=st.sampled_from(WORKERS), day=days)
    def terminate(self, worker: str, day: int) -> None:
        person = self.hr.people[worker]
        self.hr.people[worker] = msgspec.structs.replace(person, termination_date=DAY0 + dt.timedelta(days=day))

    @rule(worker=st.sampled_from(WORKERS))
    def rescind(self, worker: str) -> None:
        self.hr.people[worker] = msgspec.structs.replace(self.hr.people[worker], termination_date=None)

    @rule(
        worker=st.sampled_from(WORKERS),
        day=days,
        length=st.integers(min_value=0, max_value=9),
        kind=st.sampled_from(["vacation", "sick"]),
    )
    def leave(self, worker: str, day: int, length: int, kind: str) -> None:
        first = DAY0 + dt.timedelta(days=day)
        leave = WorkerLeave(first_day=first, last_day=first + dt.timedelta(days=length), leave_type=kind)  # type: ignore[arg-type]
        person = self.hr.people[worker]
        if any(o.first_day <= leave.last_day and leave.first_day <= o.last_day for o in person.leaves):
            return  # HR refuses an overlapping leave
        self.hr.people[worker] = msgspec.structs.replace(person, leaves=[*person.leaves, leave])

    # -- the feed --------------------------------------------------------------------------------------------

    def _expect_turn(self) -> None:
        for worker, person in self.hr.people.items():
            last_day, leaves = self.seen[worker]
            if person.termination_date is not None and person.termination_date != last_day:
                self.terminations[worker] += 1
                self.ended_by_feed |= {
                    a.id
                    for a in self.psa.items.values()
                    if a.worker_id == worker and a.start_date > person.termination_date
                }
            self.leaves[worker] += sum(1 for leave in person.leaves if leave not in leaves)
            self.seen[worker] = (person.termination_date, list(person.leaves))

    @rule(replica=st.sampled_from([0, 1]))
    def poll(self, replica: int) -> None:
        self._expect_turn()
        self.run(self.feeds[replica].poll_once())
        self.fresh = {replica}

    @rule()
    def poll_on_two_replicas_at_once(self) -> None:
        self._expect_turn()

        async def both() -> None:
            await asyncio.gather(self.feeds[0].poll_once(), self.feeds[1].poll_once())

        self.run(both())
        # Each copy counts what its own feed committed; what the other committed after its read comes with age
        # (the reader) or its next turn.
        self.fresh = set()

    # -- what must hold ----------------------------------------------------------------------------------------

    def _events(self, type_: str) -> list[dict[str, Any]]:
        async def read() -> list[dict[str, Any]]:
            async with self.db.read() as conn:
                rows = (
                    await conn.execute(sa.select(events.c.subject, events.c.data).where(events.c.type == type_))
                ).all()
            return [{"subject": r.subject, "data": r.data} for r in rows]

        return cast(list[dict[str, Any]], self.run(read()))

    @invariant()
    def each_change_is_announced_once(self) -> None:
        terminated = self._events("worker.terminated")
        recorded = self._events("worker.leave_recorded")
        for worker in WORKERS:
            assert sum(e["subject"]["worker_id"] == worker for e in terminated) == self.terminations[worker]
            assert sum(e["subject"]["worker_id"] == worker for e in recorded) == self.leaves[worker]

    @invariant()
    def only_assignments_after_a_last_day_are_ended(self) -> None:
        ended = {a.id for a in self.psa.items.values() if a.status == "ended"}
        assert ended == self.ended_by_feed

    @invariant()
    def time_is_refused_exactly_after_the_last_day_the_feed_saw(self) -> None:
        """By every replica whose feed made the last turn (its copy, renewed by that turn alone), and by a
        replica reading the table."""
        for employment in [self.reader, *(self.copies[replica] for replica in sorted(self.fresh))]:
            for worker in WORKERS:
                last_day = self.seen[worker][0]
                for day in (DAY0, DAY0 + dt.timedelta(days=30), DAY0 + dt.timedelta(days=61)):
                    try:
                        self.run(employment.refuse_after_last_day(worker, day, "/work_date"))
                        refused = False
                    except WorkerTerminated:
                        refused = True
                    assert refused == (last_day is not None and day > last_day), (worker, day, last_day)


HrFeedMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=15, deadline=None)
test_hr_feed_announces_each_change_once = HrFeedMachine.TestCase
