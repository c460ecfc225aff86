"""Timesheets: the only way time is written (the experience tier never writes to the PSA itself).

Entries are written, edited, synced from offline phones and submitted by the week here; the manager's decision on
submitted time is process_apis/timesheets/approvals.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import msgspec

from contracts.canonical import TIME_ENTRY_SUBMITTABLE, Page, TimeEntry, decimal_text
from process_apis.backoff import describe
from process_apis.billing.service import BillingService
from process_apis.events.outbox import record_event
from process_apis.systems import PSA, Systems
from process_apis.timesheets.days import WorkerDays
from process_apis.timesheets.employment import Employment, WorkerTerminated
from process_apis.timesheets.entry_rules import MinuteGrid, WorkDateWindow
from process_apis.timesheets.models import (
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
    entry_subject,
)
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.downstream import DownstreamProblem
from runtime.problems import BadRequest, FieldError, Unprocessable

CONCURRENCY = 16
# A week's submission sends its drafts; a rejected entry goes again once its owner edits it (the edit makes it a
# draft) or when it is named on its own, so a rejection is not resent unchanged by every week's submission.
_SUBMITTED_WITH_THE_WEEK = frozenset({"draft"})


class TimesheetService:
    def __init__(self, uow: UnitOfWorkFactory, systems: Systems, billing: BillingService,
                 window: WorkDateWindow, grid: MinuteGrid, employment: Employment | None = None) -> None:
        self.uow = uow
        self.db = uow.db
        self.systems = systems
        self.billing = billing
        self.window = window
        self.grid = grid
        self.days = WorkerDays(uow, systems)
        # No time after a worker's last day (timesheets/employment.py): the HR feed renews the same copy.
        self.employment = employment or Employment(uow.db)

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
        await self.employment.refuse_after_last_day(body.worker_id, body.work_date, "/work_date")
        refused, claim = await self.days.claim(body.worker_id, body.work_date, body.hours, "/hours",
                                               client_ref=body.client_ref)
        _check(refused)
        assert claim is not None
        async with self.days.writing(claim) as written:
            status, entry = await self.systems.psa.create_time_entry(msgspec.to_builtins(body, order="sorted"))
            written(entry, wrote=status == 201)
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
        if work_date is not None:
            await self.employment.refuse_after_last_day(entry.worker_id, work_date, "/work_date")
        day, claimed = work_date or entry.work_date, hours or entry.hours
        refused, claim = await self.days.claim(entry.worker_id, day, claimed, pointer, time_entry_id=entry.id)
        if refused:
            return refused, None
        assert claim is not None
        # The date and hours checked go with the edit: it lands as claimed even if another edit moved the entry
        # or changed its hours since it was read here.
        exact = {**payload, "work_date": day.isoformat(), "hours": decimal_text(claimed)}
        async with self.days.writing(claim) as written:
            edited = await self.systems.psa.update_time_entry(time_entry_id, exact)
            written(edited)
        return [], edited

    async def delete_entry(self, time_entry_id: str) -> None:
        """Delete a draft or rejected entry (the PSA system API refuses any other state, 409 not-editable)."""
        async with self.days.deleting(time_entry_id):
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
            await self.employment.refuse_after_last_day(item.worker_id, item.work_date, f"{at}/work_date")
            refused, claim = await self.days.claim(item.worker_id, item.work_date, item.hours, f"{at}/hours",
                                                   client_ref=item.client_ref)
            if refused:
                return _sync_refusal(item, refused)
            assert claim is not None
            async with self.days.writing(claim) as written:
                status, entry = await self.systems.psa.create_time_entry(body)
                written(entry, wrote=status == 201)
            return SyncResult(client_ref=item.client_ref, status="created" if status == 201 else "existing",
                              time_entry=entry)
        except (DownstreamProblem, WorkerTerminated) as exc:
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
                    await record_event(uow.conn, "time.submitted", entry_subject(entry),
                                       {"work_date": entry.work_date.isoformat(), "hours": decimal_text(entry.hours),
                                        "version": entry.version})
        return SubmissionResult(worker_id=request.worker_id, week_start=request.week_start, week_end=week_end,
                                items=[outcome for outcome, _ in results],
                                total_hours=sum((e.hours for e in entries), Decimal(0)))


def _check(errors: list[FieldError]) -> None:
    if errors:
        raise BadRequest("the request does not match the contract", slug="validation-error", errors=errors)


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
