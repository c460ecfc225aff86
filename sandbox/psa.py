"""Sandbox PSA: a timecard-centric PSA in its own dialect.

Dialect (deliberately unlike the canonical model): integer internal ids, camelCase fields, title-case
statuses ("In Progress", "Confirmed"), durations in minutes, page-number pagination
(``?page=1&pageSize=50`` -> ``{"data": [...], "meta": {"page", "pageSize", "totalPages"}}``),
errors as ``{"errorCode", "message"}``.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, get
from litestar.exceptions import HTTPException, NotFoundException
from litestar.response import Response

from sandbox.firm import Firm
from sandbox.store import DocumentStore

PROJECT_STAGES = {"planned": "Planned", "active": "In Progress", "on_hold": "Paused", "closed": "Completed"}
BILLING_TYPES = {"time_and_materials": "T&M", "fixed_fee": "FIXED", "milestone": "MILESTONE", "retainer": "RETAINER"}
ASSIGNMENT_STATUSES = {"proposed": "Tentative", "confirmed": "Confirmed", "ended": "Closed"}


def seed(store: DocumentStore, firm: Firm) -> None:
    resource_ids: dict[str, int] = {}
    resources = []
    for index, worker in enumerate(firm.workers):
        resource_id = 17 + index * 3
        resource_ids[worker.number] = resource_id
        resources.append((str(resource_id), {
            "resourceId": resource_id, "employeeNumber": worker.number, "displayName": worker.name,
            "email": worker.email, "primaryRole": worker.role.replace("_", " ").title(),
            "practice": worker.business_unit, "isActive": worker.status == "active",
        }))
    store.put_many("resource", resources)
    project_ids: dict[str, int] = {}
    projects = []
    for index, project in enumerate(firm.projects):
        project_id = 501 + index
        project_ids[project.code] = project_id
        projects.append((str(project_id), {
            "projectId": project_id, "projectCode": project.code, "title": project.name,
            "stage": PROJECT_STAGES[project.status], "contractRef": project.contract, "accountRef": project.customer,
            "billingType": BILLING_TYPES[project.billing_model], "budgetHours": project.budget_hours,
            "managerEmployeeNumber": project.manager, "practice": project.business_unit,
            "entity": project.legal_entity, "startDate": project.start.isoformat(), "endDate": project.end.isoformat(),
        }))
    store.put_many("project", projects)
    store.put_many("assignment", [
        (str(9001 + index), {
            "assignmentId": 9001 + index, "assignmentNumber": a.number, "resourceId": resource_ids[a.worker],
            "projectId": project_ids[a.project], "roleName": a.role.replace("_", " ").title(),
            "hoursPerWeek": a.hours_per_week, "from": a.start.isoformat(), "to": a.end.isoformat(),
            "status": ASSIGNMENT_STATUSES[a.status],
        })
        for index, a in enumerate(firm.assignments)
    ])


def _page(store: DocumentStore, kind: str, page: int, page_size: int, where: dict[str, Any]) -> dict[str, Any]:
    if page < 1 or not 1 <= page_size <= 500:
        raise HTTPException(status_code=400, detail="page must be >= 1 and pageSize 1..500")
    rows = store.list(kind, where=where, limit=100_000)
    start = (page - 1) * page_size
    total_pages = max(1, -(-len(rows) // page_size))
    return {"data": [body for _, body in rows[start:start + page_size]],
            "meta": {"page": page, "pageSize": page_size, "totalPages": total_pages, "totalCount": len(rows)}}


def create_app(store: DocumentStore) -> Litestar:
    @get("/api/v3/resources")
    async def list_resources(page: int = 1, pageSize: int = 50, employeeNumber: str | None = None) -> dict[str, Any]:
        where = {"employeeNumber": employeeNumber} if employeeNumber else {}
        return await store.call(_page, store, "resource", page, pageSize, where)

    @get("/api/v3/projects")
    async def list_projects(page: int = 1, pageSize: int = 50, projectCode: str | None = None) -> dict[str, Any]:
        where = {"projectCode": projectCode} if projectCode else {}
        return await store.call(_page, store, "project", page, pageSize, where)

    @get("/api/v3/projects/{project_id:int}")
    async def get_project(project_id: int) -> dict[str, Any]:
        body = await store.call(store.get, "project", str(project_id))
        if body is None:
            raise NotFoundException(detail=f"project {project_id} does not exist")
        return body

    @get("/api/v3/assignments")
    async def list_assignments(page: int = 1, pageSize: int = 50, resourceId: int | None = None,
                               projectId: int | None = None, status: str | None = None) -> dict[str, Any]:
        where: dict[str, Any] = {}
        if resourceId is not None:
            where["resourceId"] = resourceId
        if projectId is not None:
            where["projectId"] = projectId
        if status is not None:
            where["status"] = status
        return await store.call(_page, store, "assignment", page, pageSize, where)

    return Litestar([list_resources, list_projects, get_project, list_assignments],
                    exception_handlers={HTTPException: vendor_error}, openapi_config=None)


def vendor_error(_request: Any, exc: HTTPException) -> Response[dict[str, Any]]:
    codes = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 409: "CONFLICT"}
    return Response({"errorCode": codes.get(exc.status_code, "ERROR"), "message": exc.detail},
                    status_code=exc.status_code)
