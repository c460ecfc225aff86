"""Reconciliation process API v1 routes (contracts/process/reconciliation/v1.yaml)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter, RequestBody

from process_apis.reconciliation.models import Reconciliation, ReconciliationPage, ReconciliationRequest
from runtime.app import require_scopes
from runtime.tokens import Principal


class ReconciliationV1(Controller):
    path = "/process/reconciliation/v1"

    @post("/reconciliations", operation_id="runReconciliation")
    async def run(self, state: State, principal: NamedDependency[Principal],
                  data: RequestBody[ReconciliationRequest | None] = None) -> Response[Reconciliation]:
        require_scopes(principal, "reconciliation:write")
        report = await state.services.reconciliation.run(data or ReconciliationRequest())
        return Response(report, status_code=201, headers={"Location": f"{self.path}/reconciliations/{report.id}"})

    @get("/reconciliations", operation_id="listReconciliations")
    async def list_reports(self, state: State, principal: NamedDependency[Principal],
                           cursor: FromQuery[str | None] = None,
                           limit: Annotated[int, QueryParameter(ge=1, le=50)] = 10) -> ReconciliationPage:
        require_scopes(principal, "reconciliation:read")
        return await state.services.reconciliation.list(cursor=cursor, limit=limit)

    @get("/reconciliations/{reconciliation_id:str}", operation_id="getReconciliation")
    async def get_report(self, state: State, principal: NamedDependency[Principal],
                         reconciliation_id: FromPath[str]) -> Reconciliation:
        require_scopes(principal, "reconciliation:read")
        return await state.services.reconciliation.get(reconciliation_id)
