"""The ERP connectors' vendor-independent flows, written once (docs/ARCHITECTURE.md, "one place for each rule").

A vendor connector (NetSuite, Dynamics 365, S/4HANA) speaks its own dialect: how a page is read and resumed
(``_page``), how the first match is read (``_first``), how a record is created (``_create``), its filter language
(``eq``, ``is_null``, dates, a name search), and the names of its entity sets and properties (``SETS``, ``FIELDS``)
and of its refusals (``DUPLICATE``, ``WRONG_STATE``, ``IS_REVERSAL``). What it does with them is the same for
every vendor and lives here: the canonical mapping steps (``connectors/sandbox.py``'s engine fields to and from
canonical terms), the upserts that answer the record already there when the tenant refuses a duplicate of its
unique key (exactly once without idempotency keys), the posting, reversal, invoice, credit note and revenue flows,
empty pages for ids that are not canonical, and the mapping of a vendor's refusal to a canonical problem (404
``unknown-id``, 409 ``invalid-transition``, 422 ``period-closed`` with canonical field pointers).

A vendor whose records need more than one call to be whole (NetSuite reads sublists from the record service) says
so in the hooks ``_contract_of``, ``_contracts``, ``_invoice_of``, ``_invoices``, ``_credit_notes`` and friends;
their defaults are the one-call reading of the OData vendors.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import msgspec

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
from runtime.problems import Conflict, NotFound, ProblemError, Unprocessable
from system_apis.erp.connectors.sandbox import (
    CONTRACT_FIELDS,
    CONTRACT_STATUS,
    CONTRACT_STATUS_VENDOR,
    CUSTOMER_FIELDS,
    DIMENSION_FIELDS,
    INVOICE_STATE,
    INVOICE_STATE_VENDOR,
    POSTING_FIELDS,
    REVENUE_FIELDS,
    REVENUE_METHOD_VENDOR,
    SOURCE_KINDS,
    ErpKeys,
    contract_from_vendor,
    contract_terms_to_vendor,
    credit_note_from_vendor,
    customer_from_vendor,
    customer_to_vendor,
    dimension_from_vendor,
    dimension_to_vendor,
    invoice_from_vendor,
    invoice_lines_to_vendor,
    legal_entity_from_vendor,
    line_field_map,
    period_from_vendor,
    period_name,
    posting_from_vendor,
    posting_to_vendor,
    revenue_from_vendor,
    tax_lines_to_vendor,
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
from system_apis.ids import Kind, is_canonical, reference, to_business_key, unknown_reference
from system_apis.money import to_minor
from system_apis.vendor_auth import VendorCredentials, VendorToken
from system_apis.vendor_calls import VendorDownstream, VendorLimits
from system_apis.vendor_errors import validation_problem, vendor_problem

CENT = Decimal("0.01")


def minor_units(value: Any) -> Any:
    """A vendor amount (a JSON number read as Decimal, or text) in integer minor units; as it came when it is no
    amount in whole cents (the engine's field checks refuse it then)."""
    try:
        minor = Decimal(str(value)) * 100
    except InvalidOperation:
        return value
    return int(minor) if minor == minor.to_integral_value() else value


def json_amount(minor: int) -> msgspec.Raw:
    """Minor units as an exact decimal JSON number (``1400.00``), never through a float: how Edm.Decimal (OData v4)
    and NetSuite's amounts travel."""
    return msgspec.Raw(str((Decimal(minor) / 100).quantize(CENT)).encode())


def json_number(text: str) -> Any:
    """A decimal text as an exact JSON number; text that is no finite number as it came (the vendor refuses it)."""
    try:
        return msgspec.Raw(str(Decimal(text)).encode()) if Decimal(text).is_finite() else text
    except InvalidOperation:
        return text


def odata_literal(value: str | int) -> str:
    """An OData literal: a number bare, text quoted (a quote doubled)."""
    return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"


def rejected(item: PostingCreate, problem: ProblemError) -> PostingBatchItem:
    """A line of a posting batch refused alone, with its problem."""
    return PostingBatchItem(source_id=item.source_id, status="rejected", problem=problem.to_problem().to_dict())


class VendorRefusal(Exception):
    """A vendor's 4xx: its status, message, top-level code and (engine field path, code, message) per detail."""

    vendor: ClassVar[str]
    closed_period: ClassVar[tuple[str, ...]]  # the codes of a posting into a closed (or missing) period

    def __init__(self, status: int, message: str, details: list[tuple[str | None, str, str]], code: str = "") -> None:
        super().__init__(f"{status}: {code} {message}")
        self.status = status
        self.message = message
        self.details = details
        self.code = code

    def has(self, *codes: str) -> bool:
        return (bool(self.code) and self.code in codes) or any(c in codes for _, c, _ in self.details)

    def problem(self, field_map: dict[str, str], what: str) -> ProblemError:
        problem = vendor_problem(
            self.vendor,
            self.status,
            self.message,
            [(path, detail) for path, _, detail in self.details],
            field_map,
            what=what,
        )
        if isinstance(problem, Unprocessable) and self.has(*self.closed_period):
            problem.slug = "period-closed"
        return problem


class ErpFlows:
    """The ERP port's operations (``connectors.ErpConnector``) over a vendor's primitives."""

    VENDOR: ClassVar[str]
    # engine record kind -> the vendor's entity set or record type
    SETS: ClassVar[dict[str, str]]
    # "<kind>.<what>" -> the vendor's property (or column) a filter names
    FIELDS: ClassVar[dict[str, str]]
    # the vendor's value of an invoice state (the engine's DRAFT, POSTED, PAID, VOID)
    INVOICE_STATUS: ClassVar[dict[str, str]]
    # refusal codes: a duplicate of a unique key; a state change the record's state forbids; reversing a reversal
    DUPLICATE: ClassVar[tuple[str, ...]]
    WRONG_STATE: ClassVar[tuple[str, ...]]
    IS_REVERSAL: ClassVar[tuple[str, ...]]
    # the engine field a reversal names the posting it reverses by
    REVERSES: ClassVar[str] = "reversesPostingNumber"
    refused: ClassVar[type[VendorRefusal]]
    # the vendor's OAuth grant and the path of its token endpoint (``system_apis.vendor_auth``)
    GRANT: ClassVar[type[VendorToken]]
    TOKEN_PATH: ClassVar[str]

    def __init__(
        self,
        base_url: str,
        timeout_seconds: float,
        *,
        limits: VendorLimits | None = None,
        credentials: VendorCredentials | None = None,
    ) -> None:
        # Writes are safe to send again after a 429: each carries a key the tenant keeps unique (module docstring).
        self._vendor = VendorDownstream(
            self.VENDOR,
            base_url,
            timeout_seconds=timeout_seconds,
            grant=self.GRANT,
            token_path=self.TOKEN_PATH,
            credentials=credentials,
            limits=limits,
            honours_idempotency_key=True,
        )
        self.keys = self._new_keys()

    def _new_keys(self) -> ErpKeys:
        """How canonical customer ids map to the vendor's (an id map, unless the vendor keys customers by number)."""
        return ErpKeys()

    async def aclose(self) -> None:
        await self._vendor.aclose()

    # --- the vendor's primitives ---------------------------------------------------------------------------------

    async def _page(
        self, entity_set: str, conditions: list[str], cursor: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        raise NotImplementedError

    async def _first(self, entity_set: str, conditions: list[str]) -> dict[str, Any] | None:
        raise NotImplementedError

    async def _create(self, entity_set: str, fields: dict[str, Any], retry_key: str | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def eq(self, prop: str, value: str | int) -> str:
        raise NotImplementedError

    def is_null(self, prop: str) -> str:
        raise NotImplementedError

    def on_or_after(self, prop: str, day: dt.date) -> str:
        raise NotImplementedError

    def on_or_before(self, prop: str, day: dt.date) -> str:
        raise NotImplementedError

    def name_contains(self, prop: str, text: str) -> str:
        raise NotImplementedError

    def period_value(self, name: str) -> str:
        """A period name (``Oct 2026``) as the vendor keeps it."""
        return name

    def company_value(self, code: str) -> str:
        """A legal entity's code (``LE-US``) as the vendor's periods name it."""
        return code

    async def _send_transition(self, row: dict[str, Any], to_state: InvoiceState) -> None:
        """Ask the vendor to post (``posted``) or void (``void``) the invoice ``row``."""
        raise NotImplementedError

    async def _reread_invoice(self, row: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def _create_credit(self, row: dict[str, Any], body: dict[str, Any], retry_key: str | None) -> dict[str, Any]:
        """A credit note for the invoice ``row`` (``body``: its lines and external id), in engine fields."""
        raise NotImplementedError

    async def _write_contract(self, row: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        """The contract ``row`` changed by ``fields``, read back."""
        raise NotImplementedError

    # --- hooks with the OData vendors' defaults -------------------------------------------------------------------

    async def _by_key(self, kind: str, idempotency_key: str) -> dict[str, Any] | None:
        """The invoice or credit note created with the caller's Idempotency-Key as its external id."""
        return await self._first(self.SETS[kind], [self.eq(self.FIELDS[f"{kind}.key"], idempotency_key)])

    async def _legal_entity_condition(self, legal_entity_id: str) -> str | None:
        if not is_canonical("legal_entity", legal_entity_id):
            return None
        code = self.company_value(to_business_key("legal_entity", legal_entity_id))
        return self.eq(self.FIELDS["period.legal_entity"], code)

    async def _customer_condition(self, customer_id: str) -> str | None:
        if not is_canonical("customer", customer_id):
            return None
        return self.eq(self.FIELDS["contract.customer"], to_business_key("customer", customer_id))

    async def _customer_reference(self, customer_id: str, pointer: str) -> str | int:
        """How a contract or invoice names its customer (here its number, checked to exist)."""
        account = reference("customer", customer_id, pointer)
        if await self._customer_row(account) is None:
            raise unknown_reference("customer", customer_id, pointer)
        return account

    def _seen_customers(self, rows: list[dict[str, Any]]) -> None:
        """Customer rows read or created (a vendor that names customers by internal ids learns them here)."""

    def _contract_values(self, values: dict[str, object]) -> dict[str, object]:
        """The contract terms the vendor keeps (all, unless it refuses some)."""
        return values

    async def _contract_from(self, fields: dict[str, Any]) -> Contract:
        return contract_from_vendor(fields, self.keys)

    async def _contract_of(self, row: dict[str, Any]) -> Contract:
        """A contract found by a query."""
        return await self._contract_from(row)

    async def _contracts(self, rows: list[dict[str, Any]]) -> list[Contract]:
        return [contract_from_vendor(r, self.keys) for r in rows]

    async def _invoice_from(self, fields: dict[str, Any]) -> Invoice:
        return invoice_from_vendor(fields, self.keys)

    async def _invoice_of(self, row: dict[str, Any]) -> Invoice:
        """An invoice found by a query."""
        return await self._invoice_from(row)

    async def _invoices(self, rows: list[dict[str, Any]]) -> list[Invoice]:
        return [invoice_from_vendor(r, self.keys) for r in rows]

    async def _credit_notes(self, rows: list[dict[str, Any]]) -> list[CreditNote]:
        return [credit_note_from_vendor(r) for r in rows]

    async def _reversal_key(self, posting_id: str) -> tuple[str | int, str]:
        """The vendor's key of the posting a reversal names, as a value and as text (404 when it cannot be one)."""
        voucher = to_business_key("posting", posting_id)
        return voucher, voucher

    def _source_conditions(self, source_type: str, source_ref: str) -> list[str]:
        """The posting of a source document: its source, and no reversal (a reversal names the same source)."""
        return [
            self.eq(self.FIELDS["posting.source"], source_ref),
            self.eq(self.FIELDS["posting.source_type"], source_type),
            self.is_null(self.FIELDS["posting.reverses"]),
        ]

    async def _posting_for_source(self, source_type: str, source_ref: str) -> dict[str, Any] | None:
        return await self._first(self.SETS["posting"], self._source_conditions(source_type, source_ref))

    # --- legal entities, periods ----------------------------------------------------------------------------------

    async def list_legal_entities(self, *, cursor: str | None, limit: int) -> Page[LegalEntity]:
        rows, next_cursor = await self._page(self.SETS["legal_entity"], [], cursor, limit)
        return Page(items=[legal_entity_from_vendor(r) for r in rows], next_cursor=next_cursor)

    async def list_accounting_periods(
        self, *, legal_entity_id: str | None, period: str | None, cursor: str | None, limit: int
    ) -> Page[AccountingPeriod]:
        conditions = [self.eq(self.FIELDS["period.name"], self.period_value(period_name(period)))] if period else []
        if legal_entity_id is not None:
            condition = await self._legal_entity_condition(legal_entity_id)
            if condition is None:
                return Page(items=[])
            conditions.append(condition)
        rows, next_cursor = await self._page(self.SETS["period"], conditions, cursor, limit)
        return Page(items=[period_from_vendor(r) for r in rows], next_cursor=next_cursor)

    # --- customers ------------------------------------------------------------------------------------------------

    async def _customer_row(self, number: str) -> dict[str, Any] | None:
        row = await self._first(self.SETS["customer"], [self.eq(self.FIELDS["customer.number"], number)])
        if row is not None:
            self._seen_customers([row])
        return row

    async def list_customers(self, *, name: str | None, cursor: str | None, limit: int) -> Page[Customer]:
        conditions = [self.name_contains(self.FIELDS["customer.name"], name)] if name else []
        rows, next_cursor = await self._page(self.SETS["customer"], conditions, cursor, limit)
        self._seen_customers(rows)
        return Page(items=[customer_from_vendor(r) for r in rows], next_cursor=next_cursor)

    async def get_customer(self, customer_id: str) -> Customer:
        row = await self._customer_row(to_business_key("customer", customer_id))
        if row is None:
            raise NotFound(f"no customer {customer_id!r}", slug="unknown-id")
        return customer_from_vendor(row)

    async def _existing_customer(self, body: dict[str, Any]) -> dict[str, Any] | None:
        if "customerNumber" in body:
            found = await self._customer_row(body["customerNumber"])
            if found is not None:
                return found
        if body.get("externalCrmId"):
            return await self._first(
                self.SETS["customer"], [self.eq(self.FIELDS["customer.crm"], body["externalCrmId"])]
            )
        return None

    async def upsert_customer(self, data: CustomerCreate, idempotency_key: str | None) -> tuple[Customer, bool]:
        body = customer_to_vendor(data)
        existing = await self._existing_customer(body)
        if existing is not None:
            return customer_from_vendor(existing), False
        try:
            created = await self._create(self.SETS["customer"], body)
        except self.refused as exc:
            existing = await self._existing_customer(body) if exc.has(*self.DUPLICATE) else None
            if existing is None:  # created meanwhile by a concurrent request: the upsert answers that one
                raise exc.problem(CUSTOMER_FIELDS, "customer") from exc
            return customer_from_vendor(existing), False
        self._seen_customers([created])
        return customer_from_vendor(created), True

    # --- contracts ------------------------------------------------------------------------------------------------

    async def _contract_row(self, contract_id: str) -> dict[str, Any]:
        row = await self._first(
            self.SETS["contract"], [self.eq(self.FIELDS["contract.number"], to_business_key("contract", contract_id))]
        )
        if row is None:
            raise NotFound(f"no contract {contract_id!r}", slug="unknown-id")
        return row

    async def list_contracts(
        self, *, customer_id: str | None, status: ContractStatus | None, cursor: str | None, limit: int
    ) -> Page[Contract]:
        conditions = [self.eq(self.FIELDS["contract.status"], CONTRACT_STATUS_VENDOR[status])] if status else []
        if customer_id is not None:
            condition = await self._customer_condition(customer_id)
            if condition is None:
                return Page(items=[])
            conditions.append(condition)
        rows, next_cursor = await self._page(self.SETS["contract"], conditions, cursor, limit)
        return Page(items=await self._contracts(rows), next_cursor=next_cursor)

    async def get_contract(self, contract_id: str) -> Contract:
        return await self._contract_of(await self._contract_row(contract_id))

    async def upsert_contract(self, data: ContractCreate, idempotency_key: str | None) -> tuple[Contract, bool]:
        number = reference("contract", data.id, "/id") if data.id is not None else None
        by_number = [self.eq(self.FIELDS["contract.number"], number)] if number is not None else []
        if by_number:
            found = await self._first(self.SETS["contract"], by_number)
            if found is not None:
                return await self._contract_of(found), False
        values = self._contract_values({name: getattr(data, name) for name in data.__struct_fields__})
        body = {
            "customerId": await self._customer_reference(data.customer_id, "/customer_id"),
            "subsidiaryCode": reference("legal_entity", data.legal_entity_id, "/legal_entity_id"),
            **contract_terms_to_vendor(values, data.currency),
        }
        if number is not None:
            body["contractNumber"] = number
        try:
            return await self._contract_from(await self._create(self.SETS["contract"], body)), True
        except self.refused as exc:
            if exc.has(*self.DUPLICATE) and by_number:
                found = await self._first(self.SETS["contract"], by_number)
                if found is not None:
                    return await self._contract_of(found), False
            raise exc.problem(CONTRACT_FIELDS, "contract") from exc

    async def update_contract(self, contract_id: str, changes: dict[str, object]) -> Contract:
        row = await self._contract_row(contract_id)
        try:
            fields = contract_terms_to_vendor(self._contract_values(changes), row["currency"])
            updated = await self._write_contract(row, fields)
        except self.refused as exc:
            if exc.has(*self.WRONG_STATE):
                raise Conflict(
                    f"{self.VENDOR} refused the change",
                    slug="invalid-transition",
                    from_state=CONTRACT_STATUS.get(row["contractStatus"]),
                    to_state=changes.get("status"),
                ) from exc
            raise exc.problem(CONTRACT_FIELDS, "contract") from exc
        return await self._contract_from(updated)

    # --- project dimensions ---------------------------------------------------------------------------------------

    async def list_project_dimensions(
        self, *, project_id: str | None, cursor: str | None, limit: int
    ) -> Page[ProjectDimension]:
        conditions = []
        if project_id is not None:
            if not is_canonical("project", project_id):
                return Page(items=[])
            conditions.append(self.eq(self.FIELDS["dimension.project"], to_business_key("project", project_id)))
        rows, next_cursor = await self._page(self.SETS["dimension"], conditions, cursor, limit)
        return Page(items=[dimension_from_vendor(r) for r in rows], next_cursor=next_cursor)

    async def upsert_project_dimension(self, data: ProjectDimensionCreate) -> tuple[ProjectDimension, bool]:
        body = dimension_to_vendor(data)
        try:
            return dimension_from_vendor(await self._create(self.SETS["dimension"], body)), True
        except self.refused as exc:
            if not exc.has(*self.DUPLICATE):
                raise exc.problem(DIMENSION_FIELDS, "dimension") from exc
        existing = await self._first(
            self.SETS["dimension"], [self.eq(self.FIELDS["dimension.project"], body["projectCode"])]
        )
        if (
            existing is not None
            and existing["dimensionCode"] == body["dimensionCode"]
            and existing["subsidiaryCode"] == body["subsidiaryCode"]
        ):
            return dimension_from_vendor(existing), False
        raise Conflict(
            "the project already has another dimension, or the code belongs to another project",
            slug="dimension-conflict",
            existing=msgspec.to_builtins(dimension_from_vendor(existing)) if existing else None,
        )

    # --- postings -------------------------------------------------------------------------------------------------

    async def create_posting(self, data: PostingCreate) -> tuple[Posting, bool]:
        body = posting_to_vendor(data)
        try:
            created = await self._create(
                self.SETS["posting"], body, retry_key=f"{body['sourceDocumentType']}:{body['sourceDocumentId']}"
            )
        except self.refused as exc:
            existing = (
                await self._posting_for_source(body["sourceDocumentType"], body["sourceDocumentId"])
                if exc.has(*self.DUPLICATE)
                else None
            )
            if existing is None:
                raise exc.problem(POSTING_FIELDS, "posting") from exc
            return posting_from_vendor(existing), False
        return posting_from_vendor(created), True

    async def create_postings(self, items: list[PostingCreate]) -> list[PostingBatchItem]:
        """Each posting on its own, side by side within the vendor's limits (for a vendor with no bulk write)."""

        async def one(item: PostingCreate) -> PostingBatchItem:
            try:
                posting, created = await self.create_posting(item)
            except ProblemError as exc:  # one bad item does not sink the batch
                if exc.status >= 500:
                    raise
                return rejected(item, exc)
            return PostingBatchItem(
                source_id=item.source_id, status="created" if created else "existing", posting=posting
            )

        return list(await asyncio.gather(*(one(item) for item in items)))

    async def reverse_posting(self, posting_id: str, on: dt.date) -> tuple[Posting, bool]:
        original, text = await self._reversal_key(posting_id)
        body = {self.REVERSES: original, "transactionDate": on.isoformat()}
        try:
            return posting_from_vendor(
                await self._create(self.SETS["posting"], body, retry_key=f"reversal:{text}")
            ), True
        except self.refused as exc:
            if exc.status == 404:
                raise NotFound(f"no posting {posting_id!r}", slug="unknown-id") from exc
            if exc.has(*self.IS_REVERSAL):
                raise Conflict(
                    f"{self.VENDOR} refused the change: a reversal is not reversed", downstream=self.VENDOR
                ) from exc
            if not exc.has(*self.DUPLICATE):
                raise exc.problem({"transactionDate": "/on"}, "posting") from exc
        existing = await self._first(self.SETS["posting"], [self.eq(self.FIELDS["posting.reverses"], original)])
        if existing is None:
            raise NotFound(f"no posting {posting_id!r}", slug="unknown-id")
        return posting_from_vendor(existing), False

    async def list_postings(self, filters: PostingFilter, *, cursor: str | None, limit: int) -> Page[Posting]:
        conditions = []
        if filters.from_date:
            conditions.append(self.on_or_after(self.FIELDS["posting.date"], filters.from_date))
        if filters.to_date:
            conditions.append(self.on_or_before(self.FIELDS["posting.date"], filters.to_date))
        references: tuple[tuple[str | None, Kind, str], ...] = (
            (filters.project_id, "project", self.FIELDS["posting.project"]),
            (filters.contract_id, "contract", self.FIELDS["posting.contract"]),
        )
        for value, kind, prop in references:
            if value is not None:
                if not is_canonical(kind, value):
                    return Page(items=[])
                conditions.append(self.eq(prop, to_business_key(kind, value)))
        if filters.source_id is not None:
            source_kind = next((k for k in SOURCE_KINDS.values() if is_canonical(k, filters.source_id)), None)
            source = to_business_key(source_kind, filters.source_id) if source_kind else filters.source_id
            conditions.append(self.eq(self.FIELDS["posting.source"], source))
        rows, next_cursor = await self._page(self.SETS["posting"], conditions, cursor, limit)
        return Page(items=[posting_from_vendor(r) for r in rows], next_cursor=next_cursor)

    # --- invoices -------------------------------------------------------------------------------------------------

    async def _invoice_row(self, invoice_id: str) -> dict[str, Any]:
        row = await self._first(
            self.SETS["invoice"], [self.eq(self.FIELDS["invoice.number"], to_business_key("invoice", invoice_id))]
        )
        if row is None:
            raise NotFound(f"no invoice {invoice_id!r}", slug="unknown-id")
        return row

    def _validation(self, exc: VendorRefusal) -> ProblemError:
        if exc.status != 400:
            return exc.problem({}, "invoice")
        return validation_problem(
            self.VENDOR, [(path, detail) for path, _, detail in exc.details], line_field_map(exc.details)
        )

    async def create_invoice(self, data: InvoiceCreate, idempotency_key: str | None) -> Invoice:
        body: dict[str, Any] = {
            "customerId": await self._customer_reference(data.customer_id, "/customer_id"),
            "contractNumber": reference("contract", data.contract_id, "/contract_id"),
            "subsidiaryCode": reference("legal_entity", data.legal_entity_id, "/legal_entity_id"),
            "currencyCode": data.currency,
            "periodName": period_name(data.period) if data.period else None,
            "lines": invoice_lines_to_vendor(data.lines, data.currency),
        }
        if data.tax_lines:
            body["taxLines"] = tax_lines_to_vendor(data.tax_lines, data.currency)
        if idempotency_key:
            body["externalId"] = idempotency_key  # the tenant refuses a second invoice with it (a duplicate)
        try:
            created = await self._create(self.SETS["invoice"], body, retry_key=idempotency_key)
        except self.refused as exc:
            if exc.has(*self.DUPLICATE) and idempotency_key:
                found = await self._by_key("invoice", idempotency_key)
                if found is not None:
                    return await self._invoice_from(found)
            raise self._validation(exc) from exc
        return await self._invoice_from(created)

    async def _transition(self, invoice_id: str, to_state: InvoiceState) -> Invoice:
        row = await self._invoice_row(invoice_id)
        try:
            await self._send_transition(row, to_state)
        except self.refused as exc:
            if exc.has(*self.WRONG_STATE):
                state = INVOICE_STATE.get(row["status"], row["status"])
                verb = "posted" if to_state == "posted" else "voided"
                raise Conflict(
                    f"a {state} invoice cannot be {verb}",
                    slug="invalid-transition",
                    from_state=state,
                    to_state=to_state,
                ) from exc
            raise exc.problem({}, "invoice") from exc
        return await self._invoice_from(await self._reread_invoice(row))

    async def post_invoice(self, invoice_id: str) -> Invoice:
        return await self._transition(invoice_id, "posted")

    async def void_invoice(self, invoice_id: str) -> Invoice:
        return await self._transition(invoice_id, "void")

    async def get_invoice(self, invoice_id: str) -> Invoice:
        return await self._invoice_of(await self._invoice_row(invoice_id))

    async def credit_invoice(self, invoice_id: str, data: CreditNoteCreate, idempotency_key: str | None) -> CreditNote:
        row = await self._invoice_row(invoice_id)
        body: dict[str, Any] = {"lines": invoice_lines_to_vendor(data.lines, row["currencyCode"])}
        if idempotency_key:
            body["externalId"] = idempotency_key  # the tenant refuses a second credit note with it
        try:
            memo = await self._create_credit(row, body, idempotency_key)
        except self.refused as exc:
            if exc.has(*self.DUPLICATE) and idempotency_key:
                found = await self._by_key("credit_note", idempotency_key)
                if found is not None:
                    return credit_note_from_vendor(found)
            if exc.has(*self.WRONG_STATE):
                raise Conflict(
                    f"a {INVOICE_STATE.get(row['status'], row['status'])} invoice is not credited",
                    slug="invalid-transition",
                    state=INVOICE_STATE.get(row["status"]),
                ) from exc
            raise self._validation(exc) from exc
        return credit_note_from_vendor(memo)

    async def list_credit_notes(self, *, invoice_id: str | None, cursor: str | None, limit: int) -> Page[CreditNote]:
        conditions = []
        if invoice_id is not None:
            if not is_canonical("invoice", invoice_id):
                return Page(items=[])
            conditions.append(self.eq(self.FIELDS["credit_note.invoice"], to_business_key("invoice", invoice_id)))
        rows, next_cursor = await self._page(self.SETS["credit_note"], conditions, cursor, limit)
        return Page(items=await self._credit_notes(rows), next_cursor=next_cursor)

    async def list_invoices(
        self, *, contract_id: str | None, state: InvoiceState | None, period: str | None, cursor: str | None, limit: int
    ) -> Page[Invoice]:
        conditions = []
        if state:
            conditions.append(self.eq(self.FIELDS["invoice.state"], self.INVOICE_STATUS[INVOICE_STATE_VENDOR[state]]))
        if period:
            conditions.append(self.eq(self.FIELDS["invoice.period"], self.period_value(period_name(period))))
        if contract_id is not None:
            if not is_canonical("contract", contract_id):
                return Page(items=[])
            conditions.append(self.eq(self.FIELDS["invoice.contract"], to_business_key("contract", contract_id)))
        rows, next_cursor = await self._page(self.SETS["invoice"], conditions, cursor, limit)
        return Page(items=await self._invoices(rows), next_cursor=next_cursor)

    # --- revenue --------------------------------------------------------------------------------------------------

    async def list_revenue_schedules(
        self, *, contract_id: str | None, period: str | None, cursor: str | None, limit: int
    ) -> Page[RevenueSchedule]:
        conditions = [self.eq(self.FIELDS["revenue.period"], self.period_value(period_name(period)))] if period else []
        if contract_id is not None:
            if not is_canonical("contract", contract_id):
                return Page(items=[])
            conditions.append(self.eq(self.FIELDS["revenue.contract"], to_business_key("contract", contract_id)))
        rows, next_cursor = await self._page(self.SETS["revenue"], conditions, cursor, limit)
        return Page(items=[revenue_from_vendor(r) for r in rows], next_cursor=next_cursor)

    async def create_revenue_schedule(self, schedule: RevenueScheduleCreate) -> tuple[RevenueSchedule, bool]:
        body: dict[str, Any] = {
            "contractNumber": reference("contract", schedule.contract_id, "/contract_id"),
            "periodName": period_name(schedule.period),
            "recognizedAmountMinor": to_minor(schedule.recognized_amount, schedule.currency, "/recognized_amount"),
            "currencyCode": schedule.currency,
            "recognitionMethod": REVENUE_METHOD_VENDOR[schedule.method],
        }
        try:
            return revenue_from_vendor(await self._create(self.SETS["revenue"], body)), True
        except self.refused as exc:
            if not exc.has(*self.DUPLICATE):
                raise exc.problem(REVENUE_FIELDS, "revenue schedule") from exc
        found = await self._first(
            self.SETS["revenue"],
            [
                self.eq(self.FIELDS["revenue.contract"], body["contractNumber"]),
                self.eq(self.FIELDS["revenue.period"], self.period_value(body["periodName"])),
            ],
        )
        if found is None:
            raise Conflict(
                f"{schedule.period} of {schedule.contract_id} is recognised already", slug="already-recognized"
            )
        existing = revenue_from_vendor(found)
        if existing.recognized_amount != schedule.recognized_amount:
            raise Conflict(
                f"{schedule.period} of {schedule.contract_id} is recognised already at "
                f"{existing.recognized_amount} {existing.currency}",
                slug="already-recognized",
                existing_id=existing.id,
            )
        return existing, False


class ODataFlows(ErpFlows):
    """The filter language the OData vendors share (``$filter``: ``eq``, ``null``; OData literals)."""

    def eq(self, prop: str, value: str | int) -> str:
        return f"{prop} eq {odata_literal(value)}"

    def is_null(self, prop: str) -> str:
        return f"{prop} eq null"
