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

What is the same for every vendor (the canonical mapping steps, the upserts that answer the record already there,
the posting, invoice, credit note and revenue flows, refusals as canonical problems) is ``connectors/flows.py``'s;
this module is the vendor's dialect: its wire, its entity and property names, its filter language.

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
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from contracts.canonical import (
    Contract,
    CreditNote,
    Invoice,
    InvoiceState,
    RevenueTerms,
)
from runtime import cursors
from runtime.problems import FieldError, NotFound, ProblemError, Unprocessable
from system_apis.erp.connectors.flows import ErpFlows, VendorRefusal, json_amount, json_number, minor_units, rejected
from system_apis.erp.connectors.sandbox import (
    POSTING_FIELDS,
    contract_from_vendor,
    credit_note_from_vendor,
    invoice_from_vendor,
    posting_from_vendor,
    posting_to_vendor,
)
from system_apis.erp.models import (
    PostingBatchItem,
    PostingCreate,
)
from system_apis.ids import is_canonical, reference, to_business_key, unknown_reference
from system_apis.vendor_auth import NetSuiteM2mToken

VENDOR = "netsuite"
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"  # noqa: S105 - the vendor's token endpoint, not a secret
RECORD = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"
PAGE_MAX = 1000
STATUS = {"pendingApproval": "DRAFT", "open": "POSTED", "paidInFull": "PAID", "rejected": "VOID"}
STATUS_VENDOR = {engine: code for code, engine in STATUS.items()}
APPROVE, REJECT = "2", "3"


# --- the tenant's record schema (as sandbox/netsuite.py documents it) ---------------------------------------------


def without_revenue_terms(values: dict[str, object]) -> dict[str, object]:
    """The tenant's contract record has no revenue recognition fields: straight line (the default) is all it
    keeps, and anything else is refused rather than dropped."""
    terms = values.pop("revenue_terms", None)
    if isinstance(terms, RevenueTerms) and terms != RevenueTerms():
        raise Unprocessable(
            "the NetSuite connector keeps no revenue terms: a fixed fee is recognised straight line",
            slug="not-supported",
            errors=[FieldError(pointer="/revenue_terms", detail="not kept by this ERP")],
        )
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


SCHEDULE_LINE = Schema(
    "",
    {
        "lineNo": ("line", ""),
        "amountMinor": ("amount", "money"),
        "periodName": ("periodName", ""),
        "billingDate": ("billingDate", ""),
        "percentComplete": ("percentComplete", "number"),
        "memo": ("memo", ""),
    },
)
ITEM_LINE = Schema(
    "",
    {
        "lineNo": ("line", ""),
        "description": ("description", ""),
        "quantity": ("quantity", "number"),
        "unitPriceMinor": ("rate", "money"),
        "amountMinor": ("amount", "money"),
        "sourceType": ("custcol_psg_source_type", ""),
        "sourceRefs": ("custcol_psg_source_refs", "refs"),
        "durationMinutes": ("custcol_psg_duration_minutes", "int"),
    },
)
TAX_LINE = Schema(
    "",
    {
        "taxCode": ("taxCode", ""),
        "jurisdiction": ("custcol_psg_jurisdiction", ""),
        "ratePercent": ("taxRate", "number"),
        "taxableMinor": ("taxBasis", "money"),
        "taxMinor": ("taxAmount", "money"),
        "exemptionText": ("custcol_psg_exemption_text", ""),
    },
)
LINES = {"schedule": SCHEDULE_LINE, "item": ITEM_LINE, "tax": TAX_LINE}
SCHEMAS: dict[str, Schema] = {
    "subsidiary": Schema(
        "custrecord",
        {
            "internalId": ("id", "id"),
            "subsidiaryCode": ("externalId", ""),
            "legalName": ("legalName", ""),
            "country": ("country", ""),
            "baseCurrency": ("currency", ""),
            "federalTaxId": ("federalIdNumber", ""),
            "vatRegNumber": ("custrecord_psg_vat_reg_number", ""),
            "peppolId": ("custrecord_psg_peppol_id", ""),
            "vatRatePercent": ("custrecord_psg_vat_rate", "number"),
        },
    ),
    "accountingPeriod": Schema(
        "custrecord",
        {
            "internalId": ("id", "id"),
            "periodName": ("periodName", ""),
            "status": ("closed", "closed"),
            "startDate": ("startDate", ""),
            "endDate": ("endDate", ""),
            "subsidiaryCode": ("custrecord_psg_subsidiary", "sub"),
        },
    ),
    "customer": Schema(
        "custentity",
        {
            "internalId": ("id", "id"),
            "customerNumber": ("entityId", ""),
            "companyName": ("companyName", ""),
            "currency": ("currency", ""),
            "subsidiaryCode": ("subsidiary", "sub"),
            "externalCrmId": ("externalId", ""),
            "vatRegNumber": ("vatRegNumber", ""),
            "taxRegion": ("custentity_psg_tax_region", ""),
            "billingAddress": ("custentity_psg_billing_address", "object"),
            "peppolId": ("custentity_psg_peppol_id", ""),
        },
    ),
    "customrecord_psg_contract": Schema(
        "custrecord",
        {
            "internalId": ("id", "id"),
            "contractNumber": ("name", ""),
            "customerId": ("custrecord_psg_customer", "ref:customer"),
            "subsidiaryCode": ("custrecord_psg_subsidiary", "sub"),
            "billingSchedule": ("custrecord_psg_billing_schedule", "sublist:schedule"),
            **_custom(
                "custrecord",
                (
                    "description",
                    "currency",
                    "billingMethod",
                    "nteAmountMinor",
                    "startDate",
                    "endDate",
                    "contractStatus",
                    "rateScheduleCode",
                    "invoiceFrequency",
                    "paymentTerms",
                    "scheduledAmountMinor",
                    "contractValueMinor",
                    "retainerHours",
                    "unusedHoursPolicy",
                    "expenseMarkupPct",
                ),
                numbers=("retainerHours",),
            ),
            "revision": ("custrecord_psg_revision", "int"),
        },
    ),
    "customrecord_psg_project_dimension": Schema(
        "custrecord",
        {
            "internalId": ("id", "id"),
            "dimensionCode": ("name", ""),
            "subsidiaryCode": ("custrecord_psg_subsidiary", "sub"),
            "projectCode": ("custrecord_psg_project_code", ""),
        },
    ),
    "customrecord_psg_posting": Schema(
        "custrecord",
        {
            "internalId": ("id", "id"),
            "postingNumber": ("name", ""),
            "subsidiaryCode": ("custrecord_psg_subsidiary", "sub"),
            "reversesInternalId": ("custrecord_psg_reverses", "ref:customrecord_psg_posting"),
            "durationMinutes": ("custrecord_psg_duration_minutes", "int"),  # time's whole minutes (integer field)
            **_custom(
                "custrecord",
                (
                    "sourceDocumentType",
                    "sourceDocumentId",
                    "projectCode",
                    "contractNumber",
                    "transactionDate",
                    "quantity",
                    "amountMinor",
                    "currencyCode",
                    "postingStatus",
                    "postedAt",
                    "reversesPostingNumber",
                ),
                numbers=("quantity",),
            ),
        },
    ),
    "invoice": Schema(
        "custbody",
        {
            "internalId": ("id", "id"),
            "invoiceNumber": ("tranId", ""),
            "customerId": ("entity", "ref:customer"),
            "subsidiaryCode": ("subsidiary", "sub"),
            "currencyCode": ("currency", ""),
            "invoiceDate": ("tranDate", ""),
            "status": ("status", "status"),
            "lines": ("item", "sublist:item"),
            "taxLines": ("taxDetails", "sublist:tax"),
            "subtotalMinor": ("subtotal", "money"),
            "taxMinor": ("taxTotal", "money"),
            "totalMinor": ("total", "money"),
            "externalId": ("externalId", ""),
            "contractNumber": ("custbody_psg_contract_number", ""),
            "periodName": ("custbody_psg_period_name", ""),
        },
    ),
    "creditMemo": Schema(
        "custbody",
        {
            "internalId": ("id", "id"),
            "creditMemoNumber": ("tranId", ""),
            "invoiceId": ("createdFrom", "ref:invoice"),
            "invoiceNumber": ("custbody_psg_invoice_number", ""),
            "subsidiaryCode": ("subsidiary", "sub"),
            "currencyCode": ("currency", ""),
            "memoDate": ("tranDate", ""),
            "status": ("status", "status"),
            "lines": ("item", "sublist:item"),
            "subtotalMinor": ("subtotal", "money"),
            "taxMinor": ("taxTotal", "money"),
            "totalMinor": ("total", "money"),
            "externalId": ("externalId", ""),
        },
    ),
    "customrecord_psg_revenue_schedule": Schema(
        "custrecord",
        {
            "internalId": ("id", "id"),
            "scheduleNumber": ("name", ""),
            **_custom(
                "custrecord",
                ("contractNumber", "periodName", "recognizedAmountMinor", "currencyCode", "recognitionMethod"),
            ),
        },
    ),
}
TABLES = {"invoice": ("transaction", "type = 'CustInvc'"), "creditMemo": ("transaction", "type = 'CustCred'")}


def _from_netsuite(conversion: str, value: Any, subsidiaries: dict[str, str]) -> Any:
    """One NetSuite value (record JSON or SuiteQL text) in our fields' terms."""
    if conversion in ("id", "int"):
        return int(value)
    if conversion == "money":
        return minor_units(value)
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
        return [
            {
                reverse[name][0]: _from_netsuite(reverse[name][1], v, subsidiaries)
                for name, v in line.items()
                if name in reverse
            }
            for line in value.get("items", [])
        ]
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
        return json_amount(value)
    if conversion == "number" and isinstance(value, str):
        return json_number(value)
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
        return {
            "items": [
                {schema.name(k)[0]: _to_netsuite(schema.name(k)[1], v, subsidiary_ids) for k, v in line.items()}
                for line in value
            ]
        }
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


class Refused(VendorRefusal):
    """NetSuite's 4xx: status and (our field path, error code, detail) per ``o:errorDetails`` entry."""

    vendor = VENDOR
    closed_period = ("PERIOD_CLOSED",)


# --- the adapter -----------------------------------------------------------------------------------------------


class NetSuiteErp(ErpFlows):
    VENDOR = VENDOR
    SETS = {
        "legal_entity": "subsidiary",
        "period": "accountingPeriod",
        "customer": "customer",
        "contract": "customrecord_psg_contract",
        "dimension": "customrecord_psg_project_dimension",
        "posting": "customrecord_psg_posting",
        "invoice": "invoice",
        "credit_note": "creditMemo",
        "revenue": "customrecord_psg_revenue_schedule",
    }
    FIELDS = {
        "period.name": "periodname",
        "customer.number": "entityid",
        "customer.name": "companyname",
        "customer.crm": "externalid",
        "contract.number": "name",
        "contract.status": "custrecord_psg_contract_status",
        "dimension.project": "custrecord_psg_project_code",
        "posting.source": "custrecord_psg_source_document_id",
        "posting.source_type": "custrecord_psg_source_document_type",
        "posting.reverses": "custrecord_psg_reverses",
        "posting.date": "custrecord_psg_transaction_date",
        "posting.project": "custrecord_psg_project_code",
        "posting.contract": "custrecord_psg_contract_number",
        "invoice.number": "tranid",
        "invoice.state": "status",
        "invoice.period": "custbody_psg_period_name",
        "invoice.contract": "custbody_psg_contract_number",
        "credit_note.invoice": "custbody_psg_invoice_number",
        "revenue.contract": "custrecord_psg_contract_number",
        "revenue.period": "custrecord_psg_period_name",
    }
    INVOICE_STATUS = STATUS_VENDOR
    DUPLICATE = ("DUP_RCRD",)
    WRONG_STATE = ("INVALID_STATUS_CHANGE",)
    IS_REVERSAL = ("IS_REVERSAL",)
    REVERSES = "reversesInternalId"
    refused = Refused
    GRANT = NetSuiteM2mToken
    TOKEN_PATH = TOKEN_PATH

    def __init__(self, base_url: str, timeout_seconds: float, **options: Any) -> None:
        super().__init__(base_url, timeout_seconds, **options)
        self._subsidiary_ids: dict[str, str] = {}  # code -> internal id

    # the wire

    async def _send(
        self,
        method: str,
        path: str,
        record_type: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        retry_key: str | None = None,
    ) -> tuple[dict[str, str], Any]:
        reply = await self._vendor.request(
            method,
            path,
            params=params,
            json=json_body,
            headers=headers,
            idempotency_key=retry_key,
            reads_only=path == SUITEQL,
            allow_statuses=frozenset(range(400, 500)),
        )
        body = json.loads(reply.content, parse_float=Decimal) if reply.content else None
        if reply.status_code >= 400:
            details = body.get("o:errorDetails") if isinstance(body, dict) else None
            refused = [
                (our_path(record_type, d.get("o:errorPath")), str(d.get("o:errorCode", "")), str(d.get("detail", "")))
                for d in details or []
                if isinstance(d, dict)
            ]
            raise Refused(reply.status_code, "; ".join(d for _, _, d in refused), refused)
        return reply.headers, body

    async def _subsidiaries(self) -> dict[str, str]:
        """Subsidiary internal id -> code (three rows, read once: references name subsidiaries by id)."""
        if not self._subsidiary_ids:
            _, body = await self._send(
                "POST",
                SUITEQL,
                "subsidiary",
                params={"limit": PAGE_MAX, "offset": 0},
                json_body={"q": "SELECT id, externalid FROM subsidiary"},
                headers={"Prefer": "transient"},
            )
            self._subsidiary_ids = {row["externalid"]: row["id"] for row in body["items"]}
        return {ident: code for code, ident in self._subsidiary_ids.items()}

    async def _query(
        self, record_type: str, conditions: list[str], offset: int, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One SuiteQL page in our fields, and the offset of the next page (from ``rel: next``) if there is one."""
        table, *fixed = TABLES.get(record_type, (record_type.lower(),))
        where = " AND ".join([*fixed, *conditions])
        # SuiteQL text for the vendor, not SQL run here; every literal in it went through ``quoted``.
        query = f"SELECT * FROM {table}" + (f" WHERE {where}" if where else "") + " ORDER BY id"  # noqa: S608
        subsidiaries = await self._subsidiaries()
        _, body = await self._send(
            "POST",
            SUITEQL,
            record_type,
            params={"limit": limit, "offset": offset},
            json_body={"q": query},
            headers={"Prefer": "transient"},
        )
        rows = [from_netsuite(record_type, row, subsidiaries) for row in body["items"]]
        following = None
        if body.get("hasMore"):
            following = next(
                (
                    int(parse_qs(urlsplit(link["href"]).query)["offset"][0])
                    for link in body["links"]
                    if link.get("rel") == "next"
                ),
                offset + len(rows),
            )
        return rows, following

    async def _page(
        self, record_type: str, conditions: list[str], cursor: str | None, limit: int
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
        _, body = await self._send(
            "GET", f"{RECORD}/{record_type}/{ident}", record_type, params={"expandSubResources": "true"}
        )
        return from_netsuite(record_type, body, await self._subsidiaries())

    async def _records(self, record_type: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The whole records (with sublists) behind SuiteQL rows, read side by side within the vendor's limits."""
        return list(await asyncio.gather(*(self._record(record_type, row["internalId"]) for row in rows)))

    async def _create(
        self, record_type: str, fields: dict[str, Any], retry_key: str | None = None, path: str | None = None
    ) -> dict[str, Any]:
        await self._subsidiaries()
        body = to_netsuite(record_type, fields, self._subsidiary_ids)
        return await self._record(record_type, await self._create_only(record_type, body, path, retry_key))

    async def _create_only(
        self, record_type: str, body: dict[str, Any], path: str | None = None, retry_key: str | None = None
    ) -> str:
        """The new record's internal id, from the ``Location`` of NetSuite's 204 (the record is not read back)."""
        headers, _ = await self._send(
            "POST", path or f"{RECORD}/{record_type}", record_type, json_body=body, retry_key=retry_key
        )
        return str(headers.get("location", "")).rstrip("/").rsplit("/", 1)[-1]

    async def _update(self, record_type: str, internal_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        await self._subsidiaries()
        await self._send(
            "PATCH",
            f"{RECORD}/{record_type}/{internal_id}",
            record_type,
            json_body=to_netsuite(record_type, fields, self._subsidiary_ids),
        )
        return await self._record(record_type, internal_id)

    async def _subsidiary_condition(self, column: str, legal_entity_id: str) -> str | None:
        await self._subsidiaries()
        ident = self._subsidiary_ids.get(to_business_key("legal_entity", legal_entity_id))
        return f"{column} = {ident}" if ident else None

    async def _know_customers(self, rows: Iterable[dict[str, Any]]) -> None:
        if any(self.keys.customers.key(row["customerId"]) is None for row in rows):
            for customer in await self._all("customer", []):
                self.keys.customers.learn(customer["customerNumber"], customer["internalId"])

    # the dialect (connectors/flows.py runs the flows over it)

    def eq(self, prop: str, value: str | int) -> str:
        return f"{prop} = {value if isinstance(value, int) else quoted(value)}"

    def is_null(self, prop: str) -> str:
        return f"{prop} IS NULL"

    def on_or_after(self, prop: str, day: dt.date) -> str:
        return f"{prop} >= TO_DATE('{day.isoformat()}', 'YYYY-MM-DD')"

    def on_or_before(self, prop: str, day: dt.date) -> str:
        return f"{prop} <= TO_DATE('{day.isoformat()}', 'YYYY-MM-DD')"

    def name_contains(self, prop: str, text: str) -> str:
        return f"LOWER({prop}) LIKE {quoted('%' + text.lower() + '%')}"

    async def _legal_entity_condition(self, legal_entity_id: str) -> str | None:
        if not is_canonical("legal_entity", legal_entity_id):
            return None
        return await self._subsidiary_condition("custrecord_psg_subsidiary", legal_entity_id)

    # customers: references name them by internal id, learnt as they are read

    def _seen_customers(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.keys.customers.learn(row["customerNumber"], row["internalId"])

    async def _customer_reference(self, customer_id: str, pointer: str) -> int:
        number = reference("customer", customer_id, pointer)
        found = self.keys.customers.vendor_id(number)
        if found is None:
            row = await self._customer_row(number)
            if row is None:
                raise unknown_reference("customer", customer_id, pointer)
            found = row["internalId"]
        return int(found)

    async def _customer_condition(self, customer_id: str) -> str | None:
        internal = None
        if is_canonical("customer", customer_id):
            row = await self._customer_row(to_business_key("customer", customer_id))
            internal = row["internalId"] if row else None
        return None if internal is None else f"custrecord_psg_customer = {internal}"

    # contracts and invoices: SuiteQL rows, read whole (with their sublists) from the record service

    def _contract_values(self, values: dict[str, object]) -> dict[str, object]:
        return without_revenue_terms(values)

    async def _contract_from(self, fields: dict[str, Any]) -> Contract:
        await self._know_customers([fields])
        return contract_from_vendor(fields, self.keys)

    async def _contract_of(self, row: dict[str, Any]) -> Contract:
        return await self._contract_from(await self._record("customrecord_psg_contract", row["internalId"]))

    async def _contracts(self, rows: list[dict[str, Any]]) -> list[Contract]:
        records = await self._records("customrecord_psg_contract", rows)
        await self._know_customers(records)
        return [contract_from_vendor(r, self.keys) for r in records]

    async def _write_contract(self, row: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        return await self._update("customrecord_psg_contract", row["internalId"], fields)

    async def _invoice_from(self, fields: dict[str, Any]) -> Invoice:
        await self._know_customers([fields])
        return invoice_from_vendor(fields, self.keys)

    async def _invoice_of(self, row: dict[str, Any]) -> Invoice:
        return await self._invoice_from(await self._record("invoice", row["internalId"]))

    async def _invoices(self, rows: list[dict[str, Any]]) -> list[Invoice]:
        records = await self._records("invoice", rows)
        await self._know_customers(records)
        return [invoice_from_vendor(r, self.keys) for r in records]

    async def _credit_notes(self, rows: list[dict[str, Any]]) -> list[CreditNote]:
        return [credit_note_from_vendor(r) for r in await self._records("creditMemo", rows)]

    async def _by_key(self, kind: str, idempotency_key: str) -> dict[str, Any] | None:
        return await self._record(self.SETS[kind], f"eid:{idempotency_key}")

    async def _send_transition(self, row: dict[str, Any], to_state: InvoiceState) -> None:
        approval = APPROVE if to_state == "posted" else REJECT
        await self._send(
            "PATCH", f"{RECORD}/invoice/{row['internalId']}", "invoice", json_body={"approvalStatus": {"id": approval}}
        )

    async def _reread_invoice(self, row: dict[str, Any]) -> dict[str, Any]:
        return await self._record("invoice", row["internalId"])

    async def _create_credit(self, row: dict[str, Any], body: dict[str, Any], retry_key: str | None) -> dict[str, Any]:
        path = f"{RECORD}/invoice/{row['internalId']}/!transform/creditMemo"
        return await self._create("creditMemo", body, retry_key=retry_key, path=path)

    # postings

    async def _reversal_key(self, posting_id: str) -> tuple[str | int, str]:
        internal_id = to_business_key("posting", posting_id).removeprefix("JE-")
        if not internal_id.isdigit():
            raise NotFound(f"no posting {posting_id!r}", slug="unknown-id")
        return int(internal_id), internal_id

    async def _posting_for_source(self, source_type: str, source_ref: str) -> dict[str, Any] | None:
        rows = await self._all(
            "customrecord_psg_posting",
            [
                f"custrecord_psg_source_document_id = {quoted(source_ref)}",
                f"custrecord_psg_source_document_type = {quoted(source_type)}",
            ],
        )
        return next((r for r in rows if not r.get("reversesInternalId")), None)

    async def create_postings(self, items: list[PostingCreate]) -> list[PostingBatchItem]:
        """Each posting created on its own (NetSuite creates no records in bulk; a refused one is refused alone),
        then the new records read back together: one SuiteQL range of internal ids, not one GET per record."""
        await self._subsidiaries()

        async def create(item: PostingCreate) -> PostingBatchItem | str:
            try:
                body = posting_to_vendor(item)
                return await self._create_only(
                    "customrecord_psg_posting",
                    to_netsuite("customrecord_psg_posting", body, self._subsidiary_ids),
                    retry_key=f"{body['sourceDocumentType']}:{body['sourceDocumentId']}",
                )
            except Refused as exc:
                existing = (
                    await self._posting_for_source(body["sourceDocumentType"], body["sourceDocumentId"])
                    if exc.has(*self.DUPLICATE)
                    else None
                )
                if existing is None:
                    return rejected(item, exc.problem(POSTING_FIELDS, "posting"))
                return PostingBatchItem(
                    source_id=item.source_id, status="existing", posting=posting_from_vendor(existing)
                )
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
            answers.append(
                PostingBatchItem(source_id=item.source_id, status="created", posting=posting_from_vendor(row))
            )
        return answers
