"""Staffing process API v1 routes (contracts/process/staffing/v1.yaml)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery

from contracts.canonical import AssignmentStatus
from process_apis.staffing import service
from process_apis.staffing.models import StaffedAssignmentPage
from runtime.params import Limit


class StaffingV1(Controller):
    path = "/process/staffing/v1"

    @get("/workers/{worker_id:str}/assignments", operation_id="listWorkerAssignments")
    async def list_worker_assignments(
        self,
        state: State,
        worker_id: FromPath[str],
        status: FromQuery[AssignmentStatus | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 50,
    ) -> StaffedAssignmentPage:
        return await service.worker_assignments(
            state.services.systems.psa, worker_id, status=status, cursor=cursor, limit=limit
        )
