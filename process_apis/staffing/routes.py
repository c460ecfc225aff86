"""Staffing process API v1 routes (contracts/process/staffing/v1.yaml)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from contracts.canonical import AssignmentStatus
from process_apis.staffing import service
from process_apis.staffing.models import StaffedAssignmentPage
from runtime.app import require_scopes
from runtime.tokens import Principal


class StaffingV1(Controller):
    path = "/process/staffing/v1"

    @get("/workers/{worker_id:str}/assignments", operation_id="listWorkerAssignments")
    async def list_worker_assignments(
        self,
        state: State,
        principal: NamedDependency[Principal],
        worker_id: FromPath[str],
        status: FromQuery[AssignmentStatus | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> StaffedAssignmentPage:
        require_scopes(principal, "staffing:read")
        return await service.worker_assignments(
            state.services.systems.psa, worker_id, status=status, cursor=cursor, limit=limit
        )
