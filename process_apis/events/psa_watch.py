"""Events the PSA is the system of record for: ``assignment.confirmed`` and ``milestone.completed``.

Neither happens in this tier: resource management confirms assignments in the PSA (provisioning only proposes a
delivery lead), and delivery completes and the customer accepts milestones there. The tier learns of them by
watching the PSA through its system API: each turn reads the confirmed assignments and the completed and accepted
milestones, and emits one event for each record it has not reported before. What was reported is recorded in SQL
in the same transaction as the event (a conflict-ignoring insert: of two replicas watching, one reports it), so
each assignment and each milestone is reported once, however often it is seen, across restarts and replicas.

On the first turn after the tier's database is created, every assignment already confirmed and every milestone
already completed or accepted is reported: the tier learns of them then. A milestone the tier first sees accepted
is reported with ``state: accepted`` (it was completed before); one first seen invoiced is not reported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from contracts.canonical import Assignment, Milestone
from process_apis.events.models import (
    AssignmentConfirmedData,
    AssignmentConfirmedSubject,
    MilestoneCompletedData,
    MilestoneCompletedSubject,
)
from process_apis.events.outbox import record_events
from process_apis.store import reported_records
from process_apis.systems import Psa
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.storage import utcnow

ASSIGNMENT, MILESTONE = "assignment", "milestone"


class PsaWatch:
    def __init__(self, uow: UnitOfWorkFactory, psa: Psa) -> None:
        self.uow = uow
        self.db = uow.db
        self.psa = psa

    async def watch_once(self) -> int:
        """One turn: read the PSA, report what is new; returns how many events were recorded."""
        confirmed = await self.psa.assignments(status="confirmed")
        milestones = [*await self.psa.milestones(state="completed"), *await self.psa.milestones(state="accepted")]
        reported = await self._report(ASSIGNMENT, confirmed, self._assignment_confirmed)
        reported += await self._report(MILESTONE, milestones, self._milestone_completed)
        return reported

    async def _report(self, kind: str, records: Sequence[Any],
                      event_of: Callable[[Any], tuple[Any, Any]]) -> int:
        if not records:
            return 0
        by_id = {record.id: record for record in records}
        async with self.db.read() as conn:
            known = set((await conn.execute(sa.select(reported_records.c.record_id).where(
                reported_records.c.kind == kind, reported_records.c.record_id.in_(sorted(by_id))))).scalars())
        fresh = [record for record_id, record in sorted(by_id.items()) if record_id not in known]
        if not fresh:
            return 0
        now = utcnow()
        async with self.uow() as uow:
            # Only the rows this transaction inserted are reported: a replica that got there first keeps the rest.
            inserted = set((await uow.conn.execute(
                self.db.insert_ignoring_conflicts(reported_records, ["kind", "record_id"])
                .values([{"kind": kind, "record_id": r.id, "state": _state(r), "reported_at": now} for r in fresh])
                .returning(reported_records.c.record_id))).scalars())
            events = [event_of(record) for record in fresh if record.id in inserted]
            await record_events(uow.conn, "assignment.confirmed" if kind == ASSIGNMENT else "milestone.completed",
                                events)
        return len(events)

    @staticmethod
    def _assignment_confirmed(a: Assignment) -> tuple[AssignmentConfirmedSubject, AssignmentConfirmedData]:
        return (AssignmentConfirmedSubject(assignment_id=a.id, worker_id=a.worker_id, project_id=a.project_id),
                AssignmentConfirmedData(role=a.role, planned_hours_per_week=a.planned_hours_per_week,
                                        start_date=a.start_date, end_date=a.end_date))

    @staticmethod
    def _milestone_completed(m: Milestone) -> tuple[MilestoneCompletedSubject, MilestoneCompletedData]:
        return (MilestoneCompletedSubject(milestone_id=m.id, project_id=m.project_id),
                MilestoneCompletedData(name=m.name, amount=m.amount, currency=m.currency, due_date=m.due_date,
                                       state="accepted" if m.state == "accepted" else "completed"))


def _state(record: Assignment | Milestone) -> str:
    return record.status if isinstance(record, Assignment) else record.state
