"""Salesforce the platform, as every connector to a Salesforce org speaks it (the CRM's standard objects and Certinia
PSA's managed-package objects alike); the connectors keep only their object mapping.

Salesforce REST API Developer Guide: the API root ``/services/data/v60.0``; the OAuth 2.0 JWT bearer flow at
``/services/oauth2/token`` (``system_apis.vendor_auth.JwtBearerToken``); SOQL at ``/query`` paged by
``nextRecordsUrl`` ("Execute a SOQL Query"; the batch size by ``Sforce-Query-Options: batchSize=N``); the org's API
usage on every answer in ``Sforce-Limit-Info: api-usage=<used>/<allowed>`` and, once the daily allocation is spent,
403 ``REQUEST_LIMIT_EXCEEDED`` ("API Request Limits and Allocations"); refusals as an error array
``[{"message", "errorCode", "fields"}]`` ("Status Codes and Error Responses").

Calls go through ``system_apis.vendor_calls.VendorDownstream`` (concurrency cap, Retry-After, a spent budget as a
503 naming the vendor) and refusals become problems through ``system_apis.vendor_errors``.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import msgspec
from prometheus_client import Gauge

from runtime import cursors
from runtime.downstream import Reply
from runtime.problems import NotFound, ProblemError
from system_apis.money import exponent
from system_apis.vendor_auth import JwtBearerToken, VendorCredentials
from system_apis.vendor_calls import VendorDownstream, VendorLimits
from system_apis.vendor_errors import validation_problem, vendor_problem

TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 - the vendor's token endpoint, not a secret
API = "/services/data/v60.0"
MAX_BATCH = 2000  # Salesforce's largest SOQL batch
API_USED = Gauge("psgw_salesforce_api_used", "API calls the Salesforce org counts against its daily allocation",
                 ["vendor"])
API_ALLOWED = Gauge("psgw_salesforce_api_allowed", "The Salesforce org's daily API allocation", ["vendor"])
# Salesforce error codes that mean the request's values are wrong (a 422 on the canonical fields, not a 502).
VALIDATION_CODES = frozenset({
    "FIELD_CUSTOM_VALIDATION_EXCEPTION", "INVALID_CROSS_REFERENCE_KEY", "REQUIRED_FIELD_MISSING",
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "INVALID_TYPE_ON_FIELD_IN_RECORD", "NUMBER_OUTSIDE_VALID_RANGE",
    "STRING_TOO_LONG", "DUPLICATE_VALUE", "MALFORMED_ID",
})
_LOCATOR = re.compile(r"^[A-Za-z0-9_-]{1,4000}$")
_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
_DUPLICATE = re.compile(r"duplicates value on record with id: (\w{15,18})")
_decoder = msgspec.json.Decoder(float_hook=Decimal)  # currency numbers straight to Decimal, never through float


def soql_text(value: str) -> str:
    """A SOQL string literal: quoted, with backslashes and quotes escaped (the only way a value enters a query)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def soql_datetime(moment: dt.datetime) -> str:
    """A SOQL datetime literal (unquoted, UTC, milliseconds: the precision of ``SystemModstamp``)."""
    try:
        utc = moment.astimezone(dt.UTC)
    except OverflowError:  # an offset that pushes year 1 or 9999 off the calendar: the calendar's own edge
        utc = (dt.datetime.min if moment.year == dt.MINYEAR else dt.datetime.max).replace(tzinfo=dt.UTC)
    # Written field by field: strftime's %Y does not pad years before 1000, which SOQL would refuse.
    return (f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}."
            f"{utc.microsecond // 1000:03d}Z")


def number(amount: Decimal | None) -> int | float | None:
    """Salesforce takes number and currency fields as JSON numbers (whole values without float error)."""
    if amount is None:
        return None
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def currency_value(value: Any, currency: str) -> Decimal:
    """A currency field (a JSON number, decoded to Decimal) in the currency's minor unit (420.0 -> 420.00)."""
    return Decimal(value).quantize(Decimal(1).scaleb(-exponent(currency)))


def budget_spent(reply: Reply) -> bool:
    """Salesforce's answer once the org's API budget is spent: 403 with errorCode REQUEST_LIMIT_EXCEEDED."""
    return reply.status_code == 403 and b'"REQUEST_LIMIT_EXCEEDED"' in reply.content


def api_usage(headers: dict[str, str]) -> tuple[int, int] | None:
    """``Sforce-Limit-Info: api-usage=used/allowed`` as numbers; None when absent or not in that form."""
    match = _LIMIT_INFO.search(headers.get("sforce-limit-info", ""))
    return (int(match.group(1)), int(match.group(2))) if match else None


def errors_of(body: Any) -> list[dict[str, Any]]:
    """The error objects of a Salesforce error array (anything else: none)."""
    return [e for e in body if isinstance(e, dict)] if isinstance(body, list) else []


def refusal(vendor: str, status: int, body: Any, field_map: dict[str, str], what: str) -> ProblemError:
    """A Salesforce 4xx error array as the canonical problem (vendor fields named by their canonical pointers)."""
    errors = errors_of(body)
    fields = [(f, str(e.get("message", ""))) for e in errors for f in (e.get("fields") or [None])]
    codes = {str(e.get("errorCode") or e.get("statusCode")) for e in errors}
    if "NOT_FOUND" in codes or "ENTITY_IS_DELETED" in codes:
        return NotFound(f"no such {what}", slug="unknown-id", downstream=vendor)
    if status == 400 and codes & VALIDATION_CODES:
        return validation_problem(vendor, fields, field_map)
    return vendor_problem(vendor, status, "; ".join(str(e.get("message", "")) for e in errors), fields, field_map,
                          what=what)


def duplicate_of(body: Any, field_name: str | None = None) -> str | None:
    """The record id a 400 ``DUPLICATE_VALUE`` names ("... duplicates value on record with id: <Id>"), on
    ``field_name`` when given: a unique external id seen before, so the write was done once already."""
    for error in errors_of(body):
        if error.get("errorCode") != "DUPLICATE_VALUE":
            continue
        if field_name is not None and field_name not in (error.get("fields") or []):
            continue
        match = _DUPLICATE.search(str(error.get("message", "")))
        if match:
            return match.group(1)
    return None


class RecordKeys:
    """Base of a connector's id maps (dataclass fields of ``KeyMap[str]`` per kind): Salesforce record ids against
    business keys, looked up either way; a miss is a LookupError naming the kind."""

    def key(self, kind: str, record_id: str) -> str:
        found = getattr(self, kind).key(record_id)
        if found is None:
            raise LookupError(f"unknown {kind} record {record_id}")
        return str(found)

    def record_id(self, kind: str, key: str) -> str:
        found = getattr(self, kind).vendor_id(key)
        if found is None:
            raise LookupError(f"unknown {kind} key {key}")
        return str(found)


class SalesforceOrg:
    """One Salesforce org over REST for a connector: authenticated by the JWT bearer flow, within the org's limits,
    its answers decoded (numbers as Decimal) and its refusals turned into problems naming ``vendor``."""

    def __init__(self, vendor: str, base_url: str, timeout_seconds: float, *, limits: VendorLimits | None = None,
                 credentials: VendorCredentials | None = None) -> None:
        self.vendor = vendor
        self._downstream = VendorDownstream(vendor, base_url, timeout_seconds=timeout_seconds, grant=JwtBearerToken,
                                            token_path=TOKEN_PATH, credentials=credentials, limits=limits,
                                            budget_spent=budget_spent)

    async def aclose(self) -> None:
        await self._downstream.aclose()

    async def send(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """Status and decoded body of one call under the API root, 4xx included (for callers that read a refusal
        themselves, such as a duplicate external id)."""
        reply = await self._downstream.request(method, API + path, params=params, json=json, headers=headers,
                                               allow_statuses=frozenset(range(400, 500)))
        usage = api_usage(reply.headers)
        if usage is not None:
            API_USED.labels(self.vendor).set(usage[0])
            API_ALLOWED.labels(self.vendor).set(usage[1])
        return reply.status_code, _decoder.decode(reply.content) if reply.content else None

    def refusal(self, status: int, body: Any, field_map: dict[str, str], what: str) -> ProblemError:
        return refusal(self.vendor, status, body, field_map, what)

    async def call(self, method: str, path: str, *, what: str, field_map: dict[str, str] | None = None,
                   params: dict[str, Any] | None = None, json: Any = None,
                   headers: dict[str, str] | None = None) -> Any:
        """The decoded body of a successful call; a refusal raised as the canonical problem."""
        status, body = await self.send(method, path, params=params, json=json, headers=headers)
        if status >= 400:
            raise self.refusal(status, body, field_map or {}, what)
        return body

    async def query(self, soql: str, cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a SOQL query: the first asks for ``limit`` records, later ones follow ``nextRecordsUrl``'s
        query locator, carried in a cursor bound to the query (so it cannot resume another list)."""
        bound = cursors.binding({"q": soql})
        locator = cursors.decode(cursor, bound).get("locator")
        if locator is None:
            body = await self.call("GET", "/query", params={"q": soql}, what="record",
                                   headers={"Sforce-Query-Options": f"batchSize={limit}"})
        else:
            if not isinstance(locator, str) or not _LOCATOR.match(locator):
                raise cursors.invalid("bad locator")
            body = await self.call("GET", f"/query/{locator}", what="record")
        next_url = body.get("nextRecordsUrl")
        next_cursor = cursors.encode({"locator": next_url.rsplit("/", 1)[-1]}, bound) if next_url else None
        return body["records"], next_cursor

    async def query_all(self, soql: str) -> list[dict[str, Any]]:
        """Every record of a SOQL query, page after page."""
        rows, cursor = await self.query(soql, None, MAX_BATCH)
        while cursor is not None:
            more, cursor = await self.query(soql, cursor, MAX_BATCH)
            rows.extend(more)
        return rows
