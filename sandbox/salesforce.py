"""What every Salesforce-hosted sandbox shares on the wire (the CRM's standard objects, Certinia PSA's managed-package
objects): the REST API root, record ids, datetimes, the error array ``[{"message", "errorCode", "fields"}]``, the
daily/concurrent API limits and ``Sforce-Limit-Info``, the OAuth 2.0 JWT bearer flow, and the SOQL subset paged by
``nextRecordsUrl``.

SOQL subset (Salesforce "SOQL and SOSL Reference"): ``SELECT f, ... | FIELDS(ALL) | FIELDS(CUSTOM) FROM T [WHERE f
op v AND f IN ('a','b') AND f != null] [ORDER BY f [ASC|DESC]] [LIMIT n]`` with ``=``, ``!=``, ``<``, ``<=``,
``>``, ``>=``; literals are quoted strings, ``null``, ``true``/``false``, numbers, dates (``2026-10-05``) and
unquoted datetimes (``2026-10-05T18:00:00.000Z``). ``FIELDS(ALL)``/``FIELDS(CUSTOM)`` need ``LIMIT n`` with
n <= 200 or are refused 400 ``MALFORMED_QUERY``. Batch size from ``Sforce-Query-Options: batchSize=N``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Collection
from decimal import Decimal
from typing import Any

from litestar import Request, get
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery
from litestar.response import Response

from sandbox.salesforce_ids import is_record_id
from sandbox.store import DocumentStore
from sandbox.vendor_http import JWT_BEARER, AuthDialect, LimitDialect, VendorError

API = "/services/data/v60.0"
MAX_BATCH = 2000
# Salesforce's bound on unbounded field lists: FIELDS(ALL) / FIELDS(CUSTOM) need LIMIT <= 200.
FIELDS_LIMIT = 200


def sf_time(moment: dt.datetime) -> str:
    """Salesforce's datetime: milliseconds, UTC, ``+0000`` (fixed width, so the text sorts as the time)."""
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def attributes(sobject: str, record_id_: str) -> dict[str, str]:
    return {"type": sobject, "url": f"{API}/sobjects/{sobject}/{record_id_}"}


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
AUTH = AuthDialect(
    grant_path="/services/oauth2/token",
    grant=JWT_BEARER,
    says_expiry=False,
    unauthorized=lambda: error(401, "INVALID_SESSION_ID", "Session expired or invalid").body,
)


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
        if op in _ORDERING and (
            actual is None or value is None or type(actual) is not type(value) or not _ORDERING[op](actual, value)
        ):
            return False
    return True


_ORDERING: dict[str, Any] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _prefilter(conditions: list[tuple[str, str, Any]]) -> dict[str, Any]:
    """The text equalities and ``IN`` lists the store can answer from its indexes; every condition is still checked
    on the rows it returns (``_matches``), so this only narrows what is read."""
    where: dict[str, Any] = {}
    for field, op, value in conditions:
        if field in where or not field.isidentifier():
            continue
        if op == "=" and isinstance(value, str):
            where[field] = value
        elif op == "in" and value and all(isinstance(v, str) for v in value):
            where[field] = list(value)
    return where


def _read(store: DocumentStore, sobject: str, where: dict[str, Any], indexed: Collection[str]) -> list[dict[str, Any]]:
    """The documents the prefilter lets through, in insertion order. An ``IN`` list on an indexed field is read value
    by value (one index lookup each): SQLite plans ``IN (...)`` under the store's ``ORDER BY seq`` as a walk of the
    whole kind (130 ms for 200 names among 8,000 timecards, against 1 ms looked up one by one)."""
    listed = [(f, v) for f, v in where.items() if isinstance(v, list) and f in indexed]
    if not listed:
        return [body for _, body in store.list(sobject, where=where, limit=1_000_000)]
    field, values = min(listed, key=lambda item: len(item[1]))
    rest = {f: v for f, v in where.items() if f != field}
    found: dict[int, dict[str, Any]] = {}
    for value in dict.fromkeys(values):
        found.update(store.list(sobject, where={**rest, field: value}, limit=1_000_000))
    return [found[seq] for seq in sorted(found)]


def run_query(store: DocumentStore, soql: str, offset: int, batch: int, objects: Collection[str],
              indexed: Collection[str] = ()) -> dict[str, Any]:
    """One batch of a SOQL query over the sObject types this org serves (``objects``); ``indexed``: the fields the
    org's store indexes."""
    match = _QUERY.match(soql)
    if match is None:
        raise malformed("only SELECT ... FROM ... [WHERE ...] [ORDER BY ...] [LIMIT n] is supported")
    sobject = match["object"]
    if sobject not in objects:
        raise error(400, "INVALID_TYPE", f"sObject type '{sobject}' is not supported")
    sample = store.list(sobject, limit=1)
    known = set(sample[0][1]) if sample else set()
    fields_text = match["fields"].strip()
    group = re.sub(r"\s+", "", fields_text.upper())
    if group in ("FIELDS(ALL)", "FIELDS(CUSTOM)") and (not match["limit"] or int(match["limit"]) > FIELDS_LIMIT):
        raise malformed(f"The SOQL FIELDS function must have a LIMIT of at most {FIELDS_LIMIT}")
    fields = (
        None
        if group == "FIELDS(ALL)"
        else sorted(f for f in known if f.endswith("__c"))
        if group == "FIELDS(CUSTOM)"
        else [f.strip() for f in fields_text.split(",")]
    )
    conditions = _conditions(match["where"])
    for field in [*(fields or []), *(c[0] for c in conditions), *([match["order"]] if match["order"] else [])]:
        if known and field not in known:
            raise error(400, "INVALID_FIELD", f"No such column '{field}' on entity '{sobject}'", [field])
    records = _read(store, sobject, _prefilter(conditions), indexed)
    selected = [r for r in records if _matches(r, conditions)]
    if match["order"]:
        order = match["order"]
        selected.sort(
            key=lambda r: (r.get(order) is None, r.get(order)), reverse=(match["direction"] or "").upper() == "DESC"
        )
    if match["limit"]:
        selected = selected[: int(match["limit"])]
    window = selected[offset : offset + batch]
    if fields is not None:
        window = [{"attributes": r["attributes"], **{f: r.get(f) for f in fields}} for r in window]
    done = offset + batch >= len(selected)
    body: dict[str, Any] = {"totalSize": len(selected), "done": done, "records": window}
    if not done:
        token = base64.urlsafe_b64encode(json.dumps({"q": soql, "b": batch}).encode()).decode().rstrip("=")
        body["nextRecordsUrl"] = f"{API}/query/01g{token}-{offset + batch}"
    return body


def batch_size(request: Request[Any, Any, Any]) -> int:
    options = request.headers.get("sforce-query-options", "")
    match = re.search(r"batchSize=(\d+)", options)
    size = int(match.group(1)) if match else MAX_BATCH
    if not 1 <= size <= MAX_BATCH:
        raise error(400, "INVALID_QUERY_LOCATOR", f"batchSize must be 1..{MAX_BATCH}")
    return size


def read_locator(locator: str) -> tuple[str, int, int]:
    try:
        token, offset = locator.removeprefix("01g").rsplit("-", 1)
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return str(state["q"]), int(offset), int(state["b"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise error(400, "INVALID_QUERY_LOCATOR", "invalid query locator") from exc


# --- records ---------------------------------------------------------------------------------------------------


def get_record(store: DocumentStore, sobject: str, key: str, objects: Collection[str]) -> dict[str, Any]:
    if sobject not in objects:
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


def framework_error(_request: Any, exc: HTTPException) -> Response[Any]:
    codes = {400: "MALFORMED_QUERY", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
    return Response(
        [{"message": str(exc.detail), "errorCode": codes.get(exc.status_code, "UNKNOWN_EXCEPTION"), "fields": []}],
        status_code=exc.status_code,
    )


def query_routes(store: DocumentStore, objects: Collection[str], indexed: Collection[str] = ()) -> list[Any]:
    """``GET /query?q=`` and ``GET /query/<locator>`` (its ``nextRecordsUrl``) over ``objects``; ``indexed``: the
    fields the store indexes."""

    @get(f"{API}/query")
    async def query(request: Request[Any, Any, Any], q: FromQuery[str]) -> dict[str, Any]:
        return await store.call(run_query, store, q, 0, batch_size(request), objects, indexed)

    @get(f"{API}/query/{{locator:str}}")
    async def query_more(locator: FromPath[str]) -> dict[str, Any]:
        soql, offset, batch = read_locator(locator)
        return await store.call(run_query, store, soql, offset, batch, objects, indexed)

    return [query, query_more]
