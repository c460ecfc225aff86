"""Staffing: a worker's assignments joined with the projects they are on, read from the PSA system API.

Two system calls whatever the page holds: the page of assignments, then every project on it in one batch read
(projects are reference data: served from the process tier's short cache when it has them)."""

from __future__ import annotations

from contracts.canonical import AssignmentStatus
from process_apis.staffing.models import ProjectSummary, StaffedAssignment, StaffedAssignmentPage
from process_apis.systems import Psa
from runtime.problems import ProblemError


async def worker_assignments(
    psa: Psa, worker_id: str, *, status: AssignmentStatus | None, cursor: str | None, limit: int
) -> StaffedAssignmentPage:
    page = await psa.assignment_page(worker_id=worker_id, status=status, cursor=cursor, limit=limit)
    by_id = await psa.projects_by_id(a.project_id for a in page.items)
    missing = sorted({a.project_id for a in page.items} - by_id.keys())
    if missing:
        raise ProblemError(f"the PSA lists assignments on project {missing[0]!r} but does not hold it", status=502,
                           slug="downstream-error", downstream="system/psa")
    return StaffedAssignmentPage(
        items=[
            StaffedAssignment(
                id=a.id,
                worker_id=a.worker_id,
                role=a.role,
                planned_hours_per_week=a.planned_hours_per_week,
                start_date=a.start_date,
                end_date=a.end_date,
                status=a.status,
                project=ProjectSummary(
                    id=project.id,
                    name=project.name,
                    status=project.status,
                    billing_model=project.billing_model,
                    customer_id=project.customer_id,
                ),
            )
            for a in page.items
            for project in (by_id[a.project_id],)
        ],
        next_cursor=page.next_cursor,
    )
