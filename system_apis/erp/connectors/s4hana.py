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
reach callers as canonical problems with canonical field pointers. A batch of postings is one ``POST
/sap/opu/odata/sap/YY1_JOURNALPOSTING_CDS/$batch`` per chunk of up to 500, in the OData v2 multipart/mixed format
(``connectors/odata_batch.py``), each posting its own change set, the CSRF token fetched once and sent on the
``$batch`` request: SAP, "$batch Processing" (help.sap.com/doc/saphelp_nw75/7.5.5/en-US/94/
a126519eff236ee10000000a445394/content.htm: "a change set is an atomic unit of work", "Change sets cannot contain
retrieve requests and cannot be nested"), and "Testing OData $batch processing with Content ID in SAP Gateway"
(blogs.sap.com/2016/03/09: fetch ``X-CSRF-Token`` from the service document, send it on the ``$batch`` POST). A
failed change set answers its own error and the others go on, so a refused line is refused alone; the tenant's SAP
API Management proxy counts the batch as one call against its quota.

Exactly once without idempotency keys: each write has a unique key the tenant enforces (a business partner's
number, a contract's or project's id, a posting's source document, a reversal's original accounting document, a
billing document's ``YY1_IdempotencyReference`` or a credit memo request's ``PurchaseOrderByCustomer`` set to the
caller's Idempotency-Key), a repeat is refused ``ZPSG/DUPLICATE_*``, and the adapter answers the entity already
there. That also makes a write safe to send again after a 429 (``system_apis.vendor_calls`` waits it out).

Authentication: OAuth 2.0 client credentials (communication arrangement with OAuth 2.0 inbound authentication):
client id and secret by HTTP Basic at ``/sap/bc/sec/oauth2/token`` on the tenant's API host (or ``erp_token_url``).

What is the same for every vendor (the canonical mapping steps, the upserts that answer the record already there,
the posting, invoice, credit note and revenue flows, refusals as canonical problems) is ``connectors/flows.py``'s;
this module is the vendor's dialect: its wire, its entity and property names, its filter language.

Canonical ids are the entities' natural keys (a business partner's number, a contract's id); ``external_ids["erp"]``
is the entity's key in the tenant (a custom business object's ``SAP_UUID``, a project's ``ProjectUUID``, a billing
document's number). Company codes are the legal entities' codes without the dash: ``LE-US`` is ``LEUS``.
"""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
import hashlib
import json
import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlencode

import msgspec

from contracts.canonical import InvoiceState
from runtime import cursors
from runtime.problems import ProblemError
from system_apis.erp.connectors.flows import CENT, ODataFlows, VendorRefusal, minor_units, rejected
from system_apis.erp.connectors.flows import odata_literal as literal
from system_apis.erp.connectors.odata_batch import BatchFormatError, decode_batch, encode_batch
from system_apis.erp.connectors.sandbox import POSTING_FIELDS, ErpKeys, posting_from_vendor, posting_to_vendor
from system_apis.erp.models import PostingBatchItem, PostingCreate
from system_apis.vendor_auth import ClientCredentialsToken, VendorCredentials

VENDOR = "s4hana"
ODATA = "/sap/opu/odata/sap"
TOKEN_PATH = "/sap/bc/sec/oauth2/token"  # noqa: S105 - the token endpoint's path, not a secret
PAGE_MAX = 1000
POSTING_BATCH = 500  # postings per $batch (each its own change set)
JSON = {"Accept": "application/json"}  # SAP Gateway answers Atom XML otherwise
ETAG = "@etag"  # where an entity's ETag travels with its engine fields
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
    "schedule": SCHEDULE_LINE,
    "item": ITEM_LINE,
    "memoitem": MEMO_LINE,
    "tax": TAX_LINE,
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


def _results(value: Any) -> list[Any] | None:
    """A to-many navigation property's entities (None when it was not expanded)."""
    rows = value.get("results") if isinstance(value, dict) else None
    return rows if isinstance(rows, list) else None


def _from_odata(conversion: str, value: Any) -> Any:
    if conversion in ("int", "text"):
        return int(value)
    if conversion == "money":
        return minor_units(value)
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
        return {
            "results": [
                {schema[k][0]: _to_odata(schema[k][1], v) for k, v in line.items() if k in schema} for line in value
            ]
        }
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


def refusal(status: int, body: Any, raw: bytes, entity_set: str) -> Refused:
    """An OData v2 error body as a refusal naming the engine's fields."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    message = error.get("message")
    text = str(message.get("value", "")) if isinstance(message, dict) else raw.decode(errors="replace")
    inner = error.get("innererror")
    entries = inner.get("errordetails") if isinstance(inner, dict) else None
    details = [
        (engine_path(entity_set, d.get("target") or None), str(d.get("code", "")), str(d.get("message", "")))
        for d in entries or []
        if isinstance(d, dict)
    ]
    return Refused(status, text[:500], details, code=str(error.get("code", "")))


class Refused(VendorRefusal):
    """The service's 4xx: status, message, error code and (engine field path, code, message) per ``errordetails``
    entry."""

    vendor = VENDOR
    closed_period = CLOSED_PERIOD


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


class S4HanaErp(ODataFlows):
    VENDOR = VENDOR
    SETS = {
        "legal_entity": "A_CompanyCode",
        "period": "YY1_PostingPeriod",
        "customer": "A_BusinessPartner",
        "contract": "YY1_ProjectContract",
        "dimension": "A_EnterpriseProject",
        "posting": "YY1_JournalPosting",
        "invoice": "A_BillingDocument",
        "credit_note": "A_CreditMemoRequest",
        "revenue": "YY1_RevenueSchedule",
    }
    FIELDS = {
        "period.name": "FiscalYearPeriod",
        "period.legal_entity": "CompanyCode",
        "customer.number": "BusinessPartner",
        "customer.name": "OrganizationBPName1",
        "customer.crm": "YY1_CrmAccountId",
        "contract.number": "ProjectContract",
        "contract.status": "ContractStatus",
        "contract.customer": "Customer",
        "dimension.project": "Project",
        "posting.source": "DocumentReferenceID",
        "posting.source_type": "ReferenceDocumentType",
        "posting.reverses": "ReversedAccountingDocument",
        "posting.date": "PostingDate",
        "posting.project": "Project",
        "posting.contract": "ProjectContract",
        "invoice.number": "DocumentReferenceID",
        "invoice.key": "YY1_IdempotencyReference",
        "invoice.state": "YY1_BillingState",
        "invoice.period": "YY1_FiscalYearPeriod",
        "invoice.contract": "YY1_ProjectContract",
        "credit_note.invoice": "YY1_InvoiceReference",
        "credit_note.key": "PurchaseOrderByCustomer",
        "revenue.contract": "ProjectContract",
        "revenue.period": "FiscalYearPeriod",
    }
    INVOICE_STATUS = INVOICE_STATUS
    DUPLICATE = DUPLICATE
    WRONG_STATE = IS_REVERSAL = WRONG_STATE
    refused = Refused
    GRANT = SapClientCredentials
    TOKEN_PATH = TOKEN_PATH

    def _new_keys(self) -> ErpKeys:
        return PartnerKeys()

    def __init__(self, base_url: str, timeout_seconds: float, **options: Any) -> None:
        super().__init__(base_url, timeout_seconds, **options)
        self._csrf = CsrfSession()

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

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        retry_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The reply to one call; a write carries the CSRF token (fetched first, and again when refused)."""
        writes = method != "GET"
        for attempt in (1, 2):
            if writes and (not self._csrf.token or attempt == 2):
                await self._fetch_csrf(self._csrf.token, path)
            reply = await self._vendor.request(
                method,
                path,
                params=params,
                json=json_body,
                content=content,
                headers={**JSON, **self._csrf.headers(), **(headers or {})} if writes else JSON,
                idempotency_key=retry_key,
                allow_statuses=frozenset(range(400, 500)),
            )
            refused = reply.status_code == 403 and reply.headers.get("x-csrf-token", "").lower() == "required"
            if not (writes and refused):
                break
        return reply

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
        reply = await self._request(
            method, path, params=params, json_body=json_body, retry_key=retry_key, headers=headers
        )
        try:
            body = json.loads(reply.content, parse_float=Decimal) if reply.content else None
        except ValueError:
            body = None
        if reply.status_code >= 400:
            raise refusal(reply.status_code, body, reply.content, entity_set)
        return body

    async def _batch(self, service: str, requests: list[tuple[str, str, dict[str, Any] | None]], key: str) -> Any:
        """``(method, url relative to the service root, body)`` requests as one ``$batch`` of ``service``
        (``connectors/odata_batch.py``: a read alone, each write its own change set): (status, parsed body) per
        request, in order. SAP Gateway answers every change set, a failed one by its own error."""
        token = uuid.uuid4().hex
        content = encode_batch(
            [(m, url, msgspec.json.encode(body) if body is not None else None) for m, url, body in requests],
            boundary=f"batch_{token}",
            changeset=f"changeset_{token}",
        )
        reply = await self._request(
            "POST",
            f"{ODATA}/{service}/$batch",
            content=content,
            retry_key=key,
            headers={
                "Content-Type": f"multipart/mixed; boundary=batch_{token}",
                "Accept": "multipart/mixed",
                "DataServiceVersion": "2.0",
            },
        )
        if reply.status_code >= 400:  # the batch itself refused: this adapter spoke wrongly, the vendor failed us
            raise unexpected(f"{reply.status_code} to a $batch")
        try:
            parts = decode_batch(reply.headers.get("content-type", ""), reply.content)
            bodies = [json.loads(body, parse_float=Decimal) if body.strip() else None for _, body in parts]
        except (BatchFormatError, ValueError) as exc:
            raise unexpected(f"an unreadable $batch answer ({str(exc)[:80]})") from exc
        if len(parts) != len(requests):
            raise unexpected("a $batch answer that does not answer every change set")
        return [(status, body) for (status, _), body in zip(parts, bodies, strict=True)]

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

    # the dialect (connectors/flows.py runs the flows over it)

    def on_or_after(self, prop: str, day: dt.date) -> str:
        return f"{prop} ge {datetime_literal(day)}"

    def on_or_before(self, prop: str, day: dt.date) -> str:
        return f"{prop} le {datetime_literal(day)}"

    def name_contains(self, prop: str, text: str) -> str:
        return f"substringof({literal(text.lower())},tolower({prop}))"  # SAP compares text exactly

    def period_value(self, name: str) -> str:
        return fiscal_period(name)

    def company_value(self, code: str) -> str:
        return company_code(code)

    async def _change(self, entity_set: str, key: str, row: dict[str, Any], body: dict[str, Any]) -> None:
        """PATCH as of the version read (``If-Match``); changed meanwhile (412), the change, a delta, is applied to
        the version there now, once."""
        for attempt in (1, 2):
            try:
                await self._send(
                    "PATCH",
                    key_path(entity_set, key),
                    entity_set,
                    json_body=body,
                    headers={"If-Match": row.get(ETAG, "")},
                )
                return
            except Refused as exc:
                if exc.status != 412 or attempt == 2:
                    raise
                row = await self._entity(entity_set, key)

    async def _write_contract(self, row: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        key = str(row["internalId"])
        await self._change("YY1_ProjectContract", key, row, to_odata("YY1_ProjectContract", fields))
        return await self._entity("YY1_ProjectContract", key)

    async def _send_transition(self, row: dict[str, Any], to_state: InvoiceState) -> None:
        function = "ReleaseToAccounting" if to_state == "posted" else "Cancel"
        await self._send(
            "POST",
            f"{ODATA}/{SERVICES['A_BillingDocument']}/{function}",
            "A_BillingDocument",
            params={"BillingDocument": literal(str(row["internalId"]))},
        )

    async def _reread_invoice(self, row: dict[str, Any]) -> dict[str, Any]:
        return await self._entity("A_BillingDocument", str(row["internalId"]))

    async def _create_credit(self, row: dict[str, Any], body: dict[str, Any], retry_key: str | None) -> dict[str, Any]:
        request = {"invoiceId": int(row["internalId"]), **body}  # a credit memo request references its invoice
        return await self._create("A_CreditMemoRequest", request, retry_key=retry_key)

    # postings in bulk

    async def create_postings(self, items: list[PostingCreate]) -> list[PostingBatchItem]:
        """One ``$batch`` per chunk of up to 500 postings, each its own change set, so a refused line is refused
        alone; a line whose source is posted already (``ZPSG/DUPLICATE_SOURCE``) is read back, as the single write
        does, in one more ``$batch`` of reads: never posted twice."""
        outcomes: list[PostingBatchItem] = []
        for start in range(0, len(items), POSTING_BATCH):
            outcomes += await self._post_chunk(items[start : start + POSTING_BATCH])
        return outcomes

    async def _post_chunk(self, items: list[PostingCreate]) -> list[PostingBatchItem]:
        entity_set = self.SETS["posting"]
        outcomes: dict[int, PostingBatchItem] = {}
        bodies: dict[int, dict[str, Any]] = {}
        for index, item in enumerate(items):
            try:
                bodies[index] = posting_to_vendor(item)
            except ProblemError as bad:  # a reference that is no canonical id: this line alone
                if bad.status >= 500:
                    raise
                outcomes[index] = rejected(item, bad)
        if not bodies:
            return [outcomes[index] for index in range(len(items))]
        sources = ",".join(f"{b['sourceDocumentType']}:{b['sourceDocumentId']}" for b in bodies.values())
        answers = await self._batch(
            SERVICES[entity_set],
            [("POST", entity_set, to_odata(entity_set, body)) for body in bodies.values()],
            "postings:" + hashlib.sha256(sources.encode()).hexdigest(),
        )
        posted_before: list[int] = []
        for index, (status, body) in zip(bodies, answers, strict=True):
            if status < 300:
                posting = posting_from_vendor(from_odata(entity_set, envelope(body)))
                outcomes[index] = PostingBatchItem(source_id=items[index].source_id, status="created", posting=posting)
                continue
            refused = refusal(status, body, b"", entity_set)
            if status >= 500:
                raise unexpected(f"{status} to a posting of the $batch ({refused.message[:200]})")
            if refused.has(*self.DUPLICATE):
                posted_before.append(index)
            else:
                outcomes[index] = rejected(items[index], refused.problem(POSTING_FIELDS, "posting"))
        if posted_before:
            outcomes.update(await self._already_posted(items, bodies, posted_before))
        return [outcomes[index] for index in range(len(items))]

    async def _already_posted(
        self, items: list[PostingCreate], bodies: dict[int, dict[str, Any]], indexes: list[int]
    ) -> dict[int, PostingBatchItem]:
        """The postings of sources posted before (``_posting_for_source``'s query), read in one ``$batch``."""
        entity_set = self.SETS["posting"]
        reads: list[tuple[str, str, dict[str, Any] | None]] = []
        for index in indexes:
            conditions = self._source_conditions(bodies[index]["sourceDocumentType"], bodies[index]["sourceDocumentId"])
            query = urlencode({"$filter": " and ".join(conditions), "$top": "1"}, quote_via=quote, safe="$'(),")
            reads.append(("GET", f"{entity_set}?{query}", None))
        answers = await self._batch(SERVICES[entity_set], reads, "reads")
        found: dict[int, PostingBatchItem] = {}
        for index, (status, body) in zip(indexes, answers, strict=True):
            rows = envelope(body).get("results") if status == 200 else None
            if not rows:  # refused as a duplicate yet not there: as the single write answers it
                problem = (
                    refusal(status, body, b"", entity_set)
                    if status >= 400
                    else Refused(409, "the source is posted but its posting was not found", [])
                )
                found[index] = rejected(items[index], problem.problem(POSTING_FIELDS, "posting"))
                continue
            posting = posting_from_vendor(from_odata(entity_set, rows[0]))
            found[index] = PostingBatchItem(source_id=items[index].source_id, status="existing", posting=posting)
        return found
