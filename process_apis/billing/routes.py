"""Billing process API v1 routes (contracts/process/billing/v1.yaml)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import FromQuery, QueryParameter, RequestBody

from process_apis.billing.models import (
    Evaluation,
    EvaluationRequest,
    PostingPage,
    PostingState,
    SettlementRequest,
    SettlementRun,
)
from runtime.params import Limit


class BillingV1(Controller):
    path = "/process/billing/v1"

    @post("/eligibility-evaluations", operation_id="evaluateEligibility", status_code=200)
    async def evaluate(self, state: State, data: RequestBody[EvaluationRequest]) -> Evaluation:
        return await state.services.billing.evaluate(data)

    @post("/settlements", operation_id="settleApprovedTime", status_code=200)
    async def settle(self, state: State, data: RequestBody[SettlementRequest]) -> SettlementRun:
        return await state.services.billing.settle_selection(data)

    @get("/postings", operation_id="listPostings")
    async def postings(
        self, state: State, posting_state: Annotated[
            PostingState | None, QueryParameter(name="state")] = None,
        time_entry_id: FromQuery[str | None] = None, contract_id: FromQuery[str | None] = None,
        project_id: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None, limit: Limit = 50,
    ) -> PostingPage:
        return await state.services.billing.postings(state=posting_state, time_entry_id=time_entry_id,
                                                     contract_id=contract_id, project_id=project_id,
                                                     cursor=cursor, limit=limit)
