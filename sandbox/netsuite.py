"""Sandbox NetSuite: the demo firm's ERP behind NetSuite's REST web services, as Oracle documents them.

Follows the NetSuite Help Center, "SuiteTalk REST Web Services" (docs.oracle.com/en/cloud/saas/netsuite/
ns-online-help): the record service ``/services/rest/record/v1/<recordType>[/<id>]`` ("Creating a Record
Instance": POST answers 204 with the new record's URL in ``Location``; PATCH answers 204; GET answers the record
with ``links`` and, with ``expandSubResources=true``, its sublists as ``{"items": [...]}``; a collection GET lists
``{"links", "count", "hasMore", "items": [{"links", "id"}], "offset", "totalResults"}`` with ``rel: next``), record
transformation (``POST /invoice/<id>/!transform/creditMemo``), and SuiteQL ("Executing SuiteQL Queries Through
REST Web Services": ``POST /services/rest/query/v1/suiteql`` with ``Prefer: transient`` and ``{"q": ...}``,
``limit`` (at most 1000) and ``offset`` paging, rows with lower-case column names and string values, null
columns left out). Errors are RFC 9110 problem bodies with ``o:errorDetails`` ``[{"detail", "o:errorCode",
"o:errorPath"}]``; user errors (a duplicate is ``DUP_RCRD``) are 400. REST does not create records in bulk.

Authentication: OAuth 2.0 client credentials (machine to machine), "POST Request to the Token Endpoint": at
``/services/rest/auth/oauth2/v1/token`` ``grant_type=client_credentials``, ``client_assertion_type`` JWT bearer
and a ``client_assertion`` signed PS256 by the certificate mapped to the integration (header ``kid``: its
certificate id; claims ``iss`` the client id, ``scope`` including ``rest_webservices``, ``aud`` the token
endpoint, ``exp`` at most an hour after ``iat``). Limits: concurrency governance, a call past the account's limit
answered 429 with Retry-After.

What is imitated and what is not: native record types (``subsidiary``, ``accountingPeriod``, ``customer``,
``invoice``, ``creditMemo``) with their native field names where NetSuite has one (``entityId``, ``companyName``,
``subsidiary``, ``entity``, ``tranId``, ``tranDate``, ``createdFrom``, ``externalId``, ``approvalStatus``, the
``item`` and ``taxDetails`` sublists); what NetSuite holds only as customisation (contracts, project dimensions,
ledger postings of the PSA's time, revenue schedules) as custom records ``customrecord_psg_*`` and custom fields
``custentity_psg_*``, ``custbody_psg_*``, ``custcol_psg_*``, ``custrecord_psg_*``, as a tenant's SuiteCloud
customisation would define them. Currencies are named by ISO code, accounting periods carry the subsidiary they
are closed for, and dates are ISO 8601 (a tenant's "YYYY-MM-DD" date preference). Not imitated: SuiteQL joins,
functions other than ``LOWER`` and ``TO_DATE``, ``q`` filters on record collections, asynchronous requests.

Behind the wire the ledger is the sandbox ERP's (``sandbox/erp.py``): the same demo firm, the same rules (a
source posted once, closed periods refuse postings, an invoice credited at most for what it billed).
"""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from litestar import Litestar, Request, get, patch, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery
from litestar.response import Response

from sandbox import erp
from sandbox.store import DocumentStore
from sandbox.vendor_http import AuthConfig, AuthDialect, LimitDialect, VendorError, vendor_error_response

RECORD = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"  # noqa: S105 - the token endpoint's path, not a secret
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_LIMIT = 1000
CENT = Decimal("0.01")

# --- the record schema: the engine's field -> (NetSuite field, conversion) ---------------------------------------
# Conversions: "" as is; "id" integer internal id <-> string; "money" integer minor units <-> decimal number;
# "number" decimal text <-> number; "ref:<type>" internal id <-> {"id"}; "sub" subsidiary code <-> {"id", "refName"};
# "closed" "CLOSED"/"OPEN" <-> boolean; "status" invoice status <-> {"id", "refName"}; "refs" list <-> comma text;
# "sublist:<line schema>" list <-> {"items": [...]}. A field not listed becomes a custom field (<prefix>_psg_<name>,
# amounts in "...Minor" become decimal amounts without the suffix).


class Schema:
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


SCHEDULE_LINE = Schema("", {"lineNo": ("line", ""), "amountMinor": ("amount", "money"),
                            "periodName": ("periodName", ""), "billingDate": ("billingDate", ""),
                            "percentComplete": ("percentComplete", "number"), "memo": ("memo", "")})
ITEM_LINE = Schema("", {"lineNo": ("line", ""), "description": ("description", ""), "quantity": ("quantity", "number"),
                        "unitPriceMinor": ("rate", "money"), "amountMinor": ("amount", "money"),
                        "sourceType": ("custcol_psg_source_type", ""), "sourceRefs": ("custcol_psg_source_refs",
                            "refs"), "durationMinutes": ("custcol_psg_duration_minutes", "")})
TAX_LINE = Schema("", {"taxCode": ("taxCode", ""), "jurisdiction": ("custcol_psg_jurisdiction", ""),
                       "ratePercent": ("taxRate", "number"), "taxableMinor": ("taxBasis", "money"),
                       "taxMinor": ("taxAmount", "money"), "exemptionText": ("custcol_psg_exemption_text", "")})
LINES = {"schedule": SCHEDULE_LINE, "item": ITEM_LINE, "tax": TAX_LINE}

# recordType -> (engine kind, schema, fields known to the engine for SuiteQL and creation)
SCHEMAS: dict[str, tuple[str, Schema]] = {
    "subsidiary": ("subsidiary", Schema("custrecord", {
        "internalId": ("id", "id"), "subsidiaryCode": ("externalId", ""), "legalName": ("legalName", ""),
        "country": ("country", ""), "baseCurrency": ("currency", ""), "federalTaxId": ("federalIdNumber", ""),
        "vatRegNumber": ("custrecord_psg_vat_reg_number", ""), "peppolId": ("custrecord_psg_peppol_id", ""),
        "vatRatePercent": ("custrecord_psg_vat_rate", "number")})),
    "accountingPeriod": ("period", Schema("custrecord", {
        "internalId": ("id", "id"), "periodName": ("periodName", ""), "startDate": ("startDate", ""),
        "endDate": ("endDate", ""), "status": ("closed", "closed"),
        "subsidiaryCode": ("custrecord_psg_subsidiary", "sub")})),
    "customer": ("customer", Schema("custentity", {
        "internalId": ("id", "id"), "customerNumber": ("entityId", ""), "companyName": ("companyName", ""),
        "currency": ("currency", ""), "subsidiaryCode": ("subsidiary", "sub"), "externalCrmId": ("externalId", ""),
        "vatRegNumber": ("vatRegNumber", ""), "taxRegion": ("custentity_psg_tax_region", ""),
        "billingAddress": ("custentity_psg_billing_address", ""), "peppolId": ("custentity_psg_peppol_id", "")})),
    "customrecord_psg_contract": ("contract", Schema("custrecord", {
        "internalId": ("id", "id"), "contractNumber": ("name", ""), "customerId": ("custrecord_psg_customer",
                                                                                   "ref:customer"),
        "subsidiaryCode": ("custrecord_psg_subsidiary", "sub"),
        "billingSchedule": ("custrecord_psg_billing_schedule", "sublist:schedule"),
        **{field: Schema("custrecord", {}, numbers=("retainerHours",)).name(field) for field in (
            "description", "currency", "billingMethod", "nteAmountMinor", "startDate", "endDate", "contractStatus",
            "rateScheduleCode", "invoiceFrequency", "paymentTerms", "scheduledAmountMinor", "contractValueMinor",
            "retainerHours", "unusedHoursPolicy", "revision", "expenseMarkupPct")}})),
    "customrecord_psg_project_dimension": ("dimension", Schema("custrecord", {
        "internalId": ("id", "id"), "dimensionCode": ("name", ""), "subsidiaryCode": ("custrecord_psg_subsidiary",
            "sub"),
        "projectCode": ("custrecord_psg_project_code", "")})),
    "customrecord_psg_posting": ("posting", Schema("custrecord", {
        "internalId": ("id", "id"), "postingNumber": ("name", ""), "subsidiaryCode": ("custrecord_psg_subsidiary",
            "sub"),
        "reversesInternalId": ("custrecord_psg_reverses", "ref:customrecord_psg_posting"),
        "durationMinutes": ("custrecord_psg_duration_minutes", ""),  # an integer custom field: whole minutes
        **{field: Schema("custrecord", {}, numbers=("quantity",)).name(field) for field in (
            "sourceDocumentType", "sourceDocumentId", "projectCode", "contractNumber", "transactionDate", "quantity",
            "amountMinor", "currencyCode", "postingStatus", "postedAt", "reversesPostingNumber")}})),
    "invoice": ("invoice", Schema("custbody", {
        "internalId": ("id", "id"), "invoiceNumber": ("tranId", ""), "customerId": ("entity", "ref:customer"),
        "subsidiaryCode": ("subsidiary", "sub"), "currencyCode": ("currency", ""), "invoiceDate": ("tranDate", ""),
        "status": ("status", "status"), "lines": ("item", "sublist:item"), "taxLines": ("taxDetails", "sublist:tax"),
        "subtotalMinor": ("subtotal", "money"), "taxMinor": ("taxTotal", "money"), "totalMinor": ("total", "money"),
        "externalId": ("externalId", ""), "contractNumber": ("custbody_psg_contract_number", ""),
        "periodName": ("custbody_psg_period_name", "")})),
    "creditMemo": ("creditMemo", Schema("custbody", {
        "internalId": ("id", "id"), "creditMemoNumber": ("tranId", ""), "invoiceId": ("createdFrom", "ref:invoice"),
        "invoiceNumber": ("custbody_psg_invoice_number", ""), "subsidiaryCode": ("subsidiary", "sub"),
        "currencyCode": ("currency", ""), "memoDate": ("tranDate", ""), "status": ("status", "status"),
        "lines": ("item", "sublist:item"), "subtotalMinor": ("subtotal", "money"), "taxMinor": ("taxTotal", "money"),
        "totalMinor": ("total", "money"), "externalId": ("externalId", "")})),
    "customrecord_psg_revenue_schedule": ("revenueSchedule", Schema("custrecord", {
        "internalId": ("id", "id"), "scheduleNumber": ("name", ""),
        **{field: Schema("custrecord", {}).name(field) for field in (
            "contractNumber", "periodName", "recognizedAmountMinor", "currencyCode", "recognitionMethod")}})),
}
# SuiteQL table -> recordType; transactions share one table told apart by ``type``.
TABLES = {name.lower(): name for name in SCHEMAS if name not in ("invoice", "creditMemo")}
TRANSACTION_TYPES = {"CustInvc": "invoice", "CustCred": "creditMemo"}
STATUS = {"DRAFT": ("pendingApproval", "Pending Approval"), "POSTED": ("open", "Open"),
          "PAID": ("paidInFull", "Paid In Full"), "VOID": ("rejected", "Rejected")}
STATUS_ENGINE = {code: engine for engine, (code, _) in STATUS.items()}
# approvalStatus ids, as NetSuite numbers them: 1 Pending Approval, 2 Approved, 3 Rejected.
APPROVE, REJECT = "2", "3"


def error(status: int, title: str, details: list[tuple[str | None, str, str]]) -> VendorError:
    return erp.error(status, title, details)


def invalid(message: str, code: str = "INVALID_PARAMETER") -> VendorError:
    return error(400, "Bad Request", [(None, code, message)])


# --- conversions ---------------------------------------------------------------------------------------------

def _subsidiary_ref(store: DocumentStore, code: str) -> dict[str, str]:
    row = erp._first(store, "subsidiary", subsidiaryCode=code)
    return {"id": str(row["internalId"]) if row else "0", "refName": code}


def _subsidiary_code(store: DocumentStore, value: Any) -> Any:
    ident = value.get("id") if isinstance(value, dict) else value
    row = store.get("subsidiary", str(ident)) if isinstance(ident, str | int) else None
    return row["subsidiaryCode"] if row else f"#{ident}"  # an unknown id: the engine refuses it as no subsidiary


def _amount(minor: int) -> Decimal:
    return (Decimal(minor) / 100).quantize(CENT)


def out_value(store: DocumentStore, conversion: str, value: Any, expand: bool, href: str) -> Any:
    if value is None:
        return None
    if conversion == "id":
        return str(value)
    if conversion == "money":
        return _amount(value)
    if conversion == "number":
        return Decimal(str(value))
    if conversion.startswith("ref:"):
        return {"id": str(value), "links": [{"rel": "self", "href": f"{href}/{conversion[4:]}/{value}"}]}
    if conversion == "sub":
        return _subsidiary_ref(store, value)
    if conversion == "closed":
        return value == "CLOSED"
    if conversion == "status":
        code, name = STATUS[value]
        return {"id": code, "refName": name}
    if conversion == "refs":
        return ",".join(value)
    if conversion.startswith("sublist:"):
        if not expand:
            return None
        schema = LINES[conversion[8:]]
        return {"items": [{schema.name(k)[0]: out_value(store, schema.name(k)[1], v, expand, href)
                           for k, v in line.items()} for line in value]}
    return value


def in_value(store: DocumentStore, conversion: str, value: Any) -> Any:
    """A NetSuite value in the engine's terms; a value of the wrong shape passes through for the engine to refuse."""
    if value is None:
        return None
    try:
        if conversion == "money" and isinstance(value, int | Decimal) and not isinstance(value, bool):
            minor = Decimal(value) * 100
            return int(minor) if minor == minor.to_integral_value() else str(value)
        if conversion == "number" and isinstance(value, int | Decimal) and not isinstance(value, bool):
            return str(value)
    except InvalidOperation:
        return str(value)
    if conversion.startswith("ref:"):
        ident = value.get("id") if isinstance(value, dict) else None
        return int(ident) if isinstance(ident, str) and ident.isdigit() else -1
    if conversion == "sub":
        return _subsidiary_code(store, value)
    if conversion == "closed":
        return "CLOSED" if value is True else "OPEN"
    if conversion == "status":
        ident = str(value.get("id") if isinstance(value, dict) else value)
        return STATUS_ENGINE.get(ident, ident)
    if conversion == "refs":
        return [part for part in value.split(",") if part] if isinstance(value, str) else value
    if conversion.startswith("sublist:"):
        schema = LINES[conversion[8:]]
        reverse = schema.reverse()
        items = value.get("items") if isinstance(value, dict) else value
        if not isinstance(items, list):
            return items
        return [{reverse.get(k, (k, ""))[0]: in_value(store, reverse.get(k, (k, ""))[1], v) for k, v in line.items()}
                if isinstance(line, dict) else line for line in items]
    return value


def to_record(store: DocumentStore, record_type: str, body: dict[str, Any], base: str,
              expand: bool = True) -> dict[str, Any]:
    _, schema = SCHEMAS[record_type]
    record: dict[str, Any] = {"links": [{"rel": "self", "href": f"{base}{RECORD}/{record_type}/{body['internalId']}"}]}
    for field, value in body.items():
        name, conversion = schema.name(field)
        converted = out_value(store, conversion, value, expand, base + RECORD)
        if conversion.startswith("sublist:") and not expand:
            converted = {"links": [{"rel": "self",
                         "href": f"{base}{RECORD}/{record_type}/{body['internalId']}/{name}"}]}
        if converted is not None:
            record[name] = converted
    return record


def from_record(store: DocumentStore, record_type: str, body: dict[str, Any]) -> dict[str, Any]:
    _, schema = SCHEMAS[record_type]
    reverse = schema.reverse()
    engine: dict[str, Any] = {}
    for name, value in body.items():
        if name in ("id", "links"):
            continue  # read-only
        field, conversion = reverse.get(name, (name, ""))
        engine[field] = in_value(store, conversion, value)
    return engine


def engine_path(record_type: str, path: str | None) -> str | None:
    """An engine error path (``lines[0].amountMinor``) in NetSuite's names (``item.items[0].amount``)."""
    if not path:
        return path
    _, schema = SCHEMAS[record_type]
    match = re.match(r"^(\w+)(?:\[(\d+)\]\.(\w+))?$", path)
    if not match:
        return path
    name, conversion = schema.name(match[1])
    if match[2] is None or not conversion.startswith("sublist:"):
        return name
    return f"{name}.items[{match[2]}].{LINES[conversion[8:]].name(match[3])[0]}"


def translated(record_type: str, exc: VendorError) -> VendorError:
    """The engine's refusal as NetSuite says it: 400 for every user error, ``DUP_RCRD`` for a duplicate."""
    details = [(engine_path(record_type, d.get("o:errorPath")),
                "DUP_RCRD" if str(d.get("o:errorCode", "")).startswith("DUPLICATE") else str(d.get("o:errorCode")),
                str(d.get("detail", ""))) for d in exc.body.get("o:errorDetails", [])]
    status = 400 if exc.status in (400, 409, 422) else exc.status
    return error(status, "Bad Request" if status == 400 else str(exc.body.get("title", "Error")), details)


# --- SuiteQL -------------------------------------------------------------------------------------------------

_SELECT = re.compile(r"^\s*SELECT\s+(?P<columns>.+?)\s+FROM\s+(?P<table>\w+)(?:\s+WHERE\s+(?P<where>.+?))?"
                     r"(?:\s+ORDER\s+BY\s+(?P<order>\w+)(?:\s+ASC)?)?\s*$", re.IGNORECASE | re.DOTALL)
_LITERAL = r"(?:'(?:[^']|'')*'|-?\d+(?:\.\d+)?|TO_DATE\(\s*'[^']*'\s*,\s*'YYYY-MM-DD'\s*\))"
_CONDITION = re.compile(rf"^\s*(?:(?P<lower>LOWER)\(\s*(?P<lcol>\w+)\s*\)|(?P<col>\w+))\s*(?P<op>=|>=|<=|LIKE)\s*"
                        rf"(?P<value>{_LITERAL})\s*$", re.IGNORECASE)
_AND = re.compile(r"\s+AND\s+(?=(?:[^']*'[^']*')*[^']*$)", re.IGNORECASE)


def _literal(text: str) -> str:
    text = text.strip()
    if text.upper().startswith("TO_DATE"):
        return text[text.index("'") + 1:].split("'", 1)[0]
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    return text


def suiteql(store: DocumentStore, query: Any, offset: int, limit: int, base: str) -> dict[str, Any]:
    if not isinstance(query, str):
        raise invalid("the body must hold the query as a string in q")
    if offset < 0 or not 1 <= limit <= MAX_LIMIT:
        raise invalid(f"limit must be 1..{MAX_LIMIT} and offset at least 0")
    parsed = _SELECT.match(query)
    if not parsed:
        raise search_error("only SELECT <columns> FROM <table> [WHERE ...] [ORDER BY id] is understood here")
    table = parsed["table"].lower()
    where: dict[str, Any] = {}
    ranges: dict[str, tuple[Any, Any]] = {}
    contains: dict[str, str] = {}
    conditions = _AND.split(parsed["where"]) if parsed["where"] else []
    record_type = TABLES.get(table)
    if table == "transaction":
        types = [c for c in conditions if re.match(r"^\s*type\s*=", c, re.IGNORECASE)]
        kinds = {TRANSACTION_TYPES.get(_literal(c.split("=", 1)[1])) for c in types}
        if len(kinds) != 1 or None in kinds:
            raise search_error("a transaction query names one type: 'CustInvc' or 'CustCred'")
        record_type = kinds.pop()
        conditions = [c for c in conditions if c not in types]
    if record_type is None:
        raise search_error(f"Record '{parsed['table']}' was not found.")
    kind, schema = SCHEMAS[record_type]
    columns = {name.lower(): (field, conversion) for name, (field, conversion) in schema.reverse().items()}
    for condition in conditions:
        match = _CONDITION.match(condition)
        if not match:
            raise search_error(f"cannot read the condition {condition.strip()!r}")
        column = (match["lcol"] or match["col"]).lower()
        if column not in columns or columns[column][1].startswith("sublist:"):
            raise search_error(f"Field '{column}' for record '{parsed['table']}' was not found.")
        field, conversion = columns[column]
        value = _literal(match["value"])
        engine_value: Any = value
        if conversion == "id" or conversion.startswith("ref:"):
            engine_value = int(value) if value.lstrip("-").isdigit() else -1
        elif conversion == "sub":
            engine_value = _subsidiary_code(store, value)
        elif conversion == "closed":
            engine_value = "CLOSED" if value == "T" else "OPEN"
        elif conversion == "status":
            engine_value = STATUS_ENGINE.get(value, value)
        op = match["op"].upper()
        if op == "LIKE":
            if not (match["lower"] and value.startswith("%") and value.endswith("%") and len(value) >= 2):
                raise search_error("LIKE is understood as LOWER(<column>) LIKE '%<text>%'")
            contains[field] = value[1:-1]
        elif op == "=":
            where[field] = engine_value
        else:
            low, high = ranges.get(field, (None, None))
            ranges[field] = (engine_value, high) if op == ">=" else (low, engine_value)
    rows, total = store.query(kind, where=where, ranges=ranges or None, contains=contains or None, offset=offset,
                              limit=limit)
    items = []
    for row in rows:
        record = to_record(store, record_type, row, base, expand=False)
        items.append({"links": [], **{name.lower(): _column(value) for name, value in record.items()
                                      if name != "links" and not (isinstance(value, dict) and "links" in value
                                                                  and "id" not in value)}})
    return envelope(f"{base}{SUITEQL}", {}, items, offset, limit, total)


def _column(value: Any) -> str:
    if isinstance(value, dict) and "id" in value:
        return str(value["id"])
    if isinstance(value, dict):  # a subrecord (an address) reads as its JSON text
        return json.dumps(value)
    if isinstance(value, bool):
        return "T" if value else "F"
    return str(value)


def search_error(message: str) -> VendorError:
    return invalid(f"Invalid search query. Detailed unprocessed description follows. {message}")


def envelope(url: str, params: dict[str, Any], items: list[Any], offset: int, limit: int,
             total: int) -> dict[str, Any]:
    """NetSuite's collection envelope ("Collection Paging"): links self/first/last and next/prev when there are."""
    def link(rel: str, at: int) -> dict[str, str]:
        return {"rel": rel, "href": f"{url}?{urlencode({**params, 'limit': limit, 'offset': at})}"}

    last = max(0, (total - 1) // limit * limit)
    links = [link("self", offset), link("first", 0)]
    if offset > 0:
        links.append(link("prev", max(0, offset - limit)))
    if offset + len(items) < total:
        links.append(link("next", offset + limit))
    links.append(link("last", last))
    return {"links": links, "count": len(items), "hasMore": offset + len(items) < total, "items": items,
            "offset": offset, "totalResults": total}


# --- auth and limits -----------------------------------------------------------------------------------------

LIMITS = LimitDialect(too_many=lambda seconds: error(429, "Too Many Requests", [
    (None, "CONCURRENCY_LIMIT_EXCEEDED", "Concurrent request limit exceeded. Request blocked.")]).body)


def m2m_refusal(form: dict[str, str], config: AuthConfig, token_url: str) -> str:
    """Why NetSuite's token endpoint refuses this client credentials (M2M) request ("" when it is good)."""
    if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
        return "client_assertion_type must be " + CLIENT_ASSERTION_TYPE
    try:
        token = jwt.decode(form.get("client_assertion", ""), RSAKey.import_key(config.public_key_pem),
                           algorithms=["PS256", "PS384", "PS512"])
        jwt.JWTClaimsRegistry(iss={"essential": True, "value": config.client_id},
                              aud={"essential": True, "value": token_url}, exp={"essential": True},
                              iat={"essential": True}).validate(token.claims)
    except JoseError as exc:
        return f"invalid client_assertion: {exc.description or exc.error}"
    except ValueError:
        return "invalid client_assertion"
    if token.header.get("kid") != config.certificate_id:
        return "the kid is not the certificate id mapped to this integration"
    scopes = token.claims.get("scope")
    scopes = scopes if isinstance(scopes, list) else str(scopes or "").split(",")
    if "rest_webservices" not in [s.strip() for s in scopes]:
        return "scope must include rest_webservices"
    if float(token.claims["exp"]) - float(token.claims["iat"]) > 3600 or float(token.claims["exp"]) < time.time():
        return "exp must be in the future and at most 60 minutes after iat"
    return ""


AUTH = AuthDialect(grant_path=TOKEN_PATH, grant="client_credentials", assertion_check=m2m_refusal,
                   unauthorized=lambda: error(401, "Unauthorized", [
                       (None, "INVALID_LOGIN", "Invalid login attempt. For more details, see the Login Audit Trail "
                                               "in the NetSuite UI at Setup > Users/Roles > User Management > "
                                               "View Login Audit Trail.")]).body)


# --- the app -------------------------------------------------------------------------------------------------

def _one(store: DocumentStore, record_type: str, ident: str) -> dict[str, Any]:
    kind, _ = SCHEMAS[record_type]
    if ident.startswith("eid:"):
        found = store.get("externalId", f"{record_type}:{ident[4:]}")
        body = store.get(kind, str(found["internalId"])) if found else None
    else:
        body = store.get(kind, ident) if ident.isdigit() else None
    if body is None:
        raise error(404, "Not Found", [(None, "NONEXISTENT_ID",
                                        "The record instance does not exist. Provide a valid record instance ID.")])
    return body


def read_record(store: DocumentStore, record_type: str, ident: str, base: str, expand: bool) -> dict[str, Any]:
    return to_record(store, record_type, _one(store, record_type, ident), base, expand=expand)


def create(store: DocumentStore, record_type: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create one record in the engine; the new record (a refusal is raised as NetSuite says it)."""
    engine = from_record(store, record_type, body)
    external_id = engine.pop("externalId", None) if record_type in ("invoice", "creditMemo") else None
    if external_id is not None:
        if not isinstance(external_id, str) or not external_id:
            raise error(400, "Bad Request", [("externalId", "INVALID_FLD_VALUE", "externalId must be text")])
        if store.get("externalId", f"{record_type}:{external_id}") is not None:
            raise error(400, "Bad Request", [("externalId", "DUP_RCRD",
                                              "A record with the same external ID already exists")])
    try:
        if record_type == "customer":
            _, created = erp.create_customer(store, engine, None)
        elif record_type == "customrecord_psg_contract":
            engine.pop("revision", None)
            _, created = erp.create_contract(store, engine, None)
        elif record_type == "customrecord_psg_project_dimension":
            _, created = erp.create_dimension(store, engine)
        elif record_type == "customrecord_psg_posting" and "reversesInternalId" in engine:
            # A posting that reverses another (the tenant's user event books it as the original's negative).
            reverses = engine.pop("reversesInternalId")
            if store.get("postingReversal", str(reverses)) is not None:
                raise error(400, "Bad Request", [("custrecord_psg_reverses", "DUP_RCRD",
                                                  "this posting is reversed already")])
            _, created = erp.reverse_posting(store, reverses, engine)
        elif record_type == "customrecord_psg_posting":
            _, created = erp.create_posting(store, engine)
        elif record_type == "invoice":
            _, created = erp.create_invoice(store, engine, None)
        elif record_type == "customrecord_psg_revenue_schedule":
            _, created = erp.create_revenue_schedule(store, engine)
        else:
            raise error(400, "Bad Request", [(None, "INVALID_RCRD_TYPE",
                                              f"Records of type {record_type} are not created through REST here")])
    except VendorError as exc:
        if exc.body.get("o:errorDetails") and exc.status != 404:
            raise translated(record_type, exc) from exc
        raise
    if external_id is not None:
        created = {**created, "externalId": external_id}
        store.put(SCHEMAS[record_type][0], str(created["internalId"]), created)
        store.put("externalId", f"{record_type}:{external_id}", {"internalId": created["internalId"]})
    return created


def transform_to_credit_memo(store: DocumentStore, invoice_id: int, body: dict[str, Any]) -> dict[str, Any]:
    engine = from_record(store, "creditMemo", body)
    external_id = engine.pop("externalId", None)
    if external_id is not None and store.get("externalId", f"creditMemo:{external_id}") is not None:
        raise error(400, "Bad Request", [("externalId", "DUP_RCRD",
            "A record with the same external ID already exists")])
    try:
        _, memo = erp.credit_invoice(store, invoice_id, engine, None)
    except VendorError as exc:
        raise (translated("creditMemo", exc) if exc.status != 404 else exc) from exc
    if external_id is not None:
        memo = {**memo, "externalId": external_id}
        store.put("creditMemo", str(memo["internalId"]), memo)
        store.put("externalId", f"creditMemo:{external_id}", {"internalId": memo["internalId"]})
    return memo


def update(store: DocumentStore, record_type: str, internal_id: int, body: dict[str, Any]) -> None:
    try:
        if record_type == "customrecord_psg_contract":
            erp.update_contract(store, internal_id, from_record(store, record_type, body))
        elif record_type == "invoice" and set(body) == {"approvalStatus"}:
            wanted = body["approvalStatus"].get("id") if isinstance(body["approvalStatus"], dict) else None
            if wanted == APPROVE:
                erp.post_invoice(store, internal_id)
            elif wanted == REJECT:
                erp.void_invoice(store, internal_id)
            else:
                raise error(400, "Bad Request", [("approvalStatus", "INVALID_FLD_VALUE",
                                                  "approvalStatus must be {\"id\": \"2\"} or {\"id\": \"3\"}")])
        else:
            raise error(400, "Bad Request", [(None, "INVALID_FLD_VALUE",
                                              f"these fields of {record_type} are not updated here: {sorted(body)}")])
    except VendorError as exc:
        if exc.body.get("o:errorDetails") and exc.status != 404:
            raise translated(record_type, exc) from exc
        raise


async def _json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The body as a JSON object, numbers as decimals (amounts are never floats here)."""
    try:
        body = json.loads(await request.body() or b"{}", parse_float=Decimal)
    except ValueError as exc:
        raise invalid(f"Invalid content in the request body: {exc}", "INVALID_CONTENT") from exc
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.", "INVALID_CONTENT")
    return body


def _base(request: Request[Any, Any, Any]) -> str:
    return str(request.base_url).rstrip("/")


def _record_type(name: str) -> str:
    if name not in SCHEMAS:
        raise error(404, "Not Found", [(None, "NONEXISTENT_ID", f"Record type '{name}' does not exist.")])
    return name


def json_text(body: Any) -> str:
    """NetSuite writes amounts as JSON numbers: decimals are written as their exact text, never through a float."""
    return _RawNumber.unwrap(json.dumps(body, default=lambda value: _RawNumber(value)))


def _json_response(body: Any, status: int = 200) -> Response[bytes]:
    return Response(json_text(body).encode(), status_code=status, media_type="application/json")


class _RawNumber(str):
    """A Decimal marked in the JSON text, unquoted afterwards: its digits, exactly."""

    MARK = "\u0000n:"

    def __new__(cls, value: Any) -> _RawNumber:
        if not isinstance(value, Decimal):
            raise TypeError(f"{type(value).__name__} is not JSON serializable")
        return super().__new__(cls, cls.MARK + format(value, "f"))

    @classmethod
    def unwrap(cls, text: str) -> str:
        return re.sub(r'"\\u0000n:(-?[0-9.]+)"', r"\1", text)


def create_app(store: DocumentStore) -> Litestar:
    # The filters that meet every posting (a month end books tens of thousands), as the engine indexes them.
    for field in ("contractNumber", "projectCode", "sourceDocumentId", "transactionDate"):
        store.index(field)

    def located(request: Request[Any, Any, Any], record_type: str, internal_id: int) -> Response[bytes]:
        return Response(b"", status_code=204, headers={
            "Location": f"{_base(request)}{RECORD}/{record_type}/{internal_id}"})

    @get(f"{RECORD}/{{record_type:str}}/{{ident:str}}")
    async def get_record(request: Request[Any, Any, Any], record_type: FromPath[str], ident: FromPath[str],
                         expandSubResources: FromQuery[bool] = False) -> Response[bytes]:
        name = _record_type(record_type)
        return _json_response(await store.call(read_record, store, name, ident, _base(request), expandSubResources))

    @get(f"{RECORD}/{{record_type:str}}")
    async def list_records(request: Request[Any, Any, Any], record_type: FromPath[str], limit: FromQuery[int] = 1000,
                           offset: FromQuery[int] = 0) -> Response[bytes]:
        name = _record_type(record_type)
        if offset < 0 or not 1 <= limit <= MAX_LIMIT:
            raise invalid(f"limit must be 1..{MAX_LIMIT} and offset at least 0")
        rows, total = await store.call(lambda: store.query(SCHEMAS[name][0], offset=offset, limit=limit))
        base = _base(request)
        items = [{"links": [{"rel": "self", "href": f"{base}{RECORD}/{name}/{row['internalId']}"}],
                  "id": str(row["internalId"])} for row in rows]
        return _json_response(envelope(f"{base}{RECORD}/{name}", {}, items, offset, limit, total))

    @post(f"{RECORD}/{{record_type:str}}")
    async def create_record(request: Request[Any, Any, Any], record_type: FromPath[str]) -> Response[bytes]:
        name = _record_type(record_type)
        created = await store.call(store.transaction, create, store, name, await _json(request))
        return located(request, name, created["internalId"])

    @patch(f"{RECORD}/{{record_type:str}}/{{internal_id:int}}")
    async def update_record(request: Request[Any, Any, Any], record_type: FromPath[str],
                            internal_id: FromPath[int]) -> Response[bytes]:
        name = _record_type(record_type)
        await store.call(store.transaction, update, store, name, internal_id, await _json(request))
        return Response(b"", status_code=204)

    @post(f"{RECORD}/{{record_type:str}}/{{internal_id:int}}/!transform/{{target:str}}")
    async def transform(request: Request[Any, Any, Any], record_type: FromPath[str], internal_id: FromPath[int],
                        target: FromPath[str]) -> Response[bytes]:
        if (_record_type(record_type), target) != ("invoice", "creditMemo"):
            raise invalid(f"a {record_type} is not transformed into a {target} here", "INVALID_TRANSFORM")
        memo = await store.call(store.transaction, transform_to_credit_memo, store, internal_id,
                                await _json(request))
        return located(request, "creditMemo", memo["internalId"])

    @post(SUITEQL)
    async def run_suiteql(request: Request[Any, Any, Any], limit: FromQuery[int] = 1000,
                          offset: FromQuery[int] = 0) -> Response[bytes]:
        if request.headers.get("prefer", "").strip().lower() != "transient":
            raise invalid("SuiteQL queries are sent with the header 'Prefer: transient'.", "INVALID_HEADER")
        body = await _json(request)
        return _json_response(await store.call(suiteql, store, body.get("q"), offset, limit, _base(request)),
                              status=200)

    return Litestar([get_record, list_records, create_record, update_record, transform, run_suiteql],
                    exception_handlers={HTTPException: framework_error, VendorError: vendor_error_response},
                    openapi_config=None)


def framework_error(_request: Any, exc: HTTPException) -> Response[Any]:
    codes = {400: "INVALID_PARAMETER", 404: "NONEXISTENT_ID", 405: "INVALID_METHOD"}
    failure = error(exc.status_code, "Error", [(None, codes.get(exc.status_code, "UNEXPECTED_ERROR"),
                                                str(exc.detail))])
    return Response(failure.body, status_code=exc.status_code)


def seed(store: DocumentStore, firm: Any) -> None:
    erp.seed(store, firm)
