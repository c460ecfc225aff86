"""ERP adapter for the sandbox cloud ERP (``sandbox/erp.py``): integer internal ids, minor units, period names.

Module-level functions are the pure mapping (vendor JSON <-> canonical, given the customer id map);
:class:`SandboxErp` does the HTTP, the upserts and the refusals in canonical terms.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from contracts.canonical import (
    AccountingPeriod,
    BillingModel,
    BillingProfile,
    BillingSchedule,
    Contract,
    ContractStatus,
    CreditNote,
    Customer,
    FixedFeeRecognition,
    Invoice,
    InvoiceLine,
    InvoiceLineSource,
    InvoiceState,
    LegalEntity,
    Page,
    PostalAddress,
    Posting,
    ProjectDimension,
    RevenueMethod,
    RevenueSchedule,
    RevenueTerms,
    ScheduleLine,
    TaxCategory,
    TaxLine,
    UnusedHoursRule,
    decimal_text,
    display_hours,
    plain_decimal,
)
from runtime import cursors
from runtime.problems import Conflict, NotFound, ProblemError, Unprocessable
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
from system_apis.ids import Kind, is_canonical, reference, to_business_key, to_canonical, unknown_reference
from system_apis.money import from_minor, plain, to_minor
from system_apis.vendor_auth import ClientCredentialsToken, VendorCredentials
from system_apis.vendor_calls import VendorDownstream, VendorLimits
from system_apis.vendor_errors import validation_problem, vendor_problem
from system_apis.vendor_keys import KeyMap

VENDOR = "sandbox-erp"
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"  # noqa: S105 - the vendor's token endpoint, not a secret
BILLING_MODEL: dict[str, BillingModel] = {"TIME_AND_MATERIAL": "time_and_materials", "FIXED_PRICE": "fixed_fee",
                                          "MILESTONE": "milestone", "RETAINER": "retainer"}
CONTRACT_STATUS: dict[str, ContractStatus] = {"DRAFT": "draft", "ACTIVE": "active",
                                              "PENDING_AMENDMENT": "amendment_pending", "CLOSED": "closed"}
INVOICE_FREQUENCY = {"MONTHLY": "monthly", "MILESTONE": "milestone", "SCHEDULE": "schedule"}
SOURCE_TYPE: dict[str, InvoiceLineSource] = {"TIMECARD": "time_entry", "EXPENSE_REPORT": "expense",
                                             "MILESTONE": "milestone", "FIXED_FEE": "fixed_fee",
                                             "RETAINER": "retainer"}
INVOICE_STATE: dict[str, InvoiceState] = {"DRAFT": "draft", "POSTED": "posted", "PAID": "paid", "VOID": "void"}
REVENUE_METHOD: dict[str, RevenueMethod] = {"AS_BILLED": "as_billed", "MILESTONE": "milestone",
                                            "PERCENT_COMPLETE": "percent_complete"}
REVENUE_METHOD_VENDOR = {v: k for k, v in REVENUE_METHOD.items()}
# A contract's own recognition rule (only a fixed fee has a choice).
REVENUE_RECOGNITION: dict[str, FixedFeeRecognition] = {"STRAIGHT_LINE": "straight_line",
                                                      "PERCENT_COMPLETE": "percent_complete"}
REVENUE_RECOGNITION_VENDOR = {v: k for k, v in REVENUE_RECOGNITION.items()}
REVENUE_FIELDS = {"contractNumber": "/contract_id", "periodName": "/period", "recognizedAmountMinor":
                  "/recognized_amount", "currencyCode": "/currency", "recognitionMethod": "/method"}
BILLING_MODEL_VENDOR = {v: k for k, v in BILLING_MODEL.items()}
CONTRACT_STATUS_VENDOR = {v: k for k, v in CONTRACT_STATUS.items()}
INVOICE_FREQUENCY_VENDOR = {v: k for k, v in INVOICE_FREQUENCY.items()}
SOURCE_TYPE_VENDOR = {v: k for k, v in SOURCE_TYPE.items()}
INVOICE_STATE_VENDOR = {v: k for k, v in INVOICE_STATE.items()}
UNUSED_HOURS: dict[str, UnusedHoursRule] = {"EXPIRE": "expire", "CARRY_FORWARD": "carry_forward"}
UNUSED_HOURS_VENDOR = {v: k for k, v in UNUSED_HOURS.items()}
# Sources that are documents of another system keep that system's number in the ERP; others pass verbatim.
SOURCE_KINDS: dict[str, Kind] = {"time_entry": "time_entry", "expense": "expense", "milestone": "milestone"}

CUSTOMER_FIELDS = {"customerNumber": "/id", "companyName": "/name", "currency": "/billing_currency",
                   "subsidiaryCode": "/legal_entity_id", "taxRegion": "/tax_jurisdiction",
                   "externalCrmId": "/external_ids/crm", "billingAddress": "/address", "vatRegNumber": "/vat_number",
                   "peppolId": "/einvoice_endpoint_id"}
CONTRACT_FIELDS = {"contractNumber": "/id", "customerId": "/customer_id", "subsidiaryCode": "/legal_entity_id",
                   "description": "/name", "currency": "/currency", "billingMethod": "/billing_model",
                   "nteAmountMinor": "/nte_amount", "startDate": "/start_date", "endDate": "/end_date",
                   "contractStatus": "/status", "rateScheduleCode": "/rate_card_id",
                   "invoiceFrequency": "/billing_profile/invoice_frequency",
                   "paymentTerms": "/billing_profile/payment_terms_days",
                   "scheduledAmountMinor": "/billing_profile/scheduled_amount", "contractValueMinor": "/total_value",
                   "billingSchedule": "/billing_schedule/lines", "retainerHours": "/billing_schedule/hours_allowance",
                   "unusedHoursPolicy": "/billing_schedule/unused_hours",
                   "revenueRecognitionMethod": "/revenue_terms/fixed_fee_method",
                   "budgetedCostMinor": "/revenue_terms/budget_cost",
                   "expenseMarkupPct": "/expense_markup_percent"}
DIMENSION_FIELDS = {"dimensionCode": "/code", "projectCode": "/project_id", "subsidiaryCode": "/legal_entity_id"}
POSTING_FIELDS = {"sourceDocumentType": "/source_type", "sourceDocumentId": "/source_id",
                  "projectCode": "/project_id", "contractNumber": "/contract_id", "subsidiaryCode": "/legal_entity_id",
                  "transactionDate": "/work_date", "quantity": "/quantity", "amountMinor": "/amount",
                  "currencyCode": "/currency", "fromDate": "/from_date", "toDate": "/to_date",
                  "durationMinutes": "/minutes"}
INVOICE_FIELDS = {"customerId": "/customer_id", "contractNumber": "/contract_id", "subsidiaryCode": "/legal_entity_id",
                  "currencyCode": "/currency", "periodName": "/period", "lines": "/lines", "taxLines": "/tax_lines"}
INVOICE_LINE_FIELDS = {"description": "/description", "quantity": "/quantity", "unitPriceMinor": "/unit_price",
                       "amountMinor": "/amount", "sourceType": "/source_type", "sourceRefs": "/source_ids",
                       "durationMinutes": "/minutes"}
_LINE_PATH = re.compile(r"^lines\[(\d+)\]\.(\w+)$")
PAGE_MAX = 1000


def period_of(name: str) -> str:
    """ERP period name ("Oct 2026") -> canonical period ("2026-10")."""
    return dt.datetime.strptime(name, "%b %Y").strftime("%Y-%m")


# The vendor names periods with English month abbreviations ("Oct 2026"), spelled out here rather than formatted
# by datetime: a period the contract's pattern admits but no calendar has (year 0000) becomes a name that
# matches nothing (an empty list, a 422 on create) instead of a ValueError and a 500.
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def period_name(period: str) -> str:
    """Canonical period ("2026-10") -> ERP period name ("Oct 2026")."""
    return f"{_MONTH_NAMES[int(period[5:7]) - 1]} {period[:4]}"


def source_from_vendor(source_type: InvoiceLineSource, ref: str) -> str:
    kind = SOURCE_KINDS.get(source_type)
    return to_canonical(kind, ref) if kind else ref


def source_to_vendor(source_type: InvoiceLineSource, source_id: str, pointer: str) -> str:
    kind = SOURCE_KINDS.get(source_type)
    return reference(kind, source_id, pointer) if kind else source_id


@dataclass
class ErpKeys:
    """The ERP's customer internal ids against customer numbers (other records are referenced by number)."""

    customers: KeyMap[int] = field(default_factory=KeyMap)

    def customer_key(self, internal_id: int) -> str:
        found = self.customers.key(internal_id)
        if found is None:
            raise LookupError(f"unknown customer id {internal_id}")
        return found

    def customer_id(self, number: str) -> int:
        found = self.customers.vendor_id(number)
        if found is None:
            raise LookupError(f"unknown customer number {number}")
        return int(found)


# --- pure mapping ----------------------------------------------------------------------------------------------

def legal_entity_from_vendor(body: dict[str, Any]) -> LegalEntity:
    return LegalEntity(id=to_canonical("legal_entity", body["subsidiaryCode"]),
                       external_ids={"erp": str(body["internalId"])}, name=body["legalName"],
                       country=body["country"], functional_currency=body["baseCurrency"],
                       vat_number=body.get("vatRegNumber"), einvoice_endpoint_id=body.get("peppolId"),
                       tax_registration_id=body.get("federalTaxId"))


def period_from_vendor(body: dict[str, Any]) -> AccountingPeriod:
    return AccountingPeriod(legal_entity_id=to_canonical("legal_entity", body["subsidiaryCode"]),
                            period=period_of(body["periodName"]), status="closed" if body["status"] == "CLOSED"
                            else "open")


def customer_from_vendor(body: dict[str, Any]) -> Customer:
    external = {"erp": str(body["internalId"])}
    if body.get("externalCrmId"):
        external["crm"] = body["externalCrmId"]
    return Customer(id=to_canonical("customer", body["customerNumber"]), external_ids=external,
                    name=body["companyName"], billing_currency=body["currency"],
                    legal_entity_id=to_canonical("legal_entity", body["subsidiaryCode"]),
                    tax_jurisdiction=body.get("taxRegion") or "",
                    address=address_from_vendor(body.get("billingAddress")),
                    vat_number=body.get("vatRegNumber") or None, einvoice_endpoint_id=body.get("peppolId") or None)


def address_from_vendor(body: dict[str, str] | None) -> PostalAddress | None:
    if not body or not body.get("country"):
        return None
    return PostalAddress(country=body["country"], line1=body.get("addr1", ""), city=body.get("city", ""),
                         postal_code=body.get("zip", ""), region=body.get("state", ""))


def address_to_vendor(address: PostalAddress | None) -> dict[str, str] | None:
    if address is None:
        return None
    fields = {"addr1": address.line1, "city": address.city, "zip": address.postal_code, "state": address.region,
              "country": address.country}
    return {key: value for key, value in fields.items() if value}


TAX_CODES: dict[str, TaxCategory] = {"S": "standard", "Z": "zero_rated", "E": "exempt", "AE": "reverse_charge",
                                     "O": "outside_scope"}
TAX_CODES_VENDOR = {v: k for k, v in TAX_CODES.items()}


def tax_lines_from_vendor(body: dict[str, Any], currency: str) -> list[TaxLine]:
    return [TaxLine(jurisdiction=line["jurisdiction"], category=TAX_CODES[line["taxCode"]],
                    rate_percent=plain_decimal(Decimal(line["ratePercent"])),
                    taxable_amount=from_minor(line["taxableMinor"], currency),
                    tax_amount=from_minor(line["taxMinor"], currency), exemption_reason=line.get("exemptionText"))
            for line in body.get("taxLines") or []]


def tax_lines_to_vendor(lines: Iterable[TaxLine], currency: str) -> list[dict[str, Any]]:
    return [{"taxCode": TAX_CODES_VENDOR[line.category], "jurisdiction": line.jurisdiction,
             "ratePercent": decimal_text(line.rate_percent),
             "taxableMinor": to_minor(line.taxable_amount, currency, f"/tax_lines/{index}/taxable_amount"),
             "taxMinor": to_minor(line.tax_amount, currency, f"/tax_lines/{index}/tax_amount"),
             **({"exemptionText": line.exemption_reason} if line.exemption_reason else {})}
            for index, line in enumerate(lines)]


def customer_to_vendor(customer: Customer | CustomerCreate) -> dict[str, Any]:
    body: dict[str, Any] = {
        "companyName": customer.name, "currency": customer.billing_currency,
        "subsidiaryCode": reference("legal_entity", customer.legal_entity_id, "/legal_entity_id"),
        "taxRegion": customer.tax_jurisdiction or None,
    }
    if customer.address is not None:
        body["billingAddress"] = address_to_vendor(customer.address)
    if customer.vat_number:
        body["vatRegNumber"] = customer.vat_number
    if customer.einvoice_endpoint_id:
        body["peppolId"] = customer.einvoice_endpoint_id
    if customer.id is not None:
        body["customerNumber"] = reference("customer", customer.id, "/id")
    if customer.external_ids.get("crm"):
        body["externalCrmId"] = customer.external_ids["crm"]
    if isinstance(customer, Customer) and "erp" in customer.external_ids:
        body["internalId"] = int(customer.external_ids["erp"])
    return body


def schedule_from_vendor(body: dict[str, Any], model: BillingModel) -> BillingSchedule:
    currency = body["currency"]
    fee = body.get("scheduledAmountMinor")
    hours = body.get("retainerHours")
    return BillingSchedule(
        lines=[ScheduleLine(
            line_no=line["lineNo"], amount=from_minor(line["amountMinor"], currency),
            period=period_of(line["periodName"]) if line.get("periodName") else None,
            date=dt.date.fromisoformat(line["billingDate"]) if line.get("billingDate") else None,
            percent_complete=plain(Decimal(line["percentComplete"])) if line.get("percentComplete") is not None
            else None, description=line.get("memo") or "")
            for line in sorted(body.get("billingSchedule") or [], key=lambda line: line["lineNo"])],
        # The ERP keeps one "scheduled amount": for a retainer it is the fee of each period.
        period_fee=from_minor(fee, currency) if model == "retainer" and fee is not None else None,
        hours_allowance=plain(Decimal(hours)) if hours is not None else None,
        unused_hours=UNUSED_HOURS[body.get("unusedHoursPolicy") or "EXPIRE"],
    )


def schedule_to_vendor(schedule: Any, currency: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "billingSchedule": [{
            "lineNo": line.line_no, "periodName": period_name(line.period) if line.period else None,
            "billingDate": line.date.isoformat() if line.date else None,
            "amountMinor": to_minor(line.amount, currency, f"/billing_schedule/lines/{index}/amount"),
            "percentComplete": None if line.percent_complete is None else str(line.percent_complete),
            "memo": line.description} for index, line in enumerate(schedule.lines)],
        "retainerHours": None if schedule.hours_allowance is None else str(schedule.hours_allowance),
        "unusedHoursPolicy": UNUSED_HOURS_VENDOR[schedule.unused_hours],
    }
    if schedule.period_fee is not None:
        body["scheduledAmountMinor"] = to_minor(schedule.period_fee, currency, "/billing_schedule/period_fee")
    return body


def contract_from_vendor(body: dict[str, Any], keys: ErpKeys) -> Contract:
    currency = body["currency"]
    terms = body.get("paymentTerms") or "NET30"
    model = BILLING_MODEL[body["billingMethod"]]
    return Contract(
        id=to_canonical("contract", body["contractNumber"]), external_ids={"erp": str(body["internalId"])},
        customer_id=to_canonical("customer", keys.customer_key(body["customerId"])),
        legal_entity_id=to_canonical("legal_entity", body["subsidiaryCode"]), name=body["description"],
        currency=currency, billing_model=BILLING_MODEL[body["billingMethod"]],
        nte_amount=from_minor(body["nteAmountMinor"], currency) if body.get("nteAmountMinor") is not None else None,
        start_date=dt.date.fromisoformat(body["startDate"]),
        end_date=dt.date.fromisoformat(body["endDate"]) if body.get("endDate") else None,
        status=CONTRACT_STATUS[body["contractStatus"]], version=body.get("revision", 1),
        rate_card_id=to_canonical("rate_card", body["rateScheduleCode"]) if body.get("rateScheduleCode") else None,
        billing_profile=BillingProfile(
            invoice_frequency=INVOICE_FREQUENCY[body.get("invoiceFrequency") or "MONTHLY"],  # type: ignore[arg-type]
            payment_terms_days=int(terms.removeprefix("NET")),
            scheduled_amount=from_minor(body["scheduledAmountMinor"], currency)
            if body.get("scheduledAmountMinor") is not None else None,
        ),
        total_value=from_minor(body["contractValueMinor"], currency)
        if body.get("contractValueMinor") is not None else None,
        billing_schedule=schedule_from_vendor(body, model),
        expense_markup_percent=Decimal(body["expenseMarkupPct"]) if body.get("expenseMarkupPct") is not None else None,
        revenue_terms=RevenueTerms(
            fixed_fee_method=REVENUE_RECOGNITION[body.get("revenueRecognitionMethod") or "STRAIGHT_LINE"],
            budget_cost=from_minor(body["budgetedCostMinor"], currency)
            if body.get("budgetedCostMinor") is not None else None),
    )


def contract_terms_to_vendor(values: dict[str, Any], currency: str) -> dict[str, Any]:
    """Canonical contract fields (whole, created or changed) in the ERP's terms."""
    body: dict[str, Any] = {}
    for name, value in values.items():
        if name == "name":
            body["description"] = value
        elif name == "billing_model":
            body["billingMethod"] = BILLING_MODEL_VENDOR[value]
        elif name == "nte_amount":
            body["nteAmountMinor"] = None if value is None else to_minor(value, currency, "/nte_amount")
        elif name in ("start_date", "end_date"):
            body["startDate" if name == "start_date" else "endDate"] = value.isoformat() if value else None
        elif name == "status":
            body["contractStatus"] = CONTRACT_STATUS_VENDOR[value]
        elif name == "rate_card_id":
            body["rateScheduleCode"] = None if value is None else reference("rate_card", value, "/rate_card_id")
        elif name == "billing_profile":
            profile: BillingProfile = value
            body["invoiceFrequency"] = INVOICE_FREQUENCY_VENDOR[profile.invoice_frequency]
            body["paymentTerms"] = f"NET{profile.payment_terms_days}"
            body["scheduledAmountMinor"] = None if profile.scheduled_amount is None else to_minor(
                profile.scheduled_amount, currency, "/billing_profile/scheduled_amount")
        elif name == "currency":
            body["currency"] = value
        elif name == "total_value":
            body["contractValueMinor"] = None if value is None else to_minor(value, currency, "/total_value")
        elif name == "expense_markup_percent":
            body["expenseMarkupPct"] = None if value is None else decimal_text(value)
        elif name == "revenue_terms":
            terms: RevenueTerms = value
            body["revenueRecognitionMethod"] = REVENUE_RECOGNITION_VENDOR[terms.fixed_fee_method]
            body["budgetedCostMinor"] = None if terms.budget_cost is None else to_minor(
                terms.budget_cost, currency, "/revenue_terms/budget_cost")
    if values.get("billing_schedule") is not None:  # after billing_profile: the schedule's fee wins
        body.update(schedule_to_vendor(values["billing_schedule"], currency))
    return body


def contract_to_vendor(contract: Contract, keys: ErpKeys) -> dict[str, Any]:
    values = {name: getattr(contract, name) for name in contract.__struct_fields__}
    return {
        "internalId": int(contract.external_ids["erp"]), "contractNumber": to_business_key("contract", contract.id),
        "customerId": keys.customer_id(to_business_key("customer", contract.customer_id)),
        "subsidiaryCode": to_business_key("legal_entity", contract.legal_entity_id), "revision": contract.version,
        **contract_terms_to_vendor(values, contract.currency),
    }


def dimension_from_vendor(body: dict[str, Any]) -> ProjectDimension:
    return ProjectDimension(id=to_canonical("project_dimension", body["dimensionCode"]),
                            external_ids={"erp": str(body["internalId"])},
                            project_id=to_canonical("project", body["projectCode"]),
                            legal_entity_id=to_canonical("legal_entity", body["subsidiaryCode"]),
                            code=body["dimensionCode"])


def dimension_to_vendor(dimension: ProjectDimension | ProjectDimensionCreate) -> dict[str, Any]:
    body: dict[str, Any] = {
        "dimensionCode": dimension.code, "projectCode": reference("project", dimension.project_id, "/project_id"),
        "subsidiaryCode": reference("legal_entity", dimension.legal_entity_id, "/legal_entity_id"),
    }
    if isinstance(dimension, ProjectDimension):
        body["internalId"] = int(dimension.external_ids["erp"])
    return body


def hours_from_vendor(quantity: Any, minutes: Any) -> Decimal:
    """The vendor's hours, or (a timecard booked with its whole minutes) those minutes' hours for a reader
    (:func:`display_hours`, negative on a reversal): one rule whatever the vendor kept to the hundredth."""
    if isinstance(minutes, int) and not isinstance(minutes, bool):
        return -display_hours(-minutes) if minutes < 0 else display_hours(minutes)
    return plain_decimal(Decimal(str(quantity)))


def minutes_from_vendor(minutes: Any) -> int | None:
    return minutes if isinstance(minutes, int) and not isinstance(minutes, bool) else None


def posting_from_vendor(body: dict[str, Any]) -> Posting:
    source_type = SOURCE_TYPE[body["sourceDocumentType"]]
    return Posting(
        id=to_canonical("posting", body["postingNumber"]), external_ids={"erp": str(body["internalId"])},
        source_type=source_type, source_id=source_from_vendor(source_type, body["sourceDocumentId"]),
        project_id=to_canonical("project", body["projectCode"]),
        contract_id=to_canonical("contract", body["contractNumber"]),
        legal_entity_id=to_canonical("legal_entity", body["subsidiaryCode"]),
        work_date=dt.date.fromisoformat(body["transactionDate"]),
        quantity=hours_from_vendor(body["quantity"], body.get("durationMinutes")),
        minutes=minutes_from_vendor(body.get("durationMinutes")),
        amount=from_minor(body["amountMinor"], body["currencyCode"]), currency=body["currencyCode"],
        posted_at=dt.datetime.fromisoformat(body["postedAt"]) if body.get("postedAt") else None,
        reverses_posting_id=to_canonical("posting", body["reversesPostingNumber"])
        if body.get("reversesPostingNumber") else None,
    )


def posting_to_vendor(posting: Posting | PostingCreate) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sourceDocumentType": SOURCE_TYPE_VENDOR[posting.source_type],
        "sourceDocumentId": source_to_vendor(posting.source_type, posting.source_id, "/source_id"),
        "projectCode": reference("project", posting.project_id, "/project_id"),
        "contractNumber": reference("contract", posting.contract_id, "/contract_id"),
        "subsidiaryCode": reference("legal_entity", posting.legal_entity_id, "/legal_entity_id"),
        "transactionDate": posting.work_date.isoformat(), "quantity": decimal_text(posting.quantity),
        "amountMinor": to_minor(posting.amount, posting.currency, "/amount"), "currencyCode": posting.currency,
    }
    if posting.minutes is not None:  # booked in whole minutes, its hours to the hundredth as the ERP keeps them
        body["durationMinutes"] = posting.minutes
        body["quantity"] = decimal_text(hours_from_vendor(None, posting.minutes))
    if isinstance(posting, Posting):
        body.update({"internalId": int(posting.external_ids["erp"]),
                     "postingNumber": to_business_key("posting", posting.id), "postingStatus": "POSTED",
                     "postedAt": posting.posted_at.astimezone(dt.UTC).isoformat(timespec="milliseconds")
                     if posting.posted_at else None})
    return body


def invoice_from_vendor(body: dict[str, Any], keys: ErpKeys) -> Invoice:
    currency = body["currencyCode"]
    lines = []
    for line in body["lines"]:
        source_type = SOURCE_TYPE[line["sourceType"]]
        lines.append(InvoiceLine(
            description=line["description"], quantity=hours_from_vendor(line["quantity"], line.get("durationMinutes")),
            unit_price=from_minor(line["unitPriceMinor"], currency), amount=from_minor(line["amountMinor"], currency),
            source_type=source_type,
            source_ids=[source_from_vendor(source_type, ref) for ref in line.get("sourceRefs", [])],
            minutes=minutes_from_vendor(line.get("durationMinutes")),
        ))
    return Invoice(
        id=to_canonical("invoice", body["invoiceNumber"]), external_ids={"erp": str(body["internalId"])},
        customer_id=to_canonical("customer", keys.customer_key(body["customerId"])),
        contract_id=to_canonical("contract", body["contractNumber"]),
        legal_entity_id=to_canonical("legal_entity", body["subsidiaryCode"]), currency=currency,
        period=period_of(body["periodName"]) if body.get("periodName") else None, lines=lines,
        subtotal=from_minor(body["subtotalMinor"], currency), tax=from_minor(body["taxMinor"], currency),
        total=from_minor(body["totalMinor"], currency), state=INVOICE_STATE[body["status"]],
        issue_date=dt.date.fromisoformat(body["invoiceDate"]) if body.get("invoiceDate") else None,
        tax_lines=tax_lines_from_vendor(body, currency),
    )


def credit_note_from_vendor(body: dict[str, Any]) -> CreditNote:
    currency = body["currencyCode"]
    lines = []
    for line in body["lines"]:
        source_type = SOURCE_TYPE[line["sourceType"]]
        lines.append(InvoiceLine(
            description=line["description"], quantity=hours_from_vendor(line["quantity"], line.get("durationMinutes")),
            unit_price=from_minor(line["unitPriceMinor"], currency), amount=from_minor(line["amountMinor"], currency),
            source_type=source_type,
            source_ids=[source_from_vendor(source_type, ref) for ref in line.get("sourceRefs", [])],
            minutes=minutes_from_vendor(line.get("durationMinutes"))))
    return CreditNote(
        id=to_canonical("credit_note", body["creditMemoNumber"]), external_ids={"erp": str(body["internalId"])},
        invoice_id=to_canonical("invoice", body["invoiceNumber"]), currency=currency, lines=lines,
        subtotal=from_minor(body["subtotalMinor"], currency), tax=from_minor(body["taxMinor"], currency),
        total=from_minor(body["totalMinor"], currency),
        issue_date=dt.date.fromisoformat(body["memoDate"]) if body.get("memoDate") else None)


def invoice_lines_to_vendor(lines: Iterable[InvoiceLine | Any], currency: str) -> list[dict[str, Any]]:
    return [{
        "description": line.description,
        "quantity": decimal_text(line.quantity if line.minutes is None else hours_from_vendor(None, line.minutes)),
        "unitPriceMinor": to_minor(line.unit_price, currency, f"/lines/{index}/unit_price"),
        "amountMinor": to_minor(line.amount, currency, f"/lines/{index}/amount"),
        "sourceType": SOURCE_TYPE_VENDOR[line.source_type],
        "sourceRefs": [source_to_vendor(line.source_type, s, f"/lines/{index}/source_ids/{n}")
                       for n, s in enumerate(line.source_ids)],
        **({"durationMinutes": line.minutes} if line.minutes is not None else {}),
    } for index, line in enumerate(lines)]


def invoice_to_vendor(invoice: Invoice, keys: ErpKeys) -> dict[str, Any]:
    currency = invoice.currency
    return {
        "internalId": int(invoice.external_ids["erp"]), "invoiceNumber": to_business_key("invoice", invoice.id),
        "customerId": keys.customer_id(to_business_key("customer", invoice.customer_id)),
        "contractNumber": to_business_key("contract", invoice.contract_id),
        "subsidiaryCode": to_business_key("legal_entity", invoice.legal_entity_id), "currencyCode": currency,
        "periodName": period_name(invoice.period) if invoice.period else None,
        "lines": [{"lineNo": n + 1, **line} for n, line in enumerate(invoice_lines_to_vendor(invoice.lines, currency))],
        "subtotalMinor": to_minor(invoice.subtotal, currency, "/subtotal"),
        "taxMinor": to_minor(invoice.tax, currency, "/tax"), "totalMinor": to_minor(invoice.total, currency, "/total"),
        "status": INVOICE_STATE_VENDOR[invoice.state],
        "invoiceDate": invoice.issue_date.isoformat() if invoice.issue_date else None,
        **({"taxLines": tax_lines_to_vendor(invoice.tax_lines, currency)} if invoice.tax_lines else {}),
    }


def revenue_from_vendor(body: dict[str, Any]) -> RevenueSchedule:
    return RevenueSchedule(
        id=to_canonical("revenue_schedule", body["scheduleNumber"]), external_ids={"erp": str(body["internalId"])},
        contract_id=to_canonical("contract", body["contractNumber"]), period=period_of(body["periodName"]),
        recognized_amount=from_minor(body["recognizedAmountMinor"], body["currencyCode"]),
        currency=body["currencyCode"], method=REVENUE_METHOD[body["recognitionMethod"]],
    )


def error_fields(body: Any) -> list[tuple[str | None, str, str]]:
    """(path, code, detail) from the ERP's ``o:errorDetails``."""
    details = body.get("o:errorDetails") if isinstance(body, dict) else None
    return [(d.get("o:errorPath"), str(d.get("o:errorCode", "")), str(d.get("detail", "")))
            for d in details or [] if isinstance(d, dict)]


def line_field_map(fields: Iterable[tuple[str | None, str, str]]) -> dict[str, str]:
    """Pointers for invoice line paths (``lines[2].amountMinor`` -> ``/lines/2/amount``)."""
    mapped = dict(INVOICE_FIELDS)
    for path, _, _ in fields:
        match = _LINE_PATH.match(path or "")
        if match:
            mapped[path or ""] = f"/lines/{match[1]}" + INVOICE_LINE_FIELDS.get(match[2], "")
    return mapped


def refusal(status: int, body: Any, field_map: dict[str, str], what: str) -> ProblemError:
    fields = error_fields(body)
    message = "; ".join(detail for _, _, detail in fields)
    problem = vendor_problem(VENDOR, status, message, [(path, detail) for path, _, detail in fields], field_map,
                             what=what)
    if isinstance(problem, Unprocessable) and any(code == "PERIOD_CLOSED" for _, code, _ in fields):
        problem.slug = "period-closed"
    return problem


# --- the adapter -----------------------------------------------------------------------------------------------

class SandboxErp:
    def __init__(self, base_url: str, timeout_seconds: float, *, limits: VendorLimits | None = None,
                 credentials: VendorCredentials | None = None) -> None:
        self._vendor = VendorDownstream(VENDOR, base_url, timeout_seconds=timeout_seconds, grant=ClientCredentialsToken,
                                        token_path=TOKEN_PATH, credentials=credentials,
                                        limits=limits, honours_idempotency_key=True)
        self.keys = ErpKeys()

    async def aclose(self) -> None:
        await self._vendor.aclose()

    async def _call(self, method: str, path: str, *, what: str, field_map: dict[str, str],
                    params: dict[str, Any] | None = None, json: Any = None, idempotency_key: str | None = None,
                    expect: Iterable[int] = ()) -> tuple[int, Any]:
        response = await self._vendor.request(method, path, params=params, json=json, idempotency_key=idempotency_key,
                                              allow_statuses=frozenset(range(400, 500)))
        body = msgspec.json.decode(response.content) if response.content else None
        if response.status_code < 400 or response.status_code in set(expect):
            return response.status_code, body
        raise refusal(response.status_code, body, field_map, what)

    async def _get(self, path: str, *, what: str, params: dict[str, Any] | None = None,
                   field_map: dict[str, str] | None = None) -> Any:
        return (await self._call("GET", path, params=params, what=what, field_map=field_map or {}))[1]

    async def _page(self, path: str, params: dict[str, Any], cursor: str | None, limit: int, what: str,
                    field_map: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], str | None]:
        bound = cursors.binding({"path": path, **params})
        state = cursors.decode(cursor, bound)
        offset = cursors.number(state, "offset", 0)
        size = cursors.number(state, "size", limit, minimum=1)
        body = await self._get(path, what=what, params={**params, "offset": offset, "limit": size},
                               field_map=field_map)
        next_cursor = cursors.encode({"offset": offset + len(body["items"]), "size": size}, bound) if body[
            "hasMore"] else None
        return body["items"], next_cursor

    async def _know_customers(self, rows: Iterable[dict[str, Any]]) -> None:
        if any(self.keys.customers.key(row["customerId"]) is None for row in rows):
            offset = 0
            while True:
                body = await self._get("/api/v1/customers", what="customer", params={"offset": offset,
                                                                                     "limit": PAGE_MAX})
                for customer in body["items"]:
                    self.keys.customers.learn(customer["customerNumber"], customer["internalId"])
                if not body["hasMore"]:
                    return
                offset += len(body["items"])

    async def _customer_row(self, number: str) -> dict[str, Any] | None:
        body = await self._get("/api/v1/customers", what="customer", params={"customerNumber": number, "limit": 1})
        if not body["items"]:
            return None
        row: dict[str, Any] = body["items"][0]
        self.keys.customers.learn(row["customerNumber"], row["internalId"])
        return row

    async def _customer_internal_id(self, customer_id: str, pointer: str | None = None) -> int | None:
        number = reference("customer", customer_id, pointer) if pointer else to_business_key("customer", customer_id)
        found = self.keys.customers.vendor_id(number)
        if found is None:
            row = await self._customer_row(number)
            if row is None:
                if pointer:
                    raise unknown_reference("customer", customer_id, pointer)
                return None
            found = row["internalId"]
        return int(found)

    async def _contract_row(self, contract_id: str) -> dict[str, Any]:
        number = to_business_key("contract", contract_id)
        body = await self._get("/api/v1/contracts", what="contract", params={"contractNumber": number, "limit": 1})
        if not body["items"]:
            raise NotFound(f"no contract {contract_id!r}", slug="unknown-id")
        row: dict[str, Any] = body["items"][0]
        return row

    async def _contract(self, row: dict[str, Any]) -> Contract:
        await self._know_customers([row])
        return contract_from_vendor(row, self.keys)

    # legal entities, periods

    async def list_legal_entities(self, *, cursor: str | None, limit: int) -> Page[LegalEntity]:
        rows, next_cursor = await self._page("/api/v1/subsidiaries", {}, cursor, limit, "legal entity")
        return Page(items=[legal_entity_from_vendor(r) for r in rows], next_cursor=next_cursor)

    async def list_accounting_periods(self, *, legal_entity_id: str | None, period: str | None,
                                      cursor: str | None, limit: int) -> Page[AccountingPeriod]:
        params: dict[str, Any] = {"periodName": period_name(period) if period else None}
        if legal_entity_id is not None:
            if not is_canonical("legal_entity", legal_entity_id):
                return Page(items=[])
            params["subsidiaryCode"] = to_business_key("legal_entity", legal_entity_id)
        rows, next_cursor = await self._page("/api/v1/accountingPeriods", params, cursor, limit, "period")
        return Page(items=[period_from_vendor(r) for r in rows], next_cursor=next_cursor)

    # customers

    async def list_customers(self, *, name: str | None, cursor: str | None, limit: int) -> Page[Customer]:
        rows, next_cursor = await self._page("/api/v1/customers", {"q": name}, cursor, limit, "customer")
        for row in rows:
            self.keys.customers.learn(row["customerNumber"], row["internalId"])
        return Page(items=[customer_from_vendor(r) for r in rows], next_cursor=next_cursor)

    async def get_customer(self, customer_id: str) -> Customer:
        row = await self._customer_row(to_business_key("customer", customer_id))
        if row is None:
            raise NotFound(f"no customer {customer_id!r}", slug="unknown-id")
        return customer_from_vendor(row)

    async def upsert_customer(self, data: CustomerCreate, idempotency_key: str | None) -> tuple[Customer, bool]:
        body = customer_to_vendor(data)
        if "customerNumber" in body:
            existing = await self._customer_row(body["customerNumber"])
            if existing is not None:
                return customer_from_vendor(existing), False
        if "externalCrmId" in body:
            found = await self._get("/api/v1/customers", what="customer",
                                    params={"externalCrmId": body["externalCrmId"], "limit": 1})
            if found["items"]:
                return customer_from_vendor(found["items"][0]), False
        status, created = await self._call("POST", "/api/v1/customers", json=body, what="customer",
                                           field_map=CUSTOMER_FIELDS, idempotency_key=idempotency_key, expect=(409,))
        if status == 409:  # created meanwhile by a concurrent request: the upsert answers that one
            created = await self._get(f"/api/v1/customers/{created['existingInternalId']}", what="customer")
            self.keys.customers.learn(created["customerNumber"], created["internalId"])
            return customer_from_vendor(created), False
        self.keys.customers.learn(created["customerNumber"], created["internalId"])
        return customer_from_vendor(created), True

    # contracts

    async def list_contracts(self, *, customer_id: str | None, status: ContractStatus | None, cursor: str | None,
                             limit: int) -> Page[Contract]:
        params: dict[str, Any] = {"contractStatus": CONTRACT_STATUS_VENDOR[status] if status else None}
        if customer_id is not None:
            params["customerId"] = await self._customer_internal_id(customer_id) if is_canonical(
                "customer", customer_id) else None
            if params["customerId"] is None:
                return Page(items=[])
        rows, next_cursor = await self._page("/api/v1/contracts", params, cursor, limit, "contract")
        await self._know_customers(rows)
        return Page(items=[contract_from_vendor(r, self.keys) for r in rows], next_cursor=next_cursor)

    async def get_contract(self, contract_id: str) -> Contract:
        return await self._contract(await self._contract_row(contract_id))

    async def upsert_contract(self, data: ContractCreate, idempotency_key: str | None) -> tuple[Contract, bool]:
        if data.id is not None:
            number = reference("contract", data.id, "/id")
            found = await self._get("/api/v1/contracts", what="contract",
                                    params={"contractNumber": number, "limit": 1})
            if found["items"]:
                return await self._contract(found["items"][0]), False
        values = {name: getattr(data, name) for name in data.__struct_fields__}
        body = {
            "customerId": await self._customer_internal_id(data.customer_id, "/customer_id"),
            "subsidiaryCode": reference("legal_entity", data.legal_entity_id, "/legal_entity_id"),
            **contract_terms_to_vendor(values, data.currency),
        }
        if data.id is not None:
            body["contractNumber"] = to_business_key("contract", data.id)
        status, created = await self._call("POST", "/api/v1/contracts", json=body, what="contract",
                                           field_map=CONTRACT_FIELDS, idempotency_key=idempotency_key, expect=(409,))
        if status == 409:
            created = await self._get(f"/api/v1/contracts/{created['existingInternalId']}", what="contract")
            return await self._contract(created), False
        return await self._contract(created), True

    async def update_contract(self, contract_id: str, changes: dict[str, object]) -> Contract:
        row = await self._contract_row(contract_id)
        status, body = await self._call("PATCH", f"/api/v1/contracts/{row['internalId']}",
                                        json=contract_terms_to_vendor(changes, row["currency"]), what="contract",
                                        field_map=CONTRACT_FIELDS, expect=(409,))
        if status == 409:
            raise Conflict(f"{VENDOR} refused the change", slug="invalid-transition",
                           from_state=CONTRACT_STATUS.get(body.get("currentStatus", "")),
                           to_state=changes.get("status"))
        return await self._contract(body)

    # project dimensions

    async def list_project_dimensions(self, *, project_id: str | None, cursor: str | None,
                                      limit: int) -> Page[ProjectDimension]:
        params: dict[str, Any] = {}
        if project_id is not None:
            if not is_canonical("project", project_id):
                return Page(items=[])
            params["projectCode"] = to_business_key("project", project_id)
        rows, next_cursor = await self._page("/api/v1/projectDimensions", params, cursor, limit, "dimension")
        return Page(items=[dimension_from_vendor(r) for r in rows], next_cursor=next_cursor)

    async def upsert_project_dimension(self, data: ProjectDimensionCreate) -> tuple[ProjectDimension, bool]:
        body = dimension_to_vendor(data)
        status, created = await self._call("POST", "/api/v1/projectDimensions", json=body, what="dimension",
                                           field_map=DIMENSION_FIELDS, expect=(409,))
        if status == 201:
            return dimension_from_vendor(created), True
        found = await self._get("/api/v1/projectDimensions", what="dimension",
                                params={"projectCode": body["projectCode"], "limit": 1})
        existing = found["items"][0] if found["items"] else None
        if existing is not None and existing["dimensionCode"] == body["dimensionCode"] and existing[
                "subsidiaryCode"] == body["subsidiaryCode"]:
            return dimension_from_vendor(existing), False
        raise Conflict("the project already has another dimension, or the code belongs to another project",
                       slug="dimension-conflict", existing=msgspec.to_builtins(dimension_from_vendor(existing))
                       if existing else None)

    # postings

    async def _posting_for_source(self, source_type: str, source_ref: str) -> dict[str, Any]:
        found = await self._get("/api/v1/postings", what="posting",
                                params={"sourceDocumentId": source_ref, "limit": PAGE_MAX})
        row: dict[str, Any] = next(r for r in found["items"]
                                   if r["sourceDocumentType"] == source_type and not r.get("reversesInternalId"))
        return row

    async def reverse_posting(self, posting_id: str, on: dt.date) -> tuple[Posting, bool]:
        number = to_business_key("posting", posting_id)
        internal_id = number.removeprefix("JE-")
        if not internal_id.isdigit():
            raise NotFound(f"no posting {posting_id!r}", slug="unknown-id")
        status, reversal = await self._call("POST", f"/api/v1/postings/{internal_id}/actions/reverse",
                                            json={"transactionDate": on.isoformat()}, what="posting",
                                            field_map={"transactionDate": "/on"})
        return posting_from_vendor(reversal), status == 201

    async def create_posting(self, data: PostingCreate) -> tuple[Posting, bool]:
        body = posting_to_vendor(data)
        status, created = await self._call("POST", "/api/v1/postings", json=body, what="posting",
                                           field_map=POSTING_FIELDS, expect=(409,))
        if status == 409:
            existing = await self._posting_for_source(body["sourceDocumentType"], body["sourceDocumentId"])
            return posting_from_vendor(existing), False
        return posting_from_vendor(created), True

    async def create_postings(self, items: list[PostingCreate]) -> list[PostingBatchItem]:
        results: list[PostingBatchItem | None] = []
        bodies: list[tuple[int, dict[str, Any]]] = []
        for index, item in enumerate(items):
            try:
                bodies.append((index, posting_to_vendor(item)))
                results.append(None)
            except ProblemError as exc:  # one bad item does not sink the batch
                results.append(PostingBatchItem(source_id=item.source_id, status="rejected",
                                                problem=exc.to_problem().to_dict()))
        if bodies:
            _, answer = await self._call("POST", "/api/v1/postings/batch", json={"postings": [b for _, b in bodies]},
                                         what="posting", field_map=POSTING_FIELDS)
            for (index, _), result in zip(bodies, answer["results"], strict=True):
                source_id = items[index].source_id
                if result["status"] in ("CREATED", "DUPLICATE"):
                    results[index] = PostingBatchItem(
                        source_id=source_id, status="created" if result["status"] == "CREATED" else "existing",
                        posting=posting_from_vendor(result["posting"]))
                else:
                    problem = refusal(400, result.get("error"), POSTING_FIELDS, "posting")
                    results[index] = PostingBatchItem(source_id=source_id, status="rejected",
                                                      problem=problem.to_problem().to_dict())
        return [r for r in results if r is not None]

    async def list_postings(self, filters: PostingFilter, *, cursor: str | None, limit: int) -> Page[Posting]:
        params: dict[str, Any] = {
            "fromDate": filters.from_date.isoformat() if filters.from_date else None,
            "toDate": filters.to_date.isoformat() if filters.to_date else None,
        }
        references: tuple[tuple[str | None, Kind, str], ...] = (
            (filters.project_id, "project", "projectCode"), (filters.contract_id, "contract", "contractNumber"))
        for value, kind, vendor_name in references:
            if value is not None:
                if not is_canonical(kind, value):
                    return Page(items=[])
                params[vendor_name] = to_business_key(kind, value)
        if filters.source_id is not None:
            # The source's kind shows in its id; sources that are not documents (fixed fee, retainer) pass verbatim.
            source_kind = next((k for k in SOURCE_KINDS.values() if is_canonical(k, filters.source_id)), None)
            params["sourceDocumentId"] = to_business_key(source_kind, filters.source_id) if source_kind else (
                filters.source_id)
        rows, next_cursor = await self._page("/api/v1/postings", params, cursor, limit, "posting", POSTING_FIELDS)
        return Page(items=[posting_from_vendor(r) for r in rows], next_cursor=next_cursor)

    # invoices

    async def _invoice_row(self, invoice_id: str) -> dict[str, Any]:
        found = await self._get("/api/v1/invoices", what="invoice",
                                params={"invoiceNumber": to_business_key("invoice", invoice_id), "limit": 1})
        if not found["items"]:
            raise NotFound(f"no invoice {invoice_id!r}", slug="unknown-id")
        row: dict[str, Any] = found["items"][0]
        return row

    async def _invoice(self, row: dict[str, Any]) -> Invoice:
        await self._know_customers([row])
        return invoice_from_vendor(row, self.keys)

    async def create_invoice(self, data: InvoiceCreate, idempotency_key: str | None) -> Invoice:
        body = {
            "customerId": await self._customer_internal_id(data.customer_id, "/customer_id"),
            "contractNumber": reference("contract", data.contract_id, "/contract_id"),
            "subsidiaryCode": reference("legal_entity", data.legal_entity_id, "/legal_entity_id"),
            "currencyCode": data.currency, "periodName": period_name(data.period) if data.period else None,
            "lines": invoice_lines_to_vendor(data.lines, data.currency),
        }
        if data.tax_lines:
            body["taxLines"] = tax_lines_to_vendor(data.tax_lines, data.currency)
        status, created = await self._call("POST", "/api/v1/invoices", json=body, what="invoice",
                                           field_map={}, idempotency_key=idempotency_key, expect=(400,))
        if status == 400:
            fields = error_fields(created)
            raise validation_problem(VENDOR, [(path, detail) for path, _, detail in fields], line_field_map(fields))
        return await self._invoice(created)

    async def post_invoice(self, invoice_id: str) -> Invoice:
        row = await self._invoice_row(invoice_id)
        status, body = await self._call("POST", f"/api/v1/invoices/{row['internalId']}/actions/post", what="invoice",
                                        field_map={}, expect=(409,))
        if status == 409:
            raise Conflict(f"a {INVOICE_STATE.get(row['status'], row['status'])} invoice cannot be posted",
                           slug="invalid-transition", from_state=INVOICE_STATE.get(row["status"]), to_state="posted")
        return await self._invoice(body)

    async def void_invoice(self, invoice_id: str) -> Invoice:
        row = await self._invoice_row(invoice_id)
        status, body = await self._call("POST", f"/api/v1/invoices/{row['internalId']}/actions/void", what="invoice",
                                        field_map={}, expect=(409,))
        if status == 409:
            raise Conflict(f"a {INVOICE_STATE.get(row['status'], row['status'])} invoice cannot be voided",
                           slug="invalid-transition", from_state=INVOICE_STATE.get(row["status"]), to_state="void")
        return await self._invoice(body)

    async def get_invoice(self, invoice_id: str) -> Invoice:
        return await self._invoice(await self._invoice_row(invoice_id))

    async def credit_invoice(self, invoice_id: str, data: CreditNoteCreate, idempotency_key: str | None
                             ) -> CreditNote:
        row = await self._invoice_row(invoice_id)
        body = {"lines": invoice_lines_to_vendor(data.lines, row["currencyCode"])}
        status, created = await self._call("POST", f"/api/v1/invoices/{row['internalId']}/actions/credit",
                                           json=body, what="credit note", field_map={},
                                           idempotency_key=idempotency_key, expect=(400, 409))
        if status == 409:
            raise Conflict(f"a {INVOICE_STATE.get(row['status'], row['status'])} invoice is not credited",
                           slug="invalid-transition", state=INVOICE_STATE.get(row["status"]))
        if status == 400:
            fields = error_fields(created)
            raise validation_problem(VENDOR, [(path, detail) for path, _, detail in fields], line_field_map(fields))
        return credit_note_from_vendor(created)

    async def list_credit_notes(self, *, invoice_id: str | None, cursor: str | None,
                                limit: int) -> Page[CreditNote]:
        params: dict[str, Any] = {}
        if invoice_id is not None:
            if not is_canonical("invoice", invoice_id):
                return Page(items=[])
            params["invoiceNumber"] = to_business_key("invoice", invoice_id)
        rows, next_cursor = await self._page("/api/v1/creditMemos", params, cursor, limit, "credit note")
        return Page(items=[credit_note_from_vendor(r) for r in rows], next_cursor=next_cursor)

    async def list_invoices(self, *, contract_id: str | None, state: InvoiceState | None, period: str | None,
                            cursor: str | None, limit: int) -> Page[Invoice]:
        params: dict[str, Any] = {"status": INVOICE_STATE_VENDOR[state] if state else None,
                                  "periodName": period_name(period) if period else None}
        if contract_id is not None:
            if not is_canonical("contract", contract_id):
                return Page(items=[])
            params["contractNumber"] = to_business_key("contract", contract_id)
        rows, next_cursor = await self._page("/api/v1/invoices", params, cursor, limit, "invoice")
        await self._know_customers(rows)
        return Page(items=[invoice_from_vendor(r, self.keys) for r in rows], next_cursor=next_cursor)

    async def list_revenue_schedules(self, *, contract_id: str | None, period: str | None, cursor: str | None,
                                     limit: int) -> Page[RevenueSchedule]:
        params: dict[str, Any] = {"periodName": period_name(period) if period else None}
        if contract_id is not None:
            if not is_canonical("contract", contract_id):
                return Page(items=[])
            params["contractNumber"] = to_business_key("contract", contract_id)
        rows, next_cursor = await self._page("/api/v1/revenueSchedules", params, cursor, limit, "revenue schedule")
        return Page(items=[revenue_from_vendor(r) for r in rows], next_cursor=next_cursor)

    async def create_revenue_schedule(self, schedule: RevenueScheduleCreate) -> tuple[RevenueSchedule, bool]:
        body = {"contractNumber": reference("contract", schedule.contract_id, "/contract_id"),
                "periodName": period_name(schedule.period),
                "recognizedAmountMinor": to_minor(schedule.recognized_amount, schedule.currency, "/recognized_amount"),
                "currencyCode": schedule.currency, "recognitionMethod": REVENUE_METHOD_VENDOR[schedule.method]}
        status, created = await self._call("POST", "/api/v1/revenueSchedules", json=body, what="revenue schedule",
                                           field_map=REVENUE_FIELDS, expect=(409,))
        if status != 409:
            return revenue_from_vendor(created), True
        existing = revenue_from_vendor((await self._get("/api/v1/revenueSchedules", what="revenue schedule", params={
            "contractNumber": body["contractNumber"], "periodName": body["periodName"]}))["items"][0])
        if existing.recognized_amount != schedule.recognized_amount:
            raise Conflict(f"{schedule.period} of {schedule.contract_id} is recognised already at "
                           f"{existing.recognized_amount} {existing.currency}", slug="already-recognized",
                           existing_id=existing.id)
        return existing, False
