"""The PSA watch (events/psa_watch.py) on both databases: each confirmed assignment and each completed milestone is
reported once, whatever later turns see (accepted after completed, the same record again) and however many
replicas watch at once. The PSA's system API is a stand-in here; tests/process/test_events_contract_and_operations
.py runs the watch against the real stack."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from contracts.canonical import Assignment, AssignmentStatus, Milestone, MilestoneState
from process_apis.events.bus import InProcessBus
from process_apis.events.psa_watch import PsaWatch
from process_apis.events.relay import EventRelay
from process_apis.events.service import events_after
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.storage import Database

pytestmark = pytest.mark.asyncio(loop_scope="session")


class PsaRecords:
    """What the PSA's system API lists, as the watch asks for it."""

    def __init__(self) -> None:
        self.assignment_records: list[Assignment] = []
        self.milestone_records: list[Milestone] = []

    async def assignments(self, **filters: Any) -> list[Assignment]:
        return [a for a in self.assignment_records if a.status == filters["status"]]

    async def milestones(self, **filters: Any) -> list[Milestone]:
        await asyncio.sleep(0)  # let replicas interleave
        return [m for m in self.milestone_records if m.state == filters["state"]]


def watch_of(db: Database, psa: PsaRecords) -> PsaWatch:
    return PsaWatch(UnitOfWorkFactory(db), psa)  # type: ignore[arg-type]


def assignment(n: int, status: AssignmentStatus) -> Assignment:
    return Assignment(id=f"asg_{n}", worker_id="wrk_1", project_id="prj_1", role="consultant",
                      planned_hours_per_week=Decimal("32"), start_date=dt.date(2026, 11, 2), status=status)


def milestone(n: int, state: MilestoneState) -> Milestone:
    return Milestone(id=f"ms_{n}", project_id="prj_1", name=f"Phase {n}", amount=Decimal("2E+4"), currency="USD",
                     due_date=dt.date(2026, 11, 30), state=state)


async def published(db: Database) -> list[tuple[str, str, str]]:
    await EventRelay(UnitOfWorkFactory(db), InProcessBus()).sequence()
    return [(e.type, e.subject.get("assignment_id") or e.subject["milestone_id"],
             str(e.data.get("state", ""))) for e in (await events_after(db, 0, None, 1000)).items]


async def test_each_record_is_reported_once_across_turns_and_replicas(db: Database) -> None:
    psa = PsaRecords()
    psa.assignment_records = [assignment(1, "confirmed"), assignment(2, "proposed")]
    psa.milestone_records = [milestone(1, "completed"), milestone(2, "pending"), milestone(3, "accepted")]
    replicas = [watch_of(db, psa) for _ in range(4)]
    reported = await asyncio.gather(*(w.watch_once() for w in replicas), return_exceptions=True)
    assert sum(r for r in reported if isinstance(r, int)) == 3, reported
    assert sorted(await published(db)) == [
        ("assignment.confirmed", "asg_1", ""), ("milestone.completed", "ms_1", "completed"),
        ("milestone.completed", "ms_3", "accepted")]

    # Later: ms_1 accepted, asg_2 and ms_2 move on. Only what is new is reported.
    psa.assignment_records[1] = assignment(2, "confirmed")
    psa.milestone_records = [milestone(1, "accepted"), milestone(2, "completed"), milestone(3, "invoiced")]
    assert await replicas[0].watch_once() == 2
    assert await replicas[1].watch_once() == 0
    events = await published(db)
    # Decimals go out in fixed point whatever their form in memory, as the AsyncAPI schema says.
    assert {e.data["amount"] for e in (await events_after(db, 0, ["milestone.completed"], 100)).items} == {"20000"}
    assert sorted(events[3:]) == [("assignment.confirmed", "asg_2", ""), ("milestone.completed", "ms_2", "completed")]
