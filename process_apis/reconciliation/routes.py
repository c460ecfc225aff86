"""Reconciliation process API v1 routes (contracts/process/reconciliation/v1.yaml)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, QueryParameter, RequestBody

from process_apis.reconciliation.models import Reconciliation, ReconciliationPage, ReconciliationRequest


class ReconciliationV1(Controller):
    path = "/process/reconciliation/v1"

    @post("/reconciliations", operation_id="runReconciliation")
    async def run(self, state: State,
                  data: RequestBody[ReconciliationRequest | None] = None) -> Response[Reconciliation]:
        report = await state.services.reconciliation.run(data or ReconciliationRequest())
        return Response(report, status_code=201, headers={"Location": f"{self.path}/reconciliations/{report.id}"})

    @get("/reconciliations", operation_id="listReconciliations")
    async def list_reports(self, state: State, cursor: FromQuery[str | None] = None,
                           limit: Annotated[int, QueryParameter(ge=1, le=50)] = 10) -> ReconciliationPage:
        return await state.services.reconciliation.list(cursor=cursor, limit=limit)

    @get("/reconciliations/{reconciliation_id:str}", operation_id="getReconciliation")
    async def get_report(self, state: State, reconciliation_id: FromPath[str]) -> Reconciliation:
        return await state.services.reconciliation.get(reconciliation_id)
