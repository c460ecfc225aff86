"""Timesheets: the only way time is written (the experience tier never writes to the PSA itself).

Approvals are the start of time to bill. A decision is recorded in SQL before anything else changes; applying
it moves each entry in the PSA (an idempotent transition), then settles approved entries for billing in one
transaction with the approval's completion and its events. A decision that could not be fully applied (the
PSA was down) stays ``recorded`` and is completed by the recovery loop, so nothing approved is lost.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.canonical import TIME_ENTRY_APPROVED, TIME_ENTRY_SUBMITTABLE, Page, Project, TimeEntry, decimal_text
from process_apis.backoff import describe, is_transient
from process_apis.billing.models import Settlement
from process_apis.billing.service import BillingService
from process_apis.events.outbox import record_event
from process_apis.store import approvals
from process_apis.systems import PSA, Systems
from process_apis.timesheets.days import WorkerDays
from process_apis.timesheets.entry_rules import MinuteGrid, WorkDateWindow
from process_apis.timesheets.models import (
    Approval,
    ApprovalRequest,
    EntryOutcome,
    NewTimeEntry,
    SubmissionRequest,
    SubmissionResult,
    SyncItem,
    SyncRequest,
    SyncResponse,
    SyncResult,
    TimeEntryChanges,
    TimeEntryPage,
)
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime import correlation
from runtime.downstream import DownstreamProblem, found_or_none
from runtime.idempotency import refuse_reuse
from runtime.problems import BadRequest, FieldError, Forbidden, NotFound, Unprocessable
from runtime.storage import utcnow

CONCURRENCY = 16
# A week's submission sends its drafts; a rejected entry goes again once its owner edits it (the edit makes it a
# draft) or when it is named on its own, so a rejection is not resent unchanged by every week's submission.
_SUBMITTED_WITH_THE_WEEK = frozenset({"draft"})


class TimesheetService:
    def __init__(self, uow: UnitOfWorkFactory, systems: Systems, billing: BillingService,
                 window: WorkDateWindow, grid: MinuteGrid) -> None:
        self.uow = uow
        self.db = uow.db
        self.systems = systems
        self.billing = billing
        self.window = window
        self.grid = grid
        self.days = WorkerDays(uow, systems)

    # -- time entries (pass-through writes, so the mobile app never writes to the PSA directly) -------------

    async def list_entries(self, *, worker_id: str | None, project_id: str | None, state: str | None,
                           from_date: dt.date | None, to_date: dt.date | None, cursor: str | None,
                           limit: int) -> TimeEntryPage:
        params = {"worker_id": worker_id, "project_id": project_id, "state": state,
                  "from_date": from_date.isoformat() if from_date else None,
                  "to_date": to_date.isoformat() if to_date else None, "cursor": cursor, "limit": limit}
        page = await self.systems.psa.gateway.get_json(f"{PSA}/time-entries", Page[TimeEntry], params=params)
        return TimeEntryPage(items=page.items, next_cursor=page.next_cursor)

    async def get_entry(self, time_entry_id: str) -> TimeEntry:
        return await self.systems.psa.time_entry(time_entry_id)

    async def create_entry(self, body: NewTimeEntry) -> tuple[bool, TimeEntry]:
        """Create a draft; with a ``client_ref`` already used, the existing entry comes back (created False)."""
        _check(self.grid.errors(body.hours, "/hours") or self.window.errors(body.work_date, "/work_date", _today()))
        async with self.days.held(body.worker_id, body.work_date) as uow:
            _check(await self.days.errors(uow, body.worker_id, body.work_date, body.hours, "/hours",
                                          client_ref=body.client_ref))
            status, entry = await self.systems.psa.create_time_entry(msgspec.to_builtins(body, order="sorted"))
        return status == 201, entry

    async def update_entry(self, time_entry_id: str, changes: TimeEntryChanges) -> TimeEntry:
        _check(self.grid.errors(changes.hours, "/hours")
               + self.window.errors(changes.work_date, "/work_date", _today()))
        payload = msgspec.to_builtins(changes)
        if not payload:
            raise BadRequest("send at least one field to change", slug="validation-error",
                             errors=[FieldError(pointer="", detail="no field to change")])
        refused, entry = await self._changed(time_entry_id, changes.work_date, changes.hours, payload, "/hours")
        _check(refused)
        assert entry is not None
        return await self._reopened(entry)

    async def _reopened(self, edited: TimeEntry) -> TimeEntry:
        """An edited rejected entry is a draft again: it goes with the owner's next week submission."""
        if edited.state != "rejected":
            return edited
        return await self.systems.psa.transition_time_entry(edited.id, "draft", actor_id=edited.worker_id)

    async def _changed(self, time_entry_id: str, work_date: dt.date | None, hours: Decimal | None,
                       payload: dict[str, Any], pointer: str) -> tuple[list[FieldError], TimeEntry | None]:
        """Apply an edit, holding the day it lands on when it moves or grows the entry: (refusal, edited entry)."""
        if work_date is None and hours is None:
            return [], await self.systems.psa.update_time_entry(time_entry_id, payload)
        entry = await self.systems.psa.time_entry(time_entry_id)
        day = work_date or entry.work_date
        async with self.days.held(entry.worker_id, day) as uow:
            refused = await self.days.errors(uow, entry.worker_id, day, hours or entry.hours, pointer,
                                             time_entry_id=entry.id)
            if refused:
                return refused, None
            return [], await self.systems.psa.update_time_entry(time_entry_id, payload)

    async def delete_entry(self, time_entry_id: str) -> None:
        """Delete a draft or rejected entry (the PSA system API refuses any other state, 409 not-editable)."""
        await self.systems.psa.delete_time_entry(time_entry_id)

    async def sync(self, request: SyncRequest) -> SyncResponse:
        """Apply an offline batch in order; each item answers for itself (a re-sent batch is harmless)."""
        _check([error for index, item in enumerate(request.items)
                for error in self.grid.errors(item.hours, f"/items/{index}/hours")])
        refs = [item.client_ref for item in request.items]
        duplicates = sorted({r for r in refs if refs.count(r) > 1})
        if duplicates:
            raise BadRequest(f"client_ref {duplicates[0]!r} appears twice in one batch", slug="validation-error",
                             errors=[FieldError(pointer=f"/items/{refs.index(d, refs.index(d) + 1)}/client_ref",
                                                detail="duplicate client_ref") for d in duplicates])
        return SyncResponse(items=[await self._sync_one(index, item) for index, item in enumerate(request.items)])

    async def _sync_one(self, index: int, item: SyncItem) -> SyncResult:
        try:
            if item.op == "delete":
                if item.time_entry_id is None:
                    return _sync_error(item, 422, "a delete names the time_entry_id")
                try:
                    await self.delete_entry(item.time_entry_id)
                except DownstreamProblem as exc:
                    if exc.status != 404:  # already gone: the delete is done
                        raise
                return SyncResult(client_ref=item.client_ref, status="deleted")
            at = f"/items/{index}"
            refused = self.window.errors(item.work_date, f"{at}/work_date", _today())
            if refused:
                return _sync_refusal(item, refused)
            fields = {k: v for k, v in msgspec.to_builtins(item).items()
                      if k in {"task_id", "work_date", "hours", "billable", "notes", "activity"} and v is not None}
            if item.time_entry_id is not None:
                refused, entry = await self._changed(item.time_entry_id, item.work_date, item.hours, fields,
                                                     f"{at}/hours")
                if refused:
                    return _sync_refusal(item, refused)
                assert entry is not None
                return SyncResult(client_ref=item.client_ref, status="updated", time_entry=await self._reopened(entry))
            if item.worker_id is None or item.project_id is None or item.work_date is None or item.hours is None:
                missing = [name for name in ("worker_id", "project_id", "work_date", "hours")
                           if getattr(item, name) is None]
                return _sync_error(item, 422, "a new entry needs " + ", ".join(missing))
            body = {**fields, "worker_id": item.worker_id, "project_id": item.project_id,
                    "client_ref": item.client_ref}
            async with self.days.held(item.worker_id, item.work_date) as uow:
                refused = await self.days.errors(uow, item.worker_id, item.work_date, item.hours, f"{at}/hours",
                                                 client_ref=item.client_ref)
                if refused:
                    return _sync_refusal(item, refused)
                status, entry = await self.systems.psa.create_time_entry(body)
            return SyncResult(client_ref=item.client_ref, status="created" if status == 201 else "existing",
                              time_entry=entry)
        except DownstreamProblem as exc:
            problem = exc.to_problem().to_dict()
            return SyncResult(client_ref=item.client_ref, status="error", problem=problem)

    # -- submission --------------------------------------------------------------------------------------------

    async def submit(self, request: SubmissionRequest) -> SubmissionResult:
        if request.week_start > dt.date.max - dt.timedelta(days=6):
            raise BadRequest("week_start has no whole week before the end of the calendar", slug="validation-error",
                             errors=[FieldError(pointer="/week_start", detail="a date before 9999-12-26")])
        week_end = request.week_start + dt.timedelta(days=6)
        if request.time_entry_ids is not None:
            entries = await self.billing.fetch_entries(request.time_entry_ids)
            foreign = [e.id for e in entries if e.worker_id != request.worker_id]
            if foreign:
                raise Unprocessable(f"time entry {foreign[0]} is not {request.worker_id}'s", slug="not-own-entry",
                                    errors=[FieldError(pointer=f"/time_entry_ids/{request.time_entry_ids.index(f)}",
                                                       detail="another worker's entry") for f in foreign])
        else:
            entries = await self.systems.psa.time_entries(worker_id=request.worker_id, from_date=request.week_start,
                                                          to_date=week_end)
        limit = asyncio.Semaphore(CONCURRENCY)

        submittable = TIME_ENTRY_SUBMITTABLE if request.time_entry_ids is not None else _SUBMITTED_WITH_THE_WEEK

        async def one(entry: TimeEntry) -> tuple[EntryOutcome, TimeEntry | None]:
            if entry.state not in submittable:
                detail = "rejected: edit it, or name it, to submit it again" if entry.state == "rejected" else None
                return EntryOutcome(time_entry_id=entry.id, result="unchanged", state=entry.state, detail=detail), None
            async with limit:
                try:
                    moved = await self.systems.psa.transition_time_entry(entry.id, "submitted",
                                                                         actor_id=request.worker_id)
                except DownstreamProblem as exc:
                    return EntryOutcome(time_entry_id=entry.id, result="refused", state=entry.state,
                                        detail=describe(exc)), None
            return EntryOutcome(time_entry_id=entry.id, result="submitted", state=moved.state), moved

        results = await asyncio.gather(*(one(e) for e in entries))
        submitted = [moved for _, moved in results if moved is not None]
        if submitted:
            async with self.uow() as uow:
                for entry in submitted:
                    await record_event(uow.conn, "time.submitted", _entry_subject(entry),
                                       {"work_date": entry.work_date.isoformat(), "hours": decimal_text(entry.hours),
                                        "version": entry.version})
        return SubmissionResult(worker_id=request.worker_id, week_start=request.week_start, week_end=week_end,
                                items=[outcome for outcome, _ in results],
                                total_hours=sum((e.hours for e in entries), Decimal(0)))

    # -- approvals ---------------------------------------------------------------------------------------------

    async def decide(self, request: ApprovalRequest, idempotency_key: str | None) -> tuple[bool, Approval]:
        """Record the decision (once per Idempotency-Key), then apply it; returns (new, approval)."""
        if request.decision == "reject" and not (request.reason or "").strip():
            raise BadRequest("a rejection needs a reason the worker can act on", slug="validation-error",
                             errors=[FieldError(pointer="/reason", detail="required when rejecting")])
        if not await self._key_recorded(idempotency_key):  # a replayed key answers as it did the first time
            repeated = await self._repeated_decision(request)
            if repeated is not None:
                return False, repeated
        approval_id, new = await self.record_decision(request, idempotency_key)
        try:
            return new, await self.apply(approval_id)
        except DownstreamProblem as exc:
            if not is_transient(exc):
                raise
            # A system is down: the decision is recorded and the recovery loop completes it (202).
            return new, await self.get_approval(approval_id)

    async def _key_recorded(self, idempotency_key: str | None) -> bool:
        if not idempotency_key:
            return False
        async with self.db.read() as conn:
            return (await conn.execute(sa.select(approvals.c.id).where(
                approvals.c.idempotency_key == idempotency_key))).first() is not None

    async def _repeated_decision(self, request: ApprovalRequest) -> Approval | None:
        """Refuse a decision on one's own time (403, nothing recorded); answer a decision already taken on every
        entry with the approval that took it, each entry ``unchanged`` (no new approval, nothing settled again).

        Looks at the PSA first; when the PSA cannot answer, the decision is recorded as usual and the same rules
        apply entry by entry when it is applied (:func:`decided_already`, :func:`own_time`)."""
        ids = list(dict.fromkeys(request.time_entry_ids))
        try:
            entries = await self._known_entries(ids)
        except DownstreamProblem as exc:
            if is_transient(exc):
                return None
            raise
        own = [index for index, entry_id in enumerate(ids)
               if entry_id in entries and own_time(entries[entry_id], request.approver_id)]
        if own:
            raise Forbidden("nobody approves or rejects their own time", slug="own-time", errors=[
                FieldError(pointer=f"/time_entry_ids/{i}", detail="the approver's own entry") for i in own])
        if len(entries) < len(ids) or not all(decided_already(entries[i], request.decision) for i in ids):
            return None
        deciding = await self._deciding_approval(ids, request.decision)
        if deciding is None:
            return None
        return msgspec.structs.replace(deciding, entries=[
            EntryOutcome(time_entry_id=i, result="unchanged", state=entries[i].state,
                         detail=f"{entries[i].state} already") for i in ids])

    async def _known_entries(self, ids: list[str]) -> dict[str, TimeEntry]:
        """The entries that exist among ``ids`` (an unknown one is answered ``not_found`` when applied)."""
        limit = asyncio.Semaphore(CONCURRENCY)

        async def one(entry_id: str) -> TimeEntry | None:
            async with limit:
                return await found_or_none(self.systems.psa.time_entry(entry_id))

        return {e.id: e for e in await asyncio.gather(*(one(i) for i in ids)) if e is not None}

    async def _deciding_approval(self, ids: list[str], decision: str) -> Approval | None:
        """The one applied approval that decided every entry of ``ids`` this way, if there is one."""
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(approvals).where(
                approvals.c.decision == decision, approvals.c.state == "applied",
                sa.cast(approvals.c.time_entry_ids, sa.Text).like(f'%"{ids[0]}"%'))
                .order_by(approvals.c.created_at.desc()).limit(20))).all()
        target = "approved" if decision == "approve" else "rejected"
        for row in rows:
            decided = {o["time_entry_id"] for o in (row.outcome or []) if o.get("result") == target}
            if set(ids) <= decided:
                return _approval(row)
        return None

    async def record_decision(self, request: ApprovalRequest, idempotency_key: str | None) -> tuple[str, bool]:
        """The approval id for this decision and whether this call recorded it (False: a replay of the key)."""
        ids = list(dict.fromkeys(request.time_entry_ids))
        try:
            return await self._record_once(request, ids, idempotency_key)
        except sa.exc.IntegrityError:
            if not idempotency_key:
                raise
            # Another replica recorded the same key between our look and our insert (both saw none): it has
            # committed by now, so looking again finds it and this request answers as its replay.
            return await self._record_once(request, ids, idempotency_key)

    async def _record_once(self, request: ApprovalRequest, ids: list[str], idempotency_key: str | None
                           ) -> tuple[str, bool]:
        """The approval recorded for this key (checked to be the same decision), else a new one."""
        async with self.uow() as uow:
            if idempotency_key:
                existing = (await uow.conn.execute(sa.select(approvals).where(
                    approvals.c.idempotency_key == idempotency_key))).first()
                if existing is not None:
                    if (list(existing.time_entry_ids), existing.approver_id, existing.decision,
                            existing.reason) != (ids, request.approver_id, request.decision, request.reason):
                        raise refuse_reuse("this Idempotency-Key was used for a different decision")
                    return existing.id, False
            return await self._record(uow.conn, request, ids, idempotency_key), True

    @staticmethod
    async def _record(conn: AsyncConnection, request: ApprovalRequest, ids: list[str], key: str | None) -> str:
        approval_id = "apr_" + uuid.uuid4().hex[:24]
        await conn.execute(approvals.insert().values(
            id=approval_id, approver_id=request.approver_id, decision=request.decision, reason=request.reason,
            time_entry_ids=ids, idempotency_key=key, state="recorded", attempts=0,
            correlation_id=correlation.current_correlation_id(), trace_id=correlation.current_trace_id(),
            created_at=utcnow()))
        return approval_id

    async def get_approval(self, approval_id: str) -> Approval:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(approvals).where(approvals.c.id == approval_id))).first()
        if row is None:
            raise NotFound(f"no approval {approval_id!r}", slug="unknown-id")
        return _approval(row)

    async def apply(self, approval_id: str) -> Approval:
        """Apply a recorded decision; safe to repeat (every step is idempotent)."""
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(approvals).where(approvals.c.id == approval_id))).one()
        if row.state == "applied":
            return _approval(row)
        outcomes, decided = await self._decide_in_psa(row)
        approved = [e for e in decided if e.state == "approved"]
        pending = any(o.result == "pending" for o in outcomes.values())

        async def finish(conn: AsyncConnection, settlements: dict[str, Settlement]) -> None:
            for entry_id, settlement in settlements.items():
                outcomes[entry_id].settlement = settlement
            for entry in decided:
                await record_event(conn, "time.approved" if row.decision == "approve" else "time.rejected",
                                   _entry_subject(entry),
                                   {"approval_id": row.id, "approver_id": row.approver_id, "reason": row.reason,
                                    "hours": decimal_text(entry.hours), "work_date": entry.work_date.isoformat(),
                                    "version": entry.version})
            items = [outcomes[i] for i in row.time_entry_ids]
            await conn.execute(approvals.update().where(approvals.c.id == row.id).values(
                state="recorded" if pending else "applied", applied_at=None if pending else utcnow(),
                attempts=row.attempts + 1, outcome=msgspec.to_builtins(items)))

        if approved:
            await self.billing.settle(approved, approval_id=row.id, actor_id=row.approver_id, also=finish)
        else:
            async with self.uow() as uow:
                await finish(uow.conn, {})
        return await self.get_approval(approval_id)

    async def _decide_in_psa(self, row: Any) -> tuple[dict[str, EntryOutcome], list[TimeEntry]]:
        target = "approved" if row.decision == "approve" else "rejected"
        limit = asyncio.Semaphore(CONCURRENCY)
        projects: dict[str, Project | None] = {}

        async def manager_of(project_id: str) -> str | None:
            if project_id not in projects:
                try:
                    projects[project_id] = await self.systems.psa.project(project_id)
                except DownstreamProblem as exc:
                    if exc.status != 404:
                        raise
                    projects[project_id] = None
            project = projects[project_id]
            return project.manager_id if project else None

        async def one(entry_id: str) -> tuple[EntryOutcome, TimeEntry | None]:
            async with limit:
                try:
                    entry = await self.systems.psa.time_entry(entry_id)
                    if await manager_of(entry.project_id) != row.approver_id:
                        return EntryOutcome(time_entry_id=entry_id, result="refused", state=entry.state,
                                            detail=f"{row.approver_id} does not manage {entry.project_id}"), None
                    if own_time(entry, row.approver_id):
                        return EntryOutcome(time_entry_id=entry_id, result="refused", state=entry.state,
                                            detail="nobody approves or rejects their own time"), None
                    if decided_already(entry, row.decision):
                        return EntryOutcome(time_entry_id=entry_id, result="unchanged", state=entry.state,
                                            detail=f"{entry.state} already"), None
                    moved = await self.systems.psa.transition_time_entry(
                        entry_id, target, actor_id=row.approver_id, reason=row.reason)
                except DownstreamProblem as exc:
                    if exc.status == 404:
                        return EntryOutcome(time_entry_id=entry_id, result="not_found", detail=describe(exc)), None
                    if is_transient(exc):
                        return EntryOutcome(time_entry_id=entry_id, result="pending", detail=describe(exc)), None
                    return EntryOutcome(time_entry_id=entry_id, result="refused", detail=describe(exc)), None
                return EntryOutcome(time_entry_id=entry_id, result=target, state=moved.state), moved  # type: ignore[arg-type]

        results = await asyncio.gather(*(one(i) for i in row.time_entry_ids))
        outcomes = {outcome.time_entry_id: outcome for outcome, _ in results}
        return outcomes, [moved for _, moved in results if moved is not None]

    async def recover(self, older_than_seconds: float) -> int:
        """Complete decisions left ``recorded`` (the PSA was down, or the process stopped mid-way)."""
        cutoff = utcnow() - dt.timedelta(seconds=older_than_seconds)
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(approvals.c.id, approvals.c.correlation_id, approvals.c.trace_id)
                                       .where(approvals.c.state == "recorded", approvals.c.created_at < cutoff)
                                       .order_by(approvals.c.created_at).limit(50))).all()
        for row in rows:
            # Completed in the trace of the request that decided it (holds it raises carry that trace id).
            token = correlation.set_current(correlation.resume(row.correlation_id, row.trace_id))
            try:
                await self.apply(row.id)
            finally:
                correlation.reset_current(token)
        return len(rows)


def own_time(entry: TimeEntry, approver_id: str) -> bool:
    """Separation of duties: nobody decides their own time."""
    return entry.worker_id == approver_id


def decided_already(entry: TimeEntry, decision: str) -> bool:
    """The entry is where this decision would take it (approved time moves on to posted and invoiced)."""
    if decision == "approve":
        return entry.state in TIME_ENTRY_APPROVED
    return entry.state == "rejected"


def _check(errors: list[FieldError]) -> None:
    if errors:
        raise BadRequest("the request does not match the contract", slug="validation-error", errors=errors)


def _entry_subject(entry: TimeEntry) -> dict[str, str]:
    return {"time_entry_id": entry.id, "worker_id": entry.worker_id, "project_id": entry.project_id}


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _sync_refusal(item: SyncItem, errors: list[FieldError]) -> SyncResult:
    return SyncResult(client_ref=item.client_ref, status="error", problem={
        "type": "/catalog/problems/validation-error", "title": "Invalid item", "status": 422,
        "detail": errors[0].detail, "errors": [msgspec.to_builtins(e) for e in errors]})


def _sync_error(item: SyncItem, status: int, detail: str) -> SyncResult:
    return SyncResult(client_ref=item.client_ref, status="error",
                      problem={"type": "/catalog/problems/validation-error", "title": "Invalid item",
                               "status": status, "detail": detail})


def _approval(row: Any) -> Approval:
    entries = msgspec.convert(row.outcome or [], list[EntryOutcome])
    if not entries:
        entries = [EntryOutcome(time_entry_id=i, result="pending") for i in row.time_entry_ids]
    return Approval(id=row.id, approver_id=row.approver_id, decision=row.decision, reason=row.reason,
                    state=row.state, created_at=row.created_at, applied_at=row.applied_at, entries=entries)
