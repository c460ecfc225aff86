"""Sandbox Dynamics 365 Finance: the demo firm's ERP behind the finance and operations OData v4 service.

Follows Microsoft Learn, "Open Data Protocol (OData)" for finance and operations apps
(learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/odata), the OData v4.01 JSON format and URL
conventions (docs.oasis-open.org/odata/odata/v4.01), and "Service protection API limits"
(learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/priority-based-throttling):

- entity sets at ``/data/<EntitySet>``, one entity at ``/data/<EntitySet>(dataAreaId='leus',Key='...')`` (keys are
  the entity's natural keys, strings quoted, numbers bare);
- ``$filter`` (``eq``, ``ge``, ``le``, ``and``, ``contains(Property,'text')``), ``$select``, ``$top``, ``$skip``,
  ``$count=true`` (``@odata.count``), ``$expand`` of an invoice's lines;
- server-driven paging: ``Prefer: odata.maxpagesize=<n>`` (answered ``Preference-Applied``) caps a page, and the
  next page is ``@odata.nextLink`` carrying an opaque ``$skiptoken``; the service never answers more than 10,000
  entities a page;
- every answer names its ``@odata.context``; a collection is ``{"@odata.context", "value": [...]}``;
- company data: a query reads the integration user's default company unless ``cross-company=true``, and every
  company-specific entity carries ``dataAreaId`` (lower case, as the service answers it);
- ``POST /data/<EntitySet>`` creates (201 and the entity, or 204 with ``Prefer: return=minimal``), ``PATCH`` on an
  entity updates (204); bound actions ``POST .../<entity key>/Microsoft.Dynamics.DataEntities.<action>``;
- dates (``Edm.DateTimeOffset``, as finance and operations exposes date fields) are written ``YYYY-MM-DDT12:00:00Z``;
  amounts (``Edm.Decimal``) are JSON numbers written exactly;
- errors are OData JSON error bodies ``{"error": {"code", "message", "target", "details": [{"code", "message",
  "target"}], "innererror": {"message", "type", "stacktrace"}}}``, ``details[].target`` naming the property;
- service protection: past the limit a call is answered 429 with ``Retry-After`` (seconds).

Authentication: OAuth 2.0 client credentials against a Microsoft Entra ID style token endpoint
(learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow): ``POST
/<tenant>/oauth2/v2.0/token`` with ``grant_type=client_credentials``, ``client_id``, ``client_secret`` and
``scope=<environment URL>/.default``; a token for another resource, tenant or client is refused.

Entity sets (a subset of each entity's properties; names and keys checked against the service metadata as the SAP
Cloud SDK's generated ``d365_metadata`` client shows it):

- ``LegalEntities`` (``LegalEntityId``, ``Name``, ``AddressCountryRegionISOCode``, ``VatNum``);
  ``LedgerFiscalPeriods`` (``LegalEntityId``, ``PeriodName``, ``PeriodStatus`` ``Open``/``OnHold``, a closed month
  being on hold; ``PermanentlyClosed`` is read as closed too);
- ``CustomersV3`` (``dataAreaId``, ``CustomerAccount``, ``OrganizationName``, ``SalesCurrencyCode``,
  ``SalesTaxGroup``, ``TaxExemptNumber``, ``AddressStreet``, ``AddressCity``, ``AddressZipCode``, ``AddressState``,
  ``AddressCountryRegionISOCode``);
- ``ProjectContracts`` (``dataAreaId``, ``ProjectContractID``, ``Name``, ``SalesCurrency``) and ``ProjectsV2``
  (``ProjectId`` and its financial dimension ``DimensionDisplayValue``);
- ``LedgerJournalLines`` (a posting of the PSA's time or expense: ``Voucher``, ``TransDate``, ``Document`` (the
  source document), ``Quantity``, ``DebitAmount``/``CreditAmount``, ``CurrencyCode``);
- ``FreeTextInvoiceHeaders`` (``InvoiceIdentifier``, ``FreeTextNumber``, ``CustomerAccount``, ``CurrencyCode``,
  ``InvoiceDate``, ``ExternalInvoiceId``) with their ``FreeTextInvoiceLines`` (``LineNumber``, ``Description``,
  ``Quantity``, ``UnitPrice``, ``TransactionCurrencyAmount``);
- what finance and operations keeps only through a tenant's extensions: properties prefixed ``PSG`` (the customer
  funding a contract and its billing terms, the project and contract of a posting, an invoice's state and totals),
  and the extension entities ``PSGCreditNotes`` and ``PSGRevenueSchedules``; the bound actions ``post``, ``void``
  and ``credit`` on ``FreeTextInvoiceHeaders``; a unique index on ``ExternalInvoiceId`` (a second invoice or credit
  note with it is refused ``DuplicateRecord``).

``POST /data/$batch`` in the multipart/mixed format of OData v4.0 (Part 1: Protocol, 11.7 "Batch Requests"), the
format Microsoft Learn points finance and operations integrations to ("Open Data Protocol (OData)", "Batch
requests are supported in the OData service", learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/
data-entities/odata): ``Content-Type: multipart/mixed; boundary=...``, each part an ``application/http`` request
(``Content-Transfer-Encoding: binary``) or a ``multipart/mixed`` change set of them, each with a ``Content-ID``
unique in the batch; answered ``multipart/mixed`` with one part per part sent, in order (a change set's responses
in a multipart part, or one failure for the whole change set). Each request runs alone and in order through the
same code as if sent by itself (``serve``), each in a savepoint of its own, the whole batch committed once before
it is answered; the first failure ends the batch unless ``Prefer: odata.continue-on-error``
(answered ``Preference-Applied``); at most 5,000 requests, and the batch counts as one request against service
protection ("A batch can contain up to 5000 operations and will avoid the number of requests limit", "Service
protection API limits", learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/
service-protection-api-limits). A batch in any other media type (the OData v4.01 JSON batch format included), or
a malformed one (no boundary or close delimiter, a part that is no ``application/http`` request, no binary
transfer encoding, no request line, a method other than GET/POST/PATCH, a GET in a change set, a change set request
without ``Content-ID`` or a ``Content-ID`` used twice, more than 5,000 requests) is a 400 and runs nothing.

Not imitated: ``$metadata``, ``$orderby`` (entities come in insertion order), change sets of more than one
request (refused 501: a tenant runs them as one transaction) and ``$<Content-ID>`` references, the execution time
limit (1,200 s of work per 5 minutes) that counters batching, ``or``/``not`` and functions other than
``contains`` in ``$filter``; the full keys of ``LedgerFiscalPeriods`` (``LedgerName``, ``Calendar``,
``YearName``) and ``LedgerJournalLines`` (``JournalBatchNumber``, ``LineNumber``: lines are found by ``Voucher``
here); journal headers and posting a journal (a line is booked as it is created); an invoice's lines
are written inside the header (a deep insert) and read with ``$expand=FreeTextInvoiceLines``, where a tenant writes
them to ``FreeTextInvoiceLines`` in a ``$batch`` change set; a contract's billing schedule travels as a collection
property of the contract; the customer funding a contract as a property (``ProjectFundingSources`` on a tenant).

Behind the wire the ledger is the sandbox ERP's (``sandbox/erp.py``): the same demo firm, the same rules (a source
posted once, closed periods refuse postings, an invoice credited at most for what it billed).
"""

from __future__ import annotations

import hmac
import json
import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from litestar import Litestar, Request, get, patch, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.response import Response
from litestar.serialization import encode_json

from sandbox import erp, odata
from sandbox.netsuite import json_text
from sandbox.store import DocumentStore
from sandbox.vendor_http import AuthConfig, AuthDialect, LimitDialect, VendorError, vendor_error_response

DATA = "/data"
TOKEN_PATH = "/{tenant}/oauth2/v2.0/token"  # noqa: S105 - the token endpoint's path, not a secret
ACTION_NAMESPACE = "Microsoft.Dynamics.DataEntities."
MAX_PAGE = 10_000
MAX_OFFSET = 2**31 - 1  # Edm.Int32, as the service reads $top and $skip
DEFAULT_COMPANY = "leus"  # the integration user's default company
CENT = Decimal("0.01")

# --- the entity schema: entity set -> engine kind, keys, engine field -> (OData property, conversion) ------------
# Conversions: "" as is; "int" integer; "money" integer minor units <-> exact decimal number; "number" decimal text
# <-> decimal number; "date" ISO date <-> DateTimeOffset at noon UTC; "company" subsidiary code ("LE-US") <->
# dataAreaId ("leus"); "legalentity" the same, upper case ("LEUS"); "customer" internal id <-> CustomerAccount;
# "periodstatus" OPEN/CLOSED <-> Open/OnHold; "invoicestatus" DRAFT/POSTED/PAID/VOID <-> Draft/Posted/Paid/Void;
# "refs" list <-> comma-separated text; "address" the billing address object <-> the Address* properties;
# "debitcredit" a signed amount in minor units <-> DebitAmount (when positive) and CreditAmount (when negative);
# "lines:<schema>" a list of line objects. The connector (system_apis/erp/connectors/dynamics365.py) holds the same
# table; tests/dynamics365/test_schema_agreement.py keeps the two equal.

SCHEDULE_LINE = {
    "lineNo": ("LineNumber", "int"),
    "periodName": ("PeriodName", ""),
    "billingDate": ("BillingDate", "date"),
    "amountMinor": ("Amount", "money"),
    "percentComplete": ("PercentComplete", "number"),
    "memo": ("Description", ""),
}
ITEM_LINE = {
    "lineNo": ("LineNumber", "int"),
    "description": ("Description", ""),
    "quantity": ("Quantity", "number"),
    "unitPriceMinor": ("UnitPrice", "money"),
    "amountMinor": ("TransactionCurrencyAmount", "money"),
    "sourceType": ("PSGSourceType", ""),
    "sourceRefs": ("PSGSourceRefs", "refs"),
    "durationMinutes": ("PSGDurationMinutes", "int"),  # time's whole minutes (an integer extension field)
}
TAX_LINE = {
    "taxCode": ("TaxCode", ""),
    "jurisdiction": ("PSGJurisdiction", ""),
    "ratePercent": ("TaxRate", "number"),
    "taxableMinor": ("TaxBaseAmount", "money"),
    "taxMinor": ("TaxAmount", "money"),
    "exemptionText": ("PSGExemptionText", ""),
}
LINES: dict[str, dict[str, tuple[str, str]]] = {"schedule": SCHEDULE_LINE, "item": ITEM_LINE, "tax": TAX_LINE}
ADDRESS = {
    "addr1": "AddressStreet",
    "city": "AddressCity",
    "zip": "AddressZipCode",
    "state": "AddressState",
    "country": "AddressCountryRegionISOCode",
}

SCHEMAS: dict[str, tuple[str, tuple[str, ...], dict[str, tuple[str, str]]]] = {
    "LegalEntities": (
        "subsidiary",
        ("LegalEntityId",),
        {
            "subsidiaryCode": ("LegalEntityId", "legalentity"),
            "legalName": ("Name", ""),
            "country": ("AddressCountryRegionISOCode", ""),
            "baseCurrency": ("PSGAccountingCurrency", ""),
            "federalTaxId": ("PSGFederalTaxId", ""),
            "vatRegNumber": ("VatNum", ""),
            "peppolId": ("PSGPeppolId", ""),
            "vatRatePercent": ("PSGVatRatePercent", "number"),
        },
    ),
    "LedgerFiscalPeriods": (
        "period",
        ("LegalEntityId", "PeriodName"),
        {
            "subsidiaryCode": ("LegalEntityId", "legalentity"),
            "periodName": ("PeriodName", ""),
            "status": ("PeriodStatus", "periodstatus"),
        },
    ),
    "CustomersV3": (
        "customer",
        ("dataAreaId", "CustomerAccount"),
        {
            "customerNumber": ("CustomerAccount", ""),
            "subsidiaryCode": ("dataAreaId", "company"),
            "companyName": ("OrganizationName", ""),
            "currency": ("SalesCurrencyCode", ""),
            "taxRegion": ("SalesTaxGroup", ""),
            "externalCrmId": ("PSGCrmAccountId", ""),
            "billingAddress": ("Address", "address"),
            "vatRegNumber": ("TaxExemptNumber", ""),
            "peppolId": ("PSGPeppolId", ""),
        },
    ),
    "ProjectContracts": (
        "contract",
        ("dataAreaId", "ProjectContractID"),
        {
            "contractNumber": ("ProjectContractID", ""),
            "subsidiaryCode": ("dataAreaId", "company"),
            "customerId": ("PSGCustomerAccount", "customer"),
            "description": ("Name", ""),
            "currency": ("SalesCurrency", ""),
            "billingMethod": ("PSGBillingMethod", ""),
            "nteAmountMinor": ("PSGNotToExceedAmount", "money"),
            "startDate": ("PSGStartDate", "date"),
            "endDate": ("PSGEndDate", "date"),
            "contractStatus": ("PSGContractStatus", ""),
            "revision": ("PSGRevision", "int"),
            "rateScheduleCode": ("PSGRateScheduleCode", ""),
            "invoiceFrequency": ("PSGInvoiceFrequency", ""),
            "paymentTerms": ("PSGPaymentTerms", ""),
            "scheduledAmountMinor": ("PSGScheduledAmount", "money"),
            "contractValueMinor": ("PSGContractValue", "money"),
            "billingSchedule": ("PSGBillingSchedule", "lines:schedule"),
            "retainerHours": ("PSGRetainerHours", "number"),
            "unusedHoursPolicy": ("PSGUnusedHoursPolicy", ""),
            "revenueRecognitionMethod": ("PSGRevenueRecognitionMethod", ""),
            "budgetedCostMinor": ("PSGBudgetedCost", "money"),
            "expenseMarkupPct": ("PSGExpenseMarkupPercent", "number"),
        },
    ),
    "ProjectsV2": (
        "dimension",
        ("dataAreaId", "ProjectId"),
        {
            "projectCode": ("ProjectId", ""),
            "subsidiaryCode": ("dataAreaId", "company"),
            "dimensionCode": ("DimensionDisplayValue", ""),
        },
    ),
    "LedgerJournalLines": (
        "posting",
        ("dataAreaId", "Voucher"),
        {
            "postingNumber": ("Voucher", ""),
            "subsidiaryCode": ("dataAreaId", "company"),
            "sourceDocumentType": ("PSGSourceDocumentType", ""),
            "sourceDocumentId": ("Document", ""),
            "projectCode": ("PSGProjectId", ""),
            "contractNumber": ("PSGProjectContractID", ""),
            "transactionDate": ("TransDate", "date"),
            "quantity": ("Quantity", "number"),
            "amountMinor": ("Amount", "debitcredit"),
            "currencyCode": ("CurrencyCode", ""),
            "postingStatus": ("PSGPostingStatus", ""),
            "postedAt": ("PSGPostedDateTime", ""),
            "reversesPostingNumber": ("PSGReversesVoucher", ""),
            "durationMinutes": ("PSGDurationMinutes", "int"),  # time's whole minutes (an integer extension field)
        },
    ),
    "FreeTextInvoiceHeaders": (
        "invoice",
        ("dataAreaId", "InvoiceIdentifier"),
        {
            "internalId": ("InvoiceIdentifier", "int"),
            "invoiceNumber": ("FreeTextNumber", ""),
            "subsidiaryCode": ("dataAreaId", "company"),
            "customerId": ("CustomerAccount", "customer"),
            "currencyCode": ("CurrencyCode", ""),
            "invoiceDate": ("InvoiceDate", "date"),
            "status": ("PSGInvoiceStatus", "invoicestatus"),
            "lines": ("FreeTextInvoiceLines", "lines:item"),
            "taxLines": ("PSGTaxLines", "lines:tax"),
            "subtotalMinor": ("PSGSubtotalAmount", "money"),
            "taxMinor": ("PSGSalesTaxAmount", "money"),
            "totalMinor": ("PSGTotalAmount", "money"),
            "externalId": ("ExternalInvoiceId", ""),
            "contractNumber": ("PSGProjectContractID", ""),
            "periodName": ("PSGPeriodName", ""),
        },
    ),
    "PSGCreditNotes": (
        "creditMemo",
        ("dataAreaId", "CreditNoteNumber"),
        {
            "creditMemoNumber": ("CreditNoteNumber", ""),
            "subsidiaryCode": ("dataAreaId", "company"),
            "invoiceId": ("InvoiceIdentifier", "int"),
            "invoiceNumber": ("FreeTextNumber", ""),
            "currencyCode": ("CurrencyCode", ""),
            "memoDate": ("DocumentDate", "date"),
            "status": ("PSGInvoiceStatus", "invoicestatus"),
            "lines": ("Lines", "lines:item"),
            "subtotalMinor": ("SubtotalAmount", "money"),
            "taxMinor": ("SalesTaxAmount", "money"),
            "totalMinor": ("TotalAmount", "money"),
            "externalId": ("ExternalInvoiceId", ""),
        },
    ),
    "PSGRevenueSchedules": (
        "revenueSchedule",
        ("ScheduleNumber",),
        {
            "scheduleNumber": ("ScheduleNumber", ""),
            "contractNumber": ("ProjectContractID", ""),
            "periodName": ("PeriodName", ""),
            "recognizedAmountMinor": ("RecognizedAmount", "money"),
            "currencyCode": ("CurrencyCode", ""),
            "recognitionMethod": ("RecognitionMethod", ""),
        },
    ),
}
PERIOD_STATUS = {"OPEN": "Open", "CLOSED": "OnHold"}
INVOICE_STATUS = {"DRAFT": "Draft", "POSTED": "Posted", "PAID": "Paid", "VOID": "Void"}
CREATABLE = (
    "CustomersV3",
    "ProjectContracts",
    "ProjectsV2",
    "LedgerJournalLines",
    "FreeTextInvoiceHeaders",
    "PSGRevenueSchedules",
)


def company(code: str) -> str:
    return code.replace("-", "").lower()


def subsidiary(data_area: str) -> str:
    """A dataAreaId (any case) as the subsidiary code; one that is no company becomes a code no subsidiary has."""
    text = data_area.upper()
    return f"LE-{text[2:]}" if text.startswith("LE") and len(text) > 2 else f"#{text}"


# --- errors ----------------------------------------------------------------------------------------------------


def odata_error(
    status: int, message: str, details: list[tuple[str | None, str, str]] | None = None, code: str = ""
) -> VendorError:
    """``details`` are (property or None, code, message)."""
    body: dict[str, Any] = {
        "error": {
            "code": code,
            "message": message,
            "innererror": {
                "message": message,
                "type": "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException"
                if details
                else "Microsoft.OData.ODataException",
                "stacktrace": "",
            },
        }
    }
    if details:
        body["error"]["details"] = [{"code": c, "message": m, **({"target": t} if t else {})} for t, c, m in details]
    return VendorError(status, body)


def bad_request(message: str) -> VendorError:
    return odata_error(400, message)


def not_found(entity_set: str) -> VendorError:
    return odata_error(404, f"Resource not found for the segment '{entity_set}'.")


ENGINE_CODES = {
    "DUPLICATE_RECORD": "DuplicateRecord",
    "DUPLICATE_SOURCE": "DuplicateRecord",
    "PERIOD_CLOSED": "PeriodClosed",
    "NO_PERIOD": "PeriodClosed",
    "INVALID_STATUS_CHANGE": "InvalidStatusChange",
    "IS_REVERSAL": "InvalidStatusChange",
    "OVER_CREDIT": "OverCredit",
}


def translated(entity_set: str, exc: VendorError) -> VendorError:
    """The engine's refusal as the OData service says it: 404 for a missing entity, 400 for every other write
    failure, with each field's property as ``target``."""
    if not isinstance(exc.body, dict) or "error" in exc.body:  # not the engine's: already the service's own
        return exc
    if exc.status == 404:
        return not_found(entity_set)
    details = [
        (
            property_path(entity_set, d.get("o:errorPath")),
            ENGINE_CODES.get(str(d.get("o:errorCode")), str(d.get("o:errorCode") or "ValidationFailed")),
            str(d.get("detail", "")),
        )
        for d in exc.body.get("o:errorDetails", [])
    ]
    message = f"Write failed for table row of type '{entity_set}'. Infolog: " + "; ".join(m for _, _, m in details)
    return odata_error(400, message, details)


def property_path(entity_set: str, path: str | None) -> str | None:
    """An engine error path (``lines[0].amountMinor``) in the entity's properties
    (``FreeTextInvoiceLines[0]/TransactionCurrencyAmount``)."""
    return odata.property_path(
        SCHEMAS[entity_set][2], LINES, path, "{name}[{i}]", {"address": "AddressStreet", "debitcredit": "DebitAmount"}
    )


# --- conversions -----------------------------------------------------------------------------------------------


def _customer_account(store: DocumentStore, internal_id: Any) -> str:
    row = store.get("customer", str(internal_id))
    return row["customerNumber"] if row else str(internal_id)


def out_value(store: DocumentStore, conversion: str, value: Any) -> Any:
    if value is None:
        return None
    if conversion == "money":
        return (Decimal(value) / 100).quantize(CENT)
    if conversion == "number":
        return Decimal(str(value))
    if conversion == "date":
        return f"{value}T12:00:00Z"
    if conversion == "company":
        return company(value)
    if conversion == "legalentity":
        return company(value).upper()
    if conversion == "customer":
        return _customer_account(store, value)
    if conversion == "periodstatus":
        return PERIOD_STATUS[value]
    if conversion == "invoicestatus":
        return INVOICE_STATUS[value]
    if conversion == "refs":
        return ",".join(value)
    if conversion.startswith("lines:"):
        schema = LINES[conversion[6:]]
        return [
            {schema[k][0]: out_value(store, schema[k][1], v) for k, v in line.items() if k in schema} for line in value
        ]
    return value


def in_value(store: DocumentStore, conversion: str, value: Any) -> Any:
    """An OData value in the engine's terms; a value of the wrong shape passes through for the engine to refuse."""
    if value is None:
        return None
    if conversion in ("money", "number") and isinstance(value, int | Decimal) and not isinstance(value, bool):
        try:
            if conversion == "number":
                return str(value)
            minor = Decimal(value) * 100
            return int(minor) if minor == minor.to_integral_value() else str(value)
        except InvalidOperation:
            return str(value)
    if conversion == "date" and isinstance(value, str):
        return value[:10] if re.fullmatch(r"\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:\d{2}))?", value) else value
    if conversion in ("company", "legalentity") and isinstance(value, str):
        return subsidiary(value)
    if conversion == "customer" and isinstance(value, str):
        found = erp._first(store, "customer", customerNumber=value)
        return found["internalId"] if found else -1
    if conversion == "periodstatus":
        return {**{v: k for k, v in PERIOD_STATUS.items()}, "PermanentlyClosed": "CLOSED"}.get(value, value)
    if conversion == "invoicestatus":
        return {v: k for k, v in INVOICE_STATUS.items()}.get(value, value)
    if conversion == "refs":
        return [part for part in value.split(",") if part] if isinstance(value, str) else value
    if conversion.startswith("lines:"):
        if not isinstance(value, list):
            return value
        reverse = {name: (field, conv) for field, (name, conv) in LINES[conversion[6:]].items()}
        return [
            {reverse.get(k, (k, ""))[0]: in_value(store, reverse.get(k, (k, ""))[1], v) for k, v in line.items()}
            if isinstance(line, dict)
            else line
            for line in value
        ]
    return value


def to_entity(store: DocumentStore, entity_set: str, body: dict[str, Any]) -> dict[str, Any]:
    """An engine record as the entity (only the entity's properties; nulls included, as the service writes them)."""
    entity: dict[str, Any] = {}
    for field, (name, conversion) in SCHEMAS[entity_set][2].items():
        value = body.get(field)
        if conversion == "address":
            address = value or {}
            entity.update({prop: address.get(part) for part, prop in ADDRESS.items()})
            continue
        if conversion == "debitcredit":  # one signed amount: a debit, or a credit when negative
            entity["DebitAmount"] = out_value(store, "money", max(value, 0)) if value is not None else None
            entity["CreditAmount"] = out_value(store, "money", max(-value, 0)) if value is not None else None
            continue
        entity[name] = out_value(store, conversion, value)
    return entity


def from_entity(store: DocumentStore, entity_set: str, body: dict[str, Any]) -> dict[str, Any]:
    """An entity written by a client in the engine's fields (a property the entity has not is kept for the engine
    to refuse as unknown)."""
    fields = SCHEMAS[entity_set][2]
    reverse = {name: (field, conversion) for field, (name, conversion) in fields.items()}
    engine: dict[str, Any] = {}
    address = {part: body.pop(prop) for part, prop in ADDRESS.items() if prop in body}
    if address and any(conversion == "address" for _, conversion in fields.values()):
        engine["billingAddress"] = {part: value for part, value in address.items() if value is not None}
    elif address:
        body.update({ADDRESS[part]: value for part, value in address.items()})
    amount = [field for field, (_, conversion) in fields.items() if conversion == "debitcredit"]
    if amount and ("DebitAmount" in body or "CreditAmount" in body):
        debit = in_value(store, "money", body.pop("DebitAmount", 0))
        credit = in_value(store, "money", body.pop("CreditAmount", 0))
        both = isinstance(debit, int) and isinstance(credit, int)
        engine[amount[0]] = debit - credit if both else (credit if isinstance(debit, int) else debit)
    for name, value in body.items():
        if name.startswith("@odata."):
            continue
        field, conversion = reverse.get(name, (name, ""))
        engine[field] = in_value(store, conversion, value)
    return engine


# --- $filter -------------------------------------------------------------------------------------------------

_LITERAL = r"(?:'(?:[^']|'')*'|-?\d+(?:\.\d+)?|\d{4}-\d{2}-\d{2}(?:T[0-9:.]+(?:Z|[+-]\d{2}:\d{2}))?|true|false|null)"
_COMPARISON = re.compile(rf"^\s*(?P<prop>\w+)\s+(?P<op>eq|ge|le|gt|lt)\s+(?P<value>{_LITERAL})\s*$")
_CONTAINS = re.compile(r"^\s*contains\(\s*(?P<prop>\w+)\s*,\s*(?P<value>'(?:[^']|'')*')\s*\)\s*$")


def _literal(text: str) -> Any:
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    if text == "null":
        return None
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        if abs(int(text)) > 2**63 - 1:  # beyond Edm.Int64
            raise bad_request(f"The literal '{text}' is out of range for an integer.")
        return int(text)
    if re.fullmatch(r"-?\d+\.\d+", text):
        return Decimal(text)
    return text  # a date or DateTimeOffset


def parse_filter(
    store: DocumentStore, entity_set: str, text: str | None
) -> tuple[dict[str, Any], dict[str, tuple[Any, Any]], dict[str, str]]:
    """``$filter`` as the document store's (where, ranges, contains) on engine fields."""
    return odata.parse_filter(
        DIALECT, entity_set, SCHEMAS[entity_set][2], text, lambda conversion, value: in_value(store, conversion, value)
    )


# --- keys ------------------------------------------------------------------------------------------------------


def parse_segment(segment: str) -> tuple[str, dict[str, Any] | None]:
    return odata.parse_segment(DIALECT, segment, KEYS)


DIALECT = odata.ODataDialect(
    literal=_literal,
    comparison=_COMPARISON,
    function=_CONTAINS,
    key=re.compile(r"\s*(\w+)\s*=\s*('(?:[^']|'')*'|-?\d+)\s*(?:,|$)"),
    bad_condition=lambda condition: bad_request(
        f"The query specified in the URI is not valid. Could not read the condition '{condition}'."
    ),
    bad_property=lambda prop, entity_set: bad_request(
        f"The query specified in the URI is not valid. Could not find a property named "
        f"'{prop}' on type 'Microsoft.Dynamics.DataEntities.{entity_set}'."
    ),
    not_found=lambda segment: not_found(segment),
    bad_key=lambda text, _: bad_request(f"Bad Request - Error in query syntax: the key '{text}' is not valid."),
    wrong_keys=lambda entity_set, _: bad_request(
        f"The number of keys specified in the URI does not match number of key properties for "
        f"the resource 'Microsoft.Dynamics.DataEntities.{entity_set}'."
    ),
)
KEYS = {entity_set: keys for entity_set, (_, keys, _) in SCHEMAS.items()}


def find(store: DocumentStore, entity_set: str, keys: dict[str, Any]) -> dict[str, Any]:
    kind, _, fields = SCHEMAS[entity_set]
    by_name = {name: (field, conversion) for field, (name, conversion) in fields.items()}
    where = {}
    for name, value in keys.items():
        field, conversion = by_name[name]
        where[field] = in_value(store, conversion, value)
    if entity_set == "FreeTextInvoiceHeaders":
        found = store.get("invoice", str(where.get("internalId")))
        if found is not None and found["subsidiaryCode"] != where["subsidiaryCode"]:
            found = None
    else:
        found = erp._first(store, kind, **where)
    if found is None:
        raise odata_error(404, f"No resources were found for the key of '{entity_set}'.")
    return found


# --- writes ----------------------------------------------------------------------------------------------------


def create(store: DocumentStore, entity_set: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create one entity in the engine; the new record (a refusal is raised as the service says it)."""
    if entity_set not in CREATABLE:
        raise odata_error(405, f"Entity set '{entity_set}' is read-only.")
    engine = from_entity(store, entity_set, body)
    external_id = engine.pop("externalId", None) if entity_set == "FreeTextInvoiceHeaders" else None
    if external_id is not None:
        if not isinstance(external_id, str) or not external_id:
            raise odata_error(
                400, "ExternalInvoiceId must be text", [("ExternalInvoiceId", "InvalidValue", "must be text")]
            )
        if store.get("externalId", f"invoice:{external_id}") is not None:
            raise odata_error(
                400,
                "Cannot create a record in FreeTextInvoiceHeaders: the record already exists.",
                [("ExternalInvoiceId", "DuplicateRecord", "an invoice with this ExternalInvoiceId exists")],
            )
    try:
        if entity_set == "CustomersV3":
            _, created = erp.create_customer(store, engine, None)
        elif entity_set == "ProjectContracts":
            engine.pop("revision", None)
            _, created = erp.create_contract(store, engine, None)
        elif entity_set == "ProjectsV2":
            _, created = erp.create_dimension(store, engine)
        elif entity_set == "LedgerJournalLines" and engine.get("reversesPostingNumber") is not None:
            # A line reversing another (the tenant's extension books it as the original's negative, once).
            voucher = engine.pop("reversesPostingNumber")
            original = erp._first(store, "posting", postingNumber=voucher)
            if original is None:
                raise odata_error(404, f"No resources were found for the key of '{entity_set}'.")
            if store.get("postingReversal", str(original["internalId"])) is not None:
                raise odata_error(
                    400,
                    "this voucher is reversed already",
                    [("PSGReversesVoucher", "DuplicateRecord", "this voucher is reversed already")],
                )
            _, created = erp.reverse_posting(store, original["internalId"], engine)
        elif entity_set == "LedgerJournalLines":
            _, created = erp.create_posting(store, engine)
        elif entity_set == "FreeTextInvoiceHeaders":
            _, created = erp.create_invoice(store, engine, None)
        else:
            _, created = erp.create_revenue_schedule(store, engine)
    except VendorError as exc:
        raise translated(entity_set, exc) from exc
    if external_id is not None:
        created = {**created, "externalId": external_id}
        store.put("invoice", str(created["internalId"]), created)
        store.put("externalId", f"invoice:{external_id}", {"internalId": created["internalId"]})
    return created


def update(store: DocumentStore, entity_set: str, keys: dict[str, Any], body: dict[str, Any]) -> None:
    if entity_set != "ProjectContracts":
        raise odata_error(405, f"Entities of '{entity_set}' are not updated here.")
    contract = find(store, entity_set, keys)
    changes = from_entity(store, entity_set, body)
    for key in ("contractNumber", "subsidiaryCode"):  # keys are not changed
        changes.pop(key, None)
    try:
        erp.update_contract(store, contract["internalId"], changes)
    except VendorError as exc:
        raise translated(entity_set, exc) from exc


def act(
    store: DocumentStore, entity_set: str, keys: dict[str, Any], action: str, body: dict[str, Any]
) -> dict[str, Any] | None:
    """A bound action on an invoice: ``post``, ``void`` or ``credit`` (which answers the credit note)."""
    if entity_set != "FreeTextInvoiceHeaders" or action not in ("post", "void", "credit"):
        raise not_found(f"{ACTION_NAMESPACE}{action}")
    invoice = find(store, entity_set, keys)
    try:
        if action == "post":
            erp.post_invoice(store, invoice["internalId"])
            return None
        if action == "void":
            erp.void_invoice(store, invoice["internalId"])
            return None
        engine = from_entity(store, "PSGCreditNotes", body)
        external_id = engine.pop("externalId", None)
        if external_id is not None and store.get("externalId", f"creditMemo:{external_id}") is not None:
            raise odata_error(
                400,
                "Cannot create a record in PSGCreditNotes: the record already exists.",
                [("ExternalInvoiceId", "DuplicateRecord", "a credit note with this ExternalInvoiceId exists")],
            )
        _, memo = erp.credit_invoice(store, invoice["internalId"], engine, None)
    except VendorError as exc:
        raise translated("PSGCreditNotes" if action == "credit" else entity_set, exc) from exc
    if external_id is not None:
        memo = {**memo, "externalId": external_id}
        store.put("creditMemo", str(memo["internalId"]), memo)
        store.put("externalId", f"creditMemo:{external_id}", {"internalId": memo["internalId"]})
    return memo


# --- reads -----------------------------------------------------------------------------------------------------


def page_size(prefer: str) -> int:
    match = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", prefer)
    return min(MAX_PAGE, max(1, int(match[1]))) if match else MAX_PAGE


def query(store: DocumentStore, entity_set: str, params: dict[str, str], size: int, url: str) -> dict[str, Any]:
    kind, _, fields = SCHEMAS[entity_set]
    where, ranges, contains = parse_filter(store, entity_set, params.get("$filter"))
    if fields.get("subsidiaryCode", ("", ""))[0] == "dataAreaId" and params.get("cross-company", "").lower() != "true":
        where["subsidiaryCode"] = (
            subsidiary(DEFAULT_COMPANY)
            if "subsidiaryCode" not in where
            else (where["subsidiaryCode"] if where["subsidiaryCode"] == subsidiary(DEFAULT_COMPANY) else "#none")
        )
    try:
        start = int(params.get("$skip") or 0)
        token = int(params["$skiptoken"]) if params.get("$skiptoken") else None
        top = int(params["$top"]) if "$top" in params else None
    except ValueError as exc:
        raise bad_request("$top, $skip and $skiptoken must be integers") from exc
    if not all(0 <= number <= MAX_OFFSET for number in (start, token or 0, top or 0)):
        raise bad_request(f"$top, $skip and $skiptoken must be integers from 0 to {MAX_OFFSET}")
    offset, end, wanted = odata.page_window(start, token, top, size)
    rows, total = store.query(
        kind, where=where, ranges=ranges or None, contains=contains or None, offset=offset, limit=max(1, wanted)
    )
    rows = rows[:wanted]
    select = [name.strip() for name in params.get("$select", "").split(",") if name.strip()]
    expand = params.get("$expand", "")
    values = []
    for row in rows:
        entity = to_entity(store, entity_set, row)
        if entity_set == "FreeTextInvoiceHeaders" and "FreeTextInvoiceLines" not in expand:
            entity.pop("FreeTextInvoiceLines")
        values.append({name: entity[name] for name in select if name in entity} if select else entity)
    answer: dict[str, Any] = {"@odata.context": f"{url.split('/data/')[0]}/data/$metadata#{entity_set}"}
    if params.get("$count", "").lower() == "true":
        answer["@odata.count"] = max(0, total - start) if top is None else max(0, min(total - start, top))
    answer["value"] = values
    link = odata.next_link(url, params, offset, len(rows), total, end)
    if link is not None:
        answer["@odata.nextLink"] = link
    return answer


# --- auth and limits -------------------------------------------------------------------------------------------

LIMITS = LimitDialect(
    too_many=lambda seconds: (
        odata_error(
            429,
            f"The request was throttled by service protection limits. Retry after {seconds} seconds.",
            code="TooManyRequests",
        ).body
    )
)


def token_refusal(form: dict[str, str], config: AuthConfig, token_url: str) -> str:
    """Why the Entra ID token endpoint refuses this client credentials request ("" when it is good)."""
    resource = token_url.split("/", 3)
    expected = f"{resource[0]}//{resource[2]}/.default" if len(resource) > 2 else ""
    if not (
        hmac.compare_digest(form.get("client_id", ""), config.client_id)
        and hmac.compare_digest(form.get("client_secret", ""), config.client_secret)
    ):
        return "AADSTS7000215: Invalid client secret provided, or the application was not found in the tenant."
    if form.get("scope", "").rstrip("/") != expected.rstrip("/") and form.get("scope") != expected:
        return (
            f"AADSTS1002012: The provided value for scope {form.get('scope', '')!r} is not valid. Client "
            f"credential flows must have a scope value with /.default suffixed to the resource identifier "
            f"({expected})."
        )
    return ""


# The token path names the tenant (``{tenant}``): ``python -m sandbox`` fills it in from PSGW_SANDBOX_TENANT_ID.
AUTH = AuthDialect(
    grant_path=TOKEN_PATH,
    grant="client_credentials",
    assertion_check=token_refusal,
    unauthorized=lambda: (
        odata_error(
            401, "Authentication failed: the access token is missing, invalid or expired.", code="Unauthorized"
        ).body
    ),
)


# --- the app ---------------------------------------------------------------------------------------------------


async def _json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return _object(await request.body())


def _object(raw: Any) -> dict[str, Any]:
    """A body as a JSON object, numbers as decimals (amounts are never floats here); a batch request's is one
    already."""
    if isinstance(raw, dict):
        return raw
    try:
        body = json.loads(raw or b"{}", parse_float=Decimal)
    except (ValueError, RecursionError) as exc:  # nested past the parser's depth: as malformed as bad syntax
        raise bad_request(f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


ODATA_JSON = "application/json; odata.metadata=minimal"
# What one request is answered: status, headers (lower-case names) and the body (None: no body).
Answer = tuple[int, dict[str, str], Any]


def _answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    return status, {"content-type": ODATA_JSON, **(headers or {})}, body


def _failure(exc: VendorError) -> Answer:
    """A refusal as the service answers one (``vendor_error_response``: the body as Litestar writes it)."""
    return exc.status, {"content-type": "application/json"}, encode_json(exc.body)


def _header(headers: dict[str, str], name: str) -> str:
    return next((value for key, value in headers.items() if key.lower() == name), "")


def serve(
    store: DocumentStore, method: str, path: str, params: dict[str, str], headers: dict[str, str], body: Any, base: str
) -> Answer:
    """One request to the service (``path`` under ``/data/``), as the service answers it: alone (each route
    below) or as one request of a ``$batch``, inside a store call; a refusal is raised as a VendorError."""
    parts = path[len(DATA) + 1 :].split("/") if path.startswith(DATA + "/") else []
    if len(parts) == 2 and parts[0] and parts[1]:
        if method != "POST":
            raise odata_error(405, "Method Not Allowed")
        return _bound_action(store, parts[0], parts[1], body, base)
    if len(parts) != 1 or not parts[0]:
        raise odata_error(404, "Not Found")
    entity_set, keys = parse_segment(parts[0])
    prefer = _header(headers, "prefer")
    if method == "GET":
        if keys is not None:
            entity = to_entity(store, entity_set, find(store, entity_set, keys))
            if entity_set == "FreeTextInvoiceHeaders" and "FreeTextInvoiceLines" not in params.get("$expand", ""):
                entity.pop("FreeTextInvoiceLines")
            return _answer({"@odata.context": _context(base, entity_set), **entity})
        size = page_size(prefer)
        answer = query(store, entity_set, params, size, f"{base}{DATA}/{entity_set}")
        return _answer(answer, headers={"preference-applied": f"odata.maxpagesize={size}"} if "maxpagesize" in prefer
                       else None)
    if method == "POST":
        if keys is not None:
            raise odata_error(405, "POST is not allowed on an entity; use PATCH.")
        created = create(store, entity_set, _object(body))
        if "return=minimal" in prefer:
            return 204, {}, None
        return _answer({"@odata.context": _context(base, entity_set), **to_entity(store, entity_set, created)}, 201)
    if method == "PATCH":
        if keys is None:
            raise odata_error(405, "PATCH is allowed on an entity only.")
        update(store, entity_set, keys, _object(body))
        return 204, {}, None
    raise odata_error(405, "Method Not Allowed")


def _bound_action(store: DocumentStore, segment: str, action: str, body: Any, base: str) -> Answer:
    entity_set, keys = parse_segment(segment)
    if keys is None or not action.startswith(ACTION_NAMESPACE):
        raise not_found(action)
    memo = act(store, entity_set, keys, action.removeprefix(ACTION_NAMESPACE), _object(body))
    if memo is None:
        return 204, {}, None
    return _answer({"@odata.context": _context(base, "PSGCreditNotes"), **to_entity(store, "PSGCreditNotes", memo)})


def _context(base: str, entity_set: str) -> str:
    return f"{base}{DATA}/$metadata#{entity_set}/$entity"


def _response(answer: Answer) -> Response[bytes]:
    status, headers, body = answer
    if body is None:
        return Response(b"", status_code=status, headers=headers or None)
    return Response(json_text(body).encode(), status_code=status, headers=headers, media_type=headers["content-type"])


def create_app(store: DocumentStore) -> Litestar:
    for field in ("contractNumber", "projectCode", "sourceDocumentId", "transactionDate"):
        store.index(field)

    async def served(request: Request[Any, Any, Any], *, write: bool) -> Response[bytes]:
        """The request through ``serve`` in a store call (a write all or nothing, committed when answered)."""
        body = await request.body() if write else None  # parsed where the request is understood (``serve``)
        call = (store.transaction, serve) if write else (serve,)
        answer = await store.call(*call, store, request.method, request.scope["path"],
                                  {k: v for k, v in request.query_params.items()}, dict(request.headers), body,
                                  str(request.base_url).rstrip("/"))
        return _response(answer)

    @get(f"{DATA}/{{segment:str}}")
    async def read(request: Request[Any, Any, Any], segment: FromPath[str]) -> Response[bytes]:
        return await served(request, write=False)

    @post(f"{DATA}/{{segment:str}}")
    async def insert(request: Request[Any, Any, Any], segment: FromPath[str]) -> Response[bytes]:
        if segment == "$batch":
            return await batch(request, store)
        return await served(request, write=True)

    @patch(f"{DATA}/{{segment:str}}")
    async def change(request: Request[Any, Any, Any], segment: FromPath[str]) -> Response[bytes]:
        return await served(request, write=True)

    @post(f"{DATA}/{{segment:str}}/{{action:str}}")
    async def bound_action(
        request: Request[Any, Any, Any], segment: FromPath[str], action: FromPath[str]
    ) -> Response[bytes]:
        return await served(request, write=True)

    return Litestar(
        [read, insert, change, bound_action],
        exception_handlers={HTTPException: framework_error, VendorError: vendor_error_response},
        openapi_config=None,
    )


# --- $batch ----------------------------------------------------------------------------------------------------

# "Service protection API limits" (finance and operations): "A batch can contain up to 5000 operations and will avoid
# the number of requests limit" -- so a batch is one request to the limits middleware, whatever it holds.
MAX_BATCH_REQUESTS = 5_000


def batch_operations(content_type: str, body: bytes) -> list[tuple[bool, dict[str, Any]]]:
    """The parts of a multipart batch as (in a change set, request), checked before any runs (a malformed batch
    runs nothing; ``odata.batch_parts``)."""
    several = odata_error(501, "A change set of more than one request is not supported here.")
    parts = odata.batch_parts(content_type, body, bad_request, MAX_BATCH_REQUESTS, one_per_changeset=several)
    return [(in_changeset, requests[0]) for in_changeset, requests in parts]


def _batch_target(url: str) -> tuple[str, str] | None:
    """A request URL (relative to the service root, or absolute) as (path, query); None when not the service's."""
    path, _, query = url.partition("?")
    if "://" in path:
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    if not path.startswith("/"):
        path = f"{DATA}/{path}"
    if not path.startswith(DATA + "/") or path.rstrip("/") == f"{DATA}/$batch":
        return None
    return path, query


def run_batch(
    store: DocumentStore, operations: list[tuple[bool, dict[str, Any]]], go_on: bool, base: str
) -> list[tuple[bool, dict[str, Any], Answer]]:
    """Each request of a batch through ``serve``, in order, as if it came alone (already authenticated and counted
    with its batch): each write all or nothing in a savepoint of its own (a change set, of one request here, is
    one), so a refused one undoes only itself; the batch is committed once, before it is answered
    (``DocumentStore.call``). Until the first failure unless ``go_on``."""
    answers = []
    for in_changeset, item in operations:
        target = _batch_target(item["url"])
        if target is None:
            failure = not_found(item["url"])
            answer: Answer = failure.status, {"content-type": ODATA_JSON}, failure.body
        else:
            request = (store, item["method"], target[0], dict(parse_qsl(target[1], keep_blank_values=True)),
                       item["headers"], item["body"], base)
            try:
                answer = serve(*request) if item["method"] == "GET" else store.transaction(serve, *request)
            except VendorError as exc:
                answer = _failure(exc)
        answers.append((in_changeset, item, answer))
        if answer[0] >= 400 and not go_on:
            break
    return answers


async def batch(request: Request[Any, Any, Any], store: DocumentStore) -> Response[bytes]:
    """``POST /data/$batch`` in the multipart format of OData v4.0 (Part 1: Protocol, 11.7), the batch format of
    the OData version finance and operations serves: requests and change sets run in order, each answered in its
    own part (a change set in a multipart part of its responses, or one failure for the whole change set), so one
    refused line does not sink the others; without ``Prefer: odata.continue-on-error`` the service stops at the
    first failure (8.2.8.3)."""
    operations = batch_operations(request.headers.get("content-type", ""), await request.body())
    go_on = "odata.continue-on-error" in request.headers.get("prefer", "")
    answers = await store.call(run_batch, store, operations, go_on, str(request.base_url).rstrip("/"))
    parts = []
    for in_changeset, item, (status, headers, answer) in answers:
        body = answer if isinstance(answer, bytes) else b"" if answer is None else json_text(answer).encode()
        parts.append((in_changeset, [(status, headers, body, item["content_id"])]))
    content, media_type = odata.batch_answer(parts, uuid.uuid4().hex)
    answer_headers = {"Preference-Applied": "odata.continue-on-error"} if go_on else {}
    return Response(content, status_code=200, headers=answer_headers, media_type=media_type)


def framework_error(_request: Any, exc: HTTPException) -> Response[Any]:
    failure = odata_error(exc.status_code, str(exc.detail))
    return Response(failure.body, status_code=exc.status_code)


def seed(store: DocumentStore, firm: Any) -> None:
    erp.seed(store, firm)
