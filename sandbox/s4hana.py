"""Sandbox SAP S/4HANA Cloud: the demo firm's ERP behind S/4HANA Cloud's OData v2 APIs.

Follows the SAP Business Accelerator Hub (api.sap.com) descriptions of the services named below, the OData v2 JSON
format and URI conventions (odata.org/documentation/odata-version-2-0: "JSON Format", "URI Conventions") as SAP
Gateway serves them, SAP Note 1896960 / KBA 3048103 on CSRF protection ("An XSRF check is a simple compare of a XSRF
header towards a XSRF cookie"), and the SAP Cloud SDK's generated clients for those services (property names and
keys):

- services at ``/sap/opu/odata/sap/<SERVICE>/``, entity sets at ``.../<SERVICE>/<EntitySet>``, one entity at
  ``.../<EntitySet>('key')`` (a single key may be unnamed; several are ``Name='..',Other='..'``; Edm.Guid keys are
  ``guid'...'``); a service's root answers its service document ``{"d": {"EntitySets": [...]}}``;
- JSON when asked for (``Accept: application/json`` or ``$format=json``; SAP answers Atom XML otherwise, which this
  sandbox does not serve: it answers 406);
- a collection is ``{"d": {"results": [...]}}`` with ``"__count"`` (a string) when ``$inlinecount=allpages`` is
  asked, and ``"__next"`` (the URL of the next page, with ``$skiptoken``) when the server's page limit cut it short;
  one entity is ``{"d": {...}}``; every entity carries ``__metadata`` (``id``, ``uri``, ``type``);
- ``$filter`` (``eq``, ``ge``, ``le``, ``gt``, ``lt``, ``and``, ``substringof('text',Property)`` and
  ``substringof('text',tolower(Property))``; literals
  ``'text'``, numbers, ``datetime'2026-10-01T00:00:00'``, ``guid'...'``, ``true``/``false``/``null``), ``$select``,
  ``$top``, ``$skip``, ``$skiptoken``, ``$inlinecount=allpages``, ``$expand`` of navigation properties (unexpanded
  ones are written ``{"__deferred": {"uri"}}``; expanded to-many ones ``{"results": [...]}``);
- ``Edm.DateTime`` is written ``/Date(<ms since the epoch>)/`` (midnight UTC for a date), ``Edm.Decimal`` as a JSON
  string, ``Edm.Int32`` as a number, ``Edm.Boolean`` as true/false;
- ``POST .../<EntitySet>`` creates (201 and the entity, with a deep insert of its to-many navigation properties),
  ``PATCH`` (or ``PUT``) on an entity updates (204) as of the version read: the entity's ``__metadata.etag`` (and
  ``ETag`` header) sent back in ``If-Match`` (428 without it, 412 when the entity changed meanwhile); function
  imports are ``POST .../<SERVICE>/<Function>?Param='..'``;
- errors are OData v2 error bodies ``{"error": {"code", "message": {"lang", "value"}, "innererror":
  {"transactionid", "timestamp", "errordetails": [{"code", "message", "propertyref", "severity", "target"}]}}}``;
- CSRF protection: a ``GET`` (or ``HEAD``) with ``x-csrf-token: Fetch`` answers the token in ``x-csrf-token`` and
  sets the session cookie it is bound to (``SAP_SESSIONID_<SID>_<client>``; not ``secure`` here, the sandbox
  serving plain HTTP); a write without that token and cookie is
  refused 403 with ``x-csrf-token: Required`` and the text ``CSRF token validation failed``;
- OAuth 2.0 client credentials at the tenant's token endpoint ``POST /sap/bc/sec/oauth2/token`` (communication
  arrangement with OAuth 2.0 inbound authentication; client id and secret by HTTP Basic), the bearer token on each
  call; past the API rate limit a call is answered 429 with ``Retry-After``. S/4HANA Cloud publishes no API rate of
  its own: the limit is the one a tenant's SAP API Management proxy enforces, a Quota policy (calls per interval,
  429 past it until the interval ends: SAP's "Quota with 429 status code" policy template), set on this sandbox with
  ``PUT /_sandbox/limits {"per_window", "window_seconds"}`` (``sandbox/vendor_http.py``).

Services and entity sets (a subset of each entity type's properties):

- ``API_COMPANYCODE_SRV/A_CompanyCode`` (``CompanyCode`` ``LEUS`` for legal entity ``LE-US``, ``CompanyCodeName``,
  ``Country``, ``Currency``, ``VATRegistration``);
- ``API_BUSINESS_PARTNER/A_BusinessPartner`` (``BusinessPartner``, ``BusinessPartnerCategory`` ``2``, an
  organisation, which a create must say, ``OrganizationBPName1``) with its address as the
  navigation ``to_BusinessPartnerAddress`` (``StreetName``, ``CityName``, ``PostalCode``, ``Region``, ``Country``);
- ``API_ENTERPRISE_PROJECT_SRV;v=0002/A_EnterpriseProject`` (key ``ProjectUUID``; ``Project``, ``CompanyCode``);
- ``API_BILLING_DOCUMENT_SRV/A_BillingDocument`` (``BillingDocument``, ``DocumentReferenceID``, ``PayerParty``,
  ``TransactionCurrency``, ``BillingDocumentDate``, ``TotalNetAmount``, ``TotalTaxAmount``) with its items
  ``to_Item`` (``BillingDocumentItem``, ``BillingDocumentItemText``, ``BillingQuantity``, ``NetAmount``) and its tax
  as pricing elements ``to_PricingElement`` (``TaxCode``, ``ConditionRateValue``, ``ConditionBaseValue``,
  ``ConditionAmount``); the function import ``Cancel?BillingDocument='..'``;
- ``API_CREDIT_MEMO_REQUEST_SRV/A_CreditMemoRequest`` (``CreditMemoRequest``, ``ReferenceSDDocument`` the billing
  document credited, ``TransactionCurrency``, ``CreditMemoRequestDate``, ``TotalNetAmount``,
  ``PurchaseOrderByCustomer``) with its items ``to_Item`` (``CreditMemoRequestItem``, ``CreditMemoRequestItemText``,
  ``RequestedQuantity``, ``NetAmount``);
- what S/4HANA Cloud keeps only through key-user extensibility: custom fields ``YY1_*`` on the standard entities
  (the customer's company code, currency, tax region, CRM id, VAT number and Peppol id; a billing document's state,
  contract, period and idempotency reference, which the tenant's custom logic keeps unique; a company code's
  federal tax id, Peppol id and VAT rate; a project's posting dimension), and custom business objects, each its own
  service ``YY1_<NAME>_CDS`` keyed by ``SAP_UUID``: ``YY1_PostingPeriod`` (open or closed per company code and
  ``FiscalYearPeriod`` ``2026010``), ``YY1_ProjectContract`` (a customer contract's billing terms, its billing plan
  as the sub node ``to_BillingPlanLine``), ``YY1_JournalPosting`` (a posting of the PSA's time or expense: S/4HANA
  Cloud posts journal entries only through the SOAP service ``JournalEntryBulkCreateRequest`` and reads them through
  ``API_JOURNALENTRYITEMBASIC_SRV``, which is read-only) and ``YY1_RevenueSchedule``; and the function import
  ``ReleaseToAccounting?BillingDocument='..'`` (a draft billing document, blocked for accounting, released: SAP
  offers this in the Manage Billing Documents app, not in the API).

``POST .../<SERVICE>/$batch`` in the OData v2 multipart/mixed format (SAP, "$batch Processing", help.sap.com/doc/
saphelp_nw75/7.5.5/en-US/94/a126519eff236ee10000000a445394/content.htm; the parser is ``sandbox/odata.py``'s):
reads (a collection or an entity) and change sets of creates, each change set all or nothing (a savepoint), the
parts run in order, a failed change set answered by its one error and the parts after it still run; answered 202
``multipart/mixed``, the whole batch committed once before it is answered. The CSRF token is checked on the
``$batch`` request itself, as on any write (SAP's "Testing OData $batch processing with Content ID in SAP
Gateway", blogs.sap.com/2016/03/09: fetch ``X-CSRF-Token`` from the service document, send it on the ``$batch``
POST), and the batch is one call against the API Management quota (the proxy sees one HTTP request).

Not imitated: ``$metadata``, ``MERGE`` and ``X-HTTP-Method`` tunnelling, ``$orderby`` (entities come in insertion
order), ``PATCH`` and function imports inside ``$batch``, ``Content-ID`` references (``$1``), ``or``/``not`` and
functions other than ``substringof`` and ``tolower`` in ``$filter``
(``substringof`` matches regardless of case here, where SAP compares exactly unless the property is ``tolower``-ed);
ETags on the entities nothing here updates; the business partner's roles, customer (``A_Customer``,
``A_CustomerCompany``, ``A_CustomerSalesArea``) and tax number entities (their data are ``YY1_`` fields here); sales
organisations and document types (``F2``/``G2``), pricing procedures and output; the credit memo request billed to a
credit memo (a request is the credit note here); the cancellation billing document ``S1`` (``Cancel`` is for a draft
here, and refuses a billing document released to accounting); journal entries by SOAP and ``A_JournalEntryItemBasic``;
session expiry (a CSRF token lives as long as the sandbox); message classes (error codes are ``ZPSG/<reason>``, a
tenant's own class).

Behind the wire the ledger is the sandbox ERP's (``sandbox/erp.py``): the same demo firm, the same rules (a source
posted once, closed periods refuse postings, an invoice credited at most for what it billed).
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import zlib
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote

from litestar import Litestar, Request, route
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.response import Response

from sandbox import erp, odata
from sandbox.store import DocumentStore
from sandbox.vendor_http import AuthDialect, LimitDialect, VendorError, vendor_error_response

ODATA = "/sap/opu/odata/sap"
TOKEN_PATH = "/sap/bc/sec/oauth2/token"  # noqa: S105 - the token endpoint's path, not a secret
SESSION_COOKIE = "SAP_SESSIONID_PSG_100"
MAX_PAGE = 1000  # the server's page limit; a longer answer is cut and continued by __next
MAX_OFFSET = 2**31 - 1  # Edm.Int32, as the service reads $top and $skip
MAX_FILTER = 4096  # this sandbox's bound on a $filter (a URL that long is past what an integration sends)
CENT = Decimal("0.01")
MONTHS = {name: number for number, name in enumerate(calendar.month_abbr) if name}

# --- the entity schema: entity set -> engine kind, keys, engine field -> (property, conversion) ------------------
# Conversions: "" as is; "int" integer (Edm.Int32); "text" an integer id as its digits (Edm.String);
# "money" integer minor units <-> decimal string; "number" decimal text <-> decimal string; "date" ISO date <->
# /Date(ms)/; "companycode" subsidiary code ("LE-US") <-> company code ("LEUS"); "fiscalperiod" "Oct 2026" <->
# "2026010"; "open" OPEN/CLOSED <-> true/false; "invoicestatus" DRAFT/POSTED/PAID/VOID <-> A/C/P/X; "refs" list <->
# comma-separated text; "address" the billing address <-> to_BusinessPartnerAddress; "customer" internal id <->
# business partner number; "lines:<schema>" a list of line objects <-> a to-many navigation property.
# The connector (system_apis/erp/connectors/s4hana.py) holds the same table; tests/s4hana/test_schema_agreement.py
# keeps the two equal.

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
CREATABLE = (
    "A_BusinessPartner",
    "YY1_ProjectContract",
    "A_EnterpriseProject",
    "YY1_JournalPosting",
    "A_BillingDocument",
    "A_CreditMemoRequest",
    "YY1_RevenueSchedule",
)
FUNCTIONS = {"API_BILLING_DOCUMENT_SRV": ("Cancel", "ReleaseToAccounting")}
# Properties every entity of a set has, and a create must say: a customer is an organisation (category 2).
CONSTANTS = {"A_BusinessPartner": {"BusinessPartnerCategory": "2"}}
UPDATABLE = ("YY1_ProjectContract",)


def company_code(code: str) -> str:
    return code.replace("-", "")


def subsidiary(code: str) -> str:
    """A company code as the subsidiary code; one that is no company becomes a code no subsidiary has."""
    return f"LE-{code[2:]}" if code.startswith("LE") and len(code) > 2 else f"#{code}"


def fiscal_period(name: str) -> str:
    month, _, year = name.partition(" ")
    return f"{year}{MONTHS[month]:03d}"


def period_of(value: str) -> str | None:
    match = re.fullmatch(r"(\d{4})(\d{3})", value)
    if not match or not 1 <= int(match[2]) <= 12:
        return None
    return f"{calendar.month_abbr[int(match[2])]} {match[1]}"


def sap_date(day: str) -> str:
    moment = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), dt.UTC)
    return f"/Date({int(moment.timestamp()) * 1000})/"


def iso_date(value: str) -> str | None:
    match = re.fullmatch(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/", value)
    if not match:
        return None
    return dt.datetime.fromtimestamp(int(match[1]) / 1000, dt.UTC).date().isoformat()


def uuid_of(entity_set: str, internal_id: int) -> str:
    """The generated key of a record (stable: the entity set's checksum and the record's number)."""
    return f"{zlib.crc32(entity_set.encode()):08x}-0000-4000-8000-{internal_id:012x}"


def internal_of(entity_set: str, key: str) -> int | None:
    match = re.fullmatch(r"([0-9a-f]{8})-0000-4000-8000-([0-9a-f]{12})", key.lower())
    if not match or match[1] != f"{zlib.crc32(entity_set.encode()):08x}":
        return None
    return int(match[2], 16)


# --- errors ----------------------------------------------------------------------------------------------------


def odata_error(status: int, message: str, details: list[tuple[str | None, str, str]] | None = None,
                code: str = "/IWBEP/CM_MGW_RT/000") -> VendorError:
    """``details`` are (property or None, code, message)."""
    body = {
        "error": {
            "code": code,
            "message": {"lang": "en", "value": message},
            "innererror": {
                "transactionid": secrets.token_hex(16).upper(),
                "timestamp": dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S.%f"),
                "errordetails": [
                    {"code": c, "message": m, "propertyref": t or "", "severity": "error", "target": t or ""}
                    for t, c, m in details or []
                ],
            },
        }
    }
    return VendorError(status, body)


def bad_request(message: str) -> VendorError:
    return odata_error(400, message, code="/IWCOR/CX_DS_EXPR_SYNTAX_ERROR")


def not_found(segment: str) -> VendorError:
    return odata_error(404, f"Resource not found for segment '{segment}'", code="/IWBEP/CM_MGW_RT/020")


def translated(entity_set: str, exc: VendorError) -> VendorError:
    """The engine's refusal as the service says it: 404 for a missing entity, 400 for every other write failure,
    with each field's property as ``target`` and the reason as a ``ZPSG/`` message code."""
    if not isinstance(exc.body, dict) or "error" in exc.body:  # already the service's own
        return exc
    if exc.status == 404:
        return not_found(entity_set)
    details = [
        (property_path(entity_set, d.get("o:errorPath")), "ZPSG/" + str(d.get("o:errorCode") or "INVALID_VALUE"),
         str(d.get("detail", "")))
        for d in exc.body.get("o:errorDetails", [])
    ]
    message = "; ".join(m for _, _, m in details) or str(exc.body.get("title", "the request was refused"))
    return odata_error(400, message, details, code=details[0][1] if details else "ZPSG/INVALID_VALUE")


def property_path(entity_set: str, path: str | None) -> str | None:
    """An engine error path (``lines[0].amountMinor``) in the entity's properties (``to_Item(0)/NetAmount``)."""
    return odata.property_path(SCHEMAS[entity_set][2], LINES, path, "{name}({i})")


# --- conversions -----------------------------------------------------------------------------------------------


def out_value(store: DocumentStore, conversion: str, value: Any) -> Any:
    if value is None:
        return None
    if conversion == "text":
        return str(value)
    if conversion == "money":
        return str((Decimal(value) / 100).quantize(CENT))
    if conversion == "number":
        return str(Decimal(str(value)))
    if conversion == "date":
        return sap_date(value)
    if conversion == "companycode":
        return company_code(value)
    if conversion == "fiscalperiod":
        return fiscal_period(value)
    if conversion == "open":
        return value == "OPEN"
    if conversion == "customer":
        row = store.get("customer", str(value))
        return row["customerNumber"] if row else str(value)
    if conversion == "invoicestatus":
        return INVOICE_STATUS[value]
    if conversion == "refs":
        return ",".join(value)
    if conversion == "address":
        return {"results": [{prop: value.get(part) for part, prop in ADDRESS.items()}]}
    if conversion.startswith("lines:"):
        schema = LINES[conversion[6:]]
        return {"results": [
            {schema[k][0]: out_value(store, schema[k][1], v) for k, v in line.items() if k in schema} for line in value
        ]}
    return value


def _decimal_text(value: Any) -> str | None:
    """Edm.Decimal's text (a string on the wire; a JSON number is read too, as SAP Gateway does), else None."""
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not re.fullmatch(r"-?\d{1,20}(\.\d{1,10})?", value.strip()):
        return None
    return value.strip()


def in_value(store: DocumentStore, conversion: str, value: Any) -> Any:
    """An OData value in the engine's terms; a value of the wrong shape passes through for the engine to refuse."""
    if value is None:
        return None
    if conversion == "text" and isinstance(value, str):
        return int(value) if re.fullmatch(r"\d{1,18}", value) else -1
    if conversion in ("money", "number"):
        text = _decimal_text(value)
        if text is None:  # not a decimal: the engine refuses it (it takes minor units and decimal text only)
            return value if isinstance(value, str) and conversion == "number" else {"notADecimal": str(value)[:40]}
        if conversion == "number":
            return text
        minor = Decimal(text) * 100
        return int(minor) if minor == minor.to_integral_value() else text
    if conversion == "date" and isinstance(value, str):
        return iso_date(value) or value
    if conversion == "companycode" and isinstance(value, str):
        return subsidiary(value)
    if conversion == "fiscalperiod" and isinstance(value, str):
        return period_of(value) or value
    if conversion == "open" and isinstance(value, bool):
        return "OPEN" if value else "CLOSED"
    if conversion == "customer":  # a business partner number; anything else is no customer
        found = erp._first(store, "customer", customerNumber=value) if isinstance(value, str) else None
        return found["internalId"] if found else -1
    if conversion == "invoicestatus":
        return {v: k for k, v in INVOICE_STATUS.items()}.get(value, value)
    if conversion == "refs":
        return [part for part in value.split(",") if part] if isinstance(value, str) else value
    if conversion == "address":
        rows = value.get("results") if isinstance(value, dict) else None
        if not isinstance(rows, list) or len(rows) > 1 or not all(isinstance(row, dict) for row in rows):
            return value
        parts = {prop: part for part, prop in ADDRESS.items()}
        return {parts.get(k, k): v for k, v in (rows[0] if rows else {}).items() if v is not None and k != "__metadata"}
    if conversion.startswith("lines:"):
        rows = value.get("results") if isinstance(value, dict) else None
        if not isinstance(rows, list):
            return value
        fields = {name: (field, conv) for field, (name, conv) in LINES[conversion[6:]].items()}
        return [
            {fields.get(k, (k, ""))[0]: in_value(store, fields.get(k, (k, ""))[1], v) for k, v in line.items()
             if k != "__metadata"}
            if isinstance(line, dict) else line
            for line in rows
        ]
    return value


def entity_uri(base: str, entity_set: str, body: dict[str, Any]) -> str:
    keys = SCHEMAS[entity_set][1]
    inner = ",".join(
        (f"guid'{body[k]}'" if k in UUID_KEYS.values() else "'" + str(body[k]).replace("'", "''") + "'")
        for k in keys
    )
    return f"{base}{ODATA}/{SERVICES[entity_set]}/{entity_set}({inner})"


def to_entity(store: DocumentStore, entity_set: str, body: dict[str, Any], base: str = "",
              expand: frozenset[str] = frozenset({"*"})) -> dict[str, Any]:
    """An engine record as the entity: ``__metadata``, its key, its properties (nulls included, as the service
    writes them) and its navigation properties, expanded when asked (``*``: all) and deferred otherwise."""
    entity: dict[str, Any] = {}
    if entity_set in UUID_KEYS:
        entity[UUID_KEYS[entity_set]] = uuid_of(entity_set, int(body["internalId"]))
    entity.update(CONSTANTS.get(entity_set, {}))
    for field, (name, conversion) in SCHEMAS[entity_set][2].items():
        entity[name] = out_value(store, conversion, body.get(field))
    uri = entity_uri(base, entity_set, entity)
    for name, conversion in SCHEMAS[entity_set][2].values():
        if conversion == "address" or conversion.startswith("lines:"):
            if "*" not in expand and name not in expand:
                entity[name] = {"__deferred": {"uri": f"{uri}/{name}"}}
            elif entity[name] is None:
                entity[name] = {"results": []}
    service = SERVICES[entity_set].split(";")[0]
    metadata = {"id": uri, "uri": uri, "type": f"{service}.{entity_set}Type"}
    if entity_set in UPDATABLE:
        metadata["etag"] = etag(body)
    return {"__metadata": metadata, **entity}


def etag(record: dict[str, Any]) -> str:
    """A weak entity tag that changes whenever the record does."""
    digest = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:20]
    return f'W/"{digest}"'


def from_entity(store: DocumentStore, entity_set: str, body: dict[str, Any]) -> dict[str, Any]:
    """An entity written by a client in the engine's fields (a property the entity has not is kept for the engine
    to refuse as unknown)."""
    reverse = {name: (field, conversion) for field, (name, conversion) in SCHEMAS[entity_set][2].items()}
    engine: dict[str, Any] = {}
    for name, value in body.items():
        if name == "__metadata" or name in UUID_KEYS.values() or name in CONSTANTS.get(entity_set, {}):
            continue
        field, conversion = reverse.get(name, (name, ""))
        engine[field] = in_value(store, conversion, value)
    return engine


# --- $filter -------------------------------------------------------------------------------------------------

_LITERAL = (r"(?:'(?:[^']|'')*'|datetime'\d{4}-\d{2}-\d{2}T[0-9:.]+'|guid'[0-9a-fA-F-]{36}'|-?\d+(?:\.\d+)?[mMdD]?"
            r"|true|false|null)")
_COMPARISON = re.compile(rf"^\s*(?P<prop>\w+)\s+(?P<op>eq|ge|le|gt|lt)\s+(?P<value>{_LITERAL})\s*$")
_SUBSTRINGOF = re.compile(
    r"^\s*substringof\(\s*(?P<value>'(?:[^']|'')*')\s*,\s*(?:tolower\(\s*(?P<lower>\w+)\s*\)|(?P<prop>\w+))\s*\)\s*$"
)


def literal_value(text: str) -> Any:
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    if text.startswith("datetime'"):
        try:
            return sap_date(text[9:19])
        except ValueError as exc:
            raise bad_request(f"Invalid datetime literal {text}") from exc
    if text.startswith("guid'"):
        return text[5:-1]
    if text == "null":
        return None
    if text in ("true", "false"):
        return text == "true"
    text = text.rstrip("mMdD")
    if re.fullmatch(r"-?\d+", text):
        if abs(int(text)) > 2**31 - 1:  # beyond Edm.Int32
            raise bad_request(f"Invalid literal '{text}': out of range for Edm.Int32")
        return int(text)
    return text  # a decimal's digits


def parse_filter(
    store: DocumentStore, entity_set: str, text: str | None
) -> tuple[dict[str, Any], dict[str, tuple[Any, Any]], dict[str, str]]:
    """``$filter`` as the document store's (where, ranges, contains) on engine fields."""
    if text and len(text) > MAX_FILTER:
        raise bad_request(f"The $filter is longer than {MAX_FILTER} characters")
    return odata.parse_filter(
        DIALECT, entity_set, SCHEMAS[entity_set][2], text, lambda conversion, value: in_value(store, conversion, value)
    )


# --- keys ------------------------------------------------------------------------------------------------------


def parse_segment(segment: str) -> tuple[str, dict[str, Any] | None]:
    return odata.parse_segment(DIALECT, segment, KEYS)


DIALECT = odata.ODataDialect(
    literal=literal_value,
    comparison=_COMPARISON,
    function=_SUBSTRINGOF,
    key=re.compile(r"\s*(?:(\w+)\s*=\s*)?('(?:[^']|'')*'|guid'[0-9a-fA-F-]{36}'|\d+)\s*(?:,|$)"),
    bad_condition=lambda condition: bad_request(f"Invalid filter expression: '{condition}'"),
    bad_property=lambda prop, entity_set: bad_request(f"Property {prop} not found in type {entity_set}Type"),
    not_found=lambda segment: not_found(segment),
    bad_key=lambda text, _: bad_request(f"Invalid key predicate '{text}'"),
    wrong_keys=lambda entity_set, names: bad_request(
        f"Invalid key predicate: {entity_set} is keyed by {', '.join(names)}"
    ),
)
KEYS = {entity_set: keys for entity_set, (_, keys, _) in SCHEMAS.items()}


def find(store: DocumentStore, entity_set: str, keys: dict[str, Any]) -> dict[str, Any]:
    kind, names, fields = SCHEMAS[entity_set]
    found: dict[str, Any] | None
    if entity_set in UUID_KEYS:
        internal = internal_of(entity_set, str(keys[names[0]]))
        found = store.get(kind, str(internal)) if internal is not None else None
    elif entity_set == "A_BillingDocument":
        internal = in_value(store, "text", keys["BillingDocument"])
        found = store.get(kind, str(internal))
    else:
        by_name = {name: (field, conversion) for field, (name, conversion) in fields.items()}
        where = {by_name[name][0]: in_value(store, by_name[name][1], value) for name, value in keys.items()}
        found = erp._first(store, kind, **where)
    if found is None:
        raise not_found(f"{entity_set}Type")
    return found


# --- writes ----------------------------------------------------------------------------------------------------


def _unique_reference(store: DocumentStore, kind: str, entity_set: str, prop: str, value: Any) -> None:
    """The tenant's custom logic keeps a document's idempotency reference unique."""
    if not isinstance(value, str) or not value:
        raise odata_error(400, f"{prop} must be text", [(prop, "ZPSG/INVALID_VALUE", "must be text")])
    if store.get("externalId", f"{kind}:{value}") is not None:
        raise odata_error(400, f"A document with {prop} {value} exists already",
                          [(prop, "ZPSG/DUPLICATE_RECORD", f"a {entity_set} with this {prop} exists")],
                          code="ZPSG/DUPLICATE_RECORD")


def _remember_reference(store: DocumentStore, kind: str, record: dict[str, Any], value: str) -> dict[str, Any]:
    record = {**record, "externalId": value}
    store.put(kind, str(record["internalId"]), record)
    store.put("externalId", f"{kind}:{value}", {"internalId": record["internalId"]})
    return record


def create(store: DocumentStore, entity_set: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create one entity in the engine; the new record (a refusal is raised as the service says it)."""
    if entity_set not in CREATABLE:
        raise odata_error(405, f"Method 'POST' not allowed for entity set '{entity_set}'",
                          code="/IWBEP/CM_MGW_RT/021")
    for name, value in CONSTANTS.get(entity_set, {}).items():
        if body.get(name) != value:
            raise odata_error(400, f"{name} must be '{value}'",
                              [(name, "ZPSG/INVALID_VALUE", f"{name} '{body.get(name)}' is not '{value}'")])
    engine = from_entity(store, entity_set, body)
    kind = SCHEMAS[entity_set][0]
    reference = engine.pop("externalId", None) if kind in ("invoice", "creditMemo") else None
    if reference is not None:
        prop = SCHEMAS[entity_set][2]["externalId"][0]
        _unique_reference(store, kind, entity_set, prop, reference)
    try:
        if entity_set == "A_BusinessPartner":
            _, created = erp.create_customer(store, engine, None)
        elif entity_set == "YY1_ProjectContract":
            engine.pop("revision", None)
            _, created = erp.create_contract(store, engine, None)
        elif entity_set == "A_EnterpriseProject":
            _, created = erp.create_dimension(store, engine)
        elif entity_set == "YY1_JournalPosting" and engine.get("reversesPostingNumber") is not None:
            # A posting reversing another (booked as the original's negative, once).
            document = engine.pop("reversesPostingNumber")
            original = erp._first(store, "posting", postingNumber=document)
            if original is None:
                raise not_found(f"{entity_set}Type")
            if store.get("postingReversal", str(original["internalId"])) is not None:
                raise odata_error(400, "this accounting document is reversed already",
                                  [("ReversedAccountingDocument", "ZPSG/DUPLICATE_RECORD",
                                    "this accounting document is reversed already")], code="ZPSG/DUPLICATE_RECORD")
            _, created = erp.reverse_posting(store, original["internalId"], engine)
        elif entity_set == "YY1_JournalPosting":
            _, created = erp.create_posting(store, engine)
        elif entity_set == "A_BillingDocument":
            _, created = erp.create_invoice(store, engine, None)
        elif entity_set == "A_CreditMemoRequest":
            invoice_id = engine.pop("invoiceId", None)
            for derived in ("subsidiaryCode", "invoiceNumber", "currencyCode"):  # the billing document's own
                engine.pop(derived, None)
            if not isinstance(invoice_id, int) or store.get("invoice", str(invoice_id)) is None:
                raise odata_error(400, "ReferenceSDDocument is no billing document",
                                  [("ReferenceSDDocument", "ZPSG/INVALID_REFERENCE", "no such billing document")])
            _, created = erp.credit_invoice(store, invoice_id, engine, None)
        else:
            _, created = erp.create_revenue_schedule(store, engine)
    except VendorError as exc:
        raise translated(entity_set, exc) from exc
    if reference is not None:
        created = _remember_reference(store, kind, created, reference)
    return created


def create_entity(store: DocumentStore, entity_set: str, body: dict[str, Any], base: str) -> dict[str, Any]:
    """Create one entity; the entity as the 201 answers it (read in the same transaction)."""
    return to_entity(store, entity_set, create(store, entity_set, body), base)


def read_entity(store: DocumentStore, entity_set: str, keys: dict[str, Any], base: str,
                expand: frozenset[str]) -> dict[str, Any]:
    return to_entity(store, entity_set, find(store, entity_set, keys), base, expand)


def update(store: DocumentStore, entity_set: str, keys: dict[str, Any], body: dict[str, Any], if_match: str) -> None:
    """A change to an entity, only as of the version the client read (``If-Match``: its ETag)."""
    if entity_set not in UPDATABLE:
        raise odata_error(405, f"Method 'PATCH' not allowed for entity set '{entity_set}'",
                          code="/IWBEP/CM_MGW_RT/021")
    contract = find(store, entity_set, keys)
    if not if_match:
        raise odata_error(428, "Precondition required: send the entity's ETag in If-Match",
                          code="/IWBEP/CM_MGW_RT/084")
    if if_match != "*" and etag(contract) not in [tag.strip() for tag in if_match.split(",")]:
        raise odata_error(412, "The entity was changed since it was read (ETag mismatch)",
                          code="/IWBEP/CM_MGW_RT/083")
    changes = from_entity(store, entity_set, body)
    for key in ("contractNumber", "subsidiaryCode"):  # keys are not changed
        changes.pop(key, None)
    try:
        erp.update_contract(store, contract["internalId"], changes)
    except VendorError as exc:
        raise translated(entity_set, exc) from exc


def call_function(store: DocumentStore, service: str, function: str, params: dict[str, str]) -> dict[str, Any]:
    """A billing document's function import: ``Cancel`` (a draft) or ``ReleaseToAccounting``."""
    if function not in FUNCTIONS.get(service, ()):
        raise not_found(function)
    raw = params.get("BillingDocument", "")
    if not re.fullmatch(r"'\d{1,18}'", raw):
        raise bad_request("Function import parameter BillingDocument must be a quoted billing document number")
    invoice = find(store, "A_BillingDocument", {"BillingDocument": raw[1:-1]})
    try:
        if function == "Cancel":
            erp.void_invoice(store, invoice["internalId"])
        else:
            erp.post_invoice(store, invoice["internalId"])
    except VendorError as exc:
        raise translated("A_BillingDocument", exc) from exc
    done = "cancelled" if function == "Cancel" else "released to accounting"
    return {"BillingDocument": raw[1:-1], "BillingDocumentItem": "", "MessageType": "S", "MessageId": "",
            "Message": f"Billing document {raw[1:-1]} {done}"}


# --- reads -----------------------------------------------------------------------------------------------------


def _integer(params: dict[str, str], name: str) -> int | None:
    if name not in params:
        return None
    text = params[name]
    if not re.fullmatch(r"\d{1,10}", text) or int(text) > MAX_OFFSET:
        raise bad_request(f"Invalid system query option {name}='{text}': an integer from 0 to {MAX_OFFSET}")
    return int(text)


def query(store: DocumentStore, entity_set: str, params: dict[str, str], base: str) -> dict[str, Any]:
    kind, _, _ = SCHEMAS[entity_set]
    where, ranges, contains = parse_filter(store, entity_set, params.get("$filter"))
    skip = _integer(params, "$skip") or 0
    offset, end, wanted = odata.page_window(skip, _integer(params, "$skiptoken"), _integer(params, "$top"), MAX_PAGE)
    rows, total = store.query(kind, where=where, ranges=ranges or None, contains=contains or None, offset=offset,
                              limit=max(1, wanted))
    rows = rows[:wanted]
    select = [name.strip() for name in params.get("$select", "").split(",") if name.strip()]
    expand = frozenset(name.strip() for name in params.get("$expand", "").split(",") if name.strip())
    results = []
    for row in rows:
        entity = to_entity(store, entity_set, row, base, expand)
        results.append({name: entity[name] for name in ["__metadata", *select] if name in entity} if select else entity)
    answer: dict[str, Any] = {"results": results}
    inline = params.get("$inlinecount", "none")
    if inline not in ("allpages", "none"):
        raise bad_request(f"Invalid system query option $inlinecount='{inline}'")
    if inline == "allpages":
        answer["__count"] = str(total)  # all entities the $filter lets through, whatever $skip and $top
    # The query as sent ($format=json too, when asked) and where this page ended.
    link = odata.next_link(f"{base}{ODATA}/{SERVICES[entity_set]}/{entity_set}", params, offset, len(rows), total, end)
    if link is not None:
        answer["__next"] = link
    return {"d": answer}


# --- auth, limits and CSRF -------------------------------------------------------------------------------------

LIMITS = LimitDialect(
    too_many=lambda seconds: odata_error(
        429, f"Rate limit exceeded; retry after {seconds} seconds", code="/IWFND/CM_CONSUMER/429").body
)
AUTH = AuthDialect(
    grant_path=TOKEN_PATH,
    grant="client_credentials",
    unauthorized=lambda: odata_error(401, "Logon failed: the access token is missing, invalid or expired",
                                     code="/IWFND/CM_CONSUMER/401").body,
)
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class CsrfProtection:
    """ASGI middleware: SAP Gateway's CSRF check. A GET or HEAD with ``x-csrf-token: Fetch`` answers a token bound
    to the session (the session cookie it sets, or the one sent); a write must send both back."""

    MAX_SESSIONS = 10_000

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sessions: dict[str, str] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(ODATA):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        session = _cookie(headers.get("cookie", ""), SESSION_COOKIE)
        method = scope["method"]
        if method in WRITES:
            expected = self.sessions.get(session or "")
            sent = headers.get("x-csrf-token", "")
            if expected is None or not hmac.compare_digest(sent.encode(), expected.encode()):
                await _text(send, 403, b"CSRF token validation failed", [(b"x-csrf-token", b"Required")])
                return
            await self.app(scope, receive, send)
            return
        if headers.get("x-csrf-token", "").lower() != "fetch" or method not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        extra: list[tuple[bytes, bytes]] = []
        if session is None or session not in self.sessions:
            if len(self.sessions) >= self.MAX_SESSIONS:
                self.sessions.pop(next(iter(self.sessions)))
            session = secrets.token_urlsafe(24)
            self.sessions[session] = secrets.token_urlsafe(18)
            extra.append((b"set-cookie", f"{SESSION_COOKIE}={session}; path=/; HttpOnly".encode()))
        extra.append((b"x-csrf-token", self.sessions[session].encode()))

        async def with_token(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_token)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


async def _text(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


# --- the app ---------------------------------------------------------------------------------------------------


def json_text(body: Any) -> str:
    return json.dumps(body, default=str)


async def _json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return _object(await request.body())


def _object(raw: bytes) -> dict[str, Any]:
    """A body as a JSON object, numbers as decimals (amounts are never floats here)."""
    try:
        body = json.loads(raw or b"{}", parse_float=Decimal)
    except (ValueError, RecursionError) as exc:  # nested past the parser's depth: as malformed as bad syntax
        raise odata_error(400, f"The request body is not valid JSON: {exc}",
                          code="/IWBEP/CM_MGW_RT/004") from exc
    if not isinstance(body, dict):
        raise odata_error(400, "The request body must be a JSON object", code="/IWBEP/CM_MGW_RT/004")
    return body


def _answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(json_text(body).encode(), status_code=status, headers=headers,
                    media_type="application/json; charset=utf-8")


def _split(path: str) -> tuple[str, str]:
    """``<SERVICE>/<segment>`` -> (service, segment); the service may carry a version (``;v=0002``)."""
    service, _, segment = unquote(path).partition("/")
    return service, segment


def _entity_set(service: str, segment: str) -> tuple[str, dict[str, Any] | None]:
    entity_set, keys = parse_segment(segment)
    if SERVICES[entity_set] != service:
        raise not_found(segment)
    return entity_set, keys


# --- $batch ----------------------------------------------------------------------------------------------------

MAX_BATCH_REQUESTS = 1000  # this sandbox's bound (SAP documents none; an integration sends a few hundred)
BATCH_JSON = {"content-type": "application/json; charset=utf-8"}


def _batch_failure(exc: VendorError) -> odata.BatchResponse:
    return exc.status, BATCH_JSON, json_text(exc.body).encode(), None


def _batch_request(store: DocumentStore, service: str, item: dict[str, Any], base: str) -> odata.BatchResponse:
    """One request of a batch as the service answers it alone: a read of an entity set or an entity, or a create
    (a refusal is raised as a VendorError)."""
    path, _, text = item["url"].partition("?")
    prefix = f"{ODATA}/{service}/"
    if path.startswith("/"):  # absolute within the service; relative to the service root otherwise
        if not path.startswith(prefix):
            raise not_found(path)
        path = path[len(prefix) :]
    params = dict(parse_qsl(text, keep_blank_values=True))
    entity_set, keys = _entity_set(service, unquote(path))
    if item["method"] == "GET":
        if keys is None:
            found = query(store, entity_set, params, base)
        else:
            expand = frozenset(name.strip() for name in params.get("$expand", "").split(",") if name.strip())
            found = {"d": read_entity(store, entity_set, keys, base, expand)}
        return 200, BATCH_JSON, json_text(found).encode(), item["content_id"]
    if item["method"] == "POST" and keys is None:
        created = create_entity(store, entity_set, _object(item["body"]), base)
        return 201, BATCH_JSON, json_text({"d": created}).encode(), item["content_id"]
    raise odata_error(405, f"{item['method']} on '{path}' is not served in a batch here", code="/IWBEP/CM_MGW_RT/021")


def _changeset(store: DocumentStore, service: str, requests: list[dict[str, Any]], base: str) -> list[Any]:
    return [_batch_request(store, service, item, base) for item in requests]


def run_batch(
    store: DocumentStore, service: str, parts: list[tuple[bool, list[dict[str, Any]]]], base: str
) -> list[tuple[bool, list[odata.BatchResponse]]]:
    """Each part of a batch in order, inside one store call (committed once, before the batch is answered): a
    change set all or nothing in a savepoint of its own (a refused request undoes its whole change set, answered
    by that one failure), a read on its own; a failed part does not stop the parts after it (OData v2)."""
    answers: list[tuple[bool, list[odata.BatchResponse]]] = []
    for in_changeset, requests in parts:
        try:
            if in_changeset:
                answers.append((True, store.transaction(_changeset, store, service, requests, base)))
                continue
            if requests[0]["method"] != "GET":
                raise odata_error(400, "A change request must be in a change set", code="/IWBEP/CM_MGW_RT/004")
            answers.append((False, [_batch_request(store, service, requests[0], base)]))
        except VendorError as exc:
            answers.append((in_changeset, [_batch_failure(exc)]))
    return answers


async def batch(request: Request[Any, Any, Any], store: DocumentStore, service: str) -> Response[bytes]:
    """``POST .../<SERVICE>/$batch`` (the CSRF token checked on it as on any write, by ``CsrfProtection``; one
    call against the API Management quota, whatever it holds)."""
    parts = odata.batch_parts(request.headers.get("content-type", ""), await request.body(),
                              lambda message: odata_error(400, message, code="/IWBEP/CM_MGW_RT/004"),
                              MAX_BATCH_REQUESTS)
    answers = await store.call(run_batch, store, service, parts, str(request.base_url).rstrip("/"))
    content, media_type = odata.batch_answer(answers, secrets.token_hex(16))
    return Response(content, status_code=202, media_type=media_type)


def create_app(store: DocumentStore) -> Any:
    for field in ("contractNumber", "projectCode", "sourceDocumentId", "transactionDate", "invoiceNumber"):
        store.index(field)
    services = sorted(set(SERVICES.values()))

    @route(f"{ODATA}/{{path:path}}", http_method=["GET", "HEAD", "POST", "PATCH", "PUT"])
    async def odata(request: Request[Any, Any, Any], path: FromPath[str]) -> Response[bytes]:
        service, segment = _split(path.lstrip("/"))
        if service not in services:
            raise not_found(service)
        base = str(request.base_url).rstrip("/")
        params = dict(parse_qsl(request.url.query or "", keep_blank_values=True))
        method = request.method
        if segment == "$batch":
            if method != "POST":
                raise odata_error(405, "$batch takes POST only", code="/IWBEP/CM_MGW_RT/021")
            return await batch(request, store, service)
        if params.get("$format", "json") != "json" or (
                "$format" not in params and "application/json" not in request.headers.get("accept", "")):
            # SAP Gateway answers Atom XML unless JSON is asked for; this sandbox speaks JSON only.
            raise odata_error(406, "Ask for JSON: Accept: application/json or $format=json (Atom XML is not served)",
                              code="/IWBEP/CM_MGW_RT/006")
        if segment in ("", "/"):
            if method not in ("GET", "HEAD"):
                raise odata_error(405, "Method not allowed on the service document", code="/IWBEP/CM_MGW_RT/021")
            return _answer({"d": {"EntitySets": [s for s, owner in SERVICES.items() if owner == service]}})
        if method == "POST" and segment in FUNCTIONS.get(service, ()):
            result = await store.call(store.transaction, call_function, store, service, segment, params)
            return _answer({"d": {segment: result}})
        entity_set, keys = _entity_set(service, segment)
        if method in ("GET", "HEAD"):
            if keys is None:
                return _answer(await store.call(query, store, entity_set, params, base))
            expand = frozenset(name.strip() for name in params.get("$expand", "").split(",") if name.strip())
            entity = await store.call(read_entity, store, entity_set, keys, base, expand)
            tag = entity["__metadata"].get("etag")
            return _answer({"d": entity}, headers={"ETag": tag} if tag else None)
        body = await _json(request)
        if method == "POST":
            if keys is not None:
                raise odata_error(405, "POST is not allowed on an entity; use PATCH",
                                  code="/IWBEP/CM_MGW_RT/021")
            created = await store.call(store.transaction, create_entity, store, entity_set, body, base)
            return _answer({"d": created}, status=201)
        if keys is None:
            raise odata_error(405, f"{method} is allowed on an entity only", code="/IWBEP/CM_MGW_RT/021")
        await store.call(store.transaction, update, store, entity_set, keys, body,
                         request.headers.get("if-match", ""))
        return Response(b"", status_code=204)

    app = Litestar(
        [odata],
        exception_handlers={HTTPException: framework_error, VendorError: vendor_error_response},
        openapi_config=None,
    )
    return CsrfProtection(app)


def framework_error(_request: Any, exc: HTTPException) -> Response[Any]:
    failure = odata_error(exc.status_code, str(exc.detail))
    return Response(failure.body, status_code=exc.status_code)


def seed(store: DocumentStore, firm: Any) -> None:
    erp.seed(store, firm)
