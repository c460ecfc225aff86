"""Staffing: a worker's assignments joined with the projects they are on, read from the PSA system API."""

from __future__ import annotations

import asyncio

from contracts.canonical import Assignment, AssignmentStatus, Page, Project
from process_apis.staffing.models import ProjectSummary, StaffedAssignment, StaffedAssignmentPage
from runtime.downstream import Downstream, segment

PSA = "/system/psa/v1"


async def worker_assignments(
    gateway: Downstream, worker_id: str, *, status: AssignmentStatus | None, cursor: str | None, limit: int
) -> StaffedAssignmentPage:
    page = await gateway.get_json(
        f"{PSA}/assignments", Page[Assignment],
        params={"worker_id": worker_id, "status": status, "cursor": cursor, "limit": limit},
    )
    project_ids = sorted({a.project_id for a in page.items})
    projects = await asyncio.gather(*(gateway.get_json(f"{PSA}/projects/{segment(pid)}", Project)
                                      for pid in project_ids))
    by_id = {p.id: p for p in projects}
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
                    id=by_id[a.project_id].id,
                    name=by_id[a.project_id].name,
                    status=by_id[a.project_id].status,
                    billing_model=by_id[a.project_id].billing_model,
                    customer_id=by_id[a.project_id].customer_id,
                ),
            )
            for a in page.items
        ],
        next_cursor=page.next_cursor,
    )
