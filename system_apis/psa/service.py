"""PSA rules that hold whatever the vendor: legal state changes, idempotent repeats, what may be edited.

Adapters map dialects; this module decides. Every refusal is a canonical problem: 409 ``invalid-transition``
(with ``from_state``/``to_state``) for a state change the lifecycle does not allow, 409 ``not-editable`` /
``not-correctable`` / ``already-superseded`` for edits in the wrong state, 422 for values that cannot hold.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

from contracts.canonical import (
    ASSIGNMENT_TRANSITIONS,
    MILESTONE_TRANSITIONS,
    PROJECT_TRANSITIONS,
    TIME_ENTRY_APPROVED,
    TIME_ENTRY_TRANSITIONS,
    Assignment,
    Milestone,
    MilestoneState,
    Project,
    Task,
    TimeEntry,
)
from runtime import correlation
from runtime.problems import BadRequest, Conflict, FieldError, NotFound, ProblemError, Unprocessable
from system_apis.psa.connectors import PsaConnector
from system_apis.psa.models import (
    AssignmentCreate,
    ProjectCreate,
    ProjectPatch,
    TaskCreate,
    TimeEntryCreate,
    TimeEntryPatch,
    TimeEntryTransition,
    TimeEntryTransitionItem,
    TimeEntryTransitionResult,
)

EDITABLE_STATES = frozenset({"draft", "rejected"})


def invalid_transition(what: str, from_state: str, to_state: str) -> Conflict:
    return Conflict(f"a {from_state} {what} cannot become {to_state}", slug="invalid-transition",
                    from_state=from_state, to_state=to_state)


def check_dates(start: dt.date | None, end: dt.date | None, start_name: str = "start_date",
                end_name: str = "end_date") -> None:
    if start is not None and end is not None and end < start:
        raise Unprocessable(f"{end_name} is before {start_name}", slug="validation-failed",
                            errors=[FieldError(pointer=f"/{end_name}", detail=f"must not be before {start_name}")])


def may_transition(current: TimeEntry, to_state: str, reason: str | None) -> bool:
    """Whether ``current`` is to change: False when it is in ``to_state`` already (a repeat is harmless), True when
    the lifecycle allows the change; the problem is raised when it does not."""
    if current.state == to_state:
        return False
    if current.superseded_by_id is not None:
        raise Conflict(f"{current.id} was superseded by {current.superseded_by_id}",
                       slug="already-superseded", superseded_by_id=current.superseded_by_id,
                       from_state=current.state, to_state=to_state)
    if to_state not in TIME_ENTRY_TRANSITIONS[current.state]:
        raise invalid_transition("time entry", current.state, to_state)
    if to_state == "rejected" and not (reason or "").strip():
        raise Unprocessable("a rejection needs a reason", slug="validation-failed",
                            errors=[FieldError(pointer="/reason", detail="is required to reject")])
    return True


def refused(index: int, time_entry_id: str, problem: ProblemError) -> TimeEntryTransitionResult:
    """The item's problem, its field pointers made pointers into the batch body (``/items/<index>/...``)."""
    if problem.errors:
        problem.errors = [FieldError(pointer=f"/items/{index}{e.pointer}", detail=e.detail, location=e.location)
                          for e in problem.errors]
    return TimeEntryTransitionResult(time_entry_id=time_entry_id, status="refused",
                                     problem=problem.to_problem(correlation.current_correlation_id()).to_dict())


# A batch read asks the vendor for at most this many records at once (the rest wait their turn).
BATCH_READ_CONCURRENCY = 16


class PsaService:
    def __init__(self, connector: PsaConnector) -> None:
        self.connector = connector

    async def projects_by_id(self, project_ids: Sequence[str]) -> list[Project]:
        """The projects of these ids that exist, in the order asked, each once; an unknown id is left out (a filter
        is a question, not a reference that must exist). Read through the connector one by one, concurrently and
        bounded, so every vendor gets the batch without a batch call of its own."""
        wanted = list(dict.fromkeys(project_ids))
        gate = asyncio.Semaphore(BATCH_READ_CONCURRENCY)

        async def one(project_id: str) -> Project | None:
            async with gate:
                try:
                    return await self.connector.get_project(project_id)
                except NotFound:
                    return None

        found = await asyncio.gather(*(one(project_id) for project_id in wanted))
        return [project for project in found if project is not None]

    async def create_project(self, data: ProjectCreate, idempotency_key: str | None) -> Project:
        check_dates(data.start_date, data.end_date)
        return await self.connector.create_project(data, idempotency_key)

    async def update_project(self, project_id: str, patch: ProjectPatch) -> Project:
        current = await self.connector.get_project(project_id)
        changes = patch.changes()
        status = changes.get("status")
        if status is not None and status != current.status and status not in PROJECT_TRANSITIONS[current.status]:
            raise invalid_transition("project", current.status, str(status))
        start = changes.get("start_date", current.start_date)
        end = changes.get("end_date", current.end_date)
        check_dates(start if isinstance(start, dt.date) else None, end if isinstance(end, dt.date) else None)
        if not changes:
            return current
        return await self.connector.update_project(project_id, changes)

    async def create_task(self, project_id: str, data: TaskCreate, idempotency_key: str | None) -> Task:
        return await self.connector.create_task(project_id, data, idempotency_key)

    async def create_assignment(self, data: AssignmentCreate, idempotency_key: str | None) -> Assignment:
        check_dates(data.start_date, data.end_date)
        return await self.connector.create_assignment(data, idempotency_key)

    async def transition_assignment(self, assignment_id: str, to_status: str) -> Assignment:
        current = await self.connector.get_assignment(assignment_id)
        if current.status == to_status:
            return current  # already done: a repeat is harmless
        if to_status not in ASSIGNMENT_TRANSITIONS[current.status]:
            raise invalid_transition("assignment", current.status, to_status)
        return await self.connector.set_assignment_status(assignment_id, to_status)  # type: ignore[arg-type]

    async def create_time_entry(self, data: TimeEntryCreate) -> tuple[TimeEntry, bool]:
        return await self.connector.create_time_entry(data)

    async def update_time_entry(self, time_entry_id: str, patch: TimeEntryPatch) -> TimeEntry:
        current = await self.connector.get_time_entry(time_entry_id)
        if current.state not in EDITABLE_STATES:
            raise Conflict(f"a {current.state} time entry cannot be edited; correct it instead",
                           slug="not-editable", state=current.state)
        changes = patch.changes()
        if not changes:
            return current
        return await self.connector.update_time_entry(time_entry_id, changes)

    async def delete_time_entry(self, time_entry_id: str) -> None:
        current = await self.connector.get_time_entry(time_entry_id)
        if current.state not in EDITABLE_STATES:  # draft or rejected: time nobody approved or is deciding
            raise Conflict(f"a {current.state} time entry cannot be deleted", slug="not-editable",
                           state=current.state)
        await self.connector.delete_time_entry(time_entry_id)

    async def transition_time_entry(self, time_entry_id: str, transition: TimeEntryTransition) -> TimeEntry:
        current = await self.connector.get_time_entry(time_entry_id)
        if not may_transition(current, transition.to_state, transition.reason):
            return current  # already done: a repeat is harmless
        return await self.connector.set_time_entry_state(time_entry_id, transition.to_state,
                                                         actor_id=transition.actor_id, reason=transition.reason)

    async def transition_time_entries(self, items: Sequence[TimeEntryTransitionItem]
                                      ) -> list[TimeEntryTransitionResult]:
        """Many state changes with the single transition's rules, each with its own outcome: one refusal does not
        sink the batch. Two vendor calls in all (read, then change), however many items."""
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            if item.time_entry_id in seen:
                raise BadRequest(f"{item.time_entry_id} appears twice in the batch", slug="validation-error",
                                 errors=[FieldError(pointer=f"/items/{index}/time_entry_id",
                                                    detail=f"already at /items/{seen[item.time_entry_id]}")])
            seen[item.time_entry_id] = index
        current = await self.connector.get_time_entries([item.time_entry_id for item in items])
        results: list[TimeEntryTransitionResult | None] = []
        changing: list[int] = []
        for index, item in enumerate(items):
            entry = current.get(item.time_entry_id)
            try:
                if entry is None:
                    raise NotFound(f"no time entry {item.time_entry_id!r}", slug="unknown-id")
                if may_transition(entry, item.to_state, item.reason):
                    changing.append(index)
                    results.append(None)
                else:
                    results.append(TimeEntryTransitionResult(time_entry_id=item.time_entry_id, status="unchanged",
                                                             time_entry=entry))
            except ProblemError as exc:
                results.append(refused(index, item.time_entry_id, exc))
        if changing:
            outcomes = await self.connector.set_time_entry_states([items[i] for i in changing])
            for index, outcome in zip(changing, outcomes, strict=True):
                time_entry_id = items[index].time_entry_id
                results[index] = refused(index, time_entry_id, outcome) if isinstance(outcome, ProblemError) else (
                    TimeEntryTransitionResult(time_entry_id=time_entry_id, status="changed", time_entry=outcome))
        return [result for result in results if result is not None]

    async def correct_time_entry(self, time_entry_id: str, patch: TimeEntryPatch,
                                 idempotency_key: str | None) -> TimeEntry:
        current = await self.connector.get_time_entry(time_entry_id)
        if current.superseded_by_id is not None:
            raise Conflict(f"{time_entry_id} was already corrected by {current.superseded_by_id}",
                           slug="already-superseded", superseded_by_id=current.superseded_by_id)
        if current.state not in TIME_ENTRY_APPROVED:
            raise Conflict(f"a {current.state} time entry is not corrected by a new version"
                           + ("; edit it instead" if current.state in EDITABLE_STATES else ""),
                           slug="not-correctable", state=current.state)
        changes = patch.changes()
        if not changes:
            raise Unprocessable("a correction changes at least one field", slug="validation-failed",
                                errors=[FieldError(pointer="", detail="no field to change")])
        return await self.connector.correct_time_entry(time_entry_id, changes, idempotency_key)

    async def transition_milestone(self, milestone_id: str, to_state: MilestoneState) -> Milestone:
        current = await self.connector.get_milestone(milestone_id)
        if current.state == to_state:
            return current
        if to_state not in MILESTONE_TRANSITIONS[current.state]:
            raise invalid_transition("milestone", current.state, to_state)
        return await self.connector.set_milestone_state(milestone_id, to_state)
