"""HR system API v1 routes (read-only). Contract: contracts/system/hr/v1.yaml."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from contracts.canonical import BusinessUnit, CostCenter, Page, Role, Worker, WorkerStatus
from runtime.app import require_scopes
from runtime.tokens import Principal
from system_apis.hr.connectors import HrConnector

Limit = Annotated[int, QueryParameter(ge=1, le=200)]


def connector(state: State) -> HrConnector:
    return state.hr


class HrV1(Controller):
    path = "/system/hr/v1"

    @get("/workers", operation_id="listWorkers")
    async def list_workers(self, state: State, principal: NamedDependency[Principal],
                           business_unit_id: FromQuery[str | None] = None,
                           status: FromQuery[WorkerStatus | None] = None, role: FromQuery[str | None] = None,
                           cursor: FromQuery[str | None] = None,
                           limit: Limit = 50) -> Page[Worker]:
        require_scopes(principal, "hr:read")
        return await connector(state).list_workers(business_unit_id=business_unit_id, status=status, role=role,
                                                   cursor=cursor, limit=limit)

    @get("/workers/{worker_id:str}", operation_id="getWorker")
    async def get_worker(self, state: State, principal: NamedDependency[Principal], worker_id: FromPath[str]) -> Worker:
        require_scopes(principal, "hr:read")
        return await connector(state).get_worker(worker_id)

    @get("/roles", operation_id="listRoles")
    async def list_roles(self, state: State, principal: NamedDependency[Principal],
                         cursor: FromQuery[str | None] = None,
                         limit: Limit = 50) -> Page[Role]:
        require_scopes(principal, "hr:read")
        return await connector(state).list_roles(cursor=cursor, limit=limit)

    @get("/cost-centers", operation_id="listCostCenters")
    async def list_cost_centers(self, state: State, principal: NamedDependency[Principal],
                                cursor: FromQuery[str | None] = None,
                                limit: Limit = 50) -> Page[CostCenter]:
        require_scopes(principal, "hr:read")
        return await connector(state).list_cost_centers(cursor=cursor, limit=limit)

    @get("/business-units", operation_id="listBusinessUnits")
    async def list_business_units(self, state: State, principal: NamedDependency[Principal],
                                  cursor: FromQuery[str | None] = None,
                                  limit: Limit = 50) -> Page[BusinessUnit]:
        require_scopes(principal, "hr:read")
        return await connector(state).list_business_units(cursor=cursor, limit=limit)
