"""Approvals inbox v1 routes. The caller is the project manager: the token's subject."""

from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, RequestBody

from experience_apis.approvals.models import (
    CorrectionDecided,
    CorrectionDecisionRequest,
    CorrectionRequestPage,
    Decision,
    DecisionRequest,
    SingleDecisionRequest,
    SubmittedEntryPage,
)
from experience_apis.approvals.service import ApprovalsInbox
from experience_apis.people import worker_of
from runtime.params import IdempotencyKey, Limit
from runtime.tokens import Principal


def inbox(state: State, principal: Principal) -> ApprovalsInbox:
    return ApprovalsInbox(state.downstreams["gateway"], worker_of(principal))


def _status(decision: Decision) -> int:
    return 200 if decision.state == "applied" else 202


class ApprovalsV1(Controller):
    path = "/experience/approvals/v1"

    @get("/submitted-entries", operation_id="listSubmittedEntries")
    async def submitted(self, state: State, principal: NamedDependency[Principal],
                        project_id: FromQuery[str | None] = None,
                        cursor: FromQuery[str | None] = None,
                        limit: Limit = 50) -> SubmittedEntryPage:
        return await inbox(state, principal).submitted(project_id=project_id, cursor=cursor,
                                                                        limit=limit)

    @post("/decisions", operation_id="decideSubmittedEntries")
    async def decide(self, state: State, principal: NamedDependency[Principal], data: RequestBody[DecisionRequest],
                     idempotency_key: IdempotencyKey = None) -> Response[Decision]:
        decision = await inbox(state, principal).decide(
            data.time_entry_ids, data.decision, data.reason, idempotency_key)
        return Response(decision, status_code=_status(decision))

    @get("/decisions/{approval_id:str}", operation_id="getDecision")
    async def decision(self, state: State, principal: NamedDependency[Principal],
                       approval_id: FromPath[str]) -> Decision:
        return await inbox(state, principal).decision(approval_id)

    @post("/submitted-entries/{time_entry_id:str}/decisions", operation_id="decideSubmittedEntry")
    async def decide_one(self, state: State, principal: NamedDependency[Principal], time_entry_id: FromPath[str],
                         data: RequestBody[SingleDecisionRequest],
                         idempotency_key: IdempotencyKey = None) -> Response[Decision]:
        decision = await inbox(state, principal).decide(
            [time_entry_id], data.decision, data.reason, idempotency_key)
        return Response(decision, status_code=_status(decision))

    @get("/correction-requests", operation_id="listCorrectionRequests")
    async def correction_requests(self, state: State, principal: NamedDependency[Principal],
                                  cursor: FromQuery[str | None] = None,
                                  limit: Limit = 50) -> CorrectionRequestPage:
        return await inbox(state, principal).correction_requests(cursor=cursor, limit=limit)

    @post("/correction-requests/{correction_id:str}/decisions", operation_id="decideCorrectionRequest")
    async def decide_correction(self, state: State, principal: NamedDependency[Principal], correction_id: FromPath[str],
                                data: RequestBody[CorrectionDecisionRequest]) -> Response[CorrectionDecided]:
        decided = await inbox(state, principal).decide_correction(
            correction_id, data.decision, data.reason)
        # 202: approved, and carried out by the process tier as soon as the PSA answers again.
        return Response(decided, status_code=202 if decided.state == "approved" else 200)
