"""The ERP port: what the ERP system API needs from any ERP, in canonical terms. Adapters live beside it.

Adapters raise canonical problems: 404 ``unknown-id``, 422 with canonical field pointers (``period-closed``
when the accounting period of a posting is closed), 409 ``invalid-transition``. Writes that the API promises
as upserts report whether they created: ``(record, created)``.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

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
    Posting,
    ProjectDimension,
    RevenueSchedule,
)
from system_apis.erp.models import (
    ContractCreate,
    CreditNoteCreate,
    CustomerCreate,
    InvoiceCreate,
    PostingBatchItem,
    PostingCreate,
    PostingFilter,
    ProjectDimensionCreate,
    RevenueScheduleCreate,
)


class ErpConnector(Protocol):
    async def list_legal_entities(self, *, cursor: str | None, limit: int) -> Page[LegalEntity]: ...

    async def list_accounting_periods(self, *, legal_entity_id: str | None, period: str | None,
                                      cursor: str | None, limit: int) -> Page[AccountingPeriod]: ...

    async def list_customers(self, *, name: str | None, cursor: str | None, limit: int) -> Page[Customer]: ...

    async def get_customer(self, customer_id: str) -> Customer: ...

    async def upsert_customer(self, data: CustomerCreate, idempotency_key: str | None) -> tuple[Customer, bool]: ...

    async def list_contracts(self, *, customer_id: str | None, status: ContractStatus | None, cursor: str | None,
                             limit: int) -> Page[Contract]: ...

    async def get_contract(self, contract_id: str) -> Contract: ...

    async def upsert_contract(self, data: ContractCreate, idempotency_key: str | None) -> tuple[Contract, bool]: ...

    async def update_contract(self, contract_id: str, changes: dict[str, object]) -> Contract: ...

    async def list_project_dimensions(self, *, project_id: str | None, cursor: str | None,
                                      limit: int) -> Page[ProjectDimension]: ...

    async def upsert_project_dimension(self, data: ProjectDimensionCreate) -> tuple[ProjectDimension, bool]: ...

    async def create_posting(self, data: PostingCreate) -> tuple[Posting, bool]:
        """(posting, created): a source already posted answers its existing posting, never a second one."""
        ...

    async def create_postings(self, items: list[PostingCreate]) -> list[PostingBatchItem]: ...

    async def reverse_posting(self, posting_id: str, on: dt.date) -> tuple[Posting, bool]:
        """(reversal, created): the posting's negative, referencing it, dated ``on``; a posting is reversed at
        most once (asking again answers the first reversal). 422 ``period-closed`` when ``on`` is not open."""
        ...

    async def list_postings(self, filters: PostingFilter, *, cursor: str | None, limit: int) -> Page[Posting]: ...

    async def create_invoice(self, data: InvoiceCreate, idempotency_key: str | None) -> Invoice: ...

    async def credit_invoice(self, invoice_id: str, data: CreditNoteCreate, idempotency_key: str | None
                             ) -> CreditNote:
        """A posted credit note for lines of a posted invoice (409 when it is not posted; 422 when a source
        would be credited beyond what the invoice billed for it)."""
        ...

    async def list_credit_notes(self, *, invoice_id: str | None, cursor: str | None,
                                limit: int) -> Page[CreditNote]: ...

    async def post_invoice(self, invoice_id: str) -> Invoice: ...

    async def void_invoice(self, invoice_id: str) -> Invoice:
        """A draft invoice -> void (the service lets only drafts through)."""
        ...

    async def get_invoice(self, invoice_id: str) -> Invoice: ...

    async def list_invoices(self, *, contract_id: str | None, state: InvoiceState | None, period: str | None,
                            cursor: str | None, limit: int) -> Page[Invoice]: ...

    async def list_revenue_schedules(self, *, contract_id: str | None, period: str | None, cursor: str | None,
                                     limit: int) -> Page[RevenueSchedule]: ...

    async def create_revenue_schedule(self, schedule: RevenueScheduleCreate) -> tuple[RevenueSchedule, bool]:
        """Recognise a period; the same period again with the same amount is that line (created False), with
        another amount a 409."""
        ...

    async def aclose(self) -> None: ...
