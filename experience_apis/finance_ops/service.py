"""Finance operations: the process APIs a finance person works with, acting as the signed-in person.

The person is the token's subject, passed to the process tier as the actor of every exception-queue action (the
way the approvals inbox passes the approver), so the exception history names who assigned, resolved or retried
an item. No request body can name another actor: the bodies of this API have no such field. The process calls
themselves carry this tier's own client identity and the request's correlation id, so the gateway's audit of
the person's call and of the process calls it caused share one correlation id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, TypeVar

import msgspec

from experience_apis.finance_ops.models import (
    BulkItem,
    BulkRequest,
    BulkResult,
    InvoiceDraft,
    InvoiceDraftPage,
    MonthEndSettlement,
    Provisioning,
    QueueItemDetail,
    QueuePage,
    Reconciliation,
    ReconciliationPage,
    ReconciliationRequest,
    RetryResult,
    SettlementSummary,
    TaxHeld,
)
from runtime.downstream import Downstream, DownstreamProblem, Reply, segment
from runtime.problems import BadRequest, FieldError

EXCEPTIONS = "/process/exceptions/v1"
INVOICING = "/process/invoicing/v1"
RECONCILIATION = "/process/reconciliation/v1"
BILLING = "/process/billing/v1"
PROVISIONING = "/process/provisioning/v1"
# Bulk actions run a few at a time: the process tier serves everyone else meanwhile.
BULK_CONCURRENCY = 4

T = TypeVar("T")


class _SettlementRun(msgspec.Struct, kw_only=True):
    settled_at: dt.datetime
    summary: SettlementSummary


def _decode(response: Reply, type_: type[T]) -> T:
    return msgspec.json.decode(response.content, type=type_)


class FinanceOps:
    def __init__(self, gateway: Downstream, person_id: str) -> None:
        self.gateway = gateway
        self.person_id = person_id

    # The exception queue

    async def queue(self, filters: dict[str, Any]) -> QueuePage:
        return await self.gateway.get_json(f"{EXCEPTIONS}/exceptions", QueuePage, params=filters)

    async def queue_item(self, exception_id: str) -> QueueItemDetail:
        return await self.gateway.get_json(f"{EXCEPTIONS}/exceptions/{segment(exception_id)}", QueueItemDetail)

    async def assign(self, exception_id: str, owner_id: str | None) -> QueueItemDetail:
        body = {"owner_id": owner_id or self.person_id, "actor_id": self.person_id}
        return _decode(await self.gateway.request(
            "POST", f"{EXCEPTIONS}/exceptions/{segment(exception_id)}/assignments", json=body), QueueItemDetail)

    async def resolve(self, exception_id: str, resolution: str) -> QueueItemDetail:
        body = {"actor_id": self.person_id, "resolution": resolution}
        return _decode(await self.gateway.request(
            "POST", f"{EXCEPTIONS}/exceptions/{segment(exception_id)}/resolutions", json=body), QueueItemDetail)

    async def retry(self, exception_id: str) -> RetryResult:
        return _decode(await self.gateway.request(
            "POST", f"{EXCEPTIONS}/exceptions/{segment(exception_id)}/retries", json={"actor_id": self.person_id}),
            RetryResult)

    async def bulk(self, request: BulkRequest) -> BulkResult:
        """One action on many items, each answering for itself; an id named twice is acted on once."""
        if request.action == "resolve" and request.resolution is None:
            raise BadRequest("resolving needs a resolution", slug="validation-error", errors=[
                FieldError(pointer="/resolution", detail="required when action is resolve", location="body")])
        ids = list(dict.fromkeys(request.exception_ids))
        gate = asyncio.Semaphore(BULK_CONCURRENCY)

        async def one(exception_id: str) -> BulkItem:
            async with gate:
                try:
                    if request.action == "assign":
                        item = await self.assign(exception_id, request.owner_id)
                        return BulkItem(exception_id=exception_id, status=200, result="done", state=item.state)
                    if request.action == "resolve":
                        item = await self.resolve(exception_id, request.resolution or "")
                        return BulkItem(exception_id=exception_id, status=200, result="done", state=item.state)
                    retried = await self.retry(exception_id)
                    return BulkItem(exception_id=exception_id, status=200, result="done",
                                    state=retried.exception.state, outcome=retried.outcome, detail=retried.detail)
                except DownstreamProblem as exc:
                    return BulkItem(exception_id=exception_id, status=exc.status, detail=exc.detail,
                                    result="refused" if exc.status < 500 else "failed")

        items = await asyncio.gather(*(one(i) for i in ids))
        if all(i.result == "failed" for i in items):
            # Nothing could be tried (the process tier is down or failing): the whole call failed, say so once.
            first = items[0]
            raise DownstreamProblem(f"no item could be processed: {first.detail}", status=first.status,
                                    slug="downstream-unavailable" if first.status == 503 else "downstream-error",
                                    downstream="gateway")
        return BulkResult(action=request.action, items=list(items),
                          done=sum(1 for i in items if i.result == "done"),
                          refused=sum(1 for i in items if i.result == "refused"),
                          failed=sum(1 for i in items if i.result == "failed"))

    # Invoicing

    async def draft_invoice(self, contract_id: str, period: str) -> tuple[bool, InvoiceDraft] | TaxHeld:
        response = await self.gateway.request("POST", f"{INVOICING}/invoice-drafts",
                                              json={"contract_id": contract_id, "period": period})
        if response.status_code == 202:  # held until the region's tax service answers
            return _decode(response, TaxHeld)
        return response.status_code == 201, _decode(response, InvoiceDraft)

    async def invoices(self, params: dict[str, Any]) -> InvoiceDraftPage:
        return await self.gateway.get_json(f"{INVOICING}/invoices", InvoiceDraftPage, params=params)

    async def invoice(self, invoice_id: str) -> InvoiceDraft:
        return await self.gateway.get_json(f"{INVOICING}/invoices/{segment(invoice_id)}", InvoiceDraft)

    async def post_invoice(self, invoice_id: str) -> InvoiceDraft:
        return _decode(await self.gateway.request("POST", f"{INVOICING}/invoices/{segment(invoice_id)}/postings"),
                       InvoiceDraft)

    # Reconciliation

    async def reconcile(self, request: ReconciliationRequest) -> Reconciliation:
        if request.from_date and request.to_date and request.from_date > request.to_date:
            raise BadRequest("from_date is after to_date", slug="validation-error", errors=[
                FieldError(pointer="/from_date", detail="must not be after to_date", location="body")])
        body = {k: v for k, v in msgspec.structs.asdict(request).items() if v is not None}
        return _decode(await self.gateway.request("POST", f"{RECONCILIATION}/reconciliations", json=body),
                       Reconciliation)

    async def reconciliations(self, cursor: str | None, limit: int) -> ReconciliationPage:
        return await self.gateway.get_json(f"{RECONCILIATION}/reconciliations", ReconciliationPage,
                                           params={"cursor": cursor, "limit": limit})

    async def reconciliation(self, reconciliation_id: str) -> Reconciliation:
        return await self.gateway.get_json(f"{RECONCILIATION}/reconciliations/{segment(reconciliation_id)}",
                                           Reconciliation)

    # Month end

    async def settle_month(self, period: str) -> MonthEndSettlement:
        """Settle every approved entry of the month: the billing process API queues each for posting once, holds
        it with its reasons, or counts it already posted; running it again posts nothing twice."""
        run = _decode(await self.gateway.request("POST", f"{BILLING}/settlements", json={"period": period}),
                      _SettlementRun)
        return MonthEndSettlement(period=period, run_by=self.person_id, settled_at=run.settled_at,
                                  summary=run.summary)

    # Provisioning

    async def provisioning(self, provisioning_id: str) -> Provisioning:
        return await self.gateway.get_json(f"{PROVISIONING}/provisionings/{segment(provisioning_id)}", Provisioning)

    async def opportunity_provisioning(self, opportunity_id: str) -> Provisioning:
        return await self.gateway.get_json(
            f"{PROVISIONING}/opportunities/{segment(opportunity_id)}/provisioning", Provisioning)


