"""ERP adapter for SAP S/4HANA Cloud over its OData v2 APIs (``erp_backend: s4hana``; the sandbox is
``sandbox/s4hana.py``, which documents the services, entity sets and the tenant's key-user extensions this adapter
relies on).

Follows the SAP Business Accelerator Hub (api.sap.com) descriptions of API_BUSINESS_PARTNER, API_COMPANYCODE_SRV,
API_ENTERPRISE_PROJECT_SRV;v0002, API_BILLING_DOCUMENT_SRV and API_CREDIT_MEMO_REQUEST_SRV, the OData v2 JSON format
(odata.org/documentation/odata-version-2-0) as SAP Gateway serves it, and SAP's CSRF protection for modifying calls
(KBA 3048103): reads are ``GET /sap/opu/odata/sap/<SERVICE>/<EntitySet>`` with ``$filter`` (``substringof`` on a
``tolower``-ed name, as SAP compares text exactly, ``datetime'...'`` literals), ``$expand`` of the to-many navigation
properties and client-side paging by ``$top``, ``$skip`` and ``$inlinecount=allpages`` (a page the server cuts short,
answering ``__next``, is continued from where it stopped); writes are ``POST`` (201 and the entity, deep inserts of
items), ``PATCH`` on an entity, and the billing document's function imports ``Cancel`` and ``ReleaseToAccounting``.
Before its first write the adapter fetches a CSRF token (``GET`` of a service document with ``x-csrf-token: Fetch``),
keeps it with the session cookie it is bound to, and fetches a new one when a write is refused 403 ``x-csrf-token:
Required``. Refusals are OData v2 error bodies whose ``innererror.errordetails[].target`` names the property; they
reach callers as canonical problems with canonical field pointers. S/4HANA Cloud has no OData bulk write outside
``$batch``, so a posting batch is sent entity by entity within the vendor's limits.

Exactly once without idempotency keys: each write has a unique key the tenant enforces (a business partner's
number, a contract's or project's id, a posting's source document, a reversal's original accounting document, a
billing document's ``YY1_IdempotencyReference`` or a credit memo request's ``PurchaseOrderByCustomer`` set to the
caller's Idempotency-Key), a repeat is refused ``ZPSG/DUPLICATE_*``, and the adapter answers the entity already
there. That also makes a write safe to send again after a 429 (``system_apis.vendor_calls`` waits it out).

Authentication: OAuth 2.0 client credentials (communication arrangement with OAuth 2.0 inbound authentication):
client id and secret by HTTP Basic at ``/sap/bc/sec/oauth2/token`` on the tenant's API host (or ``erp_token_url``).

Canonical ids are the entities' natural keys (a business partner's number, a contract's id); ``external_ids["erp"]``
is the entity's key in the tenant (a custom business object's ``SAP_UUID``, a project's ``ProjectUUID``, a billing
document's number). Company codes are the legal entities' codes without the dash: ``LE-US`` is ``LEUS``.
"""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

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
from runtime import cursors
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
from system_apis.vendor_auth import ClientCredentialsToken, VendorCredentials
from system_apis.vendor_calls import VendorDownstream, VendorLimits
from system_apis.vendor_errors import validation_problem, vendor_problem

VENDOR = "s4hana"
ODATA = "/sap/opu/odata/sap"
TOKEN_PATH = "/sap/bc/sec/oauth2/token"  # noqa: S105 - the token endpoint's path, not a secret
PAGE_MAX = 1000
JSON = {"Accept": "application/json"}  # SAP Gateway answers Atom XML otherwise
ETAG = "@etag"  # where an entity's ETag travels with its engine fields
CENT = Decimal("0.01")
MONTHS = {name: number for number, name in enumerate(calendar.month_abbr) if name}
# Refusals the tenant answers for a key it keeps unique.
DUPLICATE = ("ZPSG/DUPLICATE_RECORD", "ZPSG/DUPLICATE_SOURCE")
CLOSED_PERIOD = ("ZPSG/PERIOD_CLOSED", "ZPSG/NO_PERIOD")
WRONG_STATE = ("ZPSG/INVALID_STATUS_CHANGE", "ZPSG/IS_REVERSAL")

# --- the tenant's entities (as sandbox/s4hana.py documents them; test_schema_agreement keeps both equal) ----------

SCHEDULE_LINE = {
    "lineNo": ("BillingPlanLine", "int"),
    "periodName": ("FiscalYearPeriod", "fiscalperiod"),
    "billingDate": ("BillingDate", "date"),
    "amountMinor": ("Amount", "money"),
    "percentComplete": ("PercentComplete", "number"),
    "memo": ("Description", ""),
}
ITEM_LINE = {
    "lineNo": ("BillingDocumentItem", "int"),
    "description": ("BillingDocumentItemText", ""),
    "quantity": ("BillingQuantity", "number"),
    "unitPriceMinor": ("YY1_UnitPrice", "money"),
    "amountMinor": ("NetAmount", "money"),
    "sourceType": ("YY1_SourceType", ""),
    "sourceRefs": ("YY1_SourceRefs", "refs"),
    "durationMinutes": ("YY1_DurationMinutes", "int"),  # time's whole minutes
}
MEMO_LINE = {
    "lineNo": ("CreditMemoRequestItem", "int"),
    "description": ("CreditMemoRequestItemText", ""),
    "quantity": ("RequestedQuantity", "number"),
    "unitPriceMinor": ("YY1_UnitPrice", "money"),
    "amountMinor": ("NetAmount", "money"),
    "sourceType": ("YY1_SourceType", ""),
    "sourceRefs": ("YY1_SourceRefs", "refs"),
    "durationMinutes": ("YY1_DurationMinutes", "int"),
}
TAX_LINE = {
    "taxCode": ("TaxCode", ""),
    "jurisdiction": ("YY1_Jurisdiction", ""),
    "ratePercent": ("ConditionRateValue", "number"),
    "taxableMinor": ("ConditionBaseValue", "money"),
    "taxMinor": ("ConditionAmount", "money"),
    "exemptionText": ("YY1_ExemptionText", ""),
}
LINES: dict[str, dict[str, tuple[str, str]]] = {
    "schedule": SCHEDULE_LINE, "item": ITEM_LINE, "memoitem": MEMO_LINE, "tax": TAX_LINE,
}
ADDRESS = {"addr1": "StreetName", "city": "CityName", "zip": "PostalCode", "state": "Region", "country": "Country"}

# entity set -> its service
SERVICES = {
    "A_CompanyCode": "API_COMPANYCODE_SRV",
    "YY1_PostingPeriod": "YY1_POSTINGPERIOD_CDS",
    "A_BusinessPartner": "API_BUSINESS_PARTNER",
    "YY1_ProjectContract": "YY1_PROJECTCONTRACT_CDS",
    "A_EnterpriseProject": "API_ENTERPRISE_PROJECT_SRV;v=0002",
    "YY1_JournalPosting": "YY1_JOURNALPOSTING_CDS",
    "A_BillingDocument": "API_BILLING_DOCUMENT_SRV",
    "A_CreditMemoRequest": "API_CREDIT_MEMO_REQUEST_SRV",
    "YY1_RevenueSchedule": "YY1_REVENUESCHEDULE_CDS",
}
# Entity sets keyed by a generated UUID (custom business objects' SAP_UUID, an enterprise project's ProjectUUID).
# Properties every entity of a set has, and a create must say: a customer is an organisation (category 2).
CONSTANTS = {"A_BusinessPartner": {"BusinessPartnerCategory": "2"}}
UUID_KEYS = {
    "YY1_PostingPeriod": "SAP_UUID",
    "YY1_ProjectContract": "SAP_UUID",
    "A_EnterpriseProject": "ProjectUUID",
    "YY1_JournalPosting": "SAP_UUID",
    "YY1_RevenueSchedule": "SAP_UUID",
}

SCHEMAS: dict[str, tuple[str, tuple[str, ...], dict[str, tuple[str, str]]]] = {
    "A_CompanyCode": (
        "subsidiary",
        ("CompanyCode",),
        {
            "subsidiaryCode": ("CompanyCode", "companycode"),
            "legalName": ("CompanyCodeName", ""),
            "country": ("Country", ""),
            "baseCurrency": ("Currency", ""),
            "federalTaxId": ("YY1_FederalTaxId", ""),
            "vatRegNumber": ("VATRegistration", ""),
            "peppolId": ("YY1_PeppolId", ""),
            "vatRatePercent": ("YY1_VATRatePercent", "number"),
        },
    ),
    "YY1_PostingPeriod": (
        "period",
        ("SAP_UUID",),
        {
            "subsidiaryCode": ("CompanyCode", "companycode"),
            "periodName": ("FiscalYearPeriod", "fiscalperiod"),
            "status": ("PeriodIsOpen", "open"),
        },
    ),
    "A_BusinessPartner": (
        "customer",
        ("BusinessPartner",),
        {
            "customerNumber": ("BusinessPartner", ""),
            "subsidiaryCode": ("YY1_CompanyCode", "companycode"),
            "companyName": ("OrganizationBPName1", ""),
            "currency": ("YY1_Currency", ""),
            "taxRegion": ("YY1_TaxRegion", ""),
            "externalCrmId": ("YY1_CrmAccountId", ""),
            "billingAddress": ("to_BusinessPartnerAddress", "address"),
            "vatRegNumber": ("YY1_VATRegistration", ""),
            "peppolId": ("YY1_PeppolId", ""),
        },
    ),
    "YY1_ProjectContract": (
        "contract",
        ("SAP_UUID",),
        {
            "contractNumber": ("ProjectContract", ""),
            "subsidiaryCode": ("CompanyCode", "companycode"),
            "customerId": ("Customer", "customer"),
            "description": ("Description", ""),
            "currency": ("TransactionCurrency", ""),
            "billingMethod": ("BillingMethod", ""),
            "nteAmountMinor": ("NotToExceedAmount", "money"),
            "startDate": ("StartDate", "date"),
            "endDate": ("EndDate", "date"),
            "contractStatus": ("ContractStatus", ""),
            "revision": ("Revision", "int"),
            "rateScheduleCode": ("RateSchedule", ""),
            "invoiceFrequency": ("InvoiceFrequency", ""),
            "paymentTerms": ("PaymentTerms", ""),
            "scheduledAmountMinor": ("ScheduledAmount", "money"),
            "contractValueMinor": ("ContractValue", "money"),
            "billingSchedule": ("to_BillingPlanLine", "lines:schedule"),
            "retainerHours": ("RetainerHours", "number"),
            "unusedHoursPolicy": ("UnusedHoursPolicy", ""),
            "revenueRecognitionMethod": ("RevenueRecognitionMethod", ""),
            "budgetedCostMinor": ("BudgetedCost", "money"),
            "expenseMarkupPct": ("ExpenseMarkupPercent", "number"),
        },
    ),
    "A_EnterpriseProject": (
        "dimension",
        ("ProjectUUID",),
        {
            "projectCode": ("Project", ""),
            "subsidiaryCode": ("CompanyCode", "companycode"),
            "dimensionCode": ("YY1_PostingDimension", ""),
        },
    ),
    "YY1_JournalPosting": (
        "posting",
        ("SAP_UUID",),
        {
            "postingNumber": ("AccountingDocument", ""),
            "subsidiaryCode": ("CompanyCode", "companycode"),
            "sourceDocumentType": ("ReferenceDocumentType", ""),
            "sourceDocumentId": ("DocumentReferenceID", ""),
            "projectCode": ("Project", ""),
            "contractNumber": ("ProjectContract", ""),
            "transactionDate": ("PostingDate", "date"),
            "quantity": ("Quantity", "number"),
            "amountMinor": ("AmountInTransactionCurrency", "money"),  # signed: a credit is negative, as in SAP
            "currencyCode": ("TransactionCurrency", ""),
            "postingStatus": ("PostingStatus", ""),
            "postedAt": ("PostingTimestamp", ""),
            "reversesPostingNumber": ("ReversedAccountingDocument", ""),
            "durationMinutes": ("DurationMinutes", "int"),
        },
    ),
    "A_BillingDocument": (
        "invoice",
        ("BillingDocument",),
        {
            "internalId": ("BillingDocument", "text"),
            "invoiceNumber": ("DocumentReferenceID", ""),
            "subsidiaryCode": ("CompanyCode", "companycode"),
            "customerId": ("PayerParty", "customer"),
            "currencyCode": ("TransactionCurrency", ""),
            "invoiceDate": ("BillingDocumentDate", "date"),
            "status": ("YY1_BillingState", "invoicestatus"),
            "lines": ("to_Item", "lines:item"),
            "taxLines": ("to_PricingElement", "lines:tax"),
            "subtotalMinor": ("TotalNetAmount", "money"),
            "taxMinor": ("TotalTaxAmount", "money"),
            "totalMinor": ("YY1_TotalGrossAmount", "money"),
            "externalId": ("YY1_IdempotencyReference", ""),
            "contractNumber": ("YY1_ProjectContract", ""),
            "periodName": ("YY1_FiscalYearPeriod", "fiscalperiod"),
        },
    ),
    "A_CreditMemoRequest": (
        "creditMemo",
        ("CreditMemoRequest",),
        {
            "creditMemoNumber": ("CreditMemoRequest", ""),
            "subsidiaryCode": ("YY1_CompanyCode", "companycode"),
            "invoiceId": ("ReferenceSDDocument", "text"),
            "invoiceNumber": ("YY1_InvoiceReference", ""),
            "currencyCode": ("TransactionCurrency", ""),
            "memoDate": ("CreditMemoRequestDate", "date"),
            "status": ("YY1_BillingState", "invoicestatus"),
            "lines": ("to_Item", "lines:memoitem"),
            "subtotalMinor": ("TotalNetAmount", "money"),
            "taxMinor": ("YY1_TotalTaxAmount", "money"),
            "totalMinor": ("YY1_TotalGrossAmount", "money"),
            "externalId": ("PurchaseOrderByCustomer", ""),
        },
    ),
    "YY1_RevenueSchedule": (
        "revenueSchedule",
        ("SAP_UUID",),
        {
            "scheduleNumber": ("RevenueSchedule", ""),
            "contractNumber": ("ProjectContract", ""),
            "periodName": ("FiscalYearPeriod", "fiscalperiod"),
            "recognizedAmountMinor": ("RecognizedAmount", "money"),
            "currencyCode": ("TransactionCurrency", ""),
            "recognitionMethod": ("RecognitionMethod", ""),
        },
    ),
}
INVOICE_STATUS = {"DRAFT": "A", "POSTED": "C", "PAID": "P", "VOID": "X"}
# The entity's key in the tenant, kept as the record's ``internalId`` (``external_ids["erp"]``).
IDENTITY = {
    "A_CompanyCode": "CompanyCode",
    "YY1_PostingPeriod": "SAP_UUID",
    "A_BusinessPartner": "BusinessPartner",
    "YY1_ProjectContract": "SAP_UUID",
    "A_EnterpriseProject": "ProjectUUID",
    "YY1_JournalPosting": "SAP_UUID",
    "A_BillingDocument": "BillingDocument",
    "A_CreditMemoRequest": "CreditMemoRequest",
    "YY1_RevenueSchedule": "SAP_UUID",
}
EXPAND = {
    "A_BusinessPartner": "to_BusinessPartnerAddress",
    "YY1_ProjectContract": "to_BillingPlanLine",
    "A_BillingDocument": "to_Item,to_PricingElement",
    "A_CreditMemoRequest": "to_Item",
}


def company_code(code: str) -> str:
    """A legal entity's code as its company code: ``LE-US`` -> ``LEUS``."""
    return code.replace("-", "")


def subsidiary(code: str) -> str:
    return f"LE-{code[2:]}" if code.startswith("LE") and len(code) > 2 else code


def fiscal_period(name: str) -> str:
    """A period name (``Oct 2026``) as the fiscal year period (``2026010``; fiscal years are calendar years)."""
    month, _, year = name.partition(" ")
    return f"{year}{MONTHS[month]:03d}" if month in MONTHS else name


def sap_date(day: str) -> str:
    moment = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), dt.UTC)
    return f"/Date({int(moment.timestamp()) * 1000})/"


def datetime_literal(day: dt.date) -> str:
    return f"datetime'{day.isoformat()}T00:00:00'"


def _minor(value: Any) -> Any:
    try:
        minor = Decimal(str(value)) * 100
    except InvalidOperation:
        return value
    return int(minor) if minor == minor.to_integral_value() else value


def _results(value: Any) -> list[Any] | None:
    """A to-many navigation property's entities (None when it was not expanded)."""
    rows = value.get("results") if isinstance(value, dict) else None
    return rows if isinstance(rows, list) else None


def _from_odata(conversion: str, value: Any) -> Any:
    if conversion in ("int", "text"):
        return int(value)
    if conversion == "money":
        return _minor(value)
    if conversion == "number":
        return str(value)
    if conversion == "date":
        match = re.fullmatch(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/", str(value))
        return dt.datetime.fromtimestamp(int(match[1]) / 1000, dt.UTC).date().isoformat() if match else str(value)
    if conversion == "companycode":
        return subsidiary(str(value))
    if conversion == "fiscalperiod":
        text = str(value)
        if not re.fullmatch(r"\d{4}0(0[1-9]|1[0-2])", text):
            return text
        return f"{calendar.month_abbr[int(text[4:])]} {text[:4]}"
    if conversion == "open":  # a period not open takes no postings
        return "OPEN" if value is True else "CLOSED"
    if conversion == "invoicestatus":
        return {v: k for k, v in INVOICE_STATUS.items()}[value]
    if conversion == "refs":
        return [part for part in str(value).split(",") if part]
    if conversion == "address":
        rows = _results(value) or [{}]
        return {part: rows[0][prop] for part, prop in ADDRESS.items() if rows[0].get(prop) is not None}
    if conversion.startswith("lines:"):
        reverse = {name: (field, conv) for field, (name, conv) in LINES[conversion[6:]].items()}
        return [
            {reverse[k][0]: _from_odata(reverse[k][1], v) for k, v in line.items() if k in reverse and v is not None}
            for line in _results(value) or []
        ]
    return value  # "" and "customer": the business partner number is the customer's key here


def from_odata(entity_set: str, entity: dict[str, Any]) -> dict[str, Any]:
    """An entity in the engine's fields (as ``connectors/sandbox.py`` maps them to canonical terms)."""
    fields: dict[str, Any] = {}
    for field, (name, conversion) in SCHEMAS[entity_set][2].items():
        value = entity.get(name)
        if value is None or ((conversion == "address" or conversion.startswith("lines:")) and _results(value) is None):
            continue  # absent, or a navigation property not expanded
        converted = _from_odata(conversion, value)
        if converted != {}:
            fields[field] = converted
    if "internalId" not in fields and entity.get(IDENTITY[entity_set]) is not None:
        fields["internalId"] = entity[IDENTITY[entity_set]]
    metadata = entity.get("__metadata")
    if isinstance(metadata, dict) and metadata.get("etag"):
        fields[ETAG] = metadata["etag"]  # the version read, for If-Match on a change
    return fields


def _to_odata(conversion: str, value: Any) -> Any:
    if value is None:
        return None
    if conversion == "text":
        return str(value)
    if conversion == "money" and isinstance(value, int):
        return str((Decimal(value) / 100).quantize(CENT))  # Edm.Decimal is a JSON string in OData v2
    if conversion == "number" and isinstance(value, str):
        try:
            return str(Decimal(value)) if Decimal(value).is_finite() else value
        except InvalidOperation:
            return value
    if conversion == "date" and isinstance(value, str):
        try:
            return sap_date(value)
        except ValueError:
            return value
    if conversion == "companycode":
        return company_code(value)
    if conversion == "fiscalperiod":
        return fiscal_period(value)
    if conversion == "open":
        return value == "OPEN"
    if conversion == "invoicestatus":
        return INVOICE_STATUS[value]
    if conversion == "refs":
        return ",".join(value)
    if conversion == "address":
        return {"results": [{prop: value.get(part) for part, prop in ADDRESS.items()}]}
    if conversion.startswith("lines:"):
        schema = LINES[conversion[6:]]
        return {"results": [
            {schema[k][0]: _to_odata(schema[k][1], v) for k, v in line.items() if k in schema} for line in value
        ]}
    return value


def to_odata(entity_set: str, fields: dict[str, Any]) -> dict[str, Any]:
    schema = SCHEMAS[entity_set][2]
    return {schema[field][0]: _to_odata(schema[field][1], value) for field, value in fields.items() if field in schema}


def engine_path(entity_set: str, target: str | None) -> str | None:
    """An OData error target (``to_Item(0)/NetAmount``) in the engine's field path (``lines[0].amountMinor``),
    which the canonical field maps know."""
    if not target:
        return None
    reverse = {name: (field, conversion) for field, (name, conversion) in SCHEMAS[entity_set][2].items()}
    match = re.match(r"^(\w+)(?:\((\d+)\)(?:/(\w+))?)?$", target)
    if not match or match[1] not in reverse:
        return target
    field, conversion = reverse[match[1]]
    if match[2] is None or not conversion.startswith("lines:"):
        return field
    line = {name: f for f, (name, _) in LINES[conversion[6:]].items()}.get(match[3] or "")
    return f"{field}[{match[2]}]" + (f".{line}" if line else "")


def literal(value: str | int) -> str:
    """An OData literal: a number bare, text quoted (a quote doubled)."""
    return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"


def set_path(entity_set: str) -> str:
    return f"{ODATA}/{SERVICES[entity_set]}/{entity_set}"


def key_path(entity_set: str, key: str) -> str:
    """One entity's path: a generated key is an Edm.Guid (``guid'...'``), any other a quoted string."""
    inner = f"guid'{key}'" if entity_set in UUID_KEYS else literal(key)
    return f"{set_path(entity_set)}({quote(inner, safe=chr(39))})"


def envelope(body: Any) -> dict[str, Any]:
    """The ``d`` of an OData v2 JSON answer."""
    inner = body.get("d") if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        raise unexpected("no OData v2 'd' envelope")
    return inner


def unexpected(what: str) -> ProblemError:
    return ProblemError(f"{VENDOR} failed: it answered {what}", status=502, slug="downstream-error", downstream=VENDOR)


class Refused(Exception):
    """The service's 4xx: status and (engine field path, code, message) per ``errordetails`` entry."""

    def __init__(self, status: int, code: str, message: str, details: list[tuple[str | None, str, str]]) -> None:
        super().__init__(f"{status}: {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def has(self, *codes: str) -> bool:
        return self.code in codes or any(c in codes for _, c, _ in self.details)

    def problem(self, field_map: dict[str, str], what: str) -> ProblemError:
        problem = vendor_problem(
            VENDOR,
            self.status,
            self.message,
            [(path, detail) for path, _, detail in self.details],
            field_map,
            what=what,
        )
        if isinstance(problem, Unprocessable) and self.has(*CLOSED_PERIOD):
            problem.slug = "period-closed"
        return problem


class SapClientCredentials(ClientCredentialsToken):
    """S/4HANA Cloud's OAuth 2.0 client credentials: client id and secret by HTTP Basic at the tenant's token
    endpoint, or at ``erp_token_url`` when that is configured."""

    def __init__(self, vendor: str, token_url: str, credentials: VendorCredentials, timeout_seconds: float) -> None:
        super().__init__(vendor, credentials.token_url or token_url, credentials, timeout_seconds)


class PartnerKeys(ErpKeys):
    """S/4HANA references a customer by its business partner number, which is the customer's key: no id map."""

    def customer_key(self, internal_id: Any) -> str:
        return str(internal_id)


# --- the adapter -----------------------------------------------------------------------------------------------


class CsrfSession:
    """The CSRF token for modifying calls and the session cookie it is bound to, fetched once and again when the
    service says ``x-csrf-token: Required``."""

    def __init__(self) -> None:
        self.token = ""
        self.cookie = ""
        self.lock = asyncio.Lock()

    def headers(self) -> dict[str, str]:
        return {"x-csrf-token": self.token, "Cookie": self.cookie} if self.token else {}


class S4HanaErp:
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
            VENDOR,
            base_url,
            timeout_seconds=timeout_seconds,
            grant=SapClientCredentials,
            token_path=TOKEN_PATH,
            credentials=credentials,
            limits=limits,
            honours_idempotency_key=True,
        )
        self.keys = PartnerKeys()
        self._csrf = CsrfSession()

    async def aclose(self) -> None:
        await self._vendor.aclose()

    # the wire

    async def _fetch_csrf(self, stale: str, path: str) -> None:
        """A CSRF token and its session cookie from the document of the service written to (the session's token
        holds for all its services; ``stale``: the token refused, so that concurrent writes refused together fetch
        one new token)."""
        async with self._csrf.lock:
            if self._csrf.token != stale:
                return
            service_root = "/".join(path.split("/")[:6]) + "/"  # /sap/opu/odata/sap/<SERVICE>/
            headers = {**JSON, "x-csrf-token": "Fetch", **({"Cookie": self._csrf.cookie} if self._csrf.cookie else {})}
            reply = await self._vendor.request("GET", service_root, headers=headers)
            cookies = [part.split(";", 1)[0].strip() for part in reply.headers.get("set-cookie", "").split(",")]
            self._csrf.cookie = "; ".join(c for c in cookies if "=" in c) or self._csrf.cookie
            self._csrf.token = reply.headers.get("x-csrf-token", "")

    async def _send(
        self,
        method: str,
        path: str,
        entity_set: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        retry_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        writes = method != "GET"
        for attempt in (1, 2):
            if writes and (not self._csrf.token or attempt == 2):
                await self._fetch_csrf(self._csrf.token, path)
            reply = await self._vendor.request(
                method,
                path,
                params=params,
                json=json_body,
                headers={**JSON, **self._csrf.headers(), **(headers or {})} if writes else JSON,
                idempotency_key=retry_key,
                allow_statuses=frozenset(range(400, 500)),
            )
            refused = reply.status_code == 403 and reply.headers.get("x-csrf-token", "").lower() == "required"
            if not (writes and refused):
                break
        try:
            body = json.loads(reply.content, parse_float=Decimal) if reply.content else None
        except ValueError:
            body = None
        if reply.status_code >= 400:
            error = body.get("error") if isinstance(body, dict) else None
            error = error if isinstance(error, dict) else {}
            message = error.get("message")
            text = (str(message.get("value", "")) if isinstance(message, dict)
                    else reply.content.decode(errors="replace"))
            inner = error.get("innererror")
            entries = inner.get("errordetails") if isinstance(inner, dict) else None
            details = [
                (engine_path(entity_set, d.get("target") or None), str(d.get("code", "")), str(d.get("message", "")))
                for d in entries or []
                if isinstance(d, dict)
            ]
            raise Refused(reply.status_code, str(error.get("code", "")), text[:500], details)
        return body

    async def _query(
        self, entity_set: str, conditions: list[str], *, skip: int, size: int
    ) -> tuple[list[dict[str, Any]], int]:
        """One page in the engine's fields, and how many entities match in all (``$inlinecount=allpages``)."""
        params: dict[str, Any] = {"$top": str(size), "$inlinecount": "allpages"}
        if skip:
            params["$skip"] = str(skip)
        if conditions:
            params["$filter"] = " and ".join(conditions)
        if entity_set in EXPAND:
            params["$expand"] = EXPAND[entity_set]
        body = await self._send("GET", set_path(entity_set), entity_set, params=params)
        answer = envelope(body)
        results = answer.get("results")
        count = str(answer.get("__count", ""))
        if not isinstance(results, list) or not all(isinstance(entity, dict) for entity in results):
            raise unexpected("a collection without results")
        rows = [from_odata(entity_set, entity) for entity in results]
        return rows, int(count) if count.isdigit() else skip + len(rows)

    async def _page(
        self, entity_set: str, conditions: list[str], cursor: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        bound = cursors.binding({"set": entity_set, "filter": " and ".join(conditions)})
        state = cursors.decode(cursor, bound)
        skip = cursors.number(state, "skip", 0, minimum=0)
        size = cursors.number(state, "size", limit, minimum=1)
        rows, total = await self._query(entity_set, conditions, skip=skip, size=min(size, PAGE_MAX))
        # A page the server cut short (it answered __next) goes on from where it stopped.
        reached = skip + len(rows)
        return rows, cursors.encode({"skip": reached, "size": size}, bound) if rows and reached < total else None

    async def _first(self, entity_set: str, conditions: list[str]) -> dict[str, Any] | None:
        rows, _ = await self._query(entity_set, conditions, skip=0, size=1)
        return rows[0] if rows else None

    async def _entity(self, entity_set: str, key: str) -> dict[str, Any]:
        params = {"$expand": EXPAND[entity_set]} if entity_set in EXPAND else None
        body = await self._send("GET", key_path(entity_set, key), entity_set, params=params)
        return from_odata(entity_set, envelope(body))

    async def _create(self, entity_set: str, fields: dict[str, Any], retry_key: str | None = None) -> dict[str, Any]:
        entity = {**CONSTANTS.get(entity_set, {}), **to_odata(entity_set, fields)}
        body = await self._send("POST", set_path(entity_set), entity_set, json_body=entity, retry_key=retry_key)
        return from_odata(entity_set, envelope(body))

    # legal entities, periods

    async def list_legal_entities(self, *, cursor: str | None, limit: int) -> Page[LegalEntity]:
        rows, next_cursor = await self._page("A_CompanyCode", [], cursor, limit)
        return Page(items=[legal_entity_from_vendor(r) for r in rows], next_cursor=next_cursor)

    async def list_accounting_periods(
        self, *, legal_entity_id: str | None, period: str | None, cursor: str | None, limit: int
    ) -> Page[AccountingPeriod]:
        conditions = [f"FiscalYearPeriod eq {literal(fiscal_period(period_name(period)))}"] if period else []
        if legal_entity_id is not None:
            if not is_canonical("legal_entity", legal_entity_id):
                return Page(items=[])
            conditions.append(
                f"CompanyCode eq {literal(company_code(to_business_key('legal_entity', legal_entity_id)))}"
            )
        rows, next_cursor = await self._page("YY1_PostingPeriod", conditions, cursor, limit)
        return Page(items=[period_from_vendor(r) for r in rows], next_cursor=next_cursor)

    # customers

    async def _customer_row(self, account: str) -> dict[str, Any] | None:
        return await self._first("A_BusinessPartner", [f"BusinessPartner eq {literal(account)}"])

    async def list_customers(self, *, name: str | None, cursor: str | None, limit: int) -> Page[Customer]:
        conditions = [f"substringof({literal(name.lower())},tolower(OrganizationBPName1))"] if name else []
        rows, next_cursor = await self._page("A_BusinessPartner", conditions, cursor, limit)
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
            return await self._first("A_BusinessPartner", [f"YY1_CrmAccountId eq {literal(body['externalCrmId'])}"])
        return None

    async def upsert_customer(self, data: CustomerCreate, idempotency_key: str | None) -> tuple[Customer, bool]:
        body = customer_to_vendor(data)
        existing = await self._existing_customer(body)
        if existing is not None:
            return customer_from_vendor(existing), False
        try:
            return customer_from_vendor(await self._create("A_BusinessPartner", body)), True
        except Refused as exc:
            existing = await self._existing_customer(body) if exc.has(*DUPLICATE) else None
            if existing is None:  # created meanwhile by a concurrent request: the upsert answers that one
                raise exc.problem(CUSTOMER_FIELDS, "customer") from exc
            return customer_from_vendor(existing), False

    async def _customer_account(self, customer_id: str, pointer: str) -> str:
        account = reference("customer", customer_id, pointer)
        if await self._customer_row(account) is None:
            raise unknown_reference("customer", customer_id, pointer)
        return account

    # contracts

    async def _contract_row(self, contract_id: str) -> dict[str, Any]:
        row = await self._first(
            "YY1_ProjectContract", [f"ProjectContract eq {literal(to_business_key('contract', contract_id))}"]
        )
        if row is None:
            raise NotFound(f"no contract {contract_id!r}", slug="unknown-id")
        return row

    async def list_contracts(
        self, *, customer_id: str | None, status: ContractStatus | None, cursor: str | None, limit: int
    ) -> Page[Contract]:
        conditions = [f"ContractStatus eq {literal(CONTRACT_STATUS_VENDOR[status])}"] if status else []
        if customer_id is not None:
            if not is_canonical("customer", customer_id):
                return Page(items=[])
            conditions.append(f"Customer eq {literal(to_business_key('customer', customer_id))}")
        rows, next_cursor = await self._page("YY1_ProjectContract", conditions, cursor, limit)
        return Page(items=[contract_from_vendor(r, self.keys) for r in rows], next_cursor=next_cursor)

    async def get_contract(self, contract_id: str) -> Contract:
        return contract_from_vendor(await self._contract_row(contract_id), self.keys)

    async def upsert_contract(self, data: ContractCreate, idempotency_key: str | None) -> tuple[Contract, bool]:
        number = reference("contract", data.id, "/id") if data.id is not None else None
        if number is not None:
            found = await self._first("YY1_ProjectContract", [f"ProjectContract eq {literal(number)}"])
            if found is not None:
                return contract_from_vendor(found, self.keys), False
        values = {name: getattr(data, name) for name in data.__struct_fields__}
        body = {
            "customerId": await self._customer_account(data.customer_id, "/customer_id"),
            "subsidiaryCode": reference("legal_entity", data.legal_entity_id, "/legal_entity_id"),
            **contract_terms_to_vendor(values, data.currency),
        }
        if number is not None:
            body["contractNumber"] = number
        try:
            return contract_from_vendor(await self._create("YY1_ProjectContract", body), self.keys), True
        except Refused as exc:
            if exc.has(*DUPLICATE) and number is not None:
                found = await self._first("YY1_ProjectContract", [f"ProjectContract eq {literal(number)}"])
                if found is not None:
                    return contract_from_vendor(found, self.keys), False
            raise exc.problem(CONTRACT_FIELDS, "contract") from exc

    async def _change(self, entity_set: str, key: str, row: dict[str, Any], body: dict[str, Any]) -> None:
        """PATCH as of the version read (``If-Match``); changed meanwhile (412), the change, a delta, is applied to
        the version there now, once."""
        for attempt in (1, 2):
            try:
                await self._send("PATCH", key_path(entity_set, key), entity_set, json_body=body,
                                 headers={"If-Match": row.get(ETAG, "")})
                return
            except Refused as exc:
                if exc.status != 412 or attempt == 2:
                    raise
                row = await self._entity(entity_set, key)

    async def update_contract(self, contract_id: str, changes: dict[str, object]) -> Contract:
        row = await self._contract_row(contract_id)
        key = str(row["internalId"])
        body = to_odata("YY1_ProjectContract", contract_terms_to_vendor(changes, row["currency"]))
        try:
            await self._change("YY1_ProjectContract", key, row, body)
        except Refused as exc:
            if exc.has(*WRONG_STATE):
                raise Conflict(
                    f"{VENDOR} refused the change",
                    slug="invalid-transition",
                    from_state=CONTRACT_STATUS.get(row["contractStatus"]),
                    to_state=changes.get("status"),
                ) from exc
            raise exc.problem(CONTRACT_FIELDS, "contract") from exc
        return contract_from_vendor(await self._entity("YY1_ProjectContract", key), self.keys)

    # project dimensions

    async def list_project_dimensions(
        self, *, project_id: str | None, cursor: str | None, limit: int
    ) -> Page[ProjectDimension]:
        conditions = []
        if project_id is not None:
            if not is_canonical("project", project_id):
                return Page(items=[])
            conditions.append(f"Project eq {literal(to_business_key('project', project_id))}")
        rows, next_cursor = await self._page("A_EnterpriseProject", conditions, cursor, limit)
        return Page(items=[dimension_from_vendor(r) for r in rows], next_cursor=next_cursor)

    async def upsert_project_dimension(self, data: ProjectDimensionCreate) -> tuple[ProjectDimension, bool]:
        body = dimension_to_vendor(data)
        try:
            return dimension_from_vendor(await self._create("A_EnterpriseProject", body)), True
        except Refused as exc:
            if not exc.has(*DUPLICATE):
                raise exc.problem(DIMENSION_FIELDS, "dimension") from exc
        existing = await self._first("A_EnterpriseProject", [f"Project eq {literal(body['projectCode'])}"])
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

    # postings

    async def _posting_for_source(self, source_type: str, source_ref: str) -> dict[str, Any] | None:
        return await self._first(
            "YY1_JournalPosting",
            [
                f"DocumentReferenceID eq {literal(source_ref)}",
                f"ReferenceDocumentType eq {literal(source_type)}",
                "ReversedAccountingDocument eq null",
            ],
        )

    async def create_posting(self, data: PostingCreate) -> tuple[Posting, bool]:
        body = posting_to_vendor(data)
        try:
            created = await self._create(
                "YY1_JournalPosting", body, retry_key=f"{body['sourceDocumentType']}:{body['sourceDocumentId']}"
            )
        except Refused as exc:
            existing = (
                await self._posting_for_source(body["sourceDocumentType"], body["sourceDocumentId"])
                if (exc.has(*DUPLICATE))
                else None
            )
            if existing is None:
                raise exc.problem(POSTING_FIELDS, "posting") from exc
            return posting_from_vendor(existing), False
        return posting_from_vendor(created), True

    async def create_postings(self, items: list[PostingCreate]) -> list[PostingBatchItem]:
        async def one(item: PostingCreate) -> PostingBatchItem:
            try:
                posting, created = await self.create_posting(item)
            except ProblemError as exc:  # one bad item does not sink the batch
                if exc.status >= 500:
                    raise
                return PostingBatchItem(source_id=item.source_id, status="rejected", problem=exc.to_problem().to_dict())
            return PostingBatchItem(
                source_id=item.source_id, status="created" if created else "existing", posting=posting
            )

        return list(await asyncio.gather(*(one(item) for item in items)))

    async def reverse_posting(self, posting_id: str, on: dt.date) -> tuple[Posting, bool]:
        voucher = to_business_key("posting", posting_id)
        body = {"reversesPostingNumber": voucher, "transactionDate": on.isoformat()}
        try:
            return posting_from_vendor(
                await self._create("YY1_JournalPosting", body, retry_key=f"reversal:{voucher}")
            ), True
        except Refused as exc:
            if exc.status == 404:
                raise NotFound(f"no posting {posting_id!r}", slug="unknown-id") from exc
            if exc.has(*WRONG_STATE):
                raise Conflict(f"{VENDOR} refused the change: a reversal is not reversed", downstream=VENDOR) from exc
            if not exc.has(*DUPLICATE):
                raise exc.problem({"transactionDate": "/on"}, "posting") from exc
        existing = await self._first("YY1_JournalPosting", [f"ReversedAccountingDocument eq {literal(voucher)}"])
        if existing is None:
            raise NotFound(f"no posting {posting_id!r}", slug="unknown-id")
        return posting_from_vendor(existing), False

    async def list_postings(self, filters: PostingFilter, *, cursor: str | None, limit: int) -> Page[Posting]:
        conditions = []
        if filters.from_date:
            conditions.append(f"PostingDate ge {datetime_literal(filters.from_date)}")
        if filters.to_date:
            conditions.append(f"PostingDate le {datetime_literal(filters.to_date)}")
        references: tuple[tuple[str | None, Kind, str], ...] = (
            (filters.project_id, "project", "Project"),
            (filters.contract_id, "contract", "ProjectContract"),
        )
        for value, kind, prop in references:
            if value is not None:
                if not is_canonical(kind, value):
                    return Page(items=[])
                conditions.append(f"{prop} eq {literal(to_business_key(kind, value))}")
        if filters.source_id is not None:
            source_kind = next((k for k in SOURCE_KINDS.values() if is_canonical(k, filters.source_id)), None)
            source = to_business_key(source_kind, filters.source_id) if source_kind else filters.source_id
            conditions.append(f"DocumentReferenceID eq {literal(source)}")
        rows, next_cursor = await self._page("YY1_JournalPosting", conditions, cursor, limit)
        return Page(items=[posting_from_vendor(r) for r in rows], next_cursor=next_cursor)

    # invoices

    async def _invoice_row(self, invoice_id: str) -> dict[str, Any]:
        row = await self._first(
            "A_BillingDocument", [f"DocumentReferenceID eq {literal(to_business_key('invoice', invoice_id))}"]
        )
        if row is None:
            raise NotFound(f"no invoice {invoice_id!r}", slug="unknown-id")
        return row

    def _validation(self, exc: Refused) -> ProblemError:
        if exc.status != 400:
            return exc.problem({}, "invoice")
        return validation_problem(
            VENDOR, [(path, detail) for path, _, detail in exc.details], line_field_map(exc.details)
        )

    async def create_invoice(self, data: InvoiceCreate, idempotency_key: str | None) -> Invoice:
        body: dict[str, Any] = {
            "customerId": await self._customer_account(data.customer_id, "/customer_id"),
            "contractNumber": reference("contract", data.contract_id, "/contract_id"),
            "subsidiaryCode": reference("legal_entity", data.legal_entity_id, "/legal_entity_id"),
            "currencyCode": data.currency,
            "periodName": period_name(data.period) if data.period else None,
            "lines": invoice_lines_to_vendor(data.lines, data.currency),
        }
        if data.tax_lines:
            body["taxLines"] = tax_lines_to_vendor(data.tax_lines, data.currency)
        if idempotency_key:
            body["externalId"] = idempotency_key  # the tenant refuses a second billing document with it
        try:
            created = await self._create("A_BillingDocument", body, retry_key=idempotency_key)
        except Refused as exc:
            if exc.has(*DUPLICATE) and idempotency_key:
                found = await self._first(
                    "A_BillingDocument", [f"YY1_IdempotencyReference eq {literal(idempotency_key)}"]
                )
                if found is not None:
                    return invoice_from_vendor(found, self.keys)
            raise self._validation(exc) from exc
        return invoice_from_vendor(created, self.keys)

    async def _act(self, invoice_id: str, function: str, to_state: InvoiceState) -> Invoice:
        row = await self._invoice_row(invoice_id)
        document = str(row["internalId"])
        try:
            await self._send(
                "POST",
                f"{ODATA}/{SERVICES['A_BillingDocument']}/{function}",
                "A_BillingDocument",
                params={"BillingDocument": literal(document)},
            )
        except Refused as exc:
            if exc.has(*WRONG_STATE):
                state = INVOICE_STATE.get(row["status"], row["status"])
                verb = "posted" if to_state == "posted" else "voided"
                raise Conflict(
                    f"a {state} invoice cannot be {verb}",
                    slug="invalid-transition",
                    from_state=state,
                    to_state=to_state,
                ) from exc
            raise exc.problem({}, "invoice") from exc
        return invoice_from_vendor(await self._entity("A_BillingDocument", document), self.keys)

    async def post_invoice(self, invoice_id: str) -> Invoice:
        return await self._act(invoice_id, "ReleaseToAccounting", "posted")

    async def void_invoice(self, invoice_id: str) -> Invoice:
        return await self._act(invoice_id, "Cancel", "void")

    async def get_invoice(self, invoice_id: str) -> Invoice:
        return invoice_from_vendor(await self._invoice_row(invoice_id), self.keys)

    async def credit_invoice(self, invoice_id: str, data: CreditNoteCreate, idempotency_key: str | None) -> CreditNote:
        row = await self._invoice_row(invoice_id)
        body: dict[str, Any] = {
            "invoiceId": int(row["internalId"]),
            "lines": invoice_lines_to_vendor(data.lines, row["currencyCode"]),
        }
        if idempotency_key:
            body["externalId"] = idempotency_key  # the tenant refuses a second request with it
        try:
            memo = await self._create("A_CreditMemoRequest", body, retry_key=idempotency_key)
        except Refused as exc:
            if exc.has(*DUPLICATE) and idempotency_key:
                found = await self._first(
                    "A_CreditMemoRequest", [f"PurchaseOrderByCustomer eq {literal(idempotency_key)}"]
                )
                if found is not None:
                    return credit_note_from_vendor(found)
            if exc.has(*WRONG_STATE):
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
            conditions.append(f"YY1_InvoiceReference eq {literal(to_business_key('invoice', invoice_id))}")
        rows, next_cursor = await self._page("A_CreditMemoRequest", conditions, cursor, limit)
        return Page(items=[credit_note_from_vendor(r) for r in rows], next_cursor=next_cursor)

    async def list_invoices(
        self, *, contract_id: str | None, state: InvoiceState | None, period: str | None, cursor: str | None, limit: int
    ) -> Page[Invoice]:
        conditions = []
        if state:
            conditions.append(f"YY1_BillingState eq {literal(INVOICE_STATUS[INVOICE_STATE_VENDOR[state]])}")
        if period:
            conditions.append(f"YY1_FiscalYearPeriod eq {literal(fiscal_period(period_name(period)))}")
        if contract_id is not None:
            if not is_canonical("contract", contract_id):
                return Page(items=[])
            conditions.append(f"YY1_ProjectContract eq {literal(to_business_key('contract', contract_id))}")
        rows, next_cursor = await self._page("A_BillingDocument", conditions, cursor, limit)
        return Page(items=[invoice_from_vendor(r, self.keys) for r in rows], next_cursor=next_cursor)

    # revenue

    async def list_revenue_schedules(
        self, *, contract_id: str | None, period: str | None, cursor: str | None, limit: int
    ) -> Page[RevenueSchedule]:
        conditions = [f"FiscalYearPeriod eq {literal(fiscal_period(period_name(period)))}"] if period else []
        if contract_id is not None:
            if not is_canonical("contract", contract_id):
                return Page(items=[])
            conditions.append(f"ProjectContract eq {literal(to_business_key('contract', contract_id))}")
        rows, next_cursor = await self._page("YY1_RevenueSchedule", conditions, cursor, limit)
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
            return revenue_from_vendor(await self._create("YY1_RevenueSchedule", body)), True
        except Refused as exc:
            if not exc.has(*DUPLICATE):
                raise exc.problem(REVENUE_FIELDS, "revenue schedule") from exc
        found = await self._first(
            "YY1_RevenueSchedule",
            [
                f"ProjectContract eq {literal(body['contractNumber'])}",
                f"FiscalYearPeriod eq {literal(fiscal_period(body['periodName']))}",
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
