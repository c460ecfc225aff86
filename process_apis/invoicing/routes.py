"""Invoicing process API v1 routes (contracts/process/invoicing/v1.yaml)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, PathParameter, QueryParameter, RequestBody

from contracts.canonical import Period
from process_apis.invoicing.models import DraftRequest, InvoiceDraft, InvoiceDraftPage, TaxHeld, VoidedInvoice
from runtime.params import Limit

InvoiceId = Annotated[str, PathParameter(min_length=1, max_length=64)]


class InvoicingV1(Controller):
    path = "/process/invoicing/v1"

    @post("/invoice-drafts", operation_id="draftInvoice")
    async def draft(self, state: State, data: RequestBody[DraftRequest]) -> Response[InvoiceDraft] | Response[TaxHeld]:
        outcome = await state.services.invoicing.request_draft(data.contract_id, data.period)
        if isinstance(outcome, TaxHeld):  # its region's tax service is down: drafted by itself once it answers
            return Response(outcome, status_code=202, headers={
                "Location": f"/process/exceptions/v1/exceptions/{outcome.exception_id}"})
        created, draft = outcome
        return Response(draft, status_code=201 if created else 200,
                        headers={"Location": f"{self.path}/invoices/{draft.id}"})

    @get("/invoices", operation_id="listInvoices")
    async def list_invoices(
        self, state: State, contract_id: FromQuery[str | None] = None,
        period: FromQuery[Period | None] = None,
        invoice_state: Annotated[str | None, QueryParameter(name="state", pattern="^(draft|posted)$")] = None,
        cursor: FromQuery[str | None] = None, limit: Limit = 50,
    ) -> InvoiceDraftPage:
        return await state.services.invoicing.list(contract_id=contract_id, period=period, state=invoice_state,
                                                   cursor=cursor, limit=limit)

    @get("/invoices/{invoice_id:str}", operation_id="getInvoice")
    async def get_invoice(self, state: State, invoice_id: FromPath[str]) -> InvoiceDraft:
        return await state.services.invoicing.get(invoice_id)

    @post("/invoices/{invoice_id:str}/postings", operation_id="postInvoice", status_code=200)
    async def post_invoice(self, state: State, invoice_id: FromPath[str]) -> InvoiceDraft:
        return await state.services.invoicing.post(invoice_id)

    @get("/invoices/{invoice_id:str}/e-invoice", operation_id="getEInvoiceDocument")
    async def get_e_invoice(self, state: State, invoice_id: InvoiceId) -> Response[bytes]:
        content, media_type, filename = await state.services.invoicing.einvoicing.document(invoice_id)
        return Response(content, media_type=media_type,
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    @post("/invoices/{invoice_id:str}/voidings", operation_id="voidInvoice", status_code=200)
    async def void_invoice(self, state: State, invoice_id: FromPath[str]) -> VoidedInvoice:
        return await state.services.invoicing.void(invoice_id)
