"""Staffing process API v1 routes (contracts/process/staffing/v1.yaml)."""

from __future__ import annotations

import datetime as dt

from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery

from contracts.canonical import AssignmentStatus
from process_apis.staffing import service
from process_apis.staffing.availability import worker_availability
from process_apis.staffing.models import StaffedAssignmentPage, WorkerAvailability
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

    @get("/workers/{worker_id:str}/availability", operation_id="getWorkerAvailability")
    async def get_worker_availability(
        self,
        state: State,
        worker_id: FromPath[str],
        from_date: FromQuery[dt.date],
        to_date: FromQuery[dt.date],
    ) -> WorkerAvailability:
        return await worker_availability(state.services.systems, worker_id, from_date, to_date)
