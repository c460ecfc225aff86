"""Sandbox CRM: Salesforce-shaped sObjects over REST.

Dialect: 18-character record ids (``001...`` Account, ``006...`` Opportunity, ``800...`` Contract, custom
``Rate_Card__c`` / ``Rate_Card_Line__c`` and a contract's ``Billing_Schedule_Line__c``), PascalCase standard
fields (``Name``, ``StageName``, ``CloseDate``), ``__c`` custom fields (``Billing_Model__c``), picklist labels
("Closed Won", "Time & Materials"), money as JSON numbers, timestamps like ``2026-10-05T18:00:00.000+0000``.
Every record carries ``SystemModstamp``, the instant of its last change, which a change feed polls
(``WHERE SystemModstamp >= 2026-10-05T18:00:00.000Z``: unquoted datetime literals; ``=``, ``!=``, ``<``,
``<=``, ``>``, ``>=``). Reads: ``GET /sobjects/<Type>/<Id>``, by external id
``GET /sobjects/<Type>/<Field>/<value>``, and a SOQL subset at ``GET /query?q=`` (``SELECT f, ... | FIELDS(ALL)
FROM T [WHERE f = 'v' AND f IN ('a','b') AND f != null] [ORDER BY f [ASC|DESC]] [LIMIT n]``) paged by
``nextRecordsUrl`` (batch size from the ``Sforce-Query-Options: batchSize=N`` header). ``FIELDS(ALL)`` and
``FIELDS(CUSTOM)`` are unbounded field lists, so, as in Salesforce (SOQL and SOSL Reference, "SELECT":
FIELDS()), such a query must carry ``LIMIT n`` with n <= 200 or it is refused with 400 ``MALFORMED_QUERY``
"The SOQL FIELDS function must have a LIMIT of at most 200". Writes: ``PATCH
/sobjects/<Type>/<Id>`` -> 204; changing a contract's terms (rate card, NTE, end date, value) raises its
``Version__c``, as an amendment does. Errors are a JSON array ``[{"message", "errorCode", "fields"}]``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

from litestar import Litestar, Request, get, patch
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery
from litestar.response import Response

from sandbox import firm as demo
from sandbox.firm import Firm
from sandbox.salesforce_ids import PREFIXES, is_record_id, record_id
from sandbox.store import DocumentStore
from sandbox.vendor_http import (
    JWT_BEARER,
    AuthDialect,
    LimitDialect,
    VendorError,
    json_object,
    parse_date,
    utc_now,
    vendor_error_response,
)

API = "/services/data/v60.0"
STAGES = {"prospecting": "Prospecting", "qualification": "Qualification", "proposal": "Proposal/Price Quote",
          "negotiation": "Negotiation/Review", "closed_won": "Closed Won", "closed_lost": "Closed Lost"}
BILLING_MODELS = {"time_and_materials": "Time & Materials", "fixed_fee": "Fixed Fee", "milestone": "Milestone",
                  "retainer": "Retainer"}
CONTRACT_STATUSES = {"draft": "Draft", "active": "Activated", "amendment_pending": "Amendment Pending",
                     "closed": "Expired"}
INVOICE_STATUSES = ("Draft", "Posted", "Paid", "Void")
UNUSED_HOURS_POLICIES = {"expire": "Expire", "carry_forward": "Carry Forward"}
EXTERNAL_IDS = {"Account": "AccountNumber", "Opportunity": "Opportunity_Number__c", "Contract": "SOW_Number__c",
                "Rate_Card__c": "Name"}
# What an integration may change, per object; everything else is read-only or system-maintained.
UPDATABLE = {
    "Opportunity": {"StageName", "Amount", "CloseDate", "Name", "Provisioned_Project__c", "Invoice_Status__c",
                    "Signed_Contract__c", "Description"},
    "Account": {"Name", "Tax_Jurisdiction__c"},
    "Contract": {"Status", "EndDate", "NTE_Amount__c", "Rate_Card__c", "Contract_Value__c"},
}
# A change to one of these is an amendment of the contract's terms: its version goes up.
CONTRACT_TERMS = frozenset({"EndDate", "NTE_Amount__c", "Rate_Card__c", "Contract_Value__c"})
NUMBER_FIELDS = frozenset({"Amount", "NTE_Amount__c", "Contract_Value__c"})
PICKLISTS = {"StageName": set(STAGES.values()), "Invoice_Status__c": set(INVOICE_STATUSES),
             "Status": set(CONTRACT_STATUSES.values())}
MAX_BATCH = 2000
# Salesforce's bound on unbounded field lists: FIELDS(ALL) / FIELDS(CUSTOM) need LIMIT <= 200.
FIELDS_LIMIT = 200


def sf_time(moment: dt.datetime) -> str:
    """Salesforce's datetime: milliseconds, UTC, ``+0000`` (fixed width, so the text sorts as the time)."""
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def money(amount: Decimal | None) -> float | None:
    # Salesforce returns currency fields as JSON numbers (and so does this sandbox, exactly like the real one).
    return float(amount) if amount is not None else None


def _attributes(sobject: str, record_id_: str) -> dict[str, str]:
    return {"type": sobject, "url": f"{API}/sobjects/{sobject}/{record_id_}"}


def seed(store: DocumentStore, firm: Firm) -> None:
    created = sf_time(dt.datetime.combine(firm.today - dt.timedelta(days=400), dt.time(9), tzinfo=dt.UTC))
    accounts: dict[str, str] = {}
    rows = []
    for index, (number, name, entity, currency, region) in enumerate(demo.CUSTOMERS):
        account_id = record_id("Account", index + 1)
        accounts[number] = account_id
        rows.append((account_id, {
            "attributes": _attributes("Account", account_id), "Id": account_id, "Name": name,
            "AccountNumber": number, "Type": "Customer", "CurrencyIsoCode": currency,
            "BillingCountry": {"LE-US": "United States", "LE-UK": "United Kingdom", "LE-DE": "Germany"}[entity],
            "Legal_Entity__c": entity, "Tax_Jurisdiction__c": region, "CreatedDate": created,
            "LastModifiedDate": created, "SystemModstamp": created,
        }))
    store.put_many("Account", rows)
    cards: dict[str, str] = {}
    lines: list[tuple[str, dict[str, Any]]] = []
    card_rows: list[tuple[str, dict[str, Any]]] = []
    for index, card in enumerate(firm.rate_cards):
        card_id = record_id("Rate_Card__c", index + 1)
        cards[card.code] = card_id
        card_rows.append((card_id, {
            "attributes": _attributes("Rate_Card__c", card_id), "Id": card_id, "Name": card.code,
            "Display_Name__c": card.name, "CurrencyIsoCode": card.currency,
            "Effective_From__c": card.valid_from.isoformat(), "LastModifiedDate": created,
            "SystemModstamp": created,
        }))
        for role, rate in card.rates.items():
            line_id = record_id("Rate_Card_Line__c", len(lines) + 1)
            lines.append((line_id, {
                "attributes": _attributes("Rate_Card_Line__c", line_id), "Id": line_id,
                "Name": f"RCL-{len(lines) + 1:04d}", "Rate_Card__c": card_id,
                "Role__c": role.replace("_", " ").title(), "Hourly_Rate__c": money(rate),
                "Effective_From__c": card.valid_from.isoformat(), "Effective_To__c": None,
            }))
    store.put_many("Rate_Card__c", card_rows)
    store.put_many("Rate_Card_Line__c", lines)
    contracts: dict[str, str] = {}
    contract_rows = []
    schedule_rows: list[tuple[str, dict[str, Any]]] = []
    # Signed contracts of deals not provisioned yet are in the CRM only (the ERP gets them from provisioning).
    for index, c in enumerate([*firm.contracts, *firm.signed_contracts]):
        contract_id = record_id("Contract", index + 1)
        contracts[c.number] = contract_id
        contract_rows.append((contract_id, {
            "attributes": _attributes("Contract", contract_id), "Id": contract_id,
            "ContractNumber": f"{index + 101:08d}", "SOW_Number__c": c.number, "Name": c.name,
            "AccountId": accounts[c.customer], "Status": CONTRACT_STATUSES[c.status],
            "StartDate": c.start.isoformat(), "EndDate": c.end.isoformat(), "CurrencyIsoCode": c.currency,
            "Billing_Model__c": BILLING_MODELS[c.billing_model], "NTE_Amount__c": money(c.nte),
            "Rate_Card__c": cards[c.rate_card], "Legal_Entity__c": c.legal_entity, "Version__c": 1,
            "Invoice_Frequency__c": "Milestone" if c.billing_model == "milestone" else "Monthly",
            "Payment_Terms__c": "Net 30", "Scheduled_Amount__c": money(c.scheduled_amount),
            "Contract_Value__c": money(c.total_value), "Retainer_Hours__c": money(c.retainer_hours),
            "Unused_Hours_Policy__c": UNUSED_HOURS_POLICIES[c.unused_hours],
            "Expense_Markup__c": money(c.expense_markup), "LastModifiedDate": created,
            "SystemModstamp": created,
        }))
        for line_no, (period, amount, percent) in enumerate(c.schedule, start=1):
            line_id = record_id("Billing_Schedule_Line__c", len(schedule_rows) + 1)
            schedule_rows.append((line_id, {
                "attributes": _attributes("Billing_Schedule_Line__c", line_id), "Id": line_id,
                "Name": f"BSL-{len(schedule_rows) + 1:04d}", "Contract__c": contract_id, "Line_Number__c": line_no,
                "Billing_Period__c": period, "Billing_Date__c": None, "Amount__c": money(amount),
                "Percent_Complete__c": money(percent), "Description__c": f"Instalment {line_no} of {len(c.schedule)}",
            }))
    store.put_many("Contract", contract_rows)
    store.put_many("Billing_Schedule_Line__c", schedule_rows)
    projects = {p.contract: p.code for p in firm.projects}
    won_by = {c.opportunity: c.number for c in [*firm.contracts, *firm.signed_contracts]}
    opportunity_rows = []
    for index, o in enumerate(firm.opportunities):
        opportunity_id = record_id("Opportunity", index + 1)
        contract_number = won_by.get(o.number)
        opportunity_rows.append((opportunity_id, {
            "attributes": _attributes("Opportunity", opportunity_id), "Id": opportunity_id, "Name": o.name,
            "Opportunity_Number__c": o.number, "AccountId": accounts[o.customer], "StageName": STAGES[o.stage],
            "Amount": money(o.amount), "CurrencyIsoCode": o.currency, "CloseDate": o.close_date.isoformat(),
            "IsClosed": o.stage.startswith("closed"), "IsWon": o.stage == "closed_won",
            "Billing_Model__c": BILLING_MODELS[o.billing_model], "Legal_Entity__c": o.legal_entity,
            "Rate_Card__c": cards[o.rate_card], "Start_Date__c": o.start.isoformat(),
            "End_Date__c": o.end.isoformat(), "NTE_Amount__c": money(o.nte),
            "Signed_Contract__c": contracts[contract_number] if contract_number else None,
            "Provisioned_Project__c": projects.get(contract_number) if contract_number else None,
            "Invoice_Status__c": None, "Description": None, "LastModifiedDate": created,
            "SystemModstamp": created,
        }))
    store.put_many("Opportunity", opportunity_rows)


# --- errors ----------------------------------------------------------------------------------------------------

def error(status: int, code: str, message: str, fields: list[str] | None = None) -> VendorError:
    return VendorError(status, [{"message": message, "errorCode": code, "fields": fields or []}])


def malformed(message: str) -> VendorError:
    return error(400, "MALFORMED_QUERY", message)


# Salesforce REST API Developer Guide, "API Request Limits and Allocations": past the org's daily total every call
# is refused 403 REQUEST_LIMIT_EXCEEDED; usage rides on every response in ``Sforce-Limit-Info``.
LIMITS = LimitDialect(
    too_many=lambda _seconds: error(429, "REQUEST_LIMIT_EXCEEDED", "ConcurrentRequests Limit exceeded.").body,
    daily_exhausted=lambda: error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.").body,
    default_daily=100_000,  # an Enterprise Edition org's base allocation per 24 hours
)


# Salesforce "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration"; a call without a live session is refused
# 401 INVALID_SESSION_ID.
AUTH = AuthDialect(grant_path="/services/oauth2/token", grant=JWT_BEARER, says_expiry=False,
                   unauthorized=lambda: error(401, "INVALID_SESSION_ID", "Session expired or invalid").body)


# --- SOQL subset -----------------------------------------------------------------------------------------------

_QUERY = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>\w+)(?:\s+(?P<direction>ASC|DESC))?)?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_DATETIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2})"
_CONDITION = re.compile(
    r"\s*(?P<field>\w+)\s*(?:(?P<op>!=|<=|>=|=|<|>)\s*(?P<value>'(?:[^'\\]|\\.)*'|null|true|false"
    r"|" + _DATETIME + r"|-?\d+(?:\.\d+)?|\d{4}-\d{2}-\d{2})|\s+IN\s*\((?P<list>[^)]*)\))\s*",
    re.IGNORECASE,
)
_STRING = re.compile(r"'((?:[^'\\]|\\.)*)'")


def _literal(token: str) -> Any:
    lowered = token.lower()
    if token.startswith("'"):
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    if lowered == "null":
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", token):
        return token
    if re.fullmatch(_DATETIME, token):
        try:  # compared as Salesforce stores it: the fixed-width UTC text
            return sf_time(dt.datetime.fromisoformat(token))
        except ValueError as exc:
            raise malformed(f"invalid datetime literal: {token}") from exc
    return Decimal(token)


def _conditions(where: str | None) -> list[tuple[str, str, Any]]:
    if not where:
        return []
    conditions = []
    for part in re.split(r"\s+AND\s+(?=(?:[^']*'[^']*')*[^']*$)", where, flags=re.IGNORECASE):
        match = _CONDITION.fullmatch(part)
        if match is None:
            raise malformed(f"unexpected condition: {part.strip()}")
        if match["list"] is not None:
            values = [_literal(f"'{v}'") for v in _STRING.findall(match["list"])]
            conditions.append((match["field"], "in", values))
        else:
            conditions.append((match["field"], match["op"], _literal(match["value"])))
    return conditions


def _matches(record: dict[str, Any], conditions: list[tuple[str, str, Any]]) -> bool:
    for field, op, value in conditions:
        actual = record.get(field)
        if isinstance(actual, float | int) and not isinstance(actual, bool) and isinstance(value, Decimal):
            actual = Decimal(str(actual))
        if (op == "=" and actual != value) or (op == "!=" and actual == value) or (op == "in" and actual not in value):
            return False
        if op in _ORDERING and (actual is None or value is None or type(actual) is not type(value)
                                or not _ORDERING[op](actual, value)):
            return False
    return True


_ORDERING: dict[str, Any] = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
                             ">=": lambda a, b: a >= b}


def run_query(store: DocumentStore, soql: str, offset: int, batch: int) -> dict[str, Any]:
    match = _QUERY.match(soql)
    if match is None:
        raise malformed("only SELECT ... FROM ... [WHERE ...] [ORDER BY ...] [LIMIT n] is supported")
    sobject = match["object"]
    if sobject not in PREFIXES:
        raise error(400, "INVALID_TYPE", f"sObject type '{sobject}' is not supported")
    records = [body for _, body in store.list(sobject, limit=1_000_000)]
    known = set(records[0]) if records else set()
    fields_text = match["fields"].strip()
    group = re.sub(r"\s+", "", fields_text.upper())
    if group in ("FIELDS(ALL)", "FIELDS(CUSTOM)") and (not match["limit"] or int(match["limit"]) > FIELDS_LIMIT):
        raise malformed(f"The SOQL FIELDS function must have a LIMIT of at most {FIELDS_LIMIT}")
    fields = (None if group == "FIELDS(ALL)" else sorted(f for f in known if f.endswith("__c"))
              if group == "FIELDS(CUSTOM)" else [f.strip() for f in fields_text.split(",")])
    conditions = _conditions(match["where"])
    for field in [*(fields or []), *(c[0] for c in conditions), *([match["order"]] if match["order"] else [])]:
        if records and field not in known:
            raise error(400, "INVALID_FIELD", f"No such column '{field}' on entity '{sobject}'", [field])
    selected = [r for r in records if _matches(r, conditions)]
    if match["order"]:
        order = match["order"]
        selected.sort(key=lambda r: (r.get(order) is None, r.get(order)),
                      reverse=(match["direction"] or "").upper() == "DESC")
    if match["limit"]:
        selected = selected[:int(match["limit"])]
    window = selected[offset:offset + batch]
    if fields is not None:
        window = [{"attributes": r["attributes"], **{f: r.get(f) for f in fields}} for r in window]
    done = offset + batch >= len(selected)
    body: dict[str, Any] = {"totalSize": len(selected), "done": done, "records": window}
    if not done:
        token = base64.urlsafe_b64encode(json.dumps({"q": soql, "b": batch}).encode()).decode().rstrip("=")
        body["nextRecordsUrl"] = f"{API}/query/01g{token}-{offset + batch}"
    return body


def _batch_size(request: Request[Any, Any, Any]) -> int:
    options = request.headers.get("sforce-query-options", "")
    match = re.search(r"batchSize=(\d+)", options)
    size = int(match.group(1)) if match else MAX_BATCH
    if not 1 <= size <= MAX_BATCH:
        raise error(400, "INVALID_QUERY_LOCATOR", f"batchSize must be 1..{MAX_BATCH}")
    return size


def _locator(locator: str) -> tuple[str, int, int]:
    try:
        token, offset = locator.removeprefix("01g").rsplit("-", 1)
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return str(state["q"]), int(offset), int(state["b"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise error(400, "INVALID_QUERY_LOCATOR", "invalid query locator") from exc


# --- records ---------------------------------------------------------------------------------------------------

def _record(store: DocumentStore, sobject: str, key: str) -> dict[str, Any]:
    if sobject not in PREFIXES:
        raise error(404, "NOT_FOUND", f"The requested resource does not exist: {sobject}")
    record = None
    if is_record_id(key):
        if len(key) == 15:
            rows = [body for _, body in store.list(sobject, limit=1_000_000) if body["Id"].startswith(key)]
            record = rows[0] if rows else None
        else:
            record = store.get(sobject, key)
    if record is None:
        raise error(404, "NOT_FOUND", "The requested resource does not exist")
    return record


def _by_external_id(store: DocumentStore, sobject: str, field: str, value: str) -> dict[str, Any]:
    if EXTERNAL_IDS.get(sobject) != field:
        raise error(400, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {field}")
    rows, _ = store.query(sobject, where={field: value}, limit=1)
    if not rows:
        raise error(404, "NOT_FOUND", "The requested resource does not exist")
    return rows[0]


def update_record(store: DocumentStore, sobject: str, key: str, changes: dict[str, Any]) -> None:
    record = _record(store, sobject, key)
    updatable = UPDATABLE.get(sobject, set())
    problems: list[VendorError] = []
    for field, value in changes.items():
        if field not in record:
            raise error(400, "INVALID_FIELD", f"No such column '{field}' on sobject of type {sobject}", [field])
        if field not in updatable:
            raise error(400, "INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {field}. Please "
                        "check the security settings of this field.", [field])
        if field in PICKLISTS and value is not None and value not in PICKLISTS[field]:
            problems.append(error(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                  f"{field}: bad value for restricted picklist field: {value}", [field]))
        if field.endswith(("Date", "Date__c")) and value is not None and parse_date(value) is None:
            problems.append(error(400, "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{field}: value not of required type: "
                                  f"{value}", [field]))
        if field in NUMBER_FIELDS and value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e15):
            problems.append(error(400, "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{field}: value not of required type",
                                  [field]))
        if field == "Rate_Card__c" and (not isinstance(value, str) or store.get("Rate_Card__c", value) is None):
            problems.append(error(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [field]))
        if field == "Signed_Contract__c" and value is not None and (
                not isinstance(value, str) or store.get("Contract", value) is None):
            problems.append(error(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [field]))
    if problems:
        raise VendorError(400, [p.body[0] for p in problems])
    if sobject == "Contract" and any(record[f] != v for f, v in changes.items() if f in CONTRACT_TERMS):
        record["Version__c"] = int(record.get("Version__c") or 1) + 1
    record.update(changes)
    if sobject == "Opportunity" and "StageName" in changes:
        record["IsClosed"] = record["StageName"] in ("Closed Won", "Closed Lost")
        record["IsWon"] = record["StageName"] == "Closed Won"
    record["LastModifiedDate"] = record["SystemModstamp"] = sf_time(utc_now())
    store.put(sobject, record["Id"], record)


def create_app(store: DocumentStore) -> Litestar:
    @get(f"{API}/query")
    async def query(request: Request[Any, Any, Any], q: FromQuery[str]) -> dict[str, Any]:
        return await store.call(run_query, store, q, 0, _batch_size(request))

    @get(f"{API}/query/{{locator:str}}")
    async def query_more(locator: FromPath[str]) -> dict[str, Any]:
        soql, offset, batch = _locator(locator)
        return await store.call(run_query, store, soql, offset, batch)

    @get(f"{API}/sobjects/{{sobject:str}}/{{key:str}}")
    async def get_record(sobject: FromPath[str], key: FromPath[str]) -> dict[str, Any]:
        return await store.call(_record, store, sobject, key)

    @get(f"{API}/sobjects/{{sobject:str}}/{{field:str}}/{{value:str}}")
    async def get_by_external_id(sobject: FromPath[str], field: FromPath[str], value: FromPath[str]) -> dict[str,
                                                                                                                Any]:
        return await store.call(_by_external_id, store, sobject, field, value)

    @patch(f"{API}/sobjects/{{sobject:str}}/{{key:str}}", status_code=204)
    async def patch_record(sobject: FromPath[str], key: FromPath[str], request: Request[Any, Any, Any]) -> None:
        changes = await json_object(request, lambda message: error(400, "JSON_PARSER_ERROR", message))
        await store.call(update_record, store, sobject, key, changes)

    return Litestar(
        [query, query_more, get_record, get_by_external_id, patch_record],
        exception_handlers={HTTPException: framework_error, VendorError: vendor_error_response},
        openapi_config=None,
    )


def framework_error(_request: Any, exc: HTTPException) -> Response[Any]:
    codes = {400: "MALFORMED_QUERY", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
    return Response([{"message": str(exc.detail), "errorCode": codes.get(exc.status_code, "UNKNOWN_EXCEPTION"),
                      "fields": []}], status_code=exc.status_code)
