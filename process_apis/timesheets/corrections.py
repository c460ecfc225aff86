"""Corrections of approved, posted or invoiced time: a workflow, not an edit.

1. The consultant asks (``request``): which entry, the corrected hours / date / notes, and why. One open request
   per entry; the entry rules (hours, the date window, 24 hours a day) hold for the corrected values, and until
   the request is carried out the day counts the corrected hours too (process_apis/timesheets/days.py).
2. The approver decides (``decide``): the project's manager, never the consultant (separation of duties); a
   repeated decision is ``unchanged``.
3. This tier carries an approved request out (``apply``, resumable: every step is idempotent):
   the PSA makes a new version superseding the old one (Idempotency-Key per request), the new version is moved
   to approved by the same approver, and then ONE transaction settles the new version for billing (the posting
   outbox), queues the reversal of the old version's ERP posting (the reversal outbox), resolves the old
   version's billing hold and marks the request applied. The posting dispatcher books the reversal after the
   old posting is in the ERP (or finds that nothing was ever booked), so under retries and ERP outages the old
   posting, its reversal and the new posting each exist exactly once, and the ERP nets to the new hours.

Invoiced time: the same, and in that transaction one credit-note job (``process_apis/invoicing/credit_notes.py``)
that credits the old version's invoice line in full; the new version is billed by the next invoice.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.canonical import TIME_ENTRY_APPROVED, TIME_ENTRY_SUBMITTABLE, TimeEntry, decimal_text
from process_apis.backoff import is_transient
from process_apis.billing.models import Settlement
from process_apis.billing.posting import queue_reversal
from process_apis.billing.service import BillingService
from process_apis.events.outbox import record_event
from process_apis.exceptions.service import resolve_open
from process_apis.idempotency import CORRECTIONS, complete, correction_fingerprint, recorded_id
from process_apis.invoicing.credit_notes import queue_credit_note
from process_apis.store import time_corrections
from process_apis.systems import Systems
from process_apis.timesheets.approvals import OWN_TIME, own_time
from process_apis.timesheets.days import WorkerDays
from process_apis.timesheets.entry_rules import MinuteGrid, WorkDateWindow
from process_apis.timesheets.models import (
    Correction,
    CorrectionDecision,
    CorrectionPage,
    CorrectionRequest,
    entry_subject,
)
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime import correlation
from runtime.downstream import DownstreamProblem, found_or_none
from runtime.idempotency import Claim, IdempotencyStore
from runtime.problems import BadRequest, Conflict, FieldError, Forbidden, NotFound
from runtime.storage import utcnow

OPEN = ("requested", "approved")


class CorrectionService:
    def __init__(self, uow: UnitOfWorkFactory, systems: Systems, billing: BillingService,
                 window: WorkDateWindow, grid: MinuteGrid, keys: IdempotencyStore) -> None:
        self.uow = uow
        self.keys = keys
        self.db = uow.db
        self.systems = systems
        self.billing = billing
        self.window = window
        self.grid = grid
        self.days = WorkerDays(uow, systems)

    # -- asking ------------------------------------------------------------------------------------------------

    async def request(self, body: CorrectionRequest, idempotency_key: str | None) -> tuple[bool, Correction]:
        """Record the request (once per Idempotency-Key); returns (created, correction)."""

        async def again(_status: int, recorded: bytes) -> tuple[bool, Correction]:
            return False, await self.get(recorded_id(recorded))

        return await self.keys.once(
            scope=CORRECTIONS, key=idempotency_key, action=lambda claim: self._request(body, claim), replay=again,
            request_fingerprint=correction_fingerprint(body.time_entry_id, body.worker_id, body.changes(),
                                                       body.reason))

    async def _request(self, body: CorrectionRequest, claim: Claim | None) -> tuple[bool, Correction]:
        changes = body.changes()
        if not changes:
            raise BadRequest("a correction changes hours, work_date or notes", slug="validation-error",
                             errors=[FieldError(pointer="", detail="no field to change")])
        errors = self.grid.errors(body.hours, "/hours") + self.window.errors(body.work_date, "/work_date", _today())
        if errors:
            raise BadRequest("the corrected entry breaks an entry rule", slug="validation-error", errors=errors)
        entry = await self._entry(body.time_entry_id)
        if entry.worker_id != body.worker_id:
            raise NotFound(f"no time entry {body.time_entry_id!r} of {body.worker_id}", slug="unknown-id")
        if entry.superseded_by_id is not None:
            raise Conflict(f"{entry.id} was corrected already by {entry.superseded_by_id}", slug="already-superseded")
        if entry.state not in TIME_ENTRY_APPROVED:
            raise Conflict(f"a {entry.state} entry is not corrected by request; edit it instead",
                           slug="not-correctable", state=entry.state)
        work_date = body.work_date or entry.work_date
        correction_id = "cor_" + uuid.uuid4().hex[:24]
        try:
            async def write(conn: AsyncConnection) -> None:
                await conn.execute(time_corrections.insert().values(
                    id=correction_id, time_entry_id=entry.id, worker_id=entry.worker_id, project_id=entry.project_id,
                    changes=changes, reason=body.reason, state="requested", open_for=entry.id,
                    correlation_id=correlation.current_correlation_id(), created_at=utcnow()))
                await complete(claim, conn, 201, correction_id)

            refused = await self.days.record(entry.worker_id, work_date, body.hours or entry.hours, "/hours",
                                             time_entry_id=entry.id, write=write)
            if refused:
                raise BadRequest("the corrected entry breaks an entry rule", slug="validation-error", errors=refused)
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"a correction of {entry.id} is open already", slug="correction-open") from exc
        return True, await self.get(correction_id)

    async def _entry(self, time_entry_id: str) -> TimeEntry:
        entry = await found_or_none(self.systems.psa.time_entry(time_entry_id))
        if entry is None:
            raise NotFound(f"no time entry {time_entry_id!r}", slug="unknown-id")
        return entry

    # -- deciding ----------------------------------------------------------------------------------------------

    async def decide(self, correction_id: str, body: CorrectionDecision) -> tuple[bool, Correction]:
        """Approve or reject a request; returns (changed, correction). A repeat of the decision taken is
        ``unchanged`` (changed False); the other decision on a decided request is a conflict."""
        current = await self.get(correction_id)
        if own_time(current.worker_id, body.approver_id):
            raise Forbidden(OWN_TIME, slug="own-time",
                            errors=[FieldError(pointer="/approver_id", detail="the worker who asked")])
        project = await self.systems.psa.project(current.project_id)
        if project.manager_id != body.approver_id:
            raise Forbidden(f"{body.approver_id} does not manage {current.project_id}", slug="forbidden",
                            errors=[FieldError(pointer="/approver_id", detail="not the project's manager")])
        if body.decision == "reject" and not (body.reason or "").strip():
            raise BadRequest("a rejection needs a reason the worker can act on", slug="validation-error",
                             errors=[FieldError(pointer="/reason", detail="required when rejecting")])
        target = "approved" if body.decision == "approve" else "rejected"
        if current.state != "requested":
            decided = "rejected" if current.state == "rejected" else "approved"
            if decided != target:
                raise Conflict(f"the correction {correction_id} was {decided} already", slug="invalid-transition",
                               state=current.state)
            return False, current
        async with self.uow() as uow:
            moved = await uow.conn.execute(time_corrections.update().where(
                time_corrections.c.id == correction_id, time_corrections.c.state == "requested").values(
                state=target, approver_id=body.approver_id, decision_reason=body.reason, decided_at=utcnow(),
                open_for=time_corrections.c.open_for if target == "approved" else None))
        if moved.rowcount == 0:  # decided concurrently: answer as a repeat would
            return await self.decide(correction_id, body)
        if target == "approved":
            try:
                await self.apply(correction_id)
            except DownstreamProblem as exc:
                if not is_transient(exc):
                    raise
                # The PSA is down: the request stays approved and the recovery loop carries it out.
        return True, await self.get(correction_id)

    # -- carrying out ------------------------------------------------------------------------------------------

    async def apply(self, correction_id: str) -> None:
        """Carry out an approved request; every step is idempotent, so it is safe to repeat after any failure."""
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(time_corrections).where(
                time_corrections.c.id == correction_id))).one()
        if row.state != "approved":
            return
        old = await self.systems.psa.time_entry(row.time_entry_id)
        # As the PSA holds it now: a repeat after a crash finds it submitted or approved already.
        new = await self.systems.psa.time_entry((await self._new_version(row)).id)
        if new.state in TIME_ENTRY_SUBMITTABLE:
            new = await self.systems.psa.transition_time_entry(new.id, "submitted", actor_id=row.worker_id)
        if new.state == "submitted":
            new = await self.systems.psa.transition_time_entry(new.id, "approved", actor_id=row.approver_id,
                                                               reason=f"correction {row.id}")

        async def finish(conn: AsyncConnection, settlements: dict[str, Settlement]) -> None:
            now = utcnow()
            await queue_reversal(self.db, conn, time_entry_id=row.time_entry_id, correction_id=row.id,
                                 project_id=row.project_id)
            if old.state == "invoiced":  # billed already: credited in full, the new version billed anew
                await queue_credit_note(self.db, conn, correction_id=row.id, time_entry_id=row.time_entry_id,
                                        new_time_entry_id=new.id)
            await resolve_open(conn, kind="billing_hold", source_type="time_entry", source_id=row.time_entry_id,
                               resolution=f"superseded by {new.id} (correction {row.id})", actor_id=row.approver_id)
            settlement = settlements.get(new.id)
            await conn.execute(time_corrections.update().where(time_corrections.c.id == row.id).values(
                state="applied", open_for=None, new_time_entry_id=new.id, applied_at=now,
                settlement=msgspec.to_builtins(settlement) if settlement else None))
            # The new version is approved time like any other (the event says which version it supersedes).
            await record_event(conn, "time.approved", entry_subject(new), {
                "approver_id": row.approver_id, "reason": f"correction {row.id}", "hours": decimal_text(new.hours),
                "work_date": new.work_date.isoformat(), "version": new.version, "correction_id": row.id,
                "supersedes_id": row.time_entry_id})

        await self.billing.settle([new], actor_id=row.approver_id, also=finish)

    async def _new_version(self, row: Any) -> TimeEntry:
        key = f"correction:{row.id}"
        try:
            return await self.systems.psa.correct_time_entry(row.time_entry_id, row.changes, key)
        except DownstreamProblem as exc:
            superseded_by = exc.extensions.get("superseded_by_id")
            if exc.status == 409 and superseded_by:  # made before (our answer was lost): carry on with it
                return await self.systems.psa.time_entry(str(superseded_by))
            raise

    async def recover(self, older_than_seconds: float) -> int:
        """Carry out requests left approved (the PSA was down, or the process stopped half-way)."""
        cutoff = utcnow() - dt.timedelta(seconds=older_than_seconds)
        async with self.db.read() as conn:
            ids = (await conn.execute(sa.select(time_corrections.c.id).where(
                time_corrections.c.state == "approved", time_corrections.c.decided_at < cutoff)
                .order_by(time_corrections.c.decided_at).limit(50))).scalars().all()
        for correction_id in ids:
            try:
                await self.apply(correction_id)
            except DownstreamProblem as exc:
                if not is_transient(exc):
                    raise
        return len(ids)

    # -- reading -----------------------------------------------------------------------------------------------

    async def get(self, correction_id: str) -> Correction:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(time_corrections).where(
                time_corrections.c.id == correction_id))).first()
        if row is None:
            raise NotFound(f"no correction {correction_id!r}", slug="unknown-id")
        return _correction(row)

    async def list(self, *, project_ids: list[str] | None, worker_id: str | None, state: str | None,
                   cursor: str | None, limit: int) -> CorrectionPage:
        query = sa.select(time_corrections)
        if project_ids is not None:
            query = query.where(time_corrections.c.project_id.in_(project_ids))
        if worker_id is not None:
            query = query.where(time_corrections.c.worker_id == worker_id)
        if state is not None:
            query = query.where(time_corrections.c.state == state)
        if cursor:
            query = query.where(time_corrections.c.id > cursor)
        async with self.db.read() as conn:
            rows = (await conn.execute(query.order_by(time_corrections.c.id).limit(limit + 1))).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return CorrectionPage(items=[_correction(r) for r in rows], next_cursor=rows[-1].id if more else None)


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _correction(row: Any) -> Correction:
    changes = row.changes or {}
    return Correction(
        id=row.id, time_entry_id=row.time_entry_id, worker_id=row.worker_id, project_id=row.project_id,
        hours=Decimal(changes["hours"]) if changes.get("hours") is not None else None,
        work_date=dt.date.fromisoformat(changes["work_date"]) if changes.get("work_date") else None,
        notes=changes.get("notes"), reason=row.reason, state=row.state, approver_id=row.approver_id,
        decision_reason=row.decision_reason, new_time_entry_id=row.new_time_entry_id,
        settlement=msgspec.convert(row.settlement, Settlement) if row.settlement else None,
        created_at=row.created_at, decided_at=row.decided_at, applied_at=row.applied_at)

