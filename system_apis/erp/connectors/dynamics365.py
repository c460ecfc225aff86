"""ERP adapter for Dynamics 365 Finance over OData v4 (``erp_backend: dynamics365``; the sandbox is
``sandbox/dynamics365.py``, which documents the entity sets and the tenant's extensions this adapter relies on).

Follows Microsoft Learn, "Open Data Protocol (OData)" for finance and operations apps
(learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/odata): reads are ``GET /data/<EntitySet>``
with ``$filter`` and ``cross-company=true`` (the integration reads every company; ``dataAreaId`` tells them apart),
paged by the service (``Prefer: odata.maxpagesize=<limit>``, resumed from ``@odata.nextLink``'s ``$skiptoken``);
one entity is ``GET /data/<EntitySet>(dataAreaId='leus',Key='...')``; writes are ``POST /data/<EntitySet>``
(201 and the entity), ``PATCH`` on an entity, and the bound actions ``post``, ``void`` and ``credit`` of
``FreeTextInvoiceHeaders``. Refusals are OData error bodies whose ``details[].target`` names the property; they
reach callers as canonical problems with canonical field pointers. A batch of postings is one ``POST /data/$batch``
per chunk of up to 500 in the multipart/mixed format of OData v4.0 (``connectors/odata_batch.py``): Microsoft Learn,
"Open Data Protocol (OData)", section "Batch requests" ("Batch requests are supported in the OData service",
pointing to OData v4.0 Part 1: Protocol, 11.7, which knows no other batch format; the JSON batch format is OData
v4.01's and is not what the finance and operations service documents). Each posting is its own change set, sent
with ``Prefer: odata.continue-on-error``, so a refused line is refused alone. Service protection counts a batch as
one request ("A batch can contain up to 5000 operations and will avoid the number of requests limit. However, you
will need to be prepared for the execution time limit", Microsoft Learn, "Service protection API limits" for
finance and operations), so 50,000 postings are 100 requests against 6,000 per 5 minutes, not 50,000. Not checked
against a real environment: the sandbox follows the documents, not a tenant's captured traffic.

Exactly once without idempotency keys: each write has a unique key the tenant enforces (a customer's account, a
contract's id, a project's id, a posting's source document, a reversal's original voucher, an invoice's or credit
note's ``ExternalInvoiceId`` set to the caller's Idempotency-Key), a repeat is refused ``DuplicateRecord``, and the
adapter answers the entity already there. That also makes a write safe to send again after a 429 (service
protection limits answer 429 with ``Retry-After``; ``system_apis.vendor_calls`` waits it out).

Authentication: OAuth 2.0 client credentials at Microsoft Entra ID ("Microsoft identity platform and the OAuth 2.0
client credentials flow"): ``client_id``, ``client_secret`` and ``scope=<environment URL>/.default`` posted to
``/<tenant>/oauth2/v2.0/token`` (on the sandbox's host unless ``erp_token_url`` names the real endpoint).

What is the same for every vendor (the canonical mapping steps, the upserts that answer the record already there,
the posting, invoice, credit note and revenue flows, refusals as canonical problems) is ``connectors/flows.py``'s;
this module is the vendor's dialect: its wire, its entity and property names, its filter language.

Canonical ids are the entities' natural keys (a customer's account, a contract's id); ``external_ids["erp"]`` is
the entity's key in the tenant (finance and operations entities expose no internal record ids). Companies
(``dataAreaId``) are the legal entities' codes without the dash: ``LE-US`` is ``leus``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import msgspec

from contracts.canonical import InvoiceState
from runtime import cursors
from runtime.problems import ProblemError
from system_apis.erp.connectors.flows import ODataFlows, VendorRefusal, json_amount, json_number, minor_units, rejected
from system_apis.erp.connectors.flows import odata_literal as literal
from system_apis.erp.connectors.odata_batch import BatchFormatError, decode_batch, encode_batch
from system_apis.erp.connectors.sandbox import POSTING_FIELDS, ErpKeys, posting_from_vendor, posting_to_vendor
from system_apis.erp.models import PostingBatchItem, PostingCreate
from system_apis.vendor_auth import VendorCredentials, VendorToken
from system_apis.vendor_errors import vendor_problem

VENDOR = "dynamics365"
DATA = "/data"
TOKEN_PATH = "/{tenant}/oauth2/v2.0/token"  # noqa: S105 - the token endpoint's path, not a secret
ACTION = "Microsoft.Dynamics.DataEntities."
PAGE_MAX = 10_000
# Postings per $batch: well within the 5,000 operations a batch may hold, short enough for the execution time limit.
POSTING_BATCH = 500

# --- the tenant's entities (as sandbox/dynamics365.py documents them; test_schema_agreement keeps both equal) ------

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
# The entity's key in the tenant, kept as the record's ``internalId`` (``external_ids["erp"]``).
IDENTITY = {
    "LegalEntities": "LegalEntityId",
    "LedgerFiscalPeriods": "PeriodName",
    "CustomersV3": "CustomerAccount",
    "ProjectContracts": "ProjectContractID",
    "ProjectsV2": "ProjectId",
    "LedgerJournalLines": "Voucher",
    "FreeTextInvoiceHeaders": "InvoiceIdentifier",
    "PSGCreditNotes": "CreditNoteNumber",
    "PSGRevenueSchedules": "ScheduleNumber",
}


# Navigation properties read with their entity: an invoice's lines.
EXPAND = {"FreeTextInvoiceHeaders": "FreeTextInvoiceLines"}


def company(code: str) -> str:
    """A legal entity's code as its company (``dataAreaId``): ``LE-US`` -> ``leus``."""
    return code.replace("-", "").lower()


def subsidiary(data_area: str) -> str:
    text = data_area.upper()
    return f"LE-{text[2:]}" if text.startswith("LE") and len(text) > 2 else text


def _from_odata(conversion: str, value: Any) -> Any:
    if conversion == "int":
        return int(value)
    if conversion == "money":
        return minor_units(value)
    if conversion == "number":
        return str(value)
    if conversion == "date":
        return str(value)[:10]
    if conversion in ("company", "legalentity"):
        return subsidiary(str(value))
    if conversion == "periodstatus":  # a period on hold or permanently closed takes no postings
        return "OPEN" if value == PERIOD_STATUS["OPEN"] else "CLOSED"
    if conversion == "invoicestatus":
        return {v: k for k, v in INVOICE_STATUS.items()}[value]
    if conversion == "refs":
        return [part for part in str(value).split(",") if part]
    if conversion.startswith("lines:"):
        reverse = {name: (field, conv) for field, (name, conv) in LINES[conversion[6:]].items()}
        return [
            {reverse[k][0]: _from_odata(reverse[k][1], v) for k, v in line.items() if k in reverse and v is not None}
            for line in value
        ]
    return value  # "" and "customer": the account number is the customer's key here


def from_odata(entity_set: str, entity: dict[str, Any]) -> dict[str, Any]:
    """An entity in the engine's fields (as ``connectors/sandbox.py`` maps them to canonical terms)."""
    fields: dict[str, Any] = {}
    for field, (name, conversion) in SCHEMAS[entity_set][2].items():
        if conversion == "address":
            address = {part: entity[prop] for part, prop in ADDRESS.items() if entity.get(prop) is not None}
            if address:
                fields[field] = address
            continue
        if conversion == "debitcredit":  # one signed amount: a debit, or a credit when negative
            if entity.get("DebitAmount") is not None or entity.get("CreditAmount") is not None:
                fields[field] = minor_units(entity.get("DebitAmount") or 0) - minor_units(
                    entity.get("CreditAmount") or 0
                )
            continue
        if entity.get(name) is not None:
            fields[field] = _from_odata(conversion, entity[name])
    if "internalId" not in fields and entity.get(IDENTITY[entity_set]) is not None:
        fields["internalId"] = entity[IDENTITY[entity_set]]
    return fields


def _to_odata(conversion: str, value: Any) -> Any:
    if value is None:
        return None
    if conversion == "money" and isinstance(value, int):
        return json_amount(value)
    if conversion == "number" and isinstance(value, str):
        return json_number(value)
    if conversion == "date" and isinstance(value, str):
        return f"{value}T12:00:00Z"
    if conversion == "company":
        return company(value)
    if conversion == "legalentity":
        return company(value).upper()
    if conversion == "periodstatus":
        return PERIOD_STATUS[value]
    if conversion == "invoicestatus":
        return INVOICE_STATUS[value]
    if conversion == "refs":
        return ",".join(value)
    if conversion.startswith("lines:"):
        schema = LINES[conversion[6:]]
        return [{schema[k][0]: _to_odata(schema[k][1], v) for k, v in line.items() if k in schema} for line in value]
    return value


def to_odata(entity_set: str, fields: dict[str, Any]) -> dict[str, Any]:
    schema = SCHEMAS[entity_set][2]
    entity: dict[str, Any] = {}
    for field, value in fields.items():
        if field not in schema:
            continue
        name, conversion = schema[field]
        if conversion == "address":
            entity.update({prop: (value or {}).get(part) for part, prop in ADDRESS.items()})
        elif conversion == "debitcredit" and isinstance(value, int):
            entity["DebitAmount"] = _to_odata("money", max(value, 0))
            entity["CreditAmount"] = _to_odata("money", max(-value, 0))
        else:
            entity[name] = _to_odata(conversion, value)
    return entity


def engine_path(entity_set: str, target: str | None) -> str | None:
    """An OData error target (``FreeTextInvoiceLines[0]/TransactionCurrencyAmount``) in the engine's field path
    (``lines[0].amountMinor``), which the canonical field maps know."""
    if not target:
        return None
    reverse = {name: (field, conversion) for field, (name, conversion) in SCHEMAS[entity_set][2].items()}
    if target in ADDRESS.values() and "Address" in reverse:
        return "billingAddress"
    if target in ("DebitAmount", "CreditAmount") and "Amount" in reverse:
        return reverse["Amount"][0]
    match = re.match(r"^(\w+)(?:\[(\d+)\](?:/(\w+))?)?$", target)
    if not match or match[1] not in reverse:
        return target
    field, conversion = reverse[match[1]]
    if match[2] is None or not conversion.startswith("lines:"):
        return field
    line = {name: f for f, (name, _) in LINES[conversion[6:]].items()}.get(match[3] or "")
    return f"{field}[{match[2]}]" + (f".{line}" if line else "")


def key_segment(entity_set: str, keys: dict[str, str | int]) -> str:
    inner = ",".join(f"{name}={literal(value)}" for name, value in keys.items())
    return f"{DATA}/{entity_set}({quote(inner, safe=chr(39) + '=,')})"


def refusal(status: int, body: Any, entity_set: str) -> Refused:
    """An OData error body as a refusal naming the engine's fields."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    details = [
        (engine_path(entity_set, d.get("target")), str(d.get("code", "")), str(d.get("message", "")))
        for d in error.get("details") or []
        if isinstance(d, dict)
    ]
    return Refused(status, str(error.get("message", "")), details)


class Refused(VendorRefusal):
    """The service's 4xx: status, message and (engine field path, code, message) per ``details`` entry."""

    vendor = VENDOR
    closed_period = ("PeriodClosed",)


class EntraClientCredentials(VendorToken):
    """Microsoft Entra ID's client credentials grant with a shared secret: ``client_id``, ``client_secret`` and
    ``scope=<resource>/.default`` in the form (the resource: the finance and operations environment URL)."""

    def __init__(self, vendor: str, token_url: str, credentials: VendorCredentials, timeout_seconds: float) -> None:
        base = token_url.split("/{tenant}/", 1)[0] if "/{tenant}/" in token_url else token_url
        self.scope = base.rstrip("/") + "/.default"
        url = credentials.token_url or token_url.replace("{tenant}", quote(credentials.tenant_id, safe=""))
        super().__init__(vendor, url, credentials, timeout_seconds)

    def _request(self) -> dict[str, Any]:
        return {
            "data": {
                "grant_type": "client_credentials",
                "client_id": self.credentials.client_id,
                "client_secret": self.credentials.client_secret,
                "scope": self.scope,
            }
        }


class AccountKeys(ErpKeys):
    """Dynamics references a customer by its account, which is the customer's key: no id map to keep."""

    def customer_key(self, internal_id: Any) -> str:
        return str(internal_id)


# --- the adapter -----------------------------------------------------------------------------------------------


class Dynamics365Erp(ODataFlows):
    VENDOR = VENDOR
    SETS = {
        "legal_entity": "LegalEntities",
        "period": "LedgerFiscalPeriods",
        "customer": "CustomersV3",
        "contract": "ProjectContracts",
        "dimension": "ProjectsV2",
        "posting": "LedgerJournalLines",
        "invoice": "FreeTextInvoiceHeaders",
        "credit_note": "PSGCreditNotes",
        "revenue": "PSGRevenueSchedules",
    }
    FIELDS = {
        "period.name": "PeriodName",
        "period.legal_entity": "LegalEntityId",
        "customer.number": "CustomerAccount",
        "customer.name": "OrganizationName",
        "customer.crm": "PSGCrmAccountId",
        "contract.number": "ProjectContractID",
        "contract.status": "PSGContractStatus",
        "contract.customer": "PSGCustomerAccount",
        "dimension.project": "ProjectId",
        "posting.source": "Document",
        "posting.source_type": "PSGSourceDocumentType",
        "posting.reverses": "PSGReversesVoucher",
        "posting.date": "TransDate",
        "posting.project": "PSGProjectId",
        "posting.contract": "PSGProjectContractID",
        "invoice.number": "FreeTextNumber",
        "invoice.key": "ExternalInvoiceId",
        "invoice.state": "PSGInvoiceStatus",
        "invoice.period": "PSGPeriodName",
        "invoice.contract": "PSGProjectContractID",
        "credit_note.invoice": "FreeTextNumber",
        "credit_note.key": "ExternalInvoiceId",
        "revenue.contract": "ProjectContractID",
        "revenue.period": "PeriodName",
    }
    INVOICE_STATUS = INVOICE_STATUS
    DUPLICATE = ("DuplicateRecord",)
    WRONG_STATE = IS_REVERSAL = ("InvalidStatusChange",)
    refused = Refused
    GRANT = EntraClientCredentials
    TOKEN_PATH = TOKEN_PATH

    def _new_keys(self) -> ErpKeys:
        return AccountKeys()

    # the wire

    async def _send(
        self,
        method: str,
        path: str,
        entity_set: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        retry_key: str | None = None,
    ) -> Any:
        reply = await self._vendor.request(
            method,
            path,
            params=params,
            json=json_body,
            headers=headers,
            idempotency_key=retry_key,
            allow_statuses=frozenset(range(400, 500)),
        )
        body = json.loads(reply.content, parse_float=Decimal) if reply.content else None
        if reply.status_code >= 400:
            raise refusal(reply.status_code, body, entity_set)
        return body

    async def _batch(self, requests: list[dict[str, Any]], retry_key: str) -> dict[str, tuple[int, Any]]:
        """The status and body of each request by its id, sent as ``$batch`` requests in the OData v4.0 multipart
        format (``connectors/odata_batch.py``), each write alone in a change set. The adapter asks the service to
        go on past a failed request (``Prefer: odata.continue-on-error``); a service that does not stops at the
        first failure (OData v4.0 Part 1, 8.2.8.3) and the requests it left unanswered go in the next batch, so
        one refused line never holds back the lines after it."""
        answers: dict[str, tuple[int, Any]] = {}
        remaining = requests
        while remaining:
            key = retry_key if not answers else f"{retry_key}:{len(answers)}"  # another body, another key
            answered = await self._batch_once(remaining, key)
            answers.update(answered)
            remaining = remaining[len(answered) :]
        return answers

    async def _batch_once(self, requests: list[dict[str, Any]], retry_key: str) -> dict[str, tuple[int, Any]]:
        """One ``$batch``: the answers to the requests in order, all of them, or those up to the failure at which
        the service stopped (at least one)."""
        token = uuid.uuid4().hex
        content = encode_batch(
            [(r["method"], r["url"], msgspec.json.encode(r["body"]) if "body" in r else None) for r in requests],
            boundary=f"batch_{token}",
            changeset=f"changeset_{token}",
        )
        reply = await self._vendor.request(
            "POST",
            f"{DATA}/$batch",
            content=content,
            headers={
                "Content-Type": f"multipart/mixed; boundary=batch_{token}",
                "Accept": "multipart/mixed",
                "OData-Version": "4.0",
                "Prefer": "odata.continue-on-error",
            },
            idempotency_key=retry_key,
            allow_statuses=frozenset(range(400, 500)),
        )
        if reply.status_code >= 400:  # the batch itself refused: this adapter spoke wrongly, the vendor failed us
            body = json.loads(reply.content, parse_float=Decimal) if reply.content else None
            raise vendor_problem(
                VENDOR, 502, refusal(reply.status_code, body, "$batch").message, [], {}, what="posting"
            )
        try:
            parts = decode_batch(reply.headers.get("content-type", ""), reply.content)
        except BatchFormatError as exc:
            raise vendor_problem(VENDOR, 502, f"an unreadable $batch answer ({exc})", [], {}, what="posting") from exc
        stopped = bool(parts) and len(parts) < len(requests) and parts[-1][0] >= 400  # at a failure, as it may
        if len(parts) != len(requests) and not stopped:
            raise vendor_problem(VENDOR, 502, "the $batch answer does not answer every request", [], {}, what="posting")
        # One JSON text for all the bodies (an empty one, a 204's, is null): one parse, not one per request.
        texts = b",".join(body if body.strip() else b"null" for _, body in parts)
        try:
            bodies = json.loads(b"[" + texts + b"]", parse_float=Decimal)
        except ValueError as exc:
            raise vendor_problem(VENDOR, 502, "a $batch response that is not JSON", [], {}, what="posting") from exc
        return {r["id"]: (status, body) for r, (status, _), body in zip(requests, parts, bodies, strict=False)}

    async def _query(
        self,
        entity_set: str,
        conditions: list[str],
        *,
        size: int,
        skiptoken: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page in the engine's fields, and the ``$skiptoken`` of the next page if the service gave one."""
        params: dict[str, Any] = {"cross-company": "true"}
        if conditions:
            params["$filter"] = " and ".join(conditions)
        if entity_set in EXPAND:
            params["$expand"] = EXPAND[entity_set]
        if skiptoken is not None:
            params["$skiptoken"] = skiptoken
        body = await self._send(
            "GET",
            f"{DATA}/{entity_set}",
            entity_set,
            params=params,
            headers={"Prefer": f"odata.maxpagesize={min(size, PAGE_MAX)}"},
        )
        rows = [from_odata(entity_set, entity) for entity in body["value"]]
        following = None
        if body.get("@odata.nextLink"):
            following = parse_qs(urlsplit(body["@odata.nextLink"]).query).get("$skiptoken", [None])[0]
        return rows, following

    async def _page(
        self, entity_set: str, conditions: list[str], cursor: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        bound = cursors.binding({"set": entity_set, "filter": " and ".join(conditions)})
        state = cursors.decode(cursor, bound)
        token = state.get("skiptoken")
        if token is not None and not isinstance(token, str):
            raise cursors.invalid("not a cursor of this list")
        size = cursors.number(state, "size", limit, minimum=1)
        rows, following = await self._query(entity_set, conditions, size=size, skiptoken=token)
        return rows, cursors.encode({"skiptoken": following, "size": size}, bound) if following else None

    async def _first(self, entity_set: str, conditions: list[str]) -> dict[str, Any] | None:
        rows, _ = await self._query(entity_set, conditions, size=1)
        return rows[0] if rows else None

    async def _entity(self, entity_set: str, keys: dict[str, str | int]) -> dict[str, Any]:
        params = {"$expand": EXPAND[entity_set]} if entity_set in EXPAND else None
        body = await self._send("GET", key_segment(entity_set, keys), entity_set, params=params)
        return from_odata(entity_set, body)

    async def _create(self, entity_set: str, fields: dict[str, Any], retry_key: str | None = None) -> dict[str, Any]:
        body = await self._send(
            "POST", f"{DATA}/{entity_set}", entity_set, json_body=to_odata(entity_set, fields), retry_key=retry_key
        )
        return from_odata(entity_set, body)

    # the dialect (connectors/flows.py runs the flows over it)

    def on_or_after(self, prop: str, day: dt.date) -> str:
        return f"{prop} ge {day.isoformat()}T00:00:00Z"

    def on_or_before(self, prop: str, day: dt.date) -> str:
        return f"{prop} le {day.isoformat()}T23:59:59Z"

    def name_contains(self, prop: str, text: str) -> str:
        return f"contains({prop},{literal(text)})"

    def company_value(self, code: str) -> str:
        return company(code).upper()

    async def _write_contract(self, row: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        keys: dict[str, str | int] = {
            "dataAreaId": company(row["subsidiaryCode"]),
            "ProjectContractID": row["contractNumber"],
        }
        await self._send(
            "PATCH",
            key_segment("ProjectContracts", keys),
            "ProjectContracts",
            json_body=to_odata("ProjectContracts", fields),
        )
        return await self._entity("ProjectContracts", keys)

    @staticmethod
    def _invoice_keys(row: dict[str, Any]) -> dict[str, str | int]:
        return {"dataAreaId": company(row["subsidiaryCode"]), "InvoiceIdentifier": int(row["internalId"])}

    async def _send_transition(self, row: dict[str, Any], to_state: InvoiceState) -> None:
        action = "post" if to_state == "posted" else "void"
        path = f"{key_segment('FreeTextInvoiceHeaders', self._invoice_keys(row))}/{ACTION}{action}"
        await self._send("POST", path, "FreeTextInvoiceHeaders", json_body={})

    async def _reread_invoice(self, row: dict[str, Any]) -> dict[str, Any]:
        return await self._entity("FreeTextInvoiceHeaders", self._invoice_keys(row))

    async def _create_credit(self, row: dict[str, Any], body: dict[str, Any], retry_key: str | None) -> dict[str, Any]:
        path = f"{key_segment('FreeTextInvoiceHeaders', self._invoice_keys(row))}/{ACTION}credit"
        memo = await self._send(
            "POST", path, "PSGCreditNotes", json_body=to_odata("PSGCreditNotes", body), retry_key=retry_key
        )
        return from_odata("PSGCreditNotes", memo)

    # postings in bulk

    async def create_postings(self, items: list[PostingCreate]) -> list[PostingBatchItem]:
        """One ``$batch`` per chunk of postings, each posting its own request so a refused line is refused alone;
        a line already posted (``DuplicateRecord`` on its source document) is read back in one more ``$batch``."""
        outcomes: list[PostingBatchItem] = []
        for start in range(0, len(items), POSTING_BATCH):
            outcomes += await self._post_chunk(items[start : start + POSTING_BATCH])
        return outcomes

    async def _post_chunk(self, items: list[PostingCreate]) -> list[PostingBatchItem]:
        outcomes: dict[str, PostingBatchItem] = {}
        bodies: dict[str, dict[str, Any]] = {}
        for index, item in enumerate(items):
            try:
                bodies[str(index)] = posting_to_vendor(item)
            except ProblemError as bad:  # a reference that is no canonical id: this line alone
                if bad.status >= 500:
                    raise
                outcomes[str(index)] = rejected(item, bad)
        if bodies:
            sources = ",".join(f"{b['sourceDocumentType']}:{b['sourceDocumentId']}" for b in bodies.values())
            answers = await self._batch(
                [
                    {"id": n, "method": "POST", "url": "LedgerJournalLines", "body": to_odata("LedgerJournalLines", b)}
                    for n, b in bodies.items()
                ],
                retry_key="postings:" + hashlib.sha256(sources.encode()).hexdigest(),
            )
            posted_before: list[str] = []
            for n, (status, body) in answers.items():
                if status < 300:
                    posting = posting_from_vendor(from_odata("LedgerJournalLines", body))
                    outcomes[n] = PostingBatchItem(source_id=items[int(n)].source_id, status="created", posting=posting)
                    continue
                refused = refusal(status, body, "LedgerJournalLines")
                if status >= 500:
                    raise vendor_problem(VENDOR, status, refused.message, [], {}, what="posting")
                if refused.has(*self.DUPLICATE):
                    posted_before.append(n)
                else:
                    outcomes[n] = rejected(items[int(n)], refused.problem(POSTING_FIELDS, "posting"))
            if posted_before:
                outcomes.update(await self._already_posted(items, bodies, posted_before))
        return [outcomes[str(index)] for index in range(len(items))]

    async def _already_posted(
        self, items: list[PostingCreate], bodies: dict[str, dict[str, Any]], ids: list[str]
    ) -> dict[str, PostingBatchItem]:
        """The postings of sources posted before, read in one ``$batch`` of queries: never posted a second time."""
        reads = []
        for n in ids:
            conditions = self._source_conditions(bodies[n]["sourceDocumentType"], bodies[n]["sourceDocumentId"])
            query = urlencode(
                {"cross-company": "true", "$filter": " and ".join(conditions), "$top": "1"}, quote_via=quote
            )
            reads.append({"id": n, "method": "GET", "url": f"LedgerJournalLines?{query}"})
        answers = await self._batch(reads, retry_key="reads")
        found: dict[str, PostingBatchItem] = {}
        for n, (status, body) in answers.items():
            item = items[int(n)]
            rows = body.get("value") if status == 200 and isinstance(body, dict) else None
            if not rows:  # refused as a duplicate yet not there: as the single write answers it
                problem = (
                    refusal(status, body, "LedgerJournalLines")
                    if status >= 400
                    else Refused(409, "the source is posted but its posting was not found", [])
                )
                found[n] = rejected(item, problem.problem(POSTING_FIELDS, "posting"))
                continue
            posting = posting_from_vendor(from_odata("LedgerJournalLines", rows[0]))
            found[n] = PostingBatchItem(source_id=item.source_id, status="existing", posting=posting)
        return found
