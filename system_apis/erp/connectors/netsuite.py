"""ERP adapter for NetSuite's REST web services (``erp_backend: netsuite``; the sandbox is ``sandbox/netsuite.py``).

Follows the NetSuite Help Center, "SuiteTalk REST Web Services": reads go through SuiteQL (``POST
/services/rest/query/v1/suiteql`` with ``Prefer: transient``, ``limit``/``offset`` paging resumed from the
``rel: next`` link while ``hasMore``), records that carry sublists (contracts' billing schedules, invoice and
credit memo ``item`` lines) are read whole from the record service with ``expandSubResources=true``; writes are
record creations (``POST /services/rest/record/v1/<recordType>``: 204 and the new record's ``Location``),
``PATCH`` updates, ``approvalStatus`` for posting (2, Approved) and voiding (3, Rejected) a pending invoice, and
``POST /invoice/<id>/!transform/creditMemo`` for credit notes. NetSuite creates no records in bulk, so a posting
batch is sent record by record within the vendor's concurrency limit; the new records are not read back one by one
(the 204's ``Location`` names each new id) but together, in SuiteQL queries over the range of the new ids.

Exactly once without idempotency keys (NetSuite honours ``X-NetSuite-Idempotency-Key`` on asynchronous requests
only): each record has a unique key the tenant enforces (a posting's source document, a reversal's original, an
invoice's or credit memo's ``externalId`` set to the caller's Idempotency-Key), a repeat is refused ``DUP_RCRD``,
and the adapter answers the record already there. That is also what makes a write safe to send again after a 429.

Authentication: OAuth 2.0 client credentials (M2M), "POST Request to the Token Endpoint" and "The Request Token
Structure": a PS256 client assertion with ``kid`` the certificate id, ``scope`` ``rest_webservices`` and ``aud``
the token endpoint (``system_apis.vendor_auth.NetSuiteM2mToken``).

The mapping to canonical terms is the sandbox ERP adapter's (``connectors/sandbox.py``): this module turns
NetSuite's records and SuiteQL rows into those fields (integer minor units, subsidiary codes, period names) and
back, by the record schema below, which mirrors the tenant's customisation that the sandbox documents.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
    RevenueTerms,
)
from runtime import cursors
from runtime.problems import Conflict, FieldError, NotFound, ProblemError, Unprocessable
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
from system_apis.vendor_auth import NetSuiteM2mToken, VendorCredentials
from system_apis.vendor_calls import VendorDownstream, VendorLimits
from system_apis.vendor_errors import validation_problem, vendor_problem

VENDOR = "netsuite"
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"  # noqa: S105 - the vendor's token endpoint, not a secret
RECORD = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"
PAGE_MAX = 1000
CENT = Decimal("0.01")
STATUS = {"pendingApproval": "DRAFT", "open": "POSTED", "paidInFull": "PAID", "rejected": "VOID"}
STATUS_VENDOR = {engine: code for code, engine in STATUS.items()}
APPROVE, REJECT = "2", "3"


# --- the tenant's record schema (as sandbox/netsuite.py documents it) ---------------------------------------------


def without_revenue_terms(values: dict[str, object]) -> dict[str, object]:
    """The tenant's contract record has no revenue recognition fields: straight line (the default) is all it
    keeps, and anything else is refused rather than dropped."""
    terms = values.pop("revenue_terms", None)
    if isinstance(terms, RevenueTerms) and terms != RevenueTerms():
        raise Unprocessable("the NetSuite connector keeps no revenue terms: a fixed fee is recognised straight line",
                            slug="not-supported", errors=[FieldError(pointer="/revenue_terms",
                                                                     detail="not kept by this ERP")])
    return values

class Schema:
    """Our field -> (NetSuite field, conversion); a field not listed is a custom field ``<prefix>_psg_<name>``."""

    def __init__(self, prefix: str, fields: dict[str, tuple[str, str]], numbers: tuple[str, ...] = ()) -> None:
        self.prefix = prefix
        self.fields = dict(fields)
        self.numbers = numbers

    def name(self, internal: str) -> tuple[str, str]:
        if internal in self.fields:
            return self.fields[internal]
        conversion = "money" if internal.endswith("Minor") else "number" if internal in self.numbers else ""
        base = internal.removesuffix("Minor")
        if not self.prefix:
            return base, conversion
        return f"{self.prefix}_psg_{re.sub(r'(?<!^)(?=[A-Z])', '_', base).lower()}", conversion

    def reverse(self) -> dict[str, tuple[str, str]]:
        return {self.name(field)[0]: (field, self.name(field)[1]) for field in self.fields}


def _custom(prefix: str, names: Iterable[str], numbers: tuple[str, ...] = ()) -> dict[str, tuple[str, str]]:
    schema = Schema(prefix, {}, numbers)
    return {name: schema.name(name) for name in names}


SCHEDULE_LINE = Schema("", {"lineNo": ("line", ""), "amountMinor": ("amount", "money"), "periodName": ("periodName",
                            ""),
                            "billingDate": ("billingDate", ""), "percentComplete": ("percentComplete", "number"),
                            "memo": ("memo", "")})
ITEM_LINE = Schema("", {"lineNo": ("line", ""), "description": ("description", ""), "quantity": ("quantity", "number"),
                        "unitPriceMinor": ("rate", "money"), "amountMinor": ("amount", "money"),
                        "sourceType": ("custcol_psg_source_type", ""), "sourceRefs": ("custcol_psg_source_refs",
                            "refs"), "durationMinutes": ("custcol_psg_duration_minutes", "int")})
TAX_LINE = Schema("", {"taxCode": ("taxCode", ""), "jurisdiction": ("custcol_psg_jurisdiction", ""),
                       "ratePercent": ("taxRate", "number"), "taxableMinor": ("taxBasis", "money"),
                       "taxMinor": ("taxAmount", "money"), "exemptionText": ("custcol_psg_exemption_text", "")})
LINES = {"schedule": SCHEDULE_LINE, "item": ITEM_LINE, "tax": TAX_LINE}
SCHEMAS: dict[str, Schema] = {
    "subsidiary": Schema("custrecord", {
        "internalId": ("id", "id"), "subsidiaryCode": ("externalId", ""), "legalName": ("legalName", ""),
        "country": ("country", ""), "baseCurrency": ("currency", ""), "federalTaxId": ("federalIdNumber", ""),
        "vatRegNumber": ("custrecord_psg_vat_reg_number", ""), "peppolId": ("custrecord_psg_peppol_id", ""),
        "vatRatePercent": ("custrecord_psg_vat_rate", "number")}),
    "accountingPeriod": Schema("custrecord", {
        "internalId": ("id", "id"), "periodName": ("periodName", ""), "status": ("closed", "closed"),
        "startDate": ("startDate", ""), "endDate": ("endDate", ""),
        "subsidiaryCode": ("custrecord_psg_subsidiary", "sub")}),
    "customer": Schema("custentity", {
        "internalId": ("id", "id"), "customerNumber": ("entityId", ""), "companyName": ("companyName", ""),
        "currency": ("currency", ""), "subsidiaryCode": ("subsidiary", "sub"), "externalCrmId": ("externalId", ""),
        "vatRegNumber": ("vatRegNumber", ""), "taxRegion": ("custentity_psg_tax_region", ""),
        "billingAddress": ("custentity_psg_billing_address", "object"), "peppolId": ("custentity_psg_peppol_id", "")}),
    "customrecord_psg_contract": Schema("custrecord", {
        "internalId": ("id", "id"), "contractNumber": ("name", ""),
        "customerId": ("custrecord_psg_customer", "ref:customer"), "subsidiaryCode": ("custrecord_psg_subsidiary",
            "sub"),
        "billingSchedule": ("custrecord_psg_billing_schedule", "sublist:schedule"),
        **_custom("custrecord", ("description", "currency", "billingMethod", "nteAmountMinor", "startDate", "endDate",
                                 "contractStatus", "rateScheduleCode", "invoiceFrequency", "paymentTerms",
                                 "scheduledAmountMinor", "contractValueMinor", "retainerHours", "unusedHoursPolicy",
                                 "expenseMarkupPct"),
                  numbers=("retainerHours",)),
        "revision": ("custrecord_psg_revision", "int")}),
    "customrecord_psg_project_dimension": Schema("custrecord", {
        "internalId": ("id", "id"), "dimensionCode": ("name", ""), "subsidiaryCode": ("custrecord_psg_subsidiary",
            "sub"),
        "projectCode": ("custrecord_psg_project_code", "")}),
    "customrecord_psg_posting": Schema("custrecord", {
        "internalId": ("id", "id"), "postingNumber": ("name", ""), "subsidiaryCode": ("custrecord_psg_subsidiary",
            "sub"),
        "reversesInternalId": ("custrecord_psg_reverses", "ref:customrecord_psg_posting"),
        "durationMinutes": ("custrecord_psg_duration_minutes", "int"),  # time's whole minutes (integer field)
        **_custom("custrecord", ("sourceDocumentType", "sourceDocumentId", "projectCode", "contractNumber",
                                 "transactionDate", "quantity", "amountMinor", "currencyCode", "postingStatus",
                                 "postedAt", "reversesPostingNumber"), numbers=("quantity",))}),
    "invoice": Schema("custbody", {
        "internalId": ("id", "id"), "invoiceNumber": ("tranId", ""), "customerId": ("entity", "ref:customer"),
        "subsidiaryCode": ("subsidiary", "sub"), "currencyCode": ("currency", ""), "invoiceDate": ("tranDate", ""),
        "status": ("status", "status"), "lines": ("item", "sublist:item"), "taxLines": ("taxDetails", "sublist:tax"),
        "subtotalMinor": ("subtotal", "money"), "taxMinor": ("taxTotal", "money"), "totalMinor": ("total", "money"),
        "externalId": ("externalId", ""), "contractNumber": ("custbody_psg_contract_number", ""),
        "periodName": ("custbody_psg_period_name", "")}),
    "creditMemo": Schema("custbody", {
        "internalId": ("id", "id"), "creditMemoNumber": ("tranId", ""), "invoiceId": ("createdFrom", "ref:invoice"),
        "invoiceNumber": ("custbody_psg_invoice_number", ""), "subsidiaryCode": ("subsidiary", "sub"),
        "currencyCode": ("currency", ""), "memoDate": ("tranDate", ""), "status": ("status", "status"),
        "lines": ("item", "sublist:item"), "subtotalMinor": ("subtotal", "money"), "taxMinor": ("taxTotal", "money"),
        "totalMinor": ("total", "money"), "externalId": ("externalId", "")}),
    "customrecord_psg_revenue_schedule": Schema("custrecord", {
        "internalId": ("id", "id"), "scheduleNumber": ("name", ""),
        **_custom("custrecord", ("contractNumber", "periodName", "recognizedAmountMinor", "currencyCode",
                                 "recognitionMethod"))}),
}
TABLES = {"invoice": ("transaction", "type = 'CustInvc'"), "creditMemo": ("transaction", "type = 'CustCred'")}


def _minor(value: Any) -> Any:
    """A NetSuite amount (a JSON number read as Decimal, or a SuiteQL string) in integer minor units."""
    try:
        minor = Decimal(str(value)) * 100
    except InvalidOperation:
        return value
    return int(minor) if minor == minor.to_integral_value() else value


def _from_netsuite(conversion: str, value: Any, subsidiaries: dict[str, str]) -> Any:
    """One NetSuite value (record JSON or SuiteQL text) in our fields' terms."""
    if conversion in ("id", "int"):
        return int(value)
    if conversion == "money":
        return _minor(value)
    if conversion == "number":
        return str(value)
    if conversion.startswith("ref:"):
        return int(value["id"] if isinstance(value, dict) else value)
    if conversion == "sub":
        if isinstance(value, dict):
            return value.get("refName") or subsidiaries.get(str(value.get("id")), "")
        return subsidiaries.get(str(value), "")
    if conversion == "closed":
        return "CLOSED" if value in (True, "T") else "OPEN"
    if conversion == "status":
        return STATUS.get(value["id"] if isinstance(value, dict) else value, "DRAFT")
    if conversion == "refs":
        return [part for part in str(value).split(",") if part]
    if conversion == "object" and isinstance(value, str):
        return json.loads(value)
    if conversion.startswith("sublist:"):
        schema = LINES[conversion[8:]]
        reverse = schema.reverse()
        return [{reverse[name][0]: _from_netsuite(reverse[name][1], v, subsidiaries)
                 for name, v in line.items() if name in reverse} for line in value.get("items", [])]
    return value


def from_netsuite(record_type: str, body: dict[str, Any], subsidiaries: dict[str, str]) -> dict[str, Any]:
    """A record (GET) or a SuiteQL row (lower-case columns) in our fields."""
    columns = {name.lower(): target for name, target in SCHEMAS[record_type].reverse().items()}
    fields: dict[str, Any] = {}
    for name, value in body.items():
        target = columns.get(name.lower())
        if target is not None and value is not None:
            fields[target[0]] = _from_netsuite(target[1], value, subsidiaries)
    return fields


def _to_netsuite(conversion: str, value: Any, subsidiary_ids: dict[str, str]) -> Any:
    if value is None:
        return None
    if conversion == "money" and isinstance(value, int):
        # An exact decimal number on the wire (NetSuite's amounts are JSON numbers), never through a float.
        return msgspec.Raw(str((Decimal(value) / 100).quantize(CENT)).encode())
    if conversion == "number" and isinstance(value, str):
        try:
            return msgspec.Raw(str(Decimal(value)).encode()) if Decimal(value).is_finite() else value
        except InvalidOperation:
            return value
    if conversion.startswith("ref:"):
        return {"id": str(value)}
    if conversion == "sub":
        return {"id": subsidiary_ids.get(value, "0")}
    if conversion == "refs":
        return ",".join(value)
    if conversion == "closed":
        return value == "CLOSED"
    if conversion == "status":
        return {"id": STATUS_VENDOR[value]}
    if conversion.startswith("sublist:"):
        schema = LINES[conversion[8:]]
        return {"items": [{schema.name(k)[0]: _to_netsuite(schema.name(k)[1], v, subsidiary_ids)
                           for k, v in line.items()} for line in value]}
    return value


def to_netsuite(record_type: str, fields: dict[str, Any], subsidiary_ids: dict[str, str]) -> dict[str, Any]:
    schema = SCHEMAS[record_type]
    body = {}
    for field, value in fields.items():
        name, conversion = schema.name(field)
        if conversion != "id":
            body[name] = _to_netsuite(conversion, value, subsidiary_ids)
    return body


def our_path(record_type: str, path: str | None) -> str | None:
    """A NetSuite error path (``item.items[0].amount``) in our fields (``lines[0].amountMinor``)."""
    if not path:
        return path
    reverse = SCHEMAS[record_type].reverse()
    match = re.match(r"^(\w+)(?:\.items\[(\d+)\]\.(\w+))?$", path)
    if not match or match[1] not in reverse:
        return path
    field, conversion = reverse[match[1]]
    if match[2] is None or not conversion.startswith("sublist:"):
        return field
    line = LINES[conversion[8:]].reverse().get(match[3])
    return f"{field}[{match[2]}].{line[0] if line else match[3]}"


def quoted(text: str) -> str:
    """A SuiteQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def rejected(item: PostingCreate, problem: ProblemError) -> PostingBatchItem:
    return PostingBatchItem(source_id=item.source_id, status="rejected", problem=problem.to_problem().to_dict())


class Refused(Exception):
    """NetSuite's 4xx: status and (our field path, error code, detail) per ``o:errorDetails`` entry."""

    def __init__(self, status: int, details: list[tuple[str | None, str, str]]) -> None:
        super().__init__(f"{status}: {details}")
        self.status = status
        self.details = details

    def has(self, code: str) -> bool:
        return any(c == code for _, c, _ in self.details)

    def problem(self, field_map: dict[str, str], what: str) -> ProblemError:
        problem = vendor_problem(VENDOR, self.status, "; ".join(d for _, _, d in self.details),
                                 [(path, detail) for path, _, detail in self.details], field_map, what=what)
        if isinstance(problem, Unprocessable) and self.has("PERIOD_CLOSED"):
            problem.slug = "period-closed"
        return problem


# --- the adapter -----------------------------------------------------------------------------------------------

class NetSuiteErp:
    def __init__(self, base_url: str, timeout_seconds: float, *, limits: VendorLimits | None = None,
                 credentials: VendorCredentials | None = None) -> None:
        # Writes are safe to send again after a 429: each carries a key the tenant keeps unique (module docstring).
        self._vendor = VendorDownstream(VENDOR, base_url, timeout_seconds=timeout_seconds, grant=NetSuiteM2mToken,
                                        token_path=TOKEN_PATH, credentials=credentials, limits=limits,
                                        honours_idempotency_key=True)
        self.keys = ErpKeys()
        self._subsidiary_ids: dict[str, str] = {}  # code -> internal id

    async def aclose(self) -> None:
        await self._vendor.aclose()

    # the wire

    async def _send(self, method: str, path: str, record_type: str, *, params: dict[str, Any] | None = None,
                    json_body: Any = None, headers: dict[str, str] | None = None, retry_key: str | None = None
                    ) -> tuple[dict[str, str], Any]:
        reply = await self._vendor.request(method, path, params=params, json=json_body, headers=headers,
                                           idempotency_key=retry_key, reads_only=path == SUITEQL,
                                           allow_statuses=frozenset(range(400, 500)))
        body = json.loads(reply.content, parse_float=Decimal) if reply.content else None
        if reply.status_code >= 400:
            details = body.get("o:errorDetails") if isinstance(body, dict) else None
            raise Refused(reply.status_code, [
                (our_path(record_type, d.get("o:errorPath")), str(d.get("o:errorCode", "")), str(d.get("detail", "")))
                for d in details or [] if isinstance(d, dict)])
        return reply.headers, body

    async def _subsidiaries(self) -> dict[str, str]:
        """Subsidiary internal id -> code (three rows, read once: references name subsidiaries by id)."""
        if not self._subsidiary_ids:
            _, body = await self._send("POST", SUITEQL, "subsidiary", params={"limit": PAGE_MAX, "offset": 0},
                                       json_body={"q": "SELECT id, externalid FROM subsidiary"},
                                       headers={"Prefer": "transient"})
            self._subsidiary_ids = {row["externalid"]: row["id"] for row in body["items"]}
        return {ident: code for code, ident in self._subsidiary_ids.items()}

    async def _query(self, record_type: str, conditions: list[str], offset: int, limit: int
                     ) -> tuple[list[dict[str, Any]], int | None]:
        """One SuiteQL page in our fields, and the offset of the next page (from ``rel: next``) if there is one."""
        table, *fixed = TABLES.get(record_type, (record_type.lower(),))
        where = " AND ".join([*fixed, *conditions])
        # SuiteQL text for the vendor, not SQL run here; every literal in it went through ``quoted``.
        query = f"SELECT * FROM {table}" + (f" WHERE {where}" if where else "") + " ORDER BY id"  # noqa: S608
        subsidiaries = await self._subsidiaries()
        _, body = await self._send("POST", SUITEQL, record_type, params={"limit": limit, "offset": offset},
                                   json_body={"q": query}, headers={"Prefer": "transient"})
        rows = [from_netsuite(record_type, row, subsidiaries) for row in body["items"]]
        following = None
        if body.get("hasMore"):
            following = next((int(parse_qs(urlsplit(link["href"]).query)["offset"][0]) for link in body["links"]
                              if link.get("rel") == "next"), offset + len(rows))
        return rows, following

    async def _page(self, record_type: str, conditions: list[str], cursor: str | None, limit: int
                    ) -> tuple[list[dict[str, Any]], str | None]:
        bound = cursors.binding({"record": record_type, "where": " AND ".join(conditions)})
        state = cursors.decode(cursor, bound)
        offset = cursors.number(state, "offset", 0)
        size = cursors.number(state, "size", limit, minimum=1)
        rows, following = await self._query(record_type, conditions, offset, min(size, PAGE_MAX))
        return rows, cursors.encode({"offset": following, "size": size}, bound) if following is not None else None

    async def _first(self, record_type: str, conditions: list[str]) -> dict[str, Any] | None:
        rows, _ = await self._query(record_type, conditions, 0, 1)
        return rows[0] if rows else None

    async def _all(self, record_type: str, conditions: list[str]) -> list[dict[str, Any]]:
        rows, offset = await self._query(record_type, conditions, 0, PAGE_MAX)
        while offset is not None:
            more, offset = await self._query(record_type, conditions, offset, PAGE_MAX)
            rows.extend(more)
        return rows

    async def _record(self, record_type: str, ident: int | str) -> dict[str, Any]:
        _, body = await self._send("GET", f"{RECORD}/{record_type}/{ident}", record_type,
                                   params={"expandSubResources": "true"})
        return from_netsuite(record_type, body, await self._subsidiaries())

    async def _records(self, record_type: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The whole records (with sublists) behind SuiteQL rows, read side by side within the vendor's limits."""
        return list(await asyncio.gather(*(self._record(record_type, row["internalId"]) for row in rows)))

    async def _create(self, record_type: str, fields: dict[str, Any], path: str | None = None,
                      retry_key: str | None = None) -> dict[str, Any]:
        await self._subsidiaries()
        body = to_netsuite(record_type, fields, self._subsidiary_ids)
        return await self._record(record_type, await self._create_only(record_type, body, path, retry_key))

    async def _create_only(self, record_type: str, body: dict[str, Any], path: str | None = None,
                           retry_key: str | None = None) -> str:
        """The new record's internal id, from the ``Location`` of NetSuite's 204 (the record is not read back)."""
        headers, _ = await self._send("POST", path or f"{RECORD}/{record_type}", record_type, json_body=body,
                                      retry_key=retry_key)
        return str(headers.get("location", "")).rstrip("/").rsplit("/", 1)[-1]

    async def _update(self, record_type: str, internal_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        await self._subsidiaries()
        await self._send("PATCH", f"{RECORD}/{record_type}/{internal_id}", record_type,
                         json_body=to_netsuite(record_type, fields, self._subsidiary_ids))
        return await self._record(record_type, internal_id)

    async def _subsidiary_condition(self, column: str, legal_entity_id: str) -> str | None:
        await self._subsidiaries()
        ident = self._subsidiary_ids.get(to_business_key("legal_entity", legal_entity_id))
        return f"{column} = {ident}" if ident else None

    async def _know_customers(self, rows: Iterable[dict[str, Any]]) -> None:
        if any(self.keys.customers.key(row["customerId"]) is None for row in rows):
            for customer in await self._all("customer", []):
                self.keys.customers.learn(customer["customerNumber"], customer["internalId"])

    # legal entities, periods

    async def list_legal_entities(self, *, cursor: str | None, limit: int) -> Page[LegalEntity]:
        rows, next_cursor = await self._page("subsidiary", [], cursor, limit)
        return Page(items=[legal_entity_from_vendor(r) for r in rows], next_cursor=next_cursor)

    async def list_accounting_periods(self, *, legal_entity_id: str | None, period: str | None,
                                      cursor: str | None, limit: int) -> Page[AccountingPeriod]:
        conditions = [f"periodname = {quoted(period_name(period))}"] if period else []
        if legal_entity_id is not None:
            condition = await self._subsidiary_condition("custrecord_psg_subsidiary", legal_entity_id) if (
                is_canonical("legal_entity", legal_entity_id)) else None
            if condition is None:
                return Page(items=[])
            conditions.append(condition)
        rows, next_cursor = await self._page("accountingPeriod", conditions, cursor, limit)
        return Page(items=[period_from_vendor(r) for r in rows], next_cursor=next_cursor)

    # customers

    async def _customer_row(self, number: str) -> dict[str, Any] | None:
        row = await self._first("customer", [f"entityid = {quoted(number)}"])
        if row is not None:
            self.keys.customers.learn(row["customerNumber"], row["internalId"])
        return row

    async def _customer_internal_id(self, customer_id: str, pointer: str) -> int:
        number = reference("customer", customer_id, pointer)
        found = self.keys.customers.vendor_id(number)
        if found is None:
            row = await self._customer_row(number)
            if row is None:
                raise unknown_reference("customer", customer_id, pointer)
            found = row["internalId"]
        return int(found)

    async def list_customers(self, *, name: str | None, cursor: str | None, limit: int) -> Page[Customer]:
        conditions = [f"LOWER(companyname) LIKE {quoted('%' + name.lower() + '%')}"] if name else []
        rows, next_cursor = await self._page("customer", conditions, cursor, limit)
        for row in rows:
            self.keys.customers.learn(row["customerNumber"], row["internalId"])
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
            return await self._first("customer", [f"externalid = {quoted(body['externalCrmId'])}"])
        return None

    async def upsert_customer(self, data: CustomerCreate, idempotency_key: str | None) -> tuple[Customer, bool]:
        body = customer_to_vendor(data)
        existing = await self._existing_customer(body)
        if existing is not None:
            return customer_from_vendor(existing), False
        try:
            created = await self._create("customer", body)
        except Refused as exc:
            existing = await self._existing_customer(body) if exc.has("DUP_RCRD") else None
            if existing is None:  # created meanwhile by a concurrent request: the upsert answers that one
                raise exc.problem(CUSTOMER_FIELDS, "customer") from exc
            return customer_from_vendor(existing), False
        self.keys.customers.learn(created["customerNumber"], created["internalId"])
        return customer_from_vendor(created), True

    # contracts

    async def _contract_row(self, contract_id: str) -> dict[str, Any]:
        row = await self._first("customrecord_psg_contract",
                                [f"name = {quoted(to_business_key('contract', contract_id))}"])
        if row is None:
            raise NotFound(f"no contract {contract_id!r}", slug="unknown-id")
        return row

    async def _contract(self, fields: dict[str, Any]) -> Contract:
        await self._know_customers([fields])
        return contract_from_vendor(fields, self.keys)

    async def list_contracts(self, *, customer_id: str | None, status: ContractStatus | None, cursor: str | None,
                             limit: int) -> Page[Contract]:
        conditions = [f"custrecord_psg_contract_status = {quoted(CONTRACT_STATUS_VENDOR[status])}"] if status else []
        if customer_id is not None:
            internal = None
            if is_canonical("customer", customer_id):
                row = await self._customer_row(to_business_key("customer", customer_id))
                internal = row["internalId"] if row else None
            if internal is None:
                return Page(items=[])
            conditions.append(f"custrecord_psg_customer = {internal}")
        rows, next_cursor = await self._page("customrecord_psg_contract", conditions, cursor, limit)
        records = await self._records("customrecord_psg_contract", rows)
        await self._know_customers(records)
        return Page(items=[contract_from_vendor(r, self.keys) for r in records], next_cursor=next_cursor)

    async def get_contract(self, contract_id: str) -> Contract:
        row = await self._contract_row(contract_id)
        return await self._contract(await self._record("customrecord_psg_contract", row["internalId"]))

    async def upsert_contract(self, data: ContractCreate, idempotency_key: str | None) -> tuple[Contract, bool]:
        number = reference("contract", data.id, "/id") if data.id is not None else None
        if number is not None:
            found = await self._first("customrecord_psg_contract", [f"name = {quoted(number)}"])
            if found is not None:
                return await self._contract(await self._record("customrecord_psg_contract", found["internalId"])), False
        values = without_revenue_terms({name: getattr(data, name) for name in data.__struct_fields__})
        body = {
            "customerId": await self._customer_internal_id(data.customer_id, "/customer_id"),
            "subsidiaryCode": reference("legal_entity", data.legal_entity_id, "/legal_entity_id"),
            **contract_terms_to_vendor(values, data.currency),
        }
        if number is not None:
            body["contractNumber"] = number
        try:
            return await self._contract(await self._create("customrecord_psg_contract", body)), True
        except Refused as exc:
            if exc.has("DUP_RCRD") and number is not None:
                found = await self._first("customrecord_psg_contract", [f"name = {quoted(number)}"])
                if found is not None:
                    return await self._contract(await self._record("customrecord_psg_contract",
                                                                   found["internalId"])), False
            raise exc.problem(CONTRACT_FIELDS, "contract") from exc

    async def update_contract(self, contract_id: str, changes: dict[str, object]) -> Contract:
        row = await self._contract_row(contract_id)
        try:
            updated = await self._update("customrecord_psg_contract", row["internalId"],
                                         contract_terms_to_vendor(without_revenue_terms(changes), row["currency"]))
        except Refused as exc:
            if exc.has("INVALID_STATUS_CHANGE"):
                raise Conflict(f"{VENDOR} refused the change", slug="invalid-transition",
                               from_state=CONTRACT_STATUS.get(row["contractStatus"]),
                               to_state=changes.get("status")) from exc
            raise exc.problem(CONTRACT_FIELDS, "contract") from exc
        return await self._contract(updated)

    # project dimensions

    async def list_project_dimensions(self, *, project_id: str | None, cursor: str | None,
                                      limit: int) -> Page[ProjectDimension]:
        conditions = []
        if project_id is not None:
            if not is_canonical("project", project_id):
                return Page(items=[])
            conditions.append(f"custrecord_psg_project_code = {quoted(to_business_key('project', project_id))}")
        rows, next_cursor = await self._page("customrecord_psg_project_dimension", conditions, cursor, limit)
        return Page(items=[dimension_from_vendor(r) for r in rows], next_cursor=next_cursor)

    async def upsert_project_dimension(self, data: ProjectDimensionCreate) -> tuple[ProjectDimension, bool]:
        body = dimension_to_vendor(data)
        try:
            return dimension_from_vendor(await self._create("customrecord_psg_project_dimension", body)), True
        except Refused as exc:
            if not exc.has("DUP_RCRD"):
                raise exc.problem(DIMENSION_FIELDS, "dimension") from exc
        existing = await self._first("customrecord_psg_project_dimension",
                                     [f"custrecord_psg_project_code = {quoted(body['projectCode'])}"])
        if existing is not None and existing["dimensionCode"] == body["dimensionCode"] and existing[
                "subsidiaryCode"] == body["subsidiaryCode"]:
            return dimension_from_vendor(existing), False
        raise Conflict("the project already has another dimension, or the code belongs to another project",
                       slug="dimension-conflict", existing=msgspec.to_builtins(dimension_from_vendor(existing))
                       if existing else None)

    # postings

    async def _posting_for_source(self, source_type: str, source_ref: str) -> dict[str, Any] | None:
        rows = await self._all("customrecord_psg_posting",
                               [f"custrecord_psg_source_document_id = {quoted(source_ref)}",
                                f"custrecord_psg_source_document_type = {quoted(source_type)}"])
        return next((r for r in rows if not r.get("reversesInternalId")), None)

    async def create_posting(self, data: PostingCreate) -> tuple[Posting, bool]:
        body = posting_to_vendor(data)
        try:
            created = await self._create("customrecord_psg_posting", body,
                                         retry_key=f"{body['sourceDocumentType']}:{body['sourceDocumentId']}")
        except Refused as exc:
            existing = await self._posting_for_source(body["sourceDocumentType"], body["sourceDocumentId"]) if (
                exc.has("DUP_RCRD")) else None
            if existing is None:
                raise exc.problem(POSTING_FIELDS, "posting") from exc
            return posting_from_vendor(existing), False
        return posting_from_vendor(created), True

    async def create_postings(self, items: list[PostingCreate]) -> list[PostingBatchItem]:
        """Each posting created on its own (NetSuite creates no records in bulk; a refused one is refused alone),
        then the new records read back together: one SuiteQL range of internal ids, not one GET per record."""
        await self._subsidiaries()

        async def create(item: PostingCreate) -> PostingBatchItem | str:
            try:
                body = posting_to_vendor(item)
                return await self._create_only(
                    "customrecord_psg_posting", to_netsuite("customrecord_psg_posting", body, self._subsidiary_ids),
                    retry_key=f"{body['sourceDocumentType']}:{body['sourceDocumentId']}")
            except Refused as exc:
                existing = await self._posting_for_source(body["sourceDocumentType"], body["sourceDocumentId"]) if (
                    exc.has("DUP_RCRD")) else None
                if existing is None:
                    return rejected(item, exc.problem(POSTING_FIELDS, "posting"))
                return PostingBatchItem(source_id=item.source_id, status="existing",
                                        posting=posting_from_vendor(existing))
            except ProblemError as exc:  # one bad item does not sink the batch
                if exc.status >= 500:
                    raise
                return rejected(item, exc)

        outcomes = await asyncio.gather(*(create(item) for item in items))
        new_ids = [int(o) for o in outcomes if isinstance(o, str) and o.isdigit()]
        rows = {}
        if new_ids:
            for row in await self._all("customrecord_psg_posting", [f"id >= {min(new_ids)}", f"id <= {max(new_ids)}"]):
                rows[str(row["internalId"])] = row
        answers = []
        for item, outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, PostingBatchItem):
                answers.append(outcome)
                continue
            row = rows.get(outcome) or await self._record("customrecord_psg_posting", outcome)
            answers.append(PostingBatchItem(source_id=item.source_id, status="created",
                                            posting=posting_from_vendor(row)))
        return answers

    async def reverse_posting(self, posting_id: str, on: dt.date) -> tuple[Posting, bool]:
        internal_id = to_business_key("posting", posting_id).removeprefix("JE-")
        if not internal_id.isdigit():
            raise NotFound(f"no posting {posting_id!r}", slug="unknown-id")
        body = {"reversesInternalId": int(internal_id), "transactionDate": on.isoformat()}
        try:
            return posting_from_vendor(await self._create("customrecord_psg_posting", body,
                                                          retry_key=f"reversal:{internal_id}")), True
        except Refused as exc:
            if exc.status == 404:
                raise NotFound(f"no posting {posting_id!r}", slug="unknown-id") from exc
            if exc.has("IS_REVERSAL"):
                raise Conflict(f"{VENDOR} refused the change: a reversal is not reversed", downstream=VENDOR) from exc
            if not exc.has("DUP_RCRD"):
                raise exc.problem({"transactionDate": "/on"}, "posting") from exc
        existing = await self._first("customrecord_psg_posting", [f"custrecord_psg_reverses = {int(internal_id)}"])
        if existing is None:
            raise NotFound(f"no posting {posting_id!r}", slug="unknown-id")
        return posting_from_vendor(existing), False

    async def list_postings(self, filters: PostingFilter, *, cursor: str | None, limit: int) -> Page[Posting]:
        conditions = []
        if filters.from_date:
            conditions.append(f"custrecord_psg_transaction_date >= TO_DATE('{filters.from_date.isoformat()}', "
                              "'YYYY-MM-DD')")
        if filters.to_date:
            conditions.append(f"custrecord_psg_transaction_date <= TO_DATE('{filters.to_date.isoformat()}', "
                              "'YYYY-MM-DD')")
        references: tuple[tuple[str | None, Kind, str], ...] = (
            (filters.project_id, "project", "custrecord_psg_project_code"),
            (filters.contract_id, "contract", "custrecord_psg_contract_number"))
        for value, kind, column in references:
            if value is not None:
                if not is_canonical(kind, value):
                    return Page(items=[])
                conditions.append(f"{column} = {quoted(to_business_key(kind, value))}")
        if filters.source_id is not None:
            source_kind = next((k for k in SOURCE_KINDS.values() if is_canonical(k, filters.source_id)), None)
            source = to_business_key(source_kind, filters.source_id) if source_kind else filters.source_id
            conditions.append(f"custrecord_psg_source_document_id = {quoted(source)}")
        rows, next_cursor = await self._page("customrecord_psg_posting", conditions, cursor, limit)
        return Page(items=[posting_from_vendor(r) for r in rows], next_cursor=next_cursor)

    # invoices

    async def _invoice_row(self, invoice_id: str) -> dict[str, Any]:
        row = await self._first("invoice", [f"tranid = {quoted(to_business_key('invoice', invoice_id))}"])
        if row is None:
            raise NotFound(f"no invoice {invoice_id!r}", slug="unknown-id")
        return row

    async def _invoice(self, fields: dict[str, Any]) -> Invoice:
        await self._know_customers([fields])
        return invoice_from_vendor(fields, self.keys)

    def _validation(self, exc: Refused) -> ProblemError:
        if exc.status != 400:
            return exc.problem({}, "invoice")
        fields = [(path, code, detail) for path, code, detail in exc.details]
        return validation_problem(VENDOR, [(path, detail) for path, _, detail in fields], line_field_map(fields))

    async def create_invoice(self, data: InvoiceCreate, idempotency_key: str | None) -> Invoice:
        body: dict[str, Any] = {
            "customerId": await self._customer_internal_id(data.customer_id, "/customer_id"),
            "contractNumber": reference("contract", data.contract_id, "/contract_id"),
            "subsidiaryCode": reference("legal_entity", data.legal_entity_id, "/legal_entity_id"),
            "currencyCode": data.currency, "periodName": period_name(data.period) if data.period else None,
            "lines": invoice_lines_to_vendor(data.lines, data.currency),
        }
        if data.tax_lines:
            body["taxLines"] = tax_lines_to_vendor(data.tax_lines, data.currency)
        if idempotency_key:
            body["externalId"] = idempotency_key  # the tenant refuses a second invoice with it (DUP_RCRD)
        try:
            return await self._invoice(await self._create("invoice", body, retry_key=idempotency_key))
        except Refused as exc:
            if exc.has("DUP_RCRD") and idempotency_key:
                return await self._invoice(await self._record("invoice", f"eid:{idempotency_key}"))
            raise self._validation(exc) from exc

    async def _approve(self, invoice_id: str, approval: str, to_state: InvoiceState) -> Invoice:
        row = await self._invoice_row(invoice_id)
        try:
            await self._send("PATCH", f"{RECORD}/invoice/{row['internalId']}", "invoice",
                             json_body={"approvalStatus": {"id": approval}})
        except Refused as exc:
            if exc.has("INVALID_STATUS_CHANGE"):
                state = INVOICE_STATE.get(row["status"], row["status"])
                verb = "posted" if to_state == "posted" else "voided"
                raise Conflict(f"a {state} invoice cannot be {verb}", slug="invalid-transition",
                               from_state=state, to_state=to_state) from exc
            raise exc.problem({}, "invoice") from exc
        return await self._invoice(await self._record("invoice", row["internalId"]))

    async def post_invoice(self, invoice_id: str) -> Invoice:
        return await self._approve(invoice_id, APPROVE, "posted")

    async def void_invoice(self, invoice_id: str) -> Invoice:
        return await self._approve(invoice_id, REJECT, "void")

    async def get_invoice(self, invoice_id: str) -> Invoice:
        row = await self._invoice_row(invoice_id)
        return await self._invoice(await self._record("invoice", row["internalId"]))

    async def credit_invoice(self, invoice_id: str, data: CreditNoteCreate, idempotency_key: str | None
                             ) -> CreditNote:
        row = await self._invoice_row(invoice_id)
        body: dict[str, Any] = {"lines": invoice_lines_to_vendor(data.lines, row["currencyCode"])}
        if idempotency_key:
            body["externalId"] = idempotency_key
        try:
            created = await self._create("creditMemo", body, path=f"{RECORD}/invoice/{row['internalId']}"
                                                                  "/!transform/creditMemo", retry_key=idempotency_key)
        except Refused as exc:
            if exc.has("DUP_RCRD") and idempotency_key:
                return credit_note_from_vendor(await self._record("creditMemo", f"eid:{idempotency_key}"))
            if exc.has("INVALID_STATUS_CHANGE"):
                raise Conflict(f"a {INVOICE_STATE.get(row['status'], row['status'])} invoice is not credited",
                               slug="invalid-transition", state=INVOICE_STATE.get(row["status"])) from exc
            raise self._validation(exc) from exc
        return credit_note_from_vendor(created)

    async def list_credit_notes(self, *, invoice_id: str | None, cursor: str | None,
                                limit: int) -> Page[CreditNote]:
        conditions = []
        if invoice_id is not None:
            if not is_canonical("invoice", invoice_id):
                return Page(items=[])
            conditions.append(f"custbody_psg_invoice_number = {quoted(to_business_key('invoice', invoice_id))}")
        rows, next_cursor = await self._page("creditMemo", conditions, cursor, limit)
        return Page(items=[credit_note_from_vendor(r) for r in await self._records("creditMemo", rows)],
                    next_cursor=next_cursor)

    async def list_invoices(self, *, contract_id: str | None, state: InvoiceState | None, period: str | None,
                            cursor: str | None, limit: int) -> Page[Invoice]:
        conditions = []
        if state:
            conditions.append(f"status = {quoted(STATUS_VENDOR[INVOICE_STATE_VENDOR[state]])}")
        if period:
            conditions.append(f"custbody_psg_period_name = {quoted(period_name(period))}")
        if contract_id is not None:
            if not is_canonical("contract", contract_id):
                return Page(items=[])
            conditions.append(f"custbody_psg_contract_number = {quoted(to_business_key('contract', contract_id))}")
        rows, next_cursor = await self._page("invoice", conditions, cursor, limit)
        records = await self._records("invoice", rows)
        await self._know_customers(records)
        return Page(items=[invoice_from_vendor(r, self.keys) for r in records], next_cursor=next_cursor)

    # revenue

    async def list_revenue_schedules(self, *, contract_id: str | None, period: str | None, cursor: str | None,
                                     limit: int) -> Page[RevenueSchedule]:
        conditions = [f"custrecord_psg_period_name = {quoted(period_name(period))}"] if period else []
        if contract_id is not None:
            if not is_canonical("contract", contract_id):
                return Page(items=[])
            conditions.append(f"custrecord_psg_contract_number = {quoted(to_business_key('contract', contract_id))}")
        rows, next_cursor = await self._page("customrecord_psg_revenue_schedule", conditions, cursor, limit)
        return Page(items=[revenue_from_vendor(r) for r in rows], next_cursor=next_cursor)

    async def create_revenue_schedule(self, schedule: RevenueScheduleCreate) -> tuple[RevenueSchedule, bool]:
        body: dict[str, Any] = {"contractNumber": reference("contract", schedule.contract_id, "/contract_id"),
                "periodName": period_name(schedule.period),
                "recognizedAmountMinor": to_minor(schedule.recognized_amount, schedule.currency, "/recognized_amount"),
                "currencyCode": schedule.currency, "recognitionMethod": REVENUE_METHOD_VENDOR[schedule.method]}
        try:
            return revenue_from_vendor(await self._create("customrecord_psg_revenue_schedule", body)), True
        except Refused as exc:
            if not exc.has("DUP_RCRD"):
                raise exc.problem(REVENUE_FIELDS, "revenue schedule") from exc
        found = await self._first("customrecord_psg_revenue_schedule", [
            f"custrecord_psg_contract_number = {quoted(body['contractNumber'])}",
            f"custrecord_psg_period_name = {quoted(body['periodName'])}"])
        if found is None:
            raise Conflict(f"{schedule.period} of {schedule.contract_id} is recognised already",
                           slug="already-recognized")
        existing = revenue_from_vendor(found)
        if existing.recognized_amount != schedule.recognized_amount:
            raise Conflict(f"{schedule.period} of {schedule.contract_id} is recognised already at "
                           f"{existing.recognized_amount} {existing.currency}", slug="already-recognized",
                           existing_id=existing.id)
        return existing, False
