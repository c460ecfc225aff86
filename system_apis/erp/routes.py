"""ERP system API v1 routes: thin; the service decides, the connector does the vendor work.

Contract: contracts/system/erp/v1.yaml.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Controller, Response, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter, RequestBody

from contracts.canonical import (
    AccountingPeriod,
    Contract,
    ContractStatus,
    CreditNote,
    Customer,
    Invoice,
    InvoiceState,
    LegalEntity,
    Page,
    Period,
    Posting,
    ProjectDimension,
    RevenueSchedule,
)
from runtime.idempotency import respond
from runtime.params import IdempotencyKey, Limit
from runtime.tokens import Principal
from system_apis.checks import Checked
from system_apis.erp.connectors import ErpConnector
from system_apis.erp.models import (
    ContractCreate,
    ContractPatch,
    CreditNoteCreate,
    CustomerCreate,
    InvoiceCreate,
    PostingBatch,
    PostingBatchResult,
    PostingCreate,
    PostingFilter,
    PostingReversal,
    ProjectDimensionCreate,
    RevenueScheduleCreate,
)
from system_apis.erp.service import ErpService


def connector(state: State) -> ErpConnector:
    return state.erp


async def write(state: State, principal: Principal, operation: str, key: str | None, path: dict[str, str],
                body: Any, action: Any) -> Response[bytes]:
    if isinstance(body, Checked):
        body.check()
    return await respond(state.idempotency, client_id=principal.client_id, operation=operation, key=key,
                         path_params=path, body=body, action=action)


class ErpV1(Controller):
    path = "/system/erp/v1"

    @get("/legal-entities", operation_id="listLegalEntities")
    async def list_legal_entities(self, state: State, cursor: FromQuery[str | None] = None,
                                  limit: Limit = 50) -> Page[LegalEntity]:
        return await connector(state).list_legal_entities(cursor=cursor, limit=limit)

    @get("/accounting-periods", operation_id="listAccountingPeriods")
    async def list_accounting_periods(self, state: State, legal_entity_id: FromQuery[str | None] = None,
                                      period: FromQuery[Period | None] = None, cursor: FromQuery[str | None] = None,
                                      limit: Limit = 50) -> Page[AccountingPeriod]:
        return await connector(state).list_accounting_periods(legal_entity_id=legal_entity_id, period=period,
                                                              cursor=cursor, limit=limit)

    # customers

    @get("/customers", operation_id="listCustomers")
    async def list_customers(self, state: State, name: FromQuery[str | None] = None,
                             cursor: FromQuery[str | None] = None, limit: Limit = 50) -> Page[Customer]:
        return await connector(state).list_customers(name=name, cursor=cursor, limit=limit)

    @get("/customers/{customer_id:str}", operation_id="getCustomer")
    async def get_customer(self, state: State, customer_id: FromPath[str]) -> Customer:
        return await connector(state).get_customer(customer_id)

    @post("/customers", operation_id="upsertCustomer")
    async def upsert_customer(self, state: State, principal: NamedDependency[Principal],
                              data: RequestBody[CustomerCreate],
                              idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, Customer]:
            customer, created = await connector(state).upsert_customer(data, idempotency_key)
            return (201 if created else 200), customer
        return await write(state, principal, "upsertCustomer", idempotency_key, {}, data, action)

    # contracts

    @get("/contracts", operation_id="listContracts")
    async def list_contracts(self, state: State, customer_id: FromQuery[str | None] = None,
                             status: FromQuery[ContractStatus | None] = None, cursor: FromQuery[str | None] = None,
                             limit: Limit = 50) -> Page[Contract]:
        return await connector(state).list_contracts(customer_id=customer_id, status=status, cursor=cursor,
                                                     limit=limit)

    @get("/contracts/{contract_id:str}", operation_id="getContract")
    async def get_contract(self, state: State, contract_id: FromPath[str]) -> Contract:
        return await connector(state).get_contract(contract_id)

    @post("/contracts", operation_id="upsertContract")
    async def upsert_contract(self, state: State, principal: NamedDependency[Principal],
                              data: RequestBody[ContractCreate],
                              idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, Contract]:
            contract, created = await ErpService(connector(state)).upsert_contract(data, idempotency_key)
            return (201 if created else 200), contract
        return await write(state, principal, "upsertContract", idempotency_key, {}, data, action)

    @patch("/contracts/{contract_id:str}", operation_id="updateContract")
    async def update_contract(self, state: State, principal: NamedDependency[Principal], contract_id: FromPath[str],
                              data: RequestBody[ContractPatch],
                              idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, Contract]:
            return 200, await ErpService(connector(state)).update_contract(contract_id, data)
        return await write(state, principal, "updateContract", idempotency_key, {"contract_id": contract_id}, data,
                           action)

    # project dimensions

    @get("/project-dimensions", operation_id="listProjectDimensions")
    async def list_project_dimensions(self, state: State, project_id: FromQuery[str | None] = None,
                                      cursor: FromQuery[str | None] = None,
                                      limit: Limit = 50) -> Page[ProjectDimension]:
        return await connector(state).list_project_dimensions(project_id=project_id, cursor=cursor, limit=limit)

    @post("/project-dimensions", operation_id="upsertProjectDimension")
    async def upsert_project_dimension(self, state: State, principal: NamedDependency[Principal],
                                       data: RequestBody[ProjectDimensionCreate],
                                       idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, ProjectDimension]:
            dimension, created = await connector(state).upsert_project_dimension(data)
            return (201 if created else 200), dimension
        return await write(state, principal, "upsertProjectDimension", idempotency_key, {}, data, action)

    # postings

    @post("/postings", operation_id="createPosting")
    async def create_posting(self, state: State, principal: NamedDependency[Principal],
                             data: RequestBody[PostingCreate],
                             idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, Posting]:
            posting, created = await connector(state).create_posting(data)
            return (201 if created else 200), posting
        return await write(state, principal, "createPosting", idempotency_key, {}, data, action)

    @post("/postings/{posting_id:str}/reversals", operation_id="reversePosting")
    async def reverse_posting(self, state: State, principal: NamedDependency[Principal], posting_id: FromPath[str],
                              data: RequestBody[PostingReversal],
                              idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, Posting]:
            reversal, created = await connector(state).reverse_posting(posting_id, data.on)
            return (201 if created else 200), reversal
        return await write(state, principal, "reversePosting", idempotency_key, {"posting_id": posting_id}, data,
                           action)

    @post("/postings/batch", operation_id="createPostingBatch")
    async def create_posting_batch(self, state: State, principal: NamedDependency[Principal],
                                   data: RequestBody[PostingBatch],
                                   idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, PostingBatchResult]:
            return 200, PostingBatchResult(items=await connector(state).create_postings(data.items))
        return await write(state, principal, "createPostingBatch", idempotency_key, {}, data, action)

    @get("/postings", operation_id="listPostings")
    async def list_postings(self, state: State, project_id: FromQuery[str | None] = None,
                            contract_id: FromQuery[str | None] = None, source_id: FromQuery[str | None] = None,
                            from_date: FromQuery[dt.date | None] = None, to_date: FromQuery[dt.date | None] = None,
                            cursor: FromQuery[str | None] = None, limit: Limit = 50) -> Page[Posting]:
        filters = PostingFilter(project_id=project_id, contract_id=contract_id, source_id=source_id,
                                from_date=from_date, to_date=to_date)
        return await connector(state).list_postings(filters, cursor=cursor, limit=limit)

    # invoices and revenue

    @post("/invoices", operation_id="createInvoice")
    async def create_invoice(self, state: State, principal: NamedDependency[Principal],
                             data: RequestBody[InvoiceCreate],
                             idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, Invoice]:
            return 201, await connector(state).create_invoice(data, idempotency_key)
        return await write(state, principal, "createInvoice", idempotency_key, {}, data, action)

    @post("/invoices/{invoice_id:str}/post", operation_id="postInvoice")
    async def post_invoice(self, state: State, principal: NamedDependency[Principal], invoice_id: FromPath[str],
                           idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, Invoice]:
            return 200, await connector(state).post_invoice(invoice_id)
        return await write(state, principal, "postInvoice", idempotency_key, {"invoice_id": invoice_id}, None,
                           action)

    @post("/invoices/{invoice_id:str}/credit-notes", operation_id="creditInvoice")
    async def credit_invoice(self, state: State, principal: NamedDependency[Principal], invoice_id: FromPath[str],
                             data: RequestBody[CreditNoteCreate],
                             idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, CreditNote]:
            return 201, await connector(state).credit_invoice(invoice_id, data, idempotency_key)
        return await write(state, principal, "creditInvoice", idempotency_key, {"invoice_id": invoice_id}, data,
                           action)

    @get("/credit-notes", operation_id="listCreditNotes")
    async def list_credit_notes(self, state: State, invoice_id: FromQuery[str | None] = None,
                                cursor: FromQuery[str | None] = None, limit: Limit = 50) -> Page[CreditNote]:
        return await connector(state).list_credit_notes(invoice_id=invoice_id, cursor=cursor, limit=limit)

    @post("/invoices/{invoice_id:str}/void", operation_id="voidInvoice")
    async def void_invoice(self, state: State, principal: NamedDependency[Principal], invoice_id: FromPath[str],
                           idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, Invoice]:
            return 200, await ErpService(connector(state)).void_invoice(invoice_id)
        return await write(state, principal, "voidInvoice", idempotency_key, {"invoice_id": invoice_id}, None,
                           action)

    @get("/invoices/{invoice_id:str}", operation_id="getInvoice")
    async def get_invoice(self, state: State, invoice_id: FromPath[str]) -> Invoice:
        return await connector(state).get_invoice(invoice_id)

    @get("/invoices", operation_id="listInvoices")
    async def list_invoices(self, state: State, contract_id: FromQuery[str | None] = None,
                            state_: Annotated[InvoiceState | None, QueryParameter(name="state")] = None,
                            period: FromQuery[Period | None] = None, cursor: FromQuery[str | None] = None,
                            limit: Limit = 50) -> Page[Invoice]:
        return await connector(state).list_invoices(contract_id=contract_id, state=state_, period=period,
                                                    cursor=cursor, limit=limit)

    @post("/revenue-schedules", operation_id="createRevenueSchedule")
    async def create_revenue_schedule(self, state: State, principal: NamedDependency[Principal],
                                      data: RequestBody[RevenueScheduleCreate],
                                      idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        async def action() -> tuple[int, RevenueSchedule]:
            schedule, created = await connector(state).create_revenue_schedule(data)
            return (201 if created else 200), schedule
        return await write(state, principal, "createRevenueSchedule", idempotency_key, {}, data, action)

    @get("/revenue-schedules", operation_id="listRevenueSchedules")
    async def list_revenue_schedules(self, state: State, contract_id: FromQuery[str | None] = None,
                                     period: FromQuery[Period | None] = None, cursor: FromQuery[str | None] = None,
                                     limit: Limit = 50) -> Page[RevenueSchedule]:
        return await connector(state).list_revenue_schedules(contract_id=contract_id, period=period, cursor=cursor,
                                                             limit=limit)
