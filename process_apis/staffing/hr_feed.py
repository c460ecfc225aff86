"""The HR change feed: a termination or a leave of absence recorded in HR reaches the PSA and staffing, no call.

HR (a Workday-style HCM) gives workers no change stamp to follow, and it holds a few hundred of them: each turn
reads every worker from the HR system API and compares what HR says of their employment (the last day worked, the
leaves of absence) with what this tier last saw (``process_hr_workers``). A difference is handled, then the row
and its events commit together:

- a termination (a new or changed last day): the worker's PSA assignments that start after the last day are ended
  (each transition under an Idempotency-Key of its own, so a turn that failed half-way is finished by the next),
  and ``worker.terminated`` names them. An assignment running through the last day stays: it covers the time the
  worker logged while employed, which stays approved and billable. From then on the timesheet rule
  (``process_apis/timesheets/employment.py``) refuses time dated after the last day.
- a leave not seen before: ``worker.leave_recorded``; staffing availability leaves its days out
  (``process_apis/staffing/availability.py``).

The row carries a revision: two replicas that handle the same change both end the same assignments (harmless, the
keys are the same) but only one writes the row and announces it, so each change is announced once. A worker seen
the first time is handled like a change (a termination HR already holds ends the assignments after it). HR's list
is cached at the gateway for 30 s (contracts/system/hr/v1.yaml); the feed asks for it fresh (``Cache-Control:
no-cache``, which also refreshes the cached copy other readers get), so a change shows here within one turn.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import sqlalchemy as sa

from contracts.canonical import Worker, WorkerLeave
from process_apis.events.models import WorkerLeaveRecordedData, WorkerSubject, WorkerTerminatedData
from process_apis.events.outbox import record_event, record_events
from process_apis.store import hr_workers
from process_apis.systems import Systems
from process_apis.timesheets.employment import Employment
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.storage import utcnow

log = logging.getLogger("process_apis.staffing.hr_feed")


def leave_row(leave: WorkerLeave) -> dict[str, str]:
    return {
        "first_day": leave.first_day.isoformat(),
        "last_day": leave.last_day.isoformat(),
        "leave_type": leave.leave_type,
    }


def leaves_of(worker: Worker) -> list[dict[str, str]]:
    """The worker's leaves as the row keeps them: ISO dates, in order."""
    return sorted(
        (leave_row(leave) for leave in worker.leaves),
        key=lambda leave: (leave["first_day"], leave["last_day"], leave["leave_type"]),
    )


class HrChangeFeed:
    def __init__(self, uow: UnitOfWorkFactory, systems: Systems, employment: Employment | None = None) -> None:
        self.uow = uow
        self.db = uow.db
        self.systems = systems
        # The timesheet rule's copy of the last days, renewed after every turn (timesheets/employment.py).
        self.employment = employment

    async def poll_once(self) -> int:
        """One turn over HR's workers; returns how many workers' changes were handled."""
        try:
            workers = await self.systems.hr.workers(fresh=True)
            async with self.db.read() as conn:
                known = {row.worker_id: row for row in (await conn.execute(sa.select(hr_workers))).all()}
            handled = 0
            for worker in workers:
                if await self._handle(worker, known.get(worker.id)):
                    handled += 1
            return handled
        finally:
            # Also after a turn that failed half-way: what it committed counts at once.
            if self.employment is not None:
                await self.employment.reload()

    async def _handle(self, worker: Worker, row: sa.Row[Any] | None) -> bool:
        leaves = leaves_of(worker)
        known_last_day: dt.date | None = row.termination_date if row is not None else None
        known_leaves: list[dict[str, str]] = list(row.leaves) if row is not None else []
        if row is not None and known_last_day == worker.termination_date and known_leaves == leaves:
            return False
        terminated = worker.termination_date is not None and worker.termination_date != known_last_day
        new_leaves = [leave for leave in worker.leaves if leave_row(leave) not in known_leaves]
        ended = (
            await self._end_assignments_after(worker.id, worker.termination_date)
            if terminated and worker.termination_date is not None
            else []
        )
        now = utcnow()
        async with self.uow() as uow:
            if row is None:
                won = await self.db.insert_new(
                    uow.conn, hr_workers, ["worker_id"],
                    worker_id=worker.id, termination_date=worker.termination_date, leaves=leaves, revision=1,
                    updated_at=now,
                )
            else:
                written = await uow.conn.execute(
                    hr_workers.update()
                    .where(hr_workers.c.worker_id == worker.id, hr_workers.c.revision == row.revision)
                    .values(
                        termination_date=worker.termination_date,
                        leaves=leaves,
                        revision=row.revision + 1,
                        updated_at=now,
                    )
                )
                won = written.rowcount == 1
            if not won:  # another replica handled this change and announced it
                return False
            if self.employment is not None:
                # Counted from here, before the commit that lets the event go out: whoever saw the event is
                # refused. Were the commit to fail, the read that ends the turn puts the copy back.
                self.employment.record(worker.id, worker.termination_date)
            subject = WorkerSubject(worker_id=worker.id)
            if terminated and worker.termination_date is not None:
                await record_event(
                    uow.conn,
                    "worker.terminated",
                    subject,
                    WorkerTerminatedData(termination_date=worker.termination_date, ended_assignment_ids=ended),
                )
            await record_events(
                uow.conn,
                "worker.leave_recorded",
                [
                    (
                        subject,
                        WorkerLeaveRecordedData(
                            first_day=leave.first_day, last_day=leave.last_day, leave_type=leave.leave_type
                        ),
                    )
                    for leave in new_leaves
                ],
            )
        log.info(
            "HR change handled",
            extra={
                "worker_id": worker.id,
                "terminated": terminated,
                "ended_assignments": ended,
                "new_leaves": len(new_leaves),
            },
        )
        return True

    async def _end_assignments_after(self, worker_id: str, last_day: dt.date) -> list[str]:
        """End the worker's assignments that start after ``last_day``; their ids (ended now or before)."""
        after = [a for a in await self.systems.psa.assignments(worker_id=worker_id) if a.start_date > last_day]
        for assignment in after:
            if assignment.status != "ended":
                await self.systems.psa.transition_assignment(
                    assignment.id, "ended", f"hr-termination:{assignment.id}:{last_day.isoformat()}"
                )
        return sorted(a.id for a in after)
