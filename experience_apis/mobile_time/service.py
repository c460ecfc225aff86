"""Mobile time entry: the consultant's time, read and written through the timesheets process API.

Neutral inside, shaped at the edge: this module works in the process tier's terms (decimal hours and a
billable flag); :mod:`experience_apis.mobile_time.shapes` turns that into v1 (hours) or v2 (minutes and a work
type) payloads and back. The consultant is always the token's subject: every entry read is checked to be
theirs, every entry written is written for them, and their offline ids are stored namespaced by their worker id
(the PSA keeps client refs unique firm-wide, so two phones can never collide on one).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from experience_apis.mobile_time.models import WeekSubmission, WeekSubmissionItem
from experience_apis.process_calls import (
    STAFFING,
    TIMESHEETS,
    ProcessCorrection,
    ProcessSubmission,
    ProcessSyncResponse,
    ProcessTimeEntry,
    ProcessTimeEntryPage,
    StaffedPage,
)
from runtime.downstream import Downstream, found_or_none, segment
from runtime.problems import BadRequest, FieldError, NotFound

SUBMITTABLE = frozenset({"draft"})  # what a week submission sends (an edited rejected entry is a draft again)
CONCURRENCY = 8


@dataclass
class SyncCommand:
    """One offline change, already checked on its own: ``problem`` set means it is answered without a call."""

    client_ref: str
    op: str
    time_entry_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    problem: dict[str, Any] | None = None


@dataclass
class SyncOutcome:
    client_ref: str
    status: str
    entry: ProcessTimeEntry | None = None
    problem: dict[str, Any] | None = None


@dataclass
class Week:
    week_start: dt.date
    week_end: dt.date
    entries: list[ProcessTimeEntry]
    project_names: dict[str, str]


def week_end_of(week_start: dt.date) -> dt.date:
    """The week's last day; a week that would run past the calendar's end (9999-12-31) is bad input."""
    if week_start > dt.date.max - dt.timedelta(days=6):
        raise BadRequest("week_start has no whole week before the end of the calendar", slug="validation-error",
                         errors=[FieldError(pointer="/week_start", detail="a date before 9999-12-26",
                                            location="path")])
    return week_start + dt.timedelta(days=6)


def item_problem(status: int, detail: str, pointer: str | None = None,
                 slug: str = "validation-error") -> dict[str, Any]:
    problem: dict[str, Any] = {"type": f"/catalog/problems/{slug}", "title": "Invalid item", "status": status,
                               "detail": detail}
    if pointer is not None:
        problem["errors"] = [{"pointer": pointer, "detail": detail}]
    return problem


def _repointed(problem: dict[str, Any] | None, old: str, new: str) -> dict[str, Any] | None:
    if not problem or not isinstance(problem.get("errors"), list):
        return problem
    errors = [{**e, "pointer": new + e["pointer"][len(old):]}
              if isinstance(e, dict) and str(e.get("pointer", "")).startswith(old) else e for e in problem["errors"]]
    return {**problem, "errors": errors}


class MobileTime:
    def __init__(self, gateway: Downstream, worker_id: str) -> None:
        self.gateway = gateway
        self.worker_id = worker_id
        self._prefix = worker_id + ":"

    # -- the phone's ids ----------------------------------------------------------------------------------------

    def stored_ref(self, client_ref: str | None) -> str | None:
        return self._prefix + client_ref if client_ref is not None else None

    def shown_ref(self, stored: str | None) -> str | None:
        if stored is None or not stored.startswith(self._prefix):
            return None
        return stored[len(self._prefix):]

    # -- reads -------------------------------------------------------------------------------------------------

    async def week(self, week_start: dt.date) -> Week:
        week_end = week_end_of(week_start)
        entries: list[ProcessTimeEntry] = []
        cursor: str | None = None
        while True:
            page = await self.gateway.get_json(f"{TIMESHEETS}/time-entries", ProcessTimeEntryPage, params={
                "worker_id": self.worker_id, "from_date": week_start.isoformat(), "to_date": week_end.isoformat(),
                "cursor": cursor, "limit": 200})
            entries.extend(page.items)
            cursor = page.next_cursor
            if not cursor:
                break
        staffed = await self.gateway.get_json(f"{STAFFING}/workers/{segment(self.worker_id)}/assignments", StaffedPage,
                                              params={"limit": 200})
        names = {a.project.id: a.project.name for a in staffed.items}
        live = [e for e in entries if e.worker_id == self.worker_id and e.superseded_by_id is None]
        live.sort(key=lambda e: (e.work_date, e.project_id, e.id))
        return Week(week_start, week_end, live, names)

    async def own_entry(self, time_entry_id: str) -> ProcessTimeEntry:
        """The entry, if it is this consultant's; anyone else's is as unknown as a missing one."""
        entry = await found_or_none(
            self.gateway.get_json(f"{TIMESHEETS}/time-entries/{segment(time_entry_id)}", ProcessTimeEntry))
        if entry is None or entry.worker_id != self.worker_id:
            raise NotFound(f"no time entry {time_entry_id!r}", slug="unknown-id")
        return entry

    # -- writes ------------------------------------------------------------------------------------------------

    async def create(self, fields: Mapping[str, Any], client_ref: str | None) -> tuple[bool, ProcessTimeEntry]:
        body = {**fields, "worker_id": self.worker_id}
        if client_ref is not None:
            body["client_ref"] = self.stored_ref(client_ref)
        response = await self.gateway.request("POST", f"{TIMESHEETS}/time-entries", json=body)
        entry = msgspec.json.decode(response.content, type=ProcessTimeEntry)
        if entry.worker_id != self.worker_id:  # defense in depth: a namespaced ref cannot name another's entry
            raise NotFound("no such time entry", slug="unknown-id")
        return response.status_code == 201, entry

    async def update(self, time_entry_id: str, changes: Mapping[str, Any]) -> ProcessTimeEntry:
        await self.own_entry(time_entry_id)
        response = await self.gateway.request("PATCH", f"{TIMESHEETS}/time-entries/{segment(time_entry_id)}",
                                              json=changes)
        return msgspec.json.decode(response.content, type=ProcessTimeEntry)

    async def delete(self, time_entry_id: str) -> None:
        await self.own_entry(time_entry_id)
        await self.gateway.request("DELETE", f"{TIMESHEETS}/time-entries/{segment(time_entry_id)}")

    async def request_correction(self, time_entry_id: str, fields: Mapping[str, Any], reason: str,
                                 idempotency_key: str | None) -> tuple[bool, ProcessCorrection]:
        """Ask the approver to correct this consultant's approved, posted or invoiced entry (the process tier decides
        what may be corrected); returns (created, correction)."""
        await self.own_entry(time_entry_id)
        body = {**fields, "time_entry_id": time_entry_id, "worker_id": self.worker_id, "reason": reason}
        response = await self.gateway.request("POST", f"{TIMESHEETS}/corrections", json=body,
                                              idempotency_key=idempotency_key)
        return response.status_code == 201, msgspec.json.decode(response.content, type=ProcessCorrection)

    async def sync(self, commands: Sequence[SyncCommand]) -> list[SyncOutcome]:
        """Apply an offline batch: every item answers for itself, in order; re-sending it changes nothing."""
        outcomes: list[SyncOutcome | None] = [None] * len(commands)
        limit = asyncio.Semaphore(CONCURRENCY)

        async def check(index: int, command: SyncCommand) -> None:
            if command.problem is not None:
                outcomes[index] = SyncOutcome(command.client_ref, "error", problem=command.problem)
                return
            if command.time_entry_id is None:
                return
            async with limit:
                try:
                    await self.own_entry(command.time_entry_id)
                except NotFound as exc:
                    if command.op == "delete":  # gone (or never ours): the delete is done either way
                        outcomes[index] = SyncOutcome(command.client_ref, "deleted")
                    else:
                        outcomes[index] = SyncOutcome(command.client_ref, "error", problem=item_problem(
                            404, exc.detail or "no such time entry", slug="unknown-id"))

        await asyncio.gather(*(check(i, c) for i, c in enumerate(commands)))
        pending = [(i, c) for i, c in enumerate(commands) if outcomes[i] is None]
        if pending:
            items = []
            for _, command in pending:
                item: dict[str, Any] = {"client_ref": self.stored_ref(command.client_ref), "op": command.op}
                if command.time_entry_id is not None:
                    item["time_entry_id"] = command.time_entry_id
                else:
                    item["worker_id"] = self.worker_id
                item.update(command.fields)
                items.append(item)
            response = await self.gateway.request("POST", f"{TIMESHEETS}/time-entry-syncs", json={"items": items})
            results = msgspec.json.decode(response.content, type=ProcessSyncResponse).items
            for position, ((index, command), result) in enumerate(zip(pending, results, strict=True)):
                # The process tier points into the batch it was sent; the phone reads pointers into its own batch.
                problem = _repointed(result.problem, f"/items/{position}/", f"/items/{index}/")
                outcomes[index] = SyncOutcome(command.client_ref, result.status, result.time_entry, problem)
        return [o for o in outcomes if o is not None]

    async def submit(self, week_start: dt.date) -> WeekSubmission:
        week_end_of(week_start)
        response = await self.gateway.request("POST", f"{TIMESHEETS}/submissions",
                                              json={"worker_id": self.worker_id, "week_start": week_start.isoformat()})
        result = msgspec.json.decode(response.content, type=ProcessSubmission)
        items = [WeekSubmissionItem(time_entry_id=o.time_entry_id, result=o.result, state=o.state, detail=o.detail)
                 for o in result.items]
        return WeekSubmission(
            week_start=result.week_start, week_end=result.week_end,
            submitted=sum(1 for o in result.items if o.result == "submitted"),
            unchanged=sum(1 for o in result.items if o.result == "unchanged"),
            refused=sum(1 for o in result.items if o.result not in ("submitted", "unchanged")),
            items=items)
