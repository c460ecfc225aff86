"""The PSA port: what the PSA system API needs from any PSA vendor, in canonical terms. Adapters live beside it.

Adapters map their vendor's dialect to and from the canonical model and raise canonical problems
(``runtime.problems``): 404 ``unknown-id`` for an id the vendor does not know, 422 with canonical field pointers
for a refused value, 409 ``invalid-transition`` (with ``from_state``/``to_state``) for a refused state change.
Business rules that hold for every vendor (which transitions are legal, idempotent repeats) live in
``system_apis.psa.service``, not in adapters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from contracts.canonical import (
    Assignment,
    AssignmentStatus,
    Expense,
    ExpenseState,
    Milestone,
    MilestoneState,
    Page,
    Project,
    ProjectStatus,
    Task,
    TimeEntry,
    TimeEntryState,
)
from runtime.problems import ProblemError
from system_apis.psa.models import (
    AssignmentCreate,
    ExpenseCreate,
    ProjectCreate,
    TaskCreate,
    TimeEntryCreate,
    TimeEntryFilter,
    TimeEntryTransitionItem,
)


class PsaConnector(Protocol):
    async def list_projects(self, *, status: ProjectStatus | None, customer_id: str | None,
                            contract_id: str | None, cursor: str | None, limit: int) -> Page[Project]: ...

    async def get_project(self, project_id: str) -> Project: ...

    async def create_project(self, data: ProjectCreate, idempotency_key: str | None) -> Project: ...

    async def update_project(self, project_id: str, changes: dict[str, object]) -> Project: ...

    async def list_tasks(self, project_id: str, *, cursor: str | None, limit: int) -> Page[Task]: ...

    async def create_task(self, project_id: str, data: TaskCreate, idempotency_key: str | None) -> Task: ...

    async def list_assignments(self, *, worker_id: str | None, project_id: str | None,
                               status: AssignmentStatus | None, cursor: str | None, limit: int) -> Page[Assignment]: ...

    async def get_assignment(self, assignment_id: str) -> Assignment: ...

    async def create_assignment(self, data: AssignmentCreate, idempotency_key: str | None) -> Assignment: ...

    async def set_assignment_status(self, assignment_id: str, status: AssignmentStatus) -> Assignment: ...

    async def list_time_entries(self, filters: TimeEntryFilter, *, cursor: str | None,
                                limit: int) -> Page[TimeEntry]: ...

    async def get_time_entry(self, time_entry_id: str) -> TimeEntry: ...

    async def create_time_entry(self, data: TimeEntryCreate) -> tuple[TimeEntry, bool]:
        """(entry, created): an entry whose client_ref exists already is returned, not created again."""
        ...

    async def update_time_entry(self, time_entry_id: str, changes: dict[str, object]) -> TimeEntry: ...

    async def delete_time_entry(self, time_entry_id: str) -> None: ...

    async def set_time_entry_state(self, time_entry_id: str, to_state: TimeEntryState, *, actor_id: str | None,
                                   reason: str | None) -> TimeEntry: ...

    async def get_time_entries(self, time_entry_ids: Sequence[str]) -> dict[str, TimeEntry]:
        """The entries of these ids the vendor holds, by id; an id it does not know is left out."""
        ...

    async def set_time_entry_states(self, changes: Sequence[TimeEntryTransitionItem]
                                    ) -> list[TimeEntry | ProblemError]:
        """Each change in order: the entry after it, or the canonical problem of the vendor's refusal of that item.
        A vendor that is down or failing (5xx, timeout) fails the whole call: every change is safe to send again."""
        ...

    async def correct_time_entry(self, time_entry_id: str, changes: dict[str, object],
                                 idempotency_key: str | None) -> TimeEntry: ...

    async def list_expenses(self, *, worker_id: str | None, project_id: str | None, state: ExpenseState | None,
                            cursor: str | None, limit: int) -> Page[Expense]: ...

    async def create_expense(self, data: ExpenseCreate) -> tuple[Expense, bool]:
        """The expense, created once per ``source_ref``: a repeat answers the first (False)."""
        ...

    async def list_milestones(self, *, project_id: str | None, state: MilestoneState | None, cursor: str | None,
                              limit: int) -> Page[Milestone]: ...

    async def get_milestone(self, milestone_id: str) -> Milestone: ...

    async def set_milestone_state(self, milestone_id: str, to_state: MilestoneState) -> Milestone: ...

    async def aclose(self) -> None: ...
