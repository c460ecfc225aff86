"""Finance-operations API v1 routes. The caller is a finance person: the token's subject."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter, RequestBody

from contracts.canonical import Period
from experience_apis.finance_ops.models import (
    AssignRequest,
    BulkRequest,
    BulkResult,
    DraftRequest,
    ExceptionKind,
    ExceptionState,
    InvoiceDraft,
    InvoiceDraftPage,
    MonthEndRequest,
    MonthEndSettlement,
    Provisioning,
    QueueItemDetail,
    QueuePage,
    Reconciliation,
    ReconciliationPage,
    ReconciliationRequest,
    ResolveRequest,
    RetryResult,
    TaxHeld,
)
from experience_apis.finance_ops.service import FinanceOps
from experience_apis.people import worker_of
from runtime.params import Limit
from runtime.tokens import Principal

FilterId = Annotated[str | None, QueryParameter(min_length=1, max_length=64)]
AgeDays = Annotated[int | None, QueryParameter(ge=0, le=3650)]


def finance_ops(state: State, principal: Principal) -> FinanceOps:
    return FinanceOps(state.downstreams["gateway"], worker_of(principal))


class FinanceOpsV1(Controller):
    path = "/experience/finance-ops/v1"

    @get("/exceptions", operation_id="listQueue")
    async def queue(
        self, state: State, principal: NamedDependency[Principal],
        item_state: Annotated[ExceptionState | None, QueryParameter(name="state")] = None,
        kind: FromQuery[ExceptionKind | None] = None,
        reason_code: Annotated[str | None, QueryParameter(max_length=64, pattern=r"^[A-Z_]+$")] = None,
        business_unit_id: FilterId = None, owner_id: FilterId = None, project_id: FilterId = None,
        source_id: FilterId = None, min_age_days: AgeDays = None, max_age_days: AgeDays = None,
        cursor: FromQuery[str | None] = None, limit: Limit = 50,
    ) -> QueuePage:
        return await finance_ops(state, principal).queue({
            "state": item_state, "kind": kind, "reason_code": reason_code, "business_unit_id": business_unit_id,
            "owner_id": owner_id, "project_id": project_id, "source_id": source_id, "min_age_days": min_age_days,
            "max_age_days": max_age_days, "cursor": cursor, "limit": limit})

    @get("/exceptions/{exception_id:str}", operation_id="getQueueItem")
    async def queue_item(self, state: State, principal: NamedDependency[Principal],
                         exception_id: FromPath[str]) -> QueueItemDetail:
        return await finance_ops(state, principal).queue_item(exception_id)

    @post("/exceptions/{exception_id:str}/assignments", operation_id="assignQueueItem", status_code=200)
    async def assign(self, state: State, principal: NamedDependency[Principal], exception_id: FromPath[str],
                     data: RequestBody[AssignRequest]) -> QueueItemDetail:
        return await finance_ops(state, principal).assign(exception_id, data.owner_id)

    @post("/exceptions/{exception_id:str}/resolutions", operation_id="resolveQueueItem", status_code=200)
    async def resolve(self, state: State, principal: NamedDependency[Principal], exception_id: FromPath[str],
                      data: RequestBody[ResolveRequest]) -> QueueItemDetail:
        return await finance_ops(state, principal).resolve(exception_id, data.resolution)

    @post("/exceptions/{exception_id:str}/retries", operation_id="retryQueueItem", status_code=200)
    async def retry(self, state: State, principal: NamedDependency[Principal],
                    exception_id: FromPath[str]) -> RetryResult:
        return await finance_ops(state, principal).retry(exception_id)

    @post("/exception-actions", operation_id="actOnQueueItems", status_code=200)
    async def bulk(self, state: State, principal: NamedDependency[Principal],
                   data: RequestBody[BulkRequest]) -> BulkResult:
        return await finance_ops(state, principal).bulk(data)

    @post("/invoice-drafts", operation_id="draftInvoice")
    async def draft(self, state: State, principal: NamedDependency[Principal],
                    data: RequestBody[DraftRequest]) -> Response[InvoiceDraft] | Response[TaxHeld]:
        outcome = await finance_ops(state, principal).draft_invoice(data.contract_id, data.period)
        if isinstance(outcome, TaxHeld):  # waits in the queue for its region's tax service
            return Response(outcome, status_code=202,
                            headers={"Location": f"{self.path}/exceptions/{outcome.exception_id}"})
        created, draft = outcome
        return Response(draft, status_code=201 if created else 200,
                        headers={"Location": f"{self.path}/invoices/{draft.id}"})

    @get("/invoices", operation_id="listInvoices")
    async def invoices(
        self, state: State, principal: NamedDependency[Principal], contract_id: FilterId = None,
        period: FromQuery[Period | None] = None,
        invoice_state: Annotated[str | None, QueryParameter(name="state", pattern="^(draft|posted)$")] = None,
        cursor: FromQuery[str | None] = None, limit: Limit = 50,
    ) -> InvoiceDraftPage:
        return await finance_ops(state, principal).invoices({
            "contract_id": contract_id, "period": period, "state": invoice_state, "cursor": cursor, "limit": limit})

    @get("/invoices/{invoice_id:str}", operation_id="getInvoice")
    async def invoice(self, state: State, principal: NamedDependency[Principal],
                      invoice_id: FromPath[str]) -> InvoiceDraft:
        return await finance_ops(state, principal).invoice(invoice_id)

    @post("/invoices/{invoice_id:str}/postings", operation_id="postInvoice", status_code=200)
    async def post_invoice(self, state: State, principal: NamedDependency[Principal],
                           invoice_id: FromPath[str]) -> InvoiceDraft:
        return await finance_ops(state, principal).post_invoice(invoice_id)

    @post("/reconciliations", operation_id="runReconciliation", status_code=201)
    async def reconcile(self, state: State, principal: NamedDependency[Principal],
                        data: RequestBody[ReconciliationRequest | None] = None) -> Reconciliation:
        return await finance_ops(state, principal).reconcile(data or ReconciliationRequest())

    @get("/reconciliations", operation_id="listReconciliations")
    async def reconciliations(self, state: State, principal: NamedDependency[Principal],
                              cursor: FromQuery[str | None] = None,
                              limit: Annotated[int, QueryParameter(ge=1, le=50)] = 20) -> ReconciliationPage:
        return await finance_ops(state, principal).reconciliations(cursor, limit)

    @get("/reconciliations/{reconciliation_id:str}", operation_id="getReconciliation")
    async def reconciliation(self, state: State, principal: NamedDependency[Principal],
                             reconciliation_id: FromPath[str]) -> Reconciliation:
        return await finance_ops(state, principal).reconciliation(reconciliation_id)

    @post("/month-end-settlements", operation_id="settleMonth", status_code=200)
    async def settle_month(self, state: State, principal: NamedDependency[Principal],
                           data: RequestBody[MonthEndRequest]) -> MonthEndSettlement:
        return await finance_ops(state, principal).settle_month(data.period)

    @get("/provisionings/{provisioning_id:str}", operation_id="getProvisioning")
    async def provisioning(self, state: State, principal: NamedDependency[Principal],
                           provisioning_id: FromPath[str]) -> Provisioning:
        return await finance_ops(state, principal).provisioning(provisioning_id)

    @get("/opportunities/{opportunity_id:str}/provisioning", operation_id="getOpportunityProvisioning")
    async def opportunity_provisioning(self, state: State, principal: NamedDependency[Principal],
                                       opportunity_id: FromPath[str]) -> Provisioning:
        return await finance_ops(state, principal).opportunity_provisioning(opportunity_id)
