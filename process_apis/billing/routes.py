"""Billing process API v1 routes (contracts/process/billing/v1.yaml)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter, RequestBody

from process_apis.billing.models import (
    Evaluation,
    EvaluationRequest,
    PostingPage,
    PostingState,
    SettlementRequest,
    SettlementRun,
)
from runtime.app import require_scopes
from runtime.tokens import Principal


class BillingV1(Controller):
    path = "/process/billing/v1"

    @post("/eligibility-evaluations", operation_id="evaluateEligibility", status_code=200)
    async def evaluate(self, state: State, principal: NamedDependency[Principal],
                       data: RequestBody[EvaluationRequest]) -> Evaluation:
        require_scopes(principal, "billing:read")
        return await state.services.billing.evaluate(data)

    @post("/settlements", operation_id="settleApprovedTime", status_code=200)
    async def settle(self, state: State, principal: NamedDependency[Principal],
                     data: RequestBody[SettlementRequest]) -> SettlementRun:
        require_scopes(principal, "billing:write")
        return await state.services.billing.settle_selection(data)

    @get("/postings", operation_id="listPostings")
    async def postings(
        self, state: State, principal: NamedDependency[Principal], posting_state: Annotated[
            PostingState | None, QueryParameter(name="state")] = None,
        time_entry_id: FromQuery[str | None] = None, contract_id: FromQuery[str | None] = None,
        project_id: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None, limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> PostingPage:
        require_scopes(principal, "billing:read")
        return await state.services.billing.postings(state=posting_state, time_entry_id=time_entry_id,
                                                     contract_id=contract_id, project_id=project_id,
                                                     cursor=cursor, limit=limit)
