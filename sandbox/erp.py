"""Sandbox ERP: a cloud ERP's REST resources in its own dialect.

Dialect: integer ``internalId`` on every record, camelCase fields, subsidiaries instead of legal entities,
money in integer minor units (``amountMinor``), quantities as strings, periods named ``"Oct 2026"``, upper-case
enums (``postingStatus: "POSTED"``), offset pagination (``?offset=0&limit=100`` -> ``{"items", "count",
"offset", "totalResults", "hasMore"}``), errors as ``{"type", "title", "status", "o:errorDetails": [{"detail",
"o:errorPath", "o:errorCode"}]}``. A posting is unique per source document (the ERP refuses a second with
409 ``DUPLICATE_SOURCE`` naming the first), posting goes one by one or in batches of up to 500, and a closed
period refuses postings. Creating POSTs honour an ``Idempotency-Key`` header.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from litestar import Litestar, Request, get, patch, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery
from litestar.response import Response

from sandbox import firm as demo
from sandbox.firm import Firm
from sandbox.salesforce_ids import record_id
from sandbox.store import DocumentStore
from sandbox.vendor_http import (
    AuthDialect,
    LimitDialect,
    VendorError,
    json_object,
    parse_date,
    utc_now,
    vendor_error_response,
)

BILLING_METHODS = {"time_and_materials": "TIME_AND_MATERIAL", "fixed_fee": "FIXED_PRICE", "milestone": "MILESTONE",
                   "retainer": "RETAINER"}
CONTRACT_STATUSES = {"draft": "DRAFT", "active": "ACTIVE", "amendment_pending": "PENDING_AMENDMENT",
                     "closed": "CLOSED"}
INVOICE_FREQUENCIES = {"monthly": "MONTHLY", "milestone": "MILESTONE", "schedule": "SCHEDULE"}
SOURCE_TYPES = {"time_entry": "TIMECARD", "expense": "EXPENSE_REPORT", "milestone": "MILESTONE",
                "fixed_fee": "FIXED_FEE", "retainer": "RETAINER"}
VAT_PERCENT = {"LE-US": Decimal(0), "LE-UK": Decimal(20), "LE-DE": Decimal(19)}
# The subsidiaries' VAT registrations and e-invoicing network ids (LE-US: a federal EIN, no VAT).
SUBSIDIARY_TAX_IDS = {"LE-US": (None, "9959:871234567"), "LE-UK": ("GB123456782", "9932:123456782"),
                      "LE-DE": ("DE309174625", "9930:de309174625")}
# The demo customers' billing addresses and VAT registrations (valid check digits, invented companies), and their
# e-invoicing network ids (scheme:identifier, as the sandbox access point's directory knows them).
CUSTOMER_PEPPOL_IDS: dict[str, str | None] = {
    "C-1001": "9959:131234567", "C-1002": "9959:943214321", "C-1003": "9959:752345678", "C-1004": "9932:980061039",
    "C-1005": "9932:456321905", "C-1006": "9932:214783016", "C-1007": "9930:de136457882",
    "C-1008": "9930:de812345673", "C-1009": "9930:de273487658", "C-1010": "9930:de112233446",
    "C-1011": "9959:911234560", "C-1012": None,
}

CUSTOMER_TAX_PROFILES: dict[str, tuple[dict[str, str], str | None]] = {
    "C-1001": ({"addr1": "350 Fifth Avenue", "city": "New York", "zip": "10118", "state": "NY", "country": "US"}, None),
    "C-1002": ({"addr1": "1 Market Street", "city": "San Francisco", "zip": "94105", "state": "CA", "country": "US"},
               None),
    "C-1003": ({"addr1": "2100 Ross Avenue", "city": "Dallas", "zip": "75201", "state": "TX", "country": "US"}, None),
    "C-1004": ({"addr1": "1 Canada Square", "city": "London", "zip": "E14 5AB", "country": "GB"}, "GB980061039"),
    "C-1005": ({"addr1": "10 Deansgate", "city": "Manchester", "zip": "M3 2BA", "country": "GB"}, "GB456321905"),
    "C-1006": ({"addr1": "5 Broad Street", "city": "Bristol", "zip": "BS1 2EJ", "country": "GB"}, "GB214783016"),
    "C-1007": ({"addr1": "Friedrichstrasse 100", "city": "Berlin", "zip": "10117", "country": "DE"}, "DE136457882"),
    "C-1008": ({"addr1": "Koenigsallee 20", "city": "Duesseldorf", "zip": "40212", "country": "DE"}, "DE812345673"),
    "C-1009": ({"addr1": "Speicherstadt 7", "city": "Hamburg", "zip": "20457", "country": "DE"}, "DE273487658"),
    "C-1010": ({"addr1": "Marienplatz 3", "city": "Muenchen", "zip": "80331", "country": "DE"}, "DE112233446"),
    "C-1011": ({"addr1": "400 Broad Street", "city": "Seattle", "zip": "98109", "state": "WA", "country": "US"}, None),
    "C-1012": ({"addr1": "20 Princes Street", "city": "Edinburgh", "zip": "EH2 2AN", "country": "GB"}, None),
}
MAX_LIMIT = 1000
MAX_BATCH = 500
CENT = Decimal("0.01")

# Changing any of these on a contract is an amendment: the ERP bumps its revision.
COMMERCIAL_TERMS = {"billingMethod", "nteAmountMinor", "startDate", "endDate", "rateScheduleCode",
                    "invoiceFrequency", "paymentTerms", "scheduledAmountMinor", "currency", "contractValueMinor",
                    "billingSchedule", "retainerHours", "unusedHoursPolicy", "revenueRecognitionMethod",
                    "budgetedCostMinor", "expenseMarkupPct"}
UNUSED_HOURS_POLICIES = {"expire": "EXPIRE", "carry_forward": "CARRY_FORWARD"}


def period_name(day: dt.date) -> str:
    return day.strftime("%b %Y")


def moment(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def minor(amount: Decimal) -> int:
    return int((amount.quantize(CENT, ROUND_HALF_EVEN) * 100).to_integral_value())


def month_start(day: dt.date, months_back: int) -> dt.date:
    """The first day of the month ``months_back`` before ``day``'s (negative: ahead)."""
    index = day.year * 12 + day.month - 1 - months_back
    return dt.date(index // 12, index % 12 + 1, 1)


def _month_starts(first: dt.date, last: dt.date) -> list[dt.date]:
    months, day = [], first.replace(day=1)
    while day <= last:
        months.append(day)
        day = (day + dt.timedelta(days=32)).replace(day=1)
    return months


def seed(store: DocumentStore, firm: Firm) -> None:
    store.put_many("subsidiary", [
        (str(index + 1), {"internalId": index + 1, "subsidiaryCode": code, "legalName": name, "country": country,
                          "baseCurrency": currency, "vatRatePercent": str(VAT_PERCENT[code]),
                          "vatRegNumber": SUBSIDIARY_TAX_IDS[code][0], "peppolId": SUBSIDIARY_TAX_IDS[code][1],
                          "federalTaxId": "87-1234567" if code == "LE-US" else None})
        for index, (code, name, country, currency) in enumerate(demo.LEGAL_ENTITIES)
    ])
    periods: list[tuple[str, dict[str, Any]]] = []
    for code, _name, _country, _currency in demo.LEGAL_ENTITIES:
        for start in _month_starts(month_start(firm.today, 12), month_start(firm.today, -3)):
            end = (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
            closed = start.strftime("%Y-%m") in firm.closed_periods.get(code, [])
            periods.append((str(100 + len(periods)), {
                "internalId": 100 + len(periods), "subsidiaryCode": code, "periodName": period_name(start),
                "startDate": start.isoformat(), "endDate": end.isoformat(), "status": "CLOSED" if closed else "OPEN",
            }))
    store.put_many("period", periods)
    customer_ids: dict[str, int] = {}
    customers = []
    for index, (number, name, entity, currency, region) in enumerate(demo.CUSTOMERS):
        customer_ids[number] = 2001 + index
        customers.append((str(2001 + index), {
            "internalId": 2001 + index, "customerNumber": number, "companyName": name, "currency": currency,
            "subsidiaryCode": entity, "taxRegion": region, "externalCrmId": record_id("Account", index + 1),
            "billingAddress": CUSTOMER_TAX_PROFILES[number][0], "vatRegNumber": CUSTOMER_TAX_PROFILES[number][1],
            "peppolId": CUSTOMER_PEPPOL_IDS[number],
        }))
    store.put_many("customer", customers)
    store.put_many("contract", [
        (str(3501 + index), {
            "internalId": 3501 + index, "contractNumber": c.number, "customerId": customer_ids[c.customer],
            "subsidiaryCode": c.legal_entity, "description": c.name, "currency": c.currency,
            "billingMethod": BILLING_METHODS[c.billing_model],
            "nteAmountMinor": minor(c.nte) if c.nte is not None else None, "startDate": c.start.isoformat(),
            "endDate": c.end.isoformat(), "contractStatus": CONTRACT_STATUSES[c.status], "revision": 1,
            "rateScheduleCode": c.rate_card,
            "invoiceFrequency": "MILESTONE" if c.billing_model == "milestone" else "MONTHLY",
            "paymentTerms": "NET30",
            "scheduledAmountMinor": minor(c.scheduled_amount) if c.scheduled_amount is not None else None,
            **contract_terms(c),
        })
        for index, c in enumerate(firm.contracts)
    ])
    store.put_many("dimension", [
        (str(8001 + index), {"internalId": 8001 + index, "dimensionCode": "P-" + p.code.removeprefix("PRJ-"),
                             "projectCode": p.code, "subsidiaryCode": p.legal_entity})
        for index, p in enumerate(firm.projects)
    ])
    _seed_ledger(store, firm, customer_ids)


def contract_terms(contract: demo.Contract) -> dict[str, Any]:
    """A demo contract's billing terms in the ERP's fields: value, instalments, retainer allowance."""
    return {
        "contractValueMinor": minor(contract.total_value) if contract.total_value is not None else None,
        "billingSchedule": [
            {"lineNo": n + 1, "periodName": period_name(dt.date.fromisoformat(f"{period}-01")), "billingDate": None,
             "amountMinor": minor(amount), "percentComplete": None if percent is None else str(percent),
             "memo": f"Instalment {n + 1} of {len(contract.schedule)}"}
            for n, (period, amount, percent) in enumerate(contract.schedule)],
        "retainerHours": None if contract.retainer_hours is None else str(contract.retainer_hours),
        "unusedHoursPolicy": UNUSED_HOURS_POLICIES[contract.unused_hours],
        "expenseMarkupPct": None if contract.expense_markup is None else str(contract.expense_markup),
    }


def _seed_ledger(store: DocumentStore, firm: Firm, customer_ids: dict[str, int]) -> None:
    """Postings for the time the PSA shows as posted or billed (T&M and retainer work), their invoices, revenue."""
    contracts = {c.number: c for c in firm.contracts}
    projects = {p.code: p for p in firm.projects}
    roles = {w.number: w.role for w in firm.workers}
    cards = {r.code: r for r in firm.rate_cards}
    postings: list[tuple[str, dict[str, Any]]] = []
    sources: list[tuple[str, dict[str, Any]]] = []
    billed: dict[tuple[str, str], dict[str, list[tuple[int, Decimal, str]]]] = defaultdict(
        lambda: defaultdict(list))
    revenue: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for entry in firm.time_entries:
        project = projects[entry.project]
        contract = contracts[project.contract]
        rate = cards[contract.rate_card].rates.get(roles[entry.worker])
        if entry.state not in ("posted", "invoiced") or contract.billing_model not in (
                "time_and_materials", "retainer") or rate is None or not entry.billable:
            continue
        hours = Decimal(entry.minutes) / 60
        amount = (hours * rate).quantize(CENT, ROUND_HALF_EVEN)
        internal_id = 600001 + len(postings)
        posted_at = dt.datetime.combine(entry.work_date + dt.timedelta(days=4), dt.time(2, 0), tzinfo=dt.UTC)
        postings.append((str(internal_id), {
            "internalId": internal_id, "postingNumber": f"JE-{internal_id}", "sourceDocumentType": "TIMECARD",
            "sourceDocumentId": entry.number, "projectCode": project.code, "contractNumber": contract.number,
            "subsidiaryCode": contract.legal_entity, "transactionDate": entry.work_date.isoformat(),
            "quantity": f"{hours:.2f}", "durationMinutes": entry.minutes, "amountMinor": minor(amount),
            "currencyCode": contract.currency, "postingStatus": "POSTED", "postedAt": moment(posted_at),
        }))
        sources.append((f"TIMECARD:{entry.number}", {"internalId": internal_id}))
        month = entry.work_date.replace(day=1)
        revenue[(contract.number, period_name(month))] += amount
        if entry.state == "invoiced":
            billed[(contract.number, period_name(month))][roles[entry.worker]].append(
                (entry.minutes, rate, entry.number))
    store.put_many("posting", postings)
    store.put_many("postingSource", sources)
    invoices: list[tuple[str, dict[str, Any]]] = []
    for (contract_number, period), by_role in sorted(billed.items()):
        contract = contracts[contract_number]
        lines: list[dict[str, Any]] = []
        for role, items in sorted(by_role.items()):
            minutes = sum(m for m, _, _ in items)
            amount = sum(((Decimal(m) * r / 60).quantize(CENT, ROUND_HALF_EVEN) for m, r, _ in items), Decimal(0))
            lines.append({"lineNo": len(lines) + 1, "description": f"{role.replace('_', ' ').title()} services",
                          "quantity": f"{Decimal(minutes) / 60:.2f}", "durationMinutes": minutes,
                          "unitPriceMinor": minor(items[0][1]),
                          "amountMinor": minor(amount), "sourceType": "TIMECARD",
                          "sourceRefs": [number for _, _, number in items]})
        internal_id = 700001 + len(invoices)
        issued = dt.datetime.strptime(period, "%b %Y").date() + dt.timedelta(days=35)
        invoice = _invoice_totals({
            "internalId": internal_id, "invoiceNumber": f"INV-{internal_id}",
            "customerId": customer_ids[contract.customer], "contractNumber": contract_number,
            "subsidiaryCode": contract.legal_entity, "currencyCode": contract.currency, "periodName": period,
            "lines": lines, "status": "POSTED", "invoiceDate": issued.replace(day=1).isoformat(),
        })
        invoices.append((str(internal_id), invoice))
    store.put_many("invoice", invoices)
    for milestone in firm.milestones:
        if milestone.state == "accepted":
            contract = contracts[projects[milestone.project].contract]
            revenue[(contract.number, period_name(milestone.due))] += milestone.amount
    # Every fixed-fee instalment of a month already closed is recognised (the history runs from each contract's
    # start, so its cost does too).
    recognized_to = f"{month_start(firm.today, 1):%Y-%m}"
    for contract in firm.contracts:
        for period, amount, _percent in contract.schedule:
            if period <= recognized_to:
                revenue[(contract.number, period_name(dt.date.fromisoformat(f"{period}-01")))] += amount
    methods = {"time_and_materials": "AS_BILLED", "retainer": "AS_BILLED", "milestone": "MILESTONE",
               "fixed_fee": "PERCENT_COMPLETE"}
    store.put_many("revenueSchedule", [
        (str(900001 + index), {
            "internalId": 900001 + index, "scheduleNumber": f"RS-{900001 + index}", "contractNumber": number,
            "periodName": period, "recognizedAmountMinor": minor(amount), "currencyCode": contracts[number].currency,
            "recognitionMethod": methods[contracts[number].billing_model],
        })
        for index, ((number, period), amount) in enumerate(sorted(revenue.items()))
    ])
    store.reserve("revenueScheduleId", 900001 + len(revenue))
    store.reserve("postingId", 600001 + len(postings))
    store.reserve("invoiceId", 700001 + len(invoices))
    store.reserve("customerId", 2001 + len(demo.CUSTOMERS))
    store.reserve("customerNumber", 1001 + len(demo.CUSTOMERS))
    store.reserve("contractId", 3501 + len(firm.contracts))
    store.reserve("contractNumber", 2001 + len(firm.contracts))
    store.reserve("dimensionId", 8001 + len(firm.projects))


def _invoice_totals(invoice: dict[str, Any]) -> dict[str, Any]:
    """An invoice sent with ``taxLines`` books exactly that tax (computed by the tax engines); one sent without
    (the seeded history, credit memos) gets the subsidiary's flat VAT rate, rounded half-even once per document."""
    subtotal = sum(line["amountMinor"] for line in invoice["lines"])
    if invoice.get("taxLines"):
        tax = sum(line["taxMinor"] for line in invoice["taxLines"])
    else:
        rate = VAT_PERCENT.get(invoice["subsidiaryCode"], Decimal(0))
        tax = int((Decimal(subtotal) * rate / 100).quantize(Decimal(1), ROUND_HALF_EVEN))
    return {**invoice, "subtotalMinor": subtotal, "taxMinor": tax, "totalMinor": subtotal + tax}


def _check_tax_lines(check: Checker, body: dict[str, Any], lines: Any) -> None:
    """Tax lines given by the caller: well formed, and together they tax exactly the invoice's lines."""
    tax_lines = body.get("taxLines")
    if tax_lines is None:
        return
    if not isinstance(tax_lines, list) or not tax_lines:
        check.fail("taxLines", "must be a non-empty list")
        return
    for index, tax_line in enumerate(tax_lines):
        if not isinstance(tax_line, dict):
            check.fail(f"taxLines[{index}]", "must be an object")
            continue
        line_check = Checker(tax_line)
        line_check.unknown(TAX_LINE_FIELDS)
        line_check.required("taxCode", "jurisdiction", "ratePercent", "taxableMinor", "taxMinor")
        line_check.choice("taxCode", TAX_CODES)
        line_check.quantity("ratePercent")
        line_check.minor_units("taxableMinor", nullable=False)
        line_check.minor_units("taxMinor", nullable=False)
        check.details.extend((f"taxLines[{index}].{path}", code, text) for path, code, text in line_check.details)
    if check.details or not isinstance(lines, list):
        return
    taxed = sum(t["taxableMinor"] for t in tax_lines)
    billed = sum(line["amountMinor"] for line in lines if isinstance(line, dict))
    if taxed != billed:
        check.fail("taxLines", f"the tax lines tax {taxed}, the invoice lines amount to {billed}", "TAX_MISMATCH")


# --- errors and paging -----------------------------------------------------------------------------------------

def error(status: int, title: str, details: list[tuple[str | None, str, str]], **extra: Any) -> VendorError:
    """``details`` are (field path or None, error code, detail)."""
    body: dict[str, Any] = {
        "type": f"https://www.rfc-editor.org/rfc/rfc9110.html#section-15.{5 if status < 500 else 6}",
        "title": title, "status": status,
        "o:errorDetails": [{"detail": text, "o:errorCode": code, **({"o:errorPath": path} if path else {})}
                           for path, code, text in details],
        **extra,
    }
    return VendorError(status, body)


# Past the call rate: 429 with Retry-After, in this API's error shape (as NetSuite's concurrency governance does).
LIMITS = LimitDialect(too_many=lambda seconds: error(429, "Too Many Requests", [
    (None, "CONCURRENCY_LIMIT_EXCEEDED", f"Too many requests: retry after {seconds} s")]).body)


# OAuth 2.0 client credentials (NetSuite's token endpoint path); a call without a live token: 401 INVALID_LOGIN.
AUTH = AuthDialect(grant_path="/services/rest/auth/oauth2/v1/token", grant="client_credentials",
                   unauthorized=lambda: error(401, "Unauthorized", [
                       (None, "INVALID_LOGIN", "missing, unknown or expired access token")]).body)


def invalid(message: str) -> VendorError:
    return error(400, "Bad Request", [(None, "INVALID_CONTENT", message)])


def not_found(kind: str, internal_id: Any) -> VendorError:
    return error(404, "Not Found", [(None, "NONEXISTENT_ID", f"{kind} {internal_id} does not exist")])


def _page(store: DocumentStore, kind: str, offset: int, limit: int, where: dict[str, Any],
          ranges: dict[str, tuple[Any, Any]] | None = None, contains: dict[str, str] | None = None) -> dict[str, Any]:
    if offset < 0 or not 1 <= limit <= MAX_LIMIT:
        raise invalid(f"offset must be >= 0 and limit 1..{MAX_LIMIT}")
    rows, total = store.query(kind, where={k: v for k, v in where.items() if v is not None}, ranges=ranges,
                              contains=contains, offset=offset, limit=limit)
    return {"items": rows, "count": len(rows), "offset": offset, "totalResults": total,
            "hasMore": offset + len(rows) < total}


def _one(store: DocumentStore, kind: str, internal_id: int) -> dict[str, Any]:
    body = store.get(kind, str(internal_id))
    if body is None:
        raise not_found(kind, internal_id)
    return body


def _first(store: DocumentStore, kind: str, **where: Any) -> dict[str, Any] | None:
    rows = store.list(kind, where=where, limit=1)  # no total wanted: one statement, not two
    return rows[0][1] if rows else None


class Checker:
    """Field checks in the ERP's terms; ``raise_if_any`` answers 400 listing every bad field."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.details: list[tuple[str | None, str, str]] = []

    def fail(self, field: str, text: str, code: str = "INVALID_VALUE") -> None:
        self.details.append((field, code, text))

    def unknown(self, allowed: set[str]) -> None:
        for field in sorted(set(self.body) - allowed):
            self.fail(field, "unknown or read-only field", "INVALID_FIELD")

    def required(self, *fields: str) -> None:
        for field in fields:
            if self.body.get(field) in (None, ""):
                self.fail(field, "is required", "USER_ERROR")

    def text(self, field: str) -> None:
        if field in self.body and (not isinstance(self.body[field], str) or not self.body[field].strip()):
            self.fail(field, "must be non-empty text")

    def choice(self, field: str, allowed: set[str]) -> None:
        if field in self.body and self.body[field] not in allowed:
            self.fail(field, f"must be one of {sorted(allowed)}")

    def date(self, field: str) -> None:
        if self.body.get(field) is not None and parse_date(self.body[field]) is None:
            self.fail(field, "must be a date (YYYY-MM-DD)")

    def minor_units(self, field: str, nullable: bool = True) -> None:
        value = self.body.get(field)
        if value is None and nullable and field in self.body:
            return
        if field in self.body and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            self.fail(field, "must be a non-negative integer amount in minor units")

    def whole_number(self, field: str, *, signed: bool = False) -> None:
        value = self.body.get(field)
        if field in self.body and value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or (value < 0 and not signed)):
            self.fail(field, "must be a whole number" if signed else "must be a non-negative whole number")

    def quantity(self, field: str) -> None:
        value = self.body.get(field)
        try:
            ok = isinstance(value, str) and Decimal(value).is_finite()
        except InvalidOperation:
            ok = False
        if field in self.body and not ok:
            self.fail(field, "must be a decimal number as a string")

    def raise_if_any(self, title: str) -> None:
        if self.details:
            raise error(400, title, self.details)


def _period_status(store: DocumentStore, subsidiary: str, day: dt.date) -> str | None:
    period = _first(store, "period", subsidiaryCode=subsidiary, periodName=period_name(day))
    return period["status"] if period else None


# --- customers, contracts, dimensions --------------------------------------------------------------------------

CUSTOMER_FIELDS = {"customerNumber", "companyName", "currency", "subsidiaryCode", "taxRegion", "externalCrmId",
                   "billingAddress", "vatRegNumber", "peppolId"}
ADDRESS_FIELDS = {"addr1", "city", "zip", "state", "country"}


def create_customer(store: DocumentStore, body: dict[str, Any], key: str | None) -> tuple[int, Any]:
    replay = store.recall("customer", key)
    if replay:
        return replay
    check = Checker(body)
    check.unknown(CUSTOMER_FIELDS)
    check.required("companyName", "currency", "subsidiaryCode")
    check.text("companyName")
    if body.get("subsidiaryCode") and _first(store, "subsidiary", subsidiaryCode=body["subsidiaryCode"]) is None:
        check.fail("subsidiaryCode", "no such subsidiary")
    if body.get("currency") is not None and (not isinstance(body["currency"], str) or len(body["currency"]) != 3):
        check.fail("currency", "must be an ISO 4217 code")
    address = body.get("billingAddress")
    if address is not None and (not isinstance(address, dict) or set(address) - ADDRESS_FIELDS
                                or not all(isinstance(v, str) for v in address.values())):
        check.fail("billingAddress", f"must be an object of strings with fields {sorted(ADDRESS_FIELDS)}")
    for field in ("vatRegNumber", "peppolId"):
        if body.get(field) is not None and not isinstance(body[field], str):
            check.fail(field, "must be a string")
    check.raise_if_any("Invalid customer")
    for field in ("customerNumber", "externalCrmId"):
        if body.get(field):
            existing = _first(store, "customer", **{field: body[field]})
            if existing is not None:
                raise error(409, "Conflict", [(field, "DUPLICATE_RECORD", f"a customer with this {field} exists")],
                            existingInternalId=existing["internalId"])
    internal_id = store.next_number("customerId")
    customer = {"internalId": internal_id, "taxRegion": None, "externalCrmId": None, "billingAddress": None,
                "vatRegNumber": None, "peppolId": None, **body}
    customer.setdefault("customerNumber", f"C-{store.next_number('customerNumber')}")
    store.put("customer", str(internal_id), customer)
    store.remember("customer", key, 201, customer)
    return 201, customer


CONTRACT_FIELDS = {"contractNumber", "customerId", "subsidiaryCode", "description", "currency", "billingMethod",
                   "nteAmountMinor", "startDate", "endDate", "contractStatus", "rateScheduleCode",
                   "invoiceFrequency", "paymentTerms", "scheduledAmountMinor", "contractValueMinor",
                   "billingSchedule", "retainerHours", "unusedHoursPolicy", "revenueRecognitionMethod",
                   "budgetedCostMinor", "expenseMarkupPct"}
REVENUE_RECOGNITION_METHODS = {"STRAIGHT_LINE", "PERCENT_COMPLETE"}
SCHEDULE_LINE_FIELDS = {"lineNo", "periodName", "billingDate", "amountMinor", "percentComplete", "memo"}


def _check_contract(store: DocumentStore, body: dict[str, Any], creating: bool) -> None:
    check = Checker(body)
    check.unknown(CONTRACT_FIELDS if creating else CONTRACT_FIELDS - {"contractNumber", "customerId",
                                                                      "subsidiaryCode"})
    if creating:
        check.required("customerId", "subsidiaryCode", "description", "currency", "billingMethod", "startDate")
        if body.get("customerId") is not None and (not isinstance(body["customerId"], int) or store.get(
                "customer", str(body["customerId"])) is None):
            check.fail("customerId", "no such customer")
        if body.get("subsidiaryCode") and _first(store, "subsidiary", subsidiaryCode=body["subsidiaryCode"]) is None:
            check.fail("subsidiaryCode", "no such subsidiary")
    check.text("description")
    check.choice("billingMethod", set(BILLING_METHODS.values()))
    check.choice("contractStatus", set(CONTRACT_STATUSES.values()))
    check.choice("invoiceFrequency", set(INVOICE_FREQUENCIES.values()))
    check.minor_units("nteAmountMinor")
    check.minor_units("scheduledAmountMinor")
    check.minor_units("contractValueMinor")
    check.minor_units("budgetedCostMinor")
    check.choice("revenueRecognitionMethod", REVENUE_RECOGNITION_METHODS)
    check.date("startDate")
    check.date("endDate")
    check.choice("unusedHoursPolicy", set(UNUSED_HOURS_POLICIES.values()))
    if body.get("retainerHours") is not None:
        check.quantity("retainerHours")
    if body.get("expenseMarkupPct") is not None:
        check.quantity("expenseMarkupPct")
    _check_schedule(check, body)
    if "paymentTerms" in body and (not isinstance(body["paymentTerms"], str)
                                   or not body["paymentTerms"].startswith("NET")
                                   or not body["paymentTerms"][3:].isdigit()):
        check.fail("paymentTerms", "must be NET<days>")
    check.raise_if_any("Invalid contract")


def _check_schedule(check: Checker, body: dict[str, Any]) -> None:
    if "billingSchedule" not in body:
        return
    lines = body["billingSchedule"]
    if not isinstance(lines, list):
        check.fail("billingSchedule", "must be a list of schedule lines")
        return
    numbers: set[Any] = set()
    for index, line in enumerate(lines):
        if not isinstance(line, dict):
            check.fail(f"billingSchedule[{index}]", "must be an object")
            continue
        line_check = Checker(line)
        line_check.unknown(SCHEDULE_LINE_FIELDS)
        line_check.required("lineNo", "amountMinor")
        line_check.minor_units("amountMinor", nullable=False)
        line_check.date("billingDate")
        if line.get("percentComplete") is not None:
            line_check.quantity("percentComplete")
        if not isinstance(line.get("lineNo"), int) or isinstance(line.get("lineNo"), bool) or line["lineNo"] < 1:
            line_check.fail("lineNo", "must be a positive integer")
        elif line["lineNo"] in numbers:
            line_check.fail("lineNo", "is used by another line", "DUPLICATE_VALUE")
        numbers.add(line.get("lineNo"))
        if (line.get("periodName") is None) == (line.get("billingDate") is None):
            line_check.fail("periodName", "give exactly one of periodName and billingDate")
        elif line.get("periodName") is not None:
            try:
                dt.datetime.strptime(str(line["periodName"]), "%b %Y")
            except ValueError:
                line_check.fail("periodName", "must be a period name like 'Oct 2026'")
        check.details.extend((f"billingSchedule[{index}].{path}", code, text)
                             for path, code, text in line_check.details)


def _check_contract_dates(contract: dict[str, Any]) -> None:
    start, end = parse_date(contract.get("startDate")), parse_date(contract.get("endDate"))
    if start and end and end < start:
        raise error(400, "Invalid contract", [("endDate", "INVALID_VALUE", "must not be before startDate")])


def create_contract(store: DocumentStore, body: dict[str, Any], key: str | None) -> tuple[int, Any]:
    replay = store.recall("contract", key)
    if replay:
        return replay
    _check_contract(store, body, creating=True)
    if body.get("contractNumber"):
        existing = _first(store, "contract", contractNumber=body["contractNumber"])
        if existing is not None:
            raise error(409, "Conflict", [("contractNumber", "DUPLICATE_RECORD", "a contract with this number exists")],
                        existingInternalId=existing["internalId"])
    internal_id = store.next_number("contractId")
    contract = {"internalId": internal_id, "nteAmountMinor": None, "endDate": None, "contractStatus": "DRAFT",
                "revision": 1, "rateScheduleCode": None, "invoiceFrequency": "MONTHLY", "paymentTerms": "NET30",
                "scheduledAmountMinor": None, "contractValueMinor": None, "billingSchedule": [],
                "retainerHours": None, "unusedHoursPolicy": "EXPIRE", "revenueRecognitionMethod": "STRAIGHT_LINE",
                "budgetedCostMinor": None, "expenseMarkupPct": None, **body}
    contract.setdefault("contractNumber", f"SOW-{store.next_number('contractNumber')}")
    _check_contract_dates(contract)
    store.put("contract", str(internal_id), contract)
    store.remember("contract", key, 201, contract)
    return 201, contract


def update_contract(store: DocumentStore, internal_id: int, body: dict[str, Any]) -> dict[str, Any]:
    contract = _one(store, "contract", internal_id)
    _check_contract(store, body, creating=False)
    if contract["contractStatus"] == "CLOSED" and body.get("contractStatus", "CLOSED") != "CLOSED":
        raise error(409, "Conflict", [("contractStatus", "INVALID_STATUS_CHANGE", "a closed contract stays closed")],
                    currentStatus="CLOSED")
    amended = any(field in COMMERCIAL_TERMS and contract.get(field) != value for field, value in body.items())
    updated = {**contract, **body}
    _check_contract_dates(updated)
    if amended:
        updated["revision"] = contract["revision"] + 1
    store.put("contract", str(internal_id), updated)
    return updated


def create_dimension(store: DocumentStore, body: dict[str, Any]) -> tuple[int, Any]:
    check = Checker(body)
    check.unknown({"dimensionCode", "projectCode", "subsidiaryCode"})
    check.required("dimensionCode", "projectCode", "subsidiaryCode")
    for field in ("dimensionCode", "projectCode"):
        check.text(field)
    if body.get("subsidiaryCode") and _first(store, "subsidiary", subsidiaryCode=body["subsidiaryCode"]) is None:
        check.fail("subsidiaryCode", "no such subsidiary")
    check.raise_if_any("Invalid project dimension")
    for field in ("projectCode", "dimensionCode"):
        existing = _first(store, "dimension", **{field: body[field]})
        if existing is not None:
            raise error(409, "Conflict", [(field, "DUPLICATE_RECORD", f"a dimension with this {field} exists")],
                        existingInternalId=existing["internalId"])
    internal_id = store.next_number("dimensionId")
    dimension = {"internalId": internal_id, **body}
    store.put("dimension", str(internal_id), dimension)
    return 201, dimension


# --- revenue schedules -----------------------------------------------------------------------------------------

REVENUE_FIELDS = {"contractNumber", "periodName", "recognizedAmountMinor", "currencyCode", "recognitionMethod"}
RECOGNITION_METHODS = {"AS_BILLED", "MILESTONE", "PERCENT_COMPLETE"}


def create_revenue_schedule(store: DocumentStore, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Recognise a contract's revenue for one period; a period recognised already answers 409 naming it (a
    period is recognised once: a correction is a later period's adjustment, not a second line)."""
    check = Checker(body)
    check.unknown(REVENUE_FIELDS)
    check.required(*sorted(REVENUE_FIELDS))
    check.text("periodName")
    check.minor_units("recognizedAmountMinor", nullable=False)
    check.choice("recognitionMethod", RECOGNITION_METHODS)
    contract = _first(store, "contract", contractNumber=body.get("contractNumber"))
    if body.get("contractNumber") and contract is None:
        check.fail("contractNumber", "no such contract", "INVALID_KEY_OR_REF")
    if contract is not None and body.get("currencyCode") != contract["currency"]:
        check.fail("currencyCode", "must be the contract's currency")
    try:
        dt.datetime.strptime(str(body.get("periodName")), "%b %Y")
    except ValueError:
        check.fail("periodName", "must be a period name (Mon YYYY)")
    check.raise_if_any("Invalid revenue schedule")
    existing = _first(store, "revenueSchedule", contractNumber=body["contractNumber"], periodName=body["periodName"])
    if existing is not None:
        raise error(409, "Conflict", [("periodName", "DUPLICATE_RECORD", "this period is recognised already")],
                    existingInternalId=existing["internalId"])
    internal_id = store.next_number("revenueScheduleId")
    schedule = {"internalId": internal_id, "scheduleNumber": f"RS-{internal_id}", **body}
    store.put("revenueSchedule", str(internal_id), schedule)
    return 201, schedule


# --- postings --------------------------------------------------------------------------------------------------

POSTING_FIELDS = {"sourceDocumentType", "sourceDocumentId", "projectCode", "contractNumber", "subsidiaryCode",
                  "transactionDate", "quantity", "amountMinor", "currencyCode"}
# Timecards also carry their duration in whole minutes (``quantity`` is hours, to the hundredth as booked).
OPTIONAL_POSTING_FIELDS = {"durationMinutes"}


def create_posting(store: DocumentStore, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Book one posting; a source already booked answers 409 naming the first posting (it is never booked twice)."""
    check = Checker(body)
    check.unknown(POSTING_FIELDS | OPTIONAL_POSTING_FIELDS)
    check.required(*sorted(POSTING_FIELDS))
    check.choice("sourceDocumentType", set(SOURCE_TYPES.values()))
    check.date("transactionDate")
    check.quantity("quantity")
    check.whole_number("durationMinutes")
    check.minor_units("amountMinor", nullable=False)
    check.raise_if_any("Invalid posting")
    existing = store.get("postingSource", f"{body['sourceDocumentType']}:{body['sourceDocumentId']}")
    if existing is not None:
        raise error(409, "Conflict", [("sourceDocumentId", "DUPLICATE_SOURCE", "this source document is posted")],
                    existingInternalId=existing["internalId"])
    contract = _first(store, "contract", contractNumber=body["contractNumber"])
    if contract is None:
        check.fail("contractNumber", "no such contract")
    elif contract["currency"] != body["currencyCode"]:
        check.fail("currencyCode", f"the contract is in {contract['currency']}")
    dimension = _first(store, "dimension", projectCode=body["projectCode"])
    if dimension is None:
        check.fail("projectCode", "no project dimension with this code")
    elif dimension["subsidiaryCode"] != body["subsidiaryCode"]:
        check.fail("subsidiaryCode", f"the project dimension belongs to {dimension['subsidiaryCode']}")
    day = dt.date.fromisoformat(body["transactionDate"])
    status = _period_status(store, body["subsidiaryCode"], day)
    if status is None:
        check.fail("transactionDate", f"no accounting period {period_name(day)} in {body['subsidiaryCode']}",
                   "NO_PERIOD")
    elif status == "CLOSED":
        check.fail("transactionDate", f"the period {period_name(day)} is closed", "PERIOD_CLOSED")
    check.raise_if_any("Invalid posting")
    internal_id = store.next_number("postingId")
    posting = {"internalId": internal_id, "postingNumber": f"JE-{internal_id}", **body, "postingStatus": "POSTED",
               "postedAt": moment(utc_now())}
    store.put("posting", str(internal_id), posting)
    store.put("postingSource", f"{body['sourceDocumentType']}:{body['sourceDocumentId']}",
              {"internalId": internal_id})
    return 201, posting


def reverse_posting(store: DocumentStore, internal_id: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Book the reversal of a posting: its negative, referencing it (``reversesInternalId``), dated in an open
    period. A posting is reversed at most once: asking again answers 200 with the first reversal."""
    original = _one(store, "posting", internal_id)
    if original.get("reversesInternalId") is not None:
        raise error(409, "Conflict", [(None, "IS_REVERSAL", "a reversal is not reversed")])
    existing = store.get("postingReversal", str(internal_id))
    if existing is not None:
        return 200, _one(store, "posting", existing["internalId"])
    check = Checker(body)
    check.unknown({"transactionDate"})
    check.required("transactionDate")
    check.date("transactionDate")
    check.raise_if_any("Invalid reversal")
    day = dt.date.fromisoformat(body["transactionDate"])
    if _period_status(store, original["subsidiaryCode"], day) != "OPEN":
        check.fail("transactionDate", f"the period {period_name(day)} is not open", "PERIOD_CLOSED")
    check.raise_if_any("Invalid reversal")
    reversal_id = store.next_number("postingId")
    reversal = {**original, "internalId": reversal_id, "postingNumber": f"JE-{reversal_id}",
                "transactionDate": day.isoformat(), "quantity": str(-Decimal(original["quantity"])),
                **({"durationMinutes": -original["durationMinutes"]}
                   if original.get("durationMinutes") is not None else {}),
                "amountMinor": -int(original["amountMinor"]), "reversesInternalId": internal_id,
                "reversesPostingNumber": original["postingNumber"],
                "postedAt": moment(utc_now())}
    store.put("posting", str(reversal_id), reversal)
    store.put("postingReversal", str(internal_id), {"internalId": reversal_id})
    return 201, reversal


def post_batch(store: DocumentStore, body: dict[str, Any]) -> dict[str, Any]:
    items = body.get("postings")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise error(400, "Invalid batch", [("postings", "INVALID_VALUE", f"must be a list of 1..{MAX_BATCH}")])
    results: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            results.append({"index": index, "status": "ERROR",
                            "error": {"o:errorDetails": [{"detail": "must be an object", "o:errorCode": "INVALID"}]}})
            continue
        try:
            _, posting = store.transaction(create_posting, store, item)
            results.append({"index": index, "status": "CREATED", "posting": posting})
        except VendorError as exc:
            if exc.status == 409 and "existingInternalId" in exc.body:
                results.append({"index": index, "status": "DUPLICATE",
                                "posting": store.get("posting", str(exc.body["existingInternalId"]))})
            else:
                results.append({"index": index, "status": "ERROR", "error": exc.body})
    return {"results": results}


# --- invoices --------------------------------------------------------------------------------------------------

INVOICE_FIELDS = {"customerId", "contractNumber", "subsidiaryCode", "currencyCode", "periodName", "lines",
                  "taxLines"}
LINE_FIELDS = {"description", "quantity", "unitPriceMinor", "amountMinor", "sourceType", "sourceRefs",
               "durationMinutes"}
TAX_LINE_FIELDS = {"taxCode", "jurisdiction", "ratePercent", "taxableMinor", "taxMinor", "exemptionText"}
TAX_CODES = {"S", "Z", "E", "AE", "O"}


def create_invoice(store: DocumentStore, body: dict[str, Any], key: str | None) -> tuple[int, Any]:
    replay = store.recall("invoice", key)
    if replay:
        return replay
    check = Checker(body)
    check.unknown(INVOICE_FIELDS)
    check.required("customerId", "contractNumber", "subsidiaryCode", "currencyCode", "lines")
    customer = store.get("customer", str(body.get("customerId"))) if isinstance(body.get("customerId"), int) else None
    if body.get("customerId") is not None and customer is None:
        check.fail("customerId", "no such customer")
    contract = _first(store, "contract", contractNumber=body.get("contractNumber"))
    if body.get("contractNumber") and contract is None:
        check.fail("contractNumber", "no such contract")
    if contract and customer and contract["customerId"] != customer["internalId"]:
        check.fail("contractNumber", "the contract belongs to another customer")
    if contract and body.get("currencyCode") and contract["currency"] != body["currencyCode"]:
        check.fail("currencyCode", f"the contract is in {contract['currency']}")
    if body.get("periodName") is not None:
        try:
            dt.datetime.strptime(str(body["periodName"]), "%b %Y")
        except ValueError:
            check.fail("periodName", "must be a period name like 'Oct 2026'")
    lines = body.get("lines")
    if "lines" in body and (not isinstance(lines, list) or not lines):
        check.fail("lines", "must be a non-empty list")
    for index, line in enumerate(lines if isinstance(lines, list) else []):
        if not isinstance(line, dict):
            check.fail(f"lines[{index}]", "must be an object")
            continue
        line_check = Checker(line)
        line_check.unknown(LINE_FIELDS)
        line_check.required("description", "quantity", "unitPriceMinor", "amountMinor", "sourceType")
        line_check.quantity("quantity")
        line_check.whole_number("durationMinutes")
        line_check.minor_units("unitPriceMinor", nullable=False)
        line_check.minor_units("amountMinor", nullable=False)
        line_check.choice("sourceType", set(SOURCE_TYPES.values()))
        refs = line.get("sourceRefs", [])
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            line_check.fail("sourceRefs", "must be a list of document numbers")
        check.details.extend((f"lines[{index}].{path}", code, text) for path, code, text in line_check.details)
    _check_tax_lines(check, body, lines)
    check.raise_if_any("Invalid invoice")
    internal_id = store.next_number("invoiceId")
    invoice = _invoice_totals({
        "internalId": internal_id, "invoiceNumber": f"INV-{internal_id}", **body, "periodName": body.get("periodName"),
        "lines": [{"lineNo": n + 1, "sourceRefs": [], **line} for n, line in enumerate(lines or [])],
        "status": "DRAFT", "invoiceDate": None,
    })
    store.put("invoice", str(internal_id), invoice)
    store.remember("invoice", key, 201, invoice)
    return 201, invoice


def post_invoice(store: DocumentStore, internal_id: int) -> dict[str, Any]:
    invoice = _one(store, "invoice", internal_id)
    if invoice["status"] == "POSTED":
        return invoice
    if invoice["status"] != "DRAFT":
        raise error(409, "Conflict", [("status", "INVALID_STATUS_CHANGE",
                                       f"a {invoice['status']} invoice cannot be posted")],
                    currentStatus=invoice["status"])
    invoice["status"] = "POSTED"
    invoice["invoiceDate"] = utc_now().date().isoformat()
    store.put("invoice", str(internal_id), invoice)
    return invoice


def credit_invoice(store: DocumentStore, internal_id: int, body: dict[str, Any], key: str | None) -> tuple[int, Any]:
    """Credit lines of a posted invoice (a credit memo, posted at once). A source is never credited beyond what
    the invoice billed for it; the same Idempotency-Key answers the same memo."""
    replay = store.recall(f"credit:{internal_id}", key)
    if replay:
        return replay
    invoice = _one(store, "invoice", internal_id)
    check = Checker(body)
    check.unknown({"lines"})
    check.required("lines")
    if invoice["status"] != "POSTED":
        raise error(409, "Conflict", [("status", "INVALID_STATUS_CHANGE", "only a posted invoice is credited")],
                    currentStatus=invoice["status"])
    lines = body.get("lines")
    if not isinstance(lines, list) or not lines:
        check.fail("lines", "must be a non-empty list")
    billed: dict[str, int] = defaultdict(int)
    for line in invoice["lines"]:
        refs = line.get("sourceRefs") or []
        for ref in refs:  # a grouped line's amount is shared by its sources in proportion: bound by the line
            billed[ref] += int(line["amountMinor"])
    for _, memo in store.list("creditMemo", where={"invoiceId": internal_id}, limit=1000):
        if memo["invoiceId"] == internal_id:
            for line in memo["lines"]:
                for ref in line.get("sourceRefs") or []:
                    billed[ref] -= int(line["amountMinor"])
    for index, line in enumerate(lines if isinstance(lines, list) else []):
        line_check = Checker(line if isinstance(line, dict) else {})
        line_check.unknown(LINE_FIELDS)
        line_check.required("description", "quantity", "unitPriceMinor", "amountMinor", "sourceType", "sourceRefs")
        line_check.quantity("quantity")
        line_check.whole_number("durationMinutes")
        line_check.minor_units("unitPriceMinor", nullable=False)
        line_check.minor_units("amountMinor", nullable=False)
        for ref in line.get("sourceRefs") or [] if isinstance(line, dict) else []:
            if billed.get(ref, 0) < int(line.get("amountMinor") or 0):
                line_check.fail("sourceRefs", f"{ref} is not billed on this invoice for that much", "OVER_CREDIT")
        check.details.extend((f"lines[{index}].{path}", code, text) for path, code, text in line_check.details)
    check.raise_if_any("Invalid credit memo")
    memo_id = store.next_number("creditMemoId")
    memo = _invoice_totals({
        "internalId": memo_id, "creditMemoNumber": f"CM-{memo_id}", "invoiceId": internal_id,
        "invoiceNumber": invoice["invoiceNumber"], "subsidiaryCode": invoice["subsidiaryCode"],
        "currencyCode": invoice["currencyCode"], "status": "POSTED", "memoDate": utc_now().date().isoformat(),
        "lines": [{"lineNo": n + 1, **line} for n, line in enumerate(lines or [])],
    })
    store.put("creditMemo", str(memo_id), memo)
    store.remember(f"credit:{internal_id}", key, 201, memo)
    return 201, memo


def void_invoice(store: DocumentStore, internal_id: int) -> dict[str, Any]:
    """A draft is voided (voiding it again answers it as void); a posted invoice is corrected by a credit note."""
    invoice = _one(store, "invoice", internal_id)
    if invoice["status"] == "VOID":
        return invoice
    if invoice["status"] != "DRAFT":
        raise error(409, "Conflict", [("status", "INVALID_STATUS_CHANGE",
                                       f"a {invoice['status']} invoice cannot be voided")],
                    currentStatus=invoice["status"])
    invoice["status"] = "VOID"
    store.put("invoice", str(internal_id), invoice)
    return invoice


def _day(value: str | None, field: str) -> str | None:
    if value is not None and parse_date(value) is None:
        raise error(400, "Bad Request", [(field, "INVALID_VALUE", "must be a date (YYYY-MM-DD)")])
    return value


def create_app(store: DocumentStore) -> Litestar:
    # The filters that meet every posting (a month end books tens of thousands).
    store.index("contractNumber")
    store.index("projectCode")
    store.index("sourceDocumentId")
    store.index("transactionDate")

    def paged(kind: str, offset: int, limit: int, where: dict[str, Any], **more: Any) -> Any:
        return store.call(_page, store, kind, offset, limit, where, more.get("ranges"), more.get("contains"))

    def key_of(request: Request[Any, Any, Any]) -> str | None:
        return request.headers.get("idempotency-key")

    @get("/api/v1/subsidiaries")
    async def list_subsidiaries(offset: FromQuery[int] = 0, limit: FromQuery[int] = 100) -> dict[str, Any]:
        return await paged("subsidiary", offset, limit, {})

    @get("/api/v1/accountingPeriods")
    async def list_periods(offset: FromQuery[int] = 0, limit: FromQuery[int] = 100,
                           subsidiaryCode: FromQuery[str | None] = None,
                           periodName: FromQuery[str | None] = None) -> dict[str, Any]:
        return await paged("period", offset, limit, {"subsidiaryCode": subsidiaryCode, "periodName": periodName})

    @get("/api/v1/customers")
    async def list_customers(offset: FromQuery[int] = 0, limit: FromQuery[int] = 100, q: FromQuery[str | None] = None,
                             customerNumber: FromQuery[str | None] = None,
                             externalCrmId: FromQuery[str | None] = None) -> dict[str, Any]:
        return await paged("customer", offset, limit, {"customerNumber": customerNumber,
                                                        "externalCrmId": externalCrmId},
                           contains={"companyName": q} if q else None)

    @get("/api/v1/customers/{internal_id:int}")
    async def get_customer(internal_id: FromPath[int]) -> dict[str, Any]:
        return await store.call(_one, store, "customer", internal_id)

    @post("/api/v1/customers")
    async def post_customer(request: Request[Any, Any, Any]) -> Response[Any]:
        status, body = await store.call(store.transaction, create_customer, store,
                                        await json_object(request, invalid), key_of(request))
        return Response(body, status_code=status)

    @get("/api/v1/contracts")
    async def list_contracts(offset: FromQuery[int] = 0, limit: FromQuery[int] = 100,
                             customerId: FromQuery[int | None] = None,
                             contractStatus: FromQuery[str | None] = None,
                             contractNumber: FromQuery[str | None] = None) -> dict[str, Any]:
        return await paged("contract", offset, limit, {"customerId": customerId, "contractStatus": contractStatus,
                                                        "contractNumber": contractNumber})

    @get("/api/v1/contracts/{internal_id:int}")
    async def get_contract(internal_id: FromPath[int]) -> dict[str, Any]:
        return await store.call(_one, store, "contract", internal_id)

    @post("/api/v1/contracts")
    async def post_contract(request: Request[Any, Any, Any]) -> Response[Any]:
        status, body = await store.call(store.transaction, create_contract, store,
                                        await json_object(request, invalid), key_of(request))
        return Response(body, status_code=status)

    @patch("/api/v1/contracts/{internal_id:int}")
    async def patch_contract(internal_id: FromPath[int], request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await json_object(request, invalid)
        return await store.call(update_contract, store, internal_id, body)

    @get("/api/v1/projectDimensions")
    async def list_dimensions(offset: FromQuery[int] = 0, limit: FromQuery[int] = 100,
                              projectCode: FromQuery[str | None] = None) -> dict[str, Any]:
        return await paged("dimension", offset, limit, {"projectCode": projectCode})

    @post("/api/v1/projectDimensions")
    async def post_dimension(request: Request[Any, Any, Any]) -> Response[Any]:
        status, body = await store.call(store.transaction, create_dimension, store,
                                        await json_object(request, invalid))
        return Response(body, status_code=status)

    @get("/api/v1/postings")
    async def list_postings(offset: FromQuery[int] = 0, limit: FromQuery[int] = 100,
                            projectCode: FromQuery[str | None] = None,
                            contractNumber: FromQuery[str | None] = None,
                            sourceDocumentId: FromQuery[str | None] = None,
                            fromDate: FromQuery[str | None] = None, toDate: FromQuery[str | None] = None) -> dict[str,
                                                                                                                  Any]:
        return await paged("posting", offset, limit, {"projectCode": projectCode, "contractNumber": contractNumber,
                                                       "sourceDocumentId": sourceDocumentId},
                           ranges={"transactionDate": (_day(fromDate, "fromDate"), _day(toDate, "toDate"))})

    @post("/api/v1/postings")
    async def post_posting(request: Request[Any, Any, Any]) -> Response[Any]:
        status, body = await store.call(store.transaction, create_posting, store,
                                        await json_object(request, invalid))
        return Response(body, status_code=status)

    @post("/api/v1/postings/{internal_id:int}/actions/reverse")
    async def post_posting_reversal(internal_id: FromPath[int], request: Request[Any, Any, Any]) -> Response[Any]:
        status, body = await store.call(store.transaction, reverse_posting, store, internal_id,
                                        await json_object(request, invalid))
        return Response(body, status_code=status)

    @post("/api/v1/postings/batch", status_code=200)
    async def post_postings_batch(request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await json_object(request, invalid)
        # One commit for the batch: an item's refusal is raised before it writes, so it stops only that item.
        return await store.call(store.transaction, post_batch, store, body)

    @get("/api/v1/invoices")
    async def list_invoices(offset: FromQuery[int] = 0, limit: FromQuery[int] = 100,
                            contractNumber: FromQuery[str | None] = None,
                            status: FromQuery[str | None] = None, periodName: FromQuery[str | None] = None,
                            invoiceNumber: FromQuery[str | None] = None) -> dict[str, Any]:
        return await paged("invoice", offset, limit, {"contractNumber": contractNumber, "status": status,
                                                       "periodName": periodName, "invoiceNumber": invoiceNumber})

    @get("/api/v1/invoices/{internal_id:int}")
    async def get_invoice(internal_id: FromPath[int]) -> dict[str, Any]:
        return await store.call(_one, store, "invoice", internal_id)

    @post("/api/v1/invoices")
    async def post_new_invoice(request: Request[Any, Any, Any]) -> Response[Any]:
        status, body = await store.call(store.transaction, create_invoice, store,
                                        await json_object(request, invalid), key_of(request))
        return Response(body, status_code=status)

    @post("/api/v1/invoices/{internal_id:int}/actions/post", status_code=200)
    async def post_invoice_action(internal_id: FromPath[int]) -> dict[str, Any]:
        return await store.call(post_invoice, store, internal_id)

    @post("/api/v1/invoices/{internal_id:int}/actions/credit")
    async def post_credit_memo(internal_id: FromPath[int], request: Request[Any, Any, Any]) -> Response[Any]:
        status, body = await store.call(store.transaction, credit_invoice, store, internal_id,
                                        await json_object(request, invalid), key_of(request))
        return Response(body, status_code=status)

    @get("/api/v1/creditMemos")
    async def list_credit_memos(offset: FromQuery[int] = 0, limit: FromQuery[int] = 100,
                                invoiceNumber: FromQuery[str | None] = None) -> dict[str, Any]:
        return await paged("creditMemo", offset, limit, {"invoiceNumber": invoiceNumber})

    @post("/api/v1/invoices/{internal_id:int}/actions/void", status_code=200)
    async def void_invoice_action(internal_id: FromPath[int]) -> dict[str, Any]:
        return await store.call(void_invoice, store, internal_id)

    @post("/api/v1/revenueSchedules")
    async def post_revenue(request: Request[Any, Any, Any]) -> Response[Any]:
        status, body = await store.call(store.transaction, create_revenue_schedule, store,
                                        await json_object(request, invalid))
        return Response(body, status_code=status)

    @get("/api/v1/revenueSchedules")
    async def list_revenue(offset: FromQuery[int] = 0, limit: FromQuery[int] = 100,
                           contractNumber: FromQuery[str | None] = None,
                           periodName: FromQuery[str | None] = None) -> dict[str, Any]:
        return await paged("revenueSchedule", offset, limit, {"contractNumber": contractNumber,
                                                               "periodName": periodName})

    return Litestar(
        [list_subsidiaries, list_periods, list_customers, get_customer, post_customer, list_contracts, get_contract,
         post_contract, patch_contract, list_dimensions, post_dimension, list_postings, post_posting,
         post_posting_reversal, post_postings_batch, list_invoices, get_invoice, post_new_invoice,
         post_invoice_action, void_invoice_action, post_credit_memo, list_credit_memos, list_revenue, post_revenue],
        exception_handlers={HTTPException: framework_error, VendorError: vendor_error_response},
        openapi_config=None,
    )


def framework_error(_request: Any, exc: HTTPException) -> Response[Any]:
    codes = {400: "INVALID_CONTENT", 404: "NONEXISTENT_ID", 405: "INVALID_METHOD"}
    failure = error(exc.status_code, "Error", [(None, codes.get(exc.status_code, "ERROR"), str(exc.detail))])
    return Response(failure.body, status_code=exc.status_code)
