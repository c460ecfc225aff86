"""PSA system API v1 routes: thin; the service decides, the connector does the vendor work.

Contract: contracts/system/psa/v1.yaml.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Controller, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter, RequestBody

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
from runtime.idempotency import respond
from runtime.params import IdempotencyKey, Limit
from runtime.problems import BadRequest, FieldError
from runtime.tokens import Principal
from system_apis.checks import Checked
from system_apis.psa.connectors import PsaConnector
from system_apis.psa.models import (
    AssignmentCreate,
    AssignmentTransition,
    ExpenseCreate,
    MilestoneTransition,
    ProjectCreate,
    ProjectPatch,
    TaskCreate,
    TimeEntryCreate,
    TimeEntryFilter,
    TimeEntryPatch,
    TimeEntryTransition,
    TimeEntryTransitionBatch,
    TimeEntryTransitionBatchResult,
)
from system_apis.psa.service import PsaService

# Time entries page larger: a month end reads tens of thousands, and each page costs a vendor query.
TimeEntryLimit = Annotated[int, QueryParameter(ge=1, le=1000)]
# A batch read by ids answers in one page: as many ids as the largest page.
BATCH_IDS_MAX = 200


def connector(state: State) -> PsaConnector:
    return state.psa


def service(state: State) -> PsaService:
    return PsaService(state.psa)


def batch_ids(ids: str) -> list[str]:
    """The ids of a batch read (``?ids=a,b,c``): 1 to BATCH_IDS_MAX ids of 1 to 64 characters each."""
    wanted = ids.split(",")
    bad = next((i for i in wanted if not 1 <= len(i) <= 64), None)
    if len(wanted) > BATCH_IDS_MAX or bad is not None:
        detail = (f"at most {BATCH_IDS_MAX} ids" if len(wanted) > BATCH_IDS_MAX
                  else "each id is 1 to 64 characters, ids separated by single commas")
        raise BadRequest(f"ids: {detail}", slug="validation-error",
                         errors=[FieldError(pointer="/ids", detail=detail, location="query")])
    return wanted


def aware(moment: dt.datetime | None, name: str) -> dt.datetime | None:
    if moment is not None and moment.tzinfo is None:
        raise BadRequest(f"{name} needs a UTC offset (e.g. 2026-10-05T00:00:00Z)", slug="validation-error",
                         errors=[FieldError(pointer=f"/{name}", detail="must carry a UTC offset", location="query")])
    return moment


async def write(state: State, principal: Principal, operation: str, key: str | None, path: dict[str, str],
                body: Any, action: Any) -> Response[bytes]:
    if isinstance(body, Checked):
        body.check()
    return await respond(state.idempotency, client_id=principal.client_id, operation=operation, key=key,
                         path_params=path, body=body, action=action)


class PsaV1(Controller):
    path = "/system/psa/v1"

    # projects and tasks

    @get("/projects", operation_id="listProjects")
    async def list_projects(self, state: State, status: FromQuery[ProjectStatus | None] = None,
                            customer_id: FromQuery[str | None] = None, contract_id: FromQuery[str | None] = None,
                            cursor: FromQuery[str | None] = None, limit: Limit = 50,
                            ids: FromQuery[str | None] = None) -> Page[Project]:
        if ids is not None:
            wanted = batch_ids(ids)
            found = await service(state).projects_by_id(wanted)
            return Page(items=[p for p in found if (status is None or p.status == status)
                               and (customer_id is None or p.customer_id == customer_id)
                               and (contract_id is None or p.contract_id == contract_id)])
        return await connector(state).list_projects(status=status, customer_id=customer_id, contract_id=contract_id,
                                                    cursor=cursor, limit=limit)

    @get("/projects/{project_id:str}", operation_id="getProject")
    async def get_project(self, state: State, project_id: FromPath[str]) -> Project:
        return await connector(state).get_project(project_id)

    @post("/projects", operation_id="createProject")
    async def create_project(self, state: State, principal: NamedDependency[Principal],
                             data: RequestBody[ProjectCreate],
                             idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, Project]:
            return 201, await service(state).create_project(data, idempotency_key)
        return await write(state, principal, "createProject", idempotency_key, {}, data, action)

    @patch("/projects/{project_id:str}", operation_id="updateProject")
    async def update_project(self, state: State, principal: NamedDependency[Principal], project_id: FromPath[str],
                             data: RequestBody[ProjectPatch],
                             idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, Project]:
            return 200, await service(state).update_project(project_id, data)
        return await write(state, principal, "updateProject", idempotency_key, {"project_id": project_id}, data,
                           action)

    @get("/projects/{project_id:str}/tasks", operation_id="listProjectTasks")
    async def list_tasks(self, state: State, project_id: FromPath[str],
                         cursor: FromQuery[str | None] = None,
                         limit: Limit = 50) -> Page[Task]:
        return await connector(state).list_tasks(project_id, cursor=cursor, limit=limit)

    @post("/projects/{project_id:str}/tasks", operation_id="createProjectTask")
    async def create_task(self, state: State, principal: NamedDependency[Principal], project_id: FromPath[str],
                          data: RequestBody[TaskCreate],
                          idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, Task]:
            return 201, await service(state).create_task(project_id, data, idempotency_key)
        return await write(state, principal, "createProjectTask", idempotency_key, {"project_id": project_id}, data,
                           action)

    # assignments

    @get("/assignments", operation_id="listAssignments")
    async def list_assignments(self, state: State, worker_id: FromQuery[str | None] = None,
                               project_id: FromQuery[str | None] = None,
                               status: FromQuery[AssignmentStatus | None] = None,
                               cursor: FromQuery[str | None] = None, limit: Limit = 50) -> Page[Assignment]:
        return await connector(state).list_assignments(worker_id=worker_id, project_id=project_id, status=status,
                                                       cursor=cursor, limit=limit)

    @post("/assignments", operation_id="createAssignment")
    async def create_assignment(self, state: State, principal: NamedDependency[Principal],
                                data: RequestBody[AssignmentCreate],
                                idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, Assignment]:
            return 201, await service(state).create_assignment(data, idempotency_key)
        return await write(state, principal, "createAssignment", idempotency_key, {}, data, action)

    @post("/assignments/{assignment_id:str}/transitions", operation_id="transitionAssignment")
    async def transition_assignment(self, state: State, principal: NamedDependency[Principal],
                                    assignment_id: FromPath[str],
                                    data: RequestBody[AssignmentTransition],
                                    idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, Assignment]:
            return 200, await service(state).transition_assignment(assignment_id, data.to_status)
        return await write(state, principal, "transitionAssignment", idempotency_key,
                           {"assignment_id": assignment_id}, data, action)

    # time entries

    @get("/time-entries", operation_id="listTimeEntries")
    async def list_time_entries(self, state: State, worker_id: FromQuery[str | None] = None,
                                project_id: FromQuery[str | None] = None, state_: Annotated[
                                    TimeEntryState | None, QueryParameter(name="state")] = None,
                                from_date: FromQuery[dt.date | None] = None, to_date: FromQuery[dt.date | None] = None,
                                updated_since: FromQuery[dt.datetime | None] = None,
                                cursor: FromQuery[str | None] = None,
                                limit: TimeEntryLimit = 50) -> Page[TimeEntry]:
        filters = TimeEntryFilter(worker_id=worker_id, project_id=project_id, state=state_, from_date=from_date,
                                  to_date=to_date, updated_since=aware(updated_since, "updated_since"))
        return await connector(state).list_time_entries(filters, cursor=cursor, limit=limit)

    @get("/time-entries/{time_entry_id:str}", operation_id="getTimeEntry")
    async def get_time_entry(self, state: State, time_entry_id: FromPath[str]) -> TimeEntry:
        return await connector(state).get_time_entry(time_entry_id)

    @post("/time-entries", operation_id="createTimeEntry")
    async def create_time_entry(self, state: State, principal: NamedDependency[Principal],
                                data: RequestBody[TimeEntryCreate],
                                idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, TimeEntry]:
            entry, created = await service(state).create_time_entry(data)
            return (201 if created else 200), entry
        return await write(state, principal, "createTimeEntry", idempotency_key, {}, data, action)

    @patch("/time-entries/{time_entry_id:str}", operation_id="updateTimeEntry")
    async def update_time_entry(self, state: State, principal: NamedDependency[Principal],
                                time_entry_id: FromPath[str], data: RequestBody[TimeEntryPatch],
                                idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, TimeEntry]:
            return 200, await service(state).update_time_entry(time_entry_id, data)
        return await write(state, principal, "updateTimeEntry", idempotency_key, {"time_entry_id": time_entry_id},
                           data, action)

    @delete("/time-entries/{time_entry_id:str}", operation_id="deleteTimeEntry", status_code=204)
    async def delete_time_entry(self, state: State, principal: NamedDependency[Principal], time_entry_id: FromPath[str],
                                idempotency_key: IdempotencyKey = None) -> Response[None]:
        async def action() -> tuple[int, None]:
            await service(state).delete_time_entry(time_entry_id)
            return 204, None
        await write(state, principal, "deleteTimeEntry", idempotency_key, {"time_entry_id": time_entry_id}, None,
                    action)
        return Response(content=None, status_code=204)

    @post("/time-entries/{time_entry_id:str}/transitions", operation_id="transitionTimeEntry")
    async def transition_time_entry(self, state: State, principal: NamedDependency[Principal],
                                    time_entry_id: FromPath[str],
                                    data: RequestBody[TimeEntryTransition],
                                    idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, TimeEntry]:
            return 200, await service(state).transition_time_entry(time_entry_id, data)
        return await write(state, principal, "transitionTimeEntry", idempotency_key,
                           {"time_entry_id": time_entry_id}, data, action)

    @post("/time-entries/transitions", operation_id="transitionTimeEntries")
    async def transition_time_entries(self, state: State, principal: NamedDependency[Principal],
                                      data: RequestBody[TimeEntryTransitionBatch],
                                      idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, TimeEntryTransitionBatchResult]:
            return 200, TimeEntryTransitionBatchResult(items=await service(state).transition_time_entries(data.items))
        return await write(state, principal, "transitionTimeEntries", idempotency_key, {}, data, action)

    @post("/time-entries/{time_entry_id:str}/corrections", operation_id="correctTimeEntry")
    async def correct_time_entry(self, state: State, principal: NamedDependency[Principal],
                                 time_entry_id: FromPath[str], data: RequestBody[TimeEntryPatch],
                                 idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, TimeEntry]:
            return 201, await service(state).correct_time_entry(time_entry_id, data, idempotency_key)
        return await write(state, principal, "correctTimeEntry", idempotency_key, {"time_entry_id": time_entry_id},
                           data, action)

    # expenses and milestones

    @post("/expenses", operation_id="createExpense")
    async def create_expense(self, state: State, principal: NamedDependency[Principal],
                             data: RequestBody[ExpenseCreate],
                             idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, Expense]:
            expense, created = await connector(state).create_expense(data)
            return (201 if created else 200), expense
        return await write(state, principal, "createExpense", idempotency_key, {}, data, action)

    @get("/expenses", operation_id="listExpenses")
    async def list_expenses(self, state: State, worker_id: FromQuery[str | None] = None,
                            project_id: FromQuery[str | None] = None,
                            state_: Annotated[ExpenseState | None, QueryParameter(name="state")] = None,
                            cursor: FromQuery[str | None] = None, limit: Limit = 50) -> Page[Expense]:
        return await connector(state).list_expenses(worker_id=worker_id, project_id=project_id, state=state_,
                                                    cursor=cursor, limit=limit)

    @get("/milestones", operation_id="listMilestones")
    async def list_milestones(self, state: State, project_id: FromQuery[str | None] = None,
                              state_: Annotated[MilestoneState | None, QueryParameter(name="state")] = None,
                              cursor: FromQuery[str | None] = None, limit: Limit = 50) -> Page[Milestone]:
        return await connector(state).list_milestones(project_id=project_id, state=state_, cursor=cursor,
                                                      limit=limit)

    @get("/milestones/{milestone_id:str}", operation_id="getMilestone")
    async def get_milestone(self, state: State, milestone_id: FromPath[str]) -> Milestone:
        return await connector(state).get_milestone(milestone_id)

    @post("/milestones/{milestone_id:str}/transitions", operation_id="transitionMilestone")
    async def transition_milestone(self, state: State, principal: NamedDependency[Principal],
                                   milestone_id: FromPath[str],
                                   data: RequestBody[MilestoneTransition],
                                   idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, Milestone]:
            return 200, await service(state).transition_milestone(milestone_id, data.to_state)
        return await write(state, principal, "transitionMilestone", idempotency_key, {"milestone_id": milestone_id},
                           data, action)
