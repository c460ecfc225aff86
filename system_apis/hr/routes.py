"""HR system API v1 routes (read-only). Contract: contracts/system/hr/v1.yaml."""

from __future__ import annotations

from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery

from contracts.canonical import BusinessUnit, CostCenter, Page, Role, Worker, WorkerStatus
from runtime.params import Limit
from system_apis.hr.connectors import HrConnector


def connector(state: State) -> HrConnector:
    return state.hr


class HrV1(Controller):
    path = "/system/hr/v1"

    @get("/workers", operation_id="listWorkers")
    async def list_workers(self, state: State, business_unit_id: FromQuery[str | None] = None,
                           status: FromQuery[WorkerStatus | None] = None, role: FromQuery[str | None] = None,
                           cursor: FromQuery[str | None] = None,
                           limit: Limit = 50) -> Page[Worker]:
        return await connector(state).list_workers(business_unit_id=business_unit_id, status=status, role=role,
                                                   cursor=cursor, limit=limit)

    @get("/workers/{worker_id:str}", operation_id="getWorker")
    async def get_worker(self, state: State, worker_id: FromPath[str]) -> Worker:
        return await connector(state).get_worker(worker_id)

    @get("/roles", operation_id="listRoles")
    async def list_roles(self, state: State, cursor: FromQuery[str | None] = None,
                         limit: Limit = 50) -> Page[Role]:
        return await connector(state).list_roles(cursor=cursor, limit=limit)

    @get("/cost-centers", operation_id="listCostCenters")
    async def list_cost_centers(self, state: State, cursor: FromQuery[str | None] = None,
                                limit: Limit = 50) -> Page[CostCenter]:
        return await connector(state).list_cost_centers(cursor=cursor, limit=limit)

    @get("/business-units", operation_id="listBusinessUnits")
    async def list_business_units(self, state: State, cursor: FromQuery[str | None] = None,
                                  limit: Limit = 50) -> Page[BusinessUnit]:
        return await connector(state).list_business_units(cursor=cursor, limit=limit)
