"""ERP adapter over Tryton: companies, parties, fiscal periods and invoices are Tryton's own records.

What maps natively: a legal entity is a ``company.company`` (its party's code is the entity code, LE-US); a
customer is a ``party.party`` (code C-1001); accounting periods are ``account.period`` (state open/closed);
invoices are customer ``account.invoice`` records with their lines on the company's revenue account, posted
with Tryton's own ``post`` (which numbers them and books the move); each line names the sources it bills
(``psgw_source_refs``: Tryton's ``timesheet.line.invoice_line`` link is read-only over RPC). Tax is whatever
Tryton computes (the demo company has no taxes configured). Voiding a draft is Tryton's own ``cancel``.
What Tryton lacks is kept by the psgateway Tryton module: service contracts (``psgw.contract``: billing model,
NTE, rate card, status, revision, total value, retainer fee and hours allowance, and fixed-fee instalments in
``psgw.contract.schedule_line``), the project's financial dimension (``project.work.psgw_dimension``) and
postings (``psgw.posting``, unique per source and kind in SQL: a source is posted once and reversed at most once,
whatever retries; a reversal is the module's record too, as Tryton has none for it). Credit notes are Tryton's
own (``account.invoice`` ``_credit``, posted by ``post``; the module's ``psgw_credit`` does both in one Tryton
transaction, limited to the credited lines). Tryton keeps no revenue schedules in this module set: that list is
empty.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid as uuid_module
from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from msgspec.structs import replace

from contracts.canonical import (
    AccountingPeriod,
    BillingProfile,
    BillingSchedule,
    Contract,
    ContractStatus,
    CreditNote,
    Customer,
    Invoice,
    InvoiceLine,
    InvoiceLineSource,
    InvoiceState,
    LegalEntity,
    Page,
    Posting,
    ProjectDimension,
    RevenueSchedule,
    ScheduleLine,
    display_hours,
    plain_decimal,
)
from runtime.problems import Conflict, FieldError, NotFound, ProblemError, Unprocessable
from system_apis.erp.models import (
    ContractCreate,
    CreditNoteCreate,
    CustomerCreate,
    InvoiceCreate,
    InvoiceLineCreate,
    PostingBatchItem,
    PostingCreate,
    PostingFilter,
    ProjectDimensionCreate,
    RevenueScheduleCreate,
)
from system_apis.ids import Kind, is_canonical, reference, to_business_key, to_canonical, unknown_reference
from system_apis.money import plain
from system_apis.tryton_rpc import VENDOR, TrytonRecords, nested

CUSTOMER_FIELDS = ["code", "name", "psgw_currency.code", "psgw_company.party.code", "psgw_tax_region",
                   "psgw_crm_ref"]
CONTRACT_FIELDS = ["number", "party.code", "company.party.code", "name", "currency.code", "billing_model",
                   "nte_amount", "start_date", "end_date", "state", "revision", "rate_card.code",
                   "invoice_frequency", "payment_term_days", "scheduled_amount", "total_value", "retainer_hours",
                   "unused_hours", "schedule_lines"]
SCHEDULE_LINE_FIELDS = ["contract", "line_no", "period", "date", "amount", "percent_complete", "description"]
POSTING_FIELDS = ["source_type", "source_ref", "work.number", "contract.number", "company.party.code", "date",
                  "quantity", "amount", "currency.code", "create_date", "reverses"]
INVOICE_FIELDS = ["number", "party.code", "psgw_contract.number", "company.party.code", "currency.code",
                  "psgw_period", "lines", "untaxed_amount", "tax_amount", "total_amount", "state", "invoice_date",
                  "psgw_credits"]
# Customer invoices, not the credit notes against them (also ``out`` invoices in Tryton).
INVOICES_ONLY: list[Any] = [("type", "=", "out"), ("psgw_credits", "=", None)]
INVOICE_LINE_FIELDS = ["description", "quantity", "unit_price", "amount", "psgw_source_type", "psgw_source_refs"]
INVOICE_STATE: dict[str, InvoiceState] = {"draft": "draft", "validated": "draft", "posted": "posted",
                                          "paid": "paid", "cancelled": "void"}
CONTRACT_LABELS = {"Number": "/id", "Customer": "/customer_id", "Company": "/legal_entity_id", "Name": "/name",
                   "Currency": "/currency", "Billing Model": "/billing_model", "Not-to-exceed Amount": "/nte_amount",
                   "Start Date": "/start_date", "End Date": "/end_date", "State": "/status",
                   "Rate Card": "/rate_card_id"}
CUSTOMER_LABELS = {"Name": "/name", "Code": "/id", "Billing Currency": "/billing_currency",
                   "Contracting Company": "/legal_entity_id"}
POSTING_LABELS = {"Date": "/work_date", "Quantity": "/quantity", "Amount": "/amount", "Currency": "/currency",
                  "Project": "/project_id", "Contract": "/contract_id"}
INVOICE_LABELS = {"Party": "/customer_id", "Currency": "/currency", "Quantity": "/lines", "Unit Price": "/lines",
                  "Description": "/lines"}
# Sources that are documents of another system keep that system's number; others pass verbatim.
SOURCE_KINDS: dict[str, Kind] = {"time_entry": "time_entry", "expense": "expense", "milestone": "milestone"}


def money(value: Any) -> Decimal:
    return Decimal(str(value if value is not None else 0)).quantize(Decimal("0.01"))


def source_from_row(source_type: str, ref: str) -> str:
    kind = SOURCE_KINDS.get(source_type)
    return to_canonical(kind, ref) if kind else ref


def source_to_row(source_type: str, source_id: str, pointer: str) -> str:
    kind = SOURCE_KINDS.get(source_type)
    return reference(kind, source_id, pointer) if kind else source_id


def timesheet_line_of(source_type: str, ref: str) -> int | None:
    """The Tryton timesheet line a time entry source is (its business key is TC-<line id>)."""
    if source_type == "time_entry" and ref.startswith("TC-") and ref[3:].isdigit():
        return int(ref[3:])
    return None


def customer_from_row(row: dict[str, Any], system: str = "erp") -> Customer:
    external = {system: str(row["id"])}
    if system == "erp":
        external["crm"] = row.get("psgw_crm_ref") or str(row["id"])  # CRM and ERP are the same Tryton
    return Customer(id=to_canonical("customer", row["code"]), external_ids=external, name=row["name"],
                    billing_currency=nested(row, "psgw_currency.code") or "",
                    legal_entity_id=to_canonical("legal_entity", nested(row, "psgw_company.party.code") or ""),
                    tax_jurisdiction=row.get("psgw_tax_region") or "")


def refuse_expense_markup(markup: object) -> None:
    """Tryton's contract (psgw.contract) has no markup on expenses, and Tryton's project modules no expenses:
    a markup is refused, never silently dropped (expenses are billed in the sandbox ERP only)."""
    if markup is not None:
        raise Unprocessable(
            "this ERP (Tryton) has no expenses and keeps no expense markup: leave expense_markup_percent out",
            slug="not-supported",
            errors=[FieldError(pointer="/expense_markup_percent", detail="not supported on Tryton")])


def contract_from_row(row: dict[str, Any], system: str = "erp", lines: Iterable[dict[str, Any]] = ()) -> Contract:
    retainer = row["billing_model"] == "retainer"
    return Contract(
        id=to_canonical("contract", row["number"]), external_ids={system: str(row["id"])},
        customer_id=to_canonical("customer", nested(row, "party.code") or ""),
        legal_entity_id=to_canonical("legal_entity", nested(row, "company.party.code") or ""), name=row["name"],
        currency=nested(row, "currency.code") or "", billing_model=row["billing_model"],
        nte_amount=money(row["nte_amount"]) if row.get("nte_amount") is not None else None,
        start_date=row["start_date"], end_date=row.get("end_date"), status=row["state"],
        version=row.get("revision") or 1,
        rate_card_id=to_canonical("rate_card", code) if (code := nested(row, "rate_card.code")) else None,
        billing_profile=BillingProfile(
            invoice_frequency=row.get("invoice_frequency") or "monthly",
            payment_terms_days=row.get("payment_term_days") or 30,
            scheduled_amount=money(row["scheduled_amount"]) if row.get("scheduled_amount") is not None else None),
        total_value=money(row["total_value"]) if row.get("total_value") is not None else None,
        billing_schedule=BillingSchedule(
            lines=[ScheduleLine(line_no=line["line_no"], amount=money(line["amount"]), period=line.get("period"),
                                date=line.get("date"), description=line.get("description") or "",
                                percent_complete=plain(Decimal(str(line["percent_complete"])))
                                if line.get("percent_complete") is not None else None)
                   for line in sorted(lines, key=lambda line: line["line_no"])],
            period_fee=money(row["scheduled_amount"]) if retainer and row.get("scheduled_amount") is not None
            else None,
            hours_allowance=plain(Decimal(str(row["retainer_hours"]))) if row.get("retainer_hours") is not None
            else None,
            unused_hours=row.get("unused_hours") or "expire"),
    )


async def contracts_from_rows(records: TrytonRecords, rows: list[dict[str, Any]], system: str = "erp"
                              ) -> list[Contract]:
    """Contracts with their instalments: one read of the schedule lines for all of ``rows``."""
    line_ids = [i for row in rows for i in row.get("schedule_lines") or []]
    lines = await records.rpc.read("psgw.contract.schedule_line", line_ids, SCHEDULE_LINE_FIELDS) if line_ids else []
    return [contract_from_row(row, system, [line for line in lines if line["contract"] == row["id"]])
            for row in rows]


# Tryton books a posting's time in hours (``psgw.posting`` keeps 4 places): whole minutes go in as hours to 4 places
# and a time posting's come back as the nearest whole minute, exact both ways (invoice lines keep Tryton's hours).
HOURS_PLACES_IN_TRYTON = Decimal("0.0001")


def hours_to_row(minutes: int) -> Decimal:
    return (Decimal(minutes) / 60).quantize(HOURS_PLACES_IN_TRYTON, rounding=ROUND_HALF_EVEN)


def minutes_of_row(hours: Any) -> int:
    """Whole minutes of an hour figure Tryton keeps (a posting's 4 places, an invoice line's float)."""
    return int((Decimal(str(hours)) * 60).to_integral_value(rounding=ROUND_HALF_EVEN))


def tryton_amount(quantity: float, unit_price: Decimal) -> Decimal:
    """An invoice line's amount as Tryton computes it (``account.invoice.line.on_change_with_amount``): the float
    quantity as text times the unit price, rounded half-even to the cent."""
    return (Decimal(str(quantity)) * unit_price).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def hours_for(minutes: int, unit_price: Decimal, amount: Decimal) -> float | None:
    """The float hours of ``minutes`` Tryton multiplies into exactly ``amount`` at ``unit_price`` (the nearest
    float, else one of its neighbours when the exact product is a half cent); None when none does."""
    exact = minutes / 60
    for quantity in (exact, math.nextafter(exact, math.inf), math.nextafter(exact, -math.inf)):
        if tryton_amount(quantity, unit_price) == amount:
            return quantity
    return None


def tryton_lines(line: InvoiceLineCreate, refs: list[str], booked: dict[str, tuple[int, Decimal]]
                 ) -> list[tuple[float, list[str]]]:
    """Tryton lines (quantity, source refs) for one invoice line. Tryton computes a line's amount from its
    quantity and unit price, so a time line is never sent as its hours for the reader (20 minutes shown as
    0.33): it is one Tryton line per time entry, each its posting's minutes as hours that Tryton multiplies into
    exactly the amount the posting booked, so that the invoice bills exactly the postings it names (a time line's
    amount is the sum of its entries' amounts, each rounded once). Kept as one line where Tryton prices its hours
    to the line's amount already; one line of its hours where the postings do not add up to it."""
    if line.minutes is None:
        return [(float(line.quantity), refs)]
    whole = hours_for(line.minutes, line.unit_price, line.amount)
    if whole is not None:
        return [(whole, refs)]
    parts: list[tuple[float, list[str]]] = []
    for ref in refs:
        minutes, amount = booked.get(ref, (0, Decimal(0)))
        quantity = hours_for(minutes, line.unit_price, amount) if minutes else None
        if quantity is None:
            break
        parts.append((quantity, [ref]))
    else:
        if parts and sum((tryton_amount(q, line.unit_price) for q, _ in parts), Decimal(0)) == line.amount:
            return parts
    return [(whole if whole is not None else line.minutes / 60, refs)]


def posting_from_row(row: dict[str, Any]) -> Posting:
    minutes = None
    if row["source_type"] == "time_entry":
        minutes = minutes_of_row(row["quantity"])
    hours = plain_decimal(Decimal(str(row["quantity"]))) if minutes is None else (
        -display_hours(-minutes) if minutes < 0 else display_hours(minutes))
    return Posting(
        id=to_canonical("posting", f"JE-{row['id']}"), external_ids={"erp": str(row["id"])},
        source_type=row["source_type"], source_id=source_from_row(row["source_type"], row["source_ref"]),
        project_id=to_canonical("project", nested(row, "work.number") or ""),
        contract_id=to_canonical("contract", nested(row, "contract.number") or ""),
        legal_entity_id=to_canonical("legal_entity", nested(row, "company.party.code") or ""),
        work_date=row["date"], quantity=hours, minutes=minutes, amount=money(row["amount"]),
        currency=nested(row, "currency.code") or "", posted_at=row.get("create_date"),
        reverses_posting_id=to_canonical("posting", f"JE-{row['reverses']}") if row.get("reverses") else None,
    )


def credit_note_from_rows(row: dict[str, Any], lines: Iterable[dict[str, Any]]) -> CreditNote:
    """A Tryton credit note (a customer invoice of negated lines) as the canonical one: what it takes back, as
    positive amounts."""
    credited = invoice_from_rows({**row, "psgw_contract": None}, lines)
    return CreditNote(
        id=to_canonical("credit_note", f"CM-{row['id']}"), external_ids=credited.external_ids,
        invoice_id=to_canonical("invoice", f"INV-{row['psgw_credits']}"), currency=credited.currency,
        lines=[replace(line, quantity=-line.quantity, amount=-line.amount) for line in credited.lines],
        subtotal=-credited.subtotal, tax=-credited.tax, total=-credited.total, issue_date=credited.issue_date)


def invoice_from_rows(row: dict[str, Any], lines: Iterable[dict[str, Any]]) -> Invoice:
    external = {"erp": str(row["id"])}
    if row.get("number"):
        external["erp_number"] = row["number"]
    canonical_lines = []
    for line in lines:
        source_type: InvoiceLineSource = line.get("psgw_source_type") or "time_entry"
        refs = (line.get("psgw_source_refs") or "").split()
        quantity, minutes = plain_decimal(Decimal(str(line["quantity"]))), None
        if source_type == "time_entry" and quantity != quantity.to_integral_value():
            # Hours as Tryton multiplies them (tryton_lines), read back to the minute and shown to the hundredth;
            # whole hours stay as they are (also a retainer's overage line, a quantity of 1 at its amount).
            minutes = minutes_of_row(line["quantity"])
            quantity = -display_hours(-minutes) if minutes < 0 else display_hours(minutes)
        canonical_lines.append(InvoiceLine(
            description=line.get("description") or "", quantity=quantity, minutes=minutes,
            unit_price=money(line["unit_price"]), amount=money(line["amount"]), source_type=source_type,
            source_ids=[source_from_row(source_type, ref) for ref in refs]))
    return Invoice(
        id=to_canonical("invoice", f"INV-{row['id']}"), external_ids=external,
        customer_id=to_canonical("customer", nested(row, "party.code") or ""),
        contract_id=to_canonical("contract", nested(row, "psgw_contract.number") or ""),
        legal_entity_id=to_canonical("legal_entity", nested(row, "company.party.code") or ""),
        currency=nested(row, "currency.code") or "", period=row.get("psgw_period"), lines=canonical_lines,
        subtotal=money(row["untaxed_amount"]), tax=money(row["tax_amount"]), total=money(row["total_amount"]),
        state=INVOICE_STATE[row["state"]], issue_date=row.get("invoice_date"),
    )


def _invoice_key(invoice_id: str) -> int:
    key = to_business_key("invoice", invoice_id)
    if not key.startswith("INV-") or not key[4:].isdigit():
        raise NotFound(f"no invoice {invoice_id!r}", slug="unknown-id")
    return int(key[4:])


def no_revenue_schedules() -> Unprocessable:
    """project_revenue (installed) computes a project's revenue from its timesheets; it keeps no schedule lines to
    read or post into, so revenue schedules are refused plainly rather than pretended."""
    return Unprocessable("the Tryton connector does not support revenue schedules (Tryton keeps none in this module "
                         "set): recognise revenue with the sandbox ERP", slug="not-supported")


class TrytonErp(TrytonRecords):
    # legal entities, periods

    async def list_legal_entities(self, *, cursor: str | None, limit: int) -> Page[LegalEntity]:
        rows, next_cursor = await self.page("company.company", [], ["party.code", "party.name", "currency.code"],
                                            cursor, limit)
        return Page(items=[LegalEntity(
            id=to_canonical("legal_entity", nested(r, "party.code") or ""), external_ids={"erp": str(r["id"])},
            name=nested(r, "party.name") or "",
            # Entity codes are LE-<country>; the demo company has no address country in Tryton.
            country=(nested(r, "party.code") or "").removeprefix("LE-")[:2],
            functional_currency=nested(r, "currency.code") or "") for r in rows], next_cursor=next_cursor)

    async def list_accounting_periods(self, *, legal_entity_id: str | None, period: str | None,
                                      cursor: str | None, limit: int) -> Page[AccountingPeriod]:
        domain: list[Any] = [("type", "=", "standard")]
        if legal_entity_id is not None:
            if not is_canonical("legal_entity", legal_entity_id):
                return Page(items=[])
            domain.append(("fiscalyear.company.party.code", "=", to_business_key("legal_entity", legal_entity_id)))
        if period is not None:
            year = int(period[:4])
            if year < dt.MINYEAR:  # the contract's pattern admits 0000, which no calendar (or period) has
                return Page(items=[])
            domain.append(("start_date", "=", dt.date(year, int(period[5:7]), 1)))
        rows, next_cursor = await self.page("account.period", domain, ["start_date", "state",
                                                                       "fiscalyear.company.party.code"],
                                            cursor, limit, order=(("start_date", "ASC"), ("id", "ASC")))
        return Page(items=[AccountingPeriod(
            legal_entity_id=to_canonical("legal_entity", nested(r, "fiscalyear.company.party.code") or ""),
            period=r["start_date"].strftime("%Y-%m"), status="open" if r["state"] == "open" else "closed")
            for r in rows], next_cursor=next_cursor)

    # customers

    async def list_customers(self, *, name: str | None, cursor: str | None, limit: int) -> Page[Customer]:
        domain: list[Any] = [("psgw_currency", "!=", None)]
        if name:
            domain.append(("name", "ilike", f"%{name}%"))
        rows, next_cursor = await self.page("party.party", domain, CUSTOMER_FIELDS, cursor, limit)
        return Page(items=[customer_from_row(r) for r in rows], next_cursor=next_cursor)

    async def _customer_row(self, code: str) -> dict[str, Any] | None:
        return await self.first("party.party", [("code", "=", code), ("psgw_currency", "!=", None)],
                                CUSTOMER_FIELDS)

    async def get_customer(self, customer_id: str) -> Customer:
        row = await self._customer_row(to_business_key("customer", customer_id))
        if row is None:
            raise NotFound(f"no customer {customer_id!r}", slug="unknown-id")
        return customer_from_row(row)

    async def _currency_id(self, code: str, pointer: str) -> int:
        found = await self.id_of("currency.currency", [("code", "=", code)])
        if found is None:
            raise Unprocessable(f"{VENDOR} has no currency {code}", slug="validation-failed",
                                errors=[FieldError(pointer=pointer, detail=f"{VENDOR} has no currency {code}")])
        return found

    async def _company_id(self, legal_entity_id: str, pointer: str) -> int:
        found = await self.id_of("company.company", [("party.code", "=", reference(
            "legal_entity", legal_entity_id, pointer))])
        if found is None:
            raise unknown_reference("legal_entity", legal_entity_id, pointer)
        return found

    async def _party_id(self, customer_id: str, pointer: str) -> int:
        found = await self.id_of("party.party", [("code", "=", reference("customer", customer_id, pointer))])
        if found is None:
            raise unknown_reference("customer", customer_id, pointer)
        return found

    async def upsert_customer(self, data: CustomerCreate, idempotency_key: str | None) -> tuple[Customer, bool]:
        code = reference("customer", data.id, "/id") if data.id is not None else None
        if code is not None and (existing := await self._customer_row(code)):
            return customer_from_row(existing), False
        crm_ref = data.external_ids.get("crm")
        if crm_ref and (existing := await self.first("party.party", [("psgw_crm_ref", "=", crm_ref)],
                                                     CUSTOMER_FIELDS)):
            return customer_from_row(existing), False
        # Tryton fixes a party's code at creation: a customer without a business key gets a fresh one.
        values = {"name": data.name, "code": code or f"C-{uuid_module.uuid4().hex[:8].upper()}",
                  "psgw_currency": await self._currency_id(data.billing_currency, "/billing_currency"),
                  "psgw_company": await self._company_id(data.legal_entity_id, "/legal_entity_id"),
                  "psgw_tax_region": data.tax_jurisdiction or None, "psgw_crm_ref": crm_ref,
                  "addresses": [["create", [{}]]]}
        created, = await self.rpc.create("party.party", [values], field_map=CUSTOMER_LABELS)
        return customer_from_row((await self.rpc.read("party.party", [created], CUSTOMER_FIELDS))[0]), True

    # contracts

    async def list_contracts(self, *, customer_id: str | None, status: ContractStatus | None, cursor: str | None,
                             limit: int) -> Page[Contract]:
        domain: list[Any] = []
        if status is not None:
            domain.append(("state", "=", status))
        if customer_id is not None:
            if not is_canonical("customer", customer_id):
                return Page(items=[])
            domain.append(("party.code", "=", to_business_key("customer", customer_id)))
        rows, next_cursor = await self.page("psgw.contract", domain, CONTRACT_FIELDS, cursor, limit)
        return Page(items=await contracts_from_rows(self, rows), next_cursor=next_cursor)

    async def _contract_row(self, contract_id: str) -> dict[str, Any]:
        row = await self.first("psgw.contract", [("number", "=", to_business_key("contract", contract_id))],
                               CONTRACT_FIELDS)
        if row is None:
            raise NotFound(f"no contract {contract_id!r}", slug="unknown-id")
        return row

    async def get_contract(self, contract_id: str) -> Contract:
        return await self._contract_by_id((await self._contract_row(contract_id))["id"])

    async def _contract_by_id(self, record_id: int) -> Contract:
        rows = await self.rpc.read("psgw.contract", [record_id], CONTRACT_FIELDS)
        return (await contracts_from_rows(self, rows))[0]

    async def _contract_values(self, values: dict[str, Any], old_lines: list[int] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in values.items():
            if name in ("name", "billing_model", "start_date", "end_date"):
                out[name] = value
            elif name == "nte_amount":
                out["nte_amount"] = value
            elif name == "status":
                out["state"] = value
            elif name == "rate_card_id":
                if value is None:
                    out["rate_card"] = None
                else:
                    card = await self.id_of("psgw.rate_card", [("code", "=", reference(
                        "rate_card", value, "/rate_card_id"))])
                    if card is None:
                        raise unknown_reference("rate_card", value, "/rate_card_id")
                    out["rate_card"] = card
            elif name == "billing_profile":
                profile: BillingProfile = value
                out.update({"invoice_frequency": profile.invoice_frequency,
                            "payment_term_days": profile.payment_terms_days,
                            "scheduled_amount": profile.scheduled_amount})
            elif name == "currency":
                out["currency"] = await self._currency_id(value, "/currency")
            elif name == "total_value":
                out["total_value"] = value
        schedule = values.get("billing_schedule")
        if schedule is not None:  # after billing_profile: the schedule's fee wins
            if schedule.period_fee is not None:
                out["scheduled_amount"] = schedule.period_fee
            out.update({"retainer_hours": schedule.hours_allowance, "unused_hours": schedule.unused_hours})
            out["schedule_lines"] = [*([["delete", old_lines]] if old_lines else []), ["create", [{
                "line_no": line.line_no, "period": line.period, "date": line.date, "amount": line.amount,
                "percent_complete": line.percent_complete, "description": line.description or None}
                for line in schedule.lines]]]
        return out

    async def upsert_contract(self, data: ContractCreate, idempotency_key: str | None) -> tuple[Contract, bool]:
        refuse_expense_markup(data.expense_markup_percent)
        number = reference("contract", data.id, "/id") if data.id is not None else None
        if number is not None and (existing := await self.id_of("psgw.contract", [("number", "=", number)])):
            return await self._contract_by_id(existing), False
        values = await self._contract_values({n: getattr(data, n) for n in data.__struct_fields__})
        values.update({"party": await self._party_id(data.customer_id, "/customer_id"),
                       "company": await self._company_id(data.legal_entity_id, "/legal_entity_id"),
                       "number": number or f"SOW-NEW-{uuid_module.uuid4().hex[:10].upper()}", "revision": 1})
        try:
            created, = await self.rpc.create("psgw.contract", [values], field_map=CONTRACT_LABELS)
        except Unprocessable:
            if number is not None and (existing := await self.id_of("psgw.contract", [("number", "=", number)])):
                return await self._contract_by_id(existing), False  # created meanwhile by a concurrent request
            raise
        if number is None:
            await self.rpc.write("psgw.contract", [created], {"number": f"SOW-{9000 + created}"})
        return await self._contract_by_id(created), True

    async def update_contract(self, contract_id: str, changes: dict[str, object]) -> Contract:
        refuse_expense_markup(changes.pop("expense_markup_percent", None))
        row = await self._contract_row(contract_id)
        values = await self._contract_values(dict(changes), row.get("schedule_lines") or [])
        values["revision"] = (row.get("revision") or 1) + 1  # every amendment is a new revision
        await self.rpc.write("psgw.contract", [row["id"]], values, field_map=CONTRACT_LABELS)
        return await self._contract_by_id(row["id"])

    # project dimensions

    def _dimension(self, row: dict[str, Any]) -> ProjectDimension:
        code = row["psgw_dimension"]
        return ProjectDimension(id=to_canonical("project_dimension", code), external_ids={"erp": str(row["id"])},
                                project_id=to_canonical("project", row["number"]),
                                legal_entity_id=to_canonical("legal_entity", nested(row, "company.party.code") or ""),
                                code=code)

    async def list_project_dimensions(self, *, project_id: str | None, cursor: str | None,
                                      limit: int) -> Page[ProjectDimension]:
        domain: list[Any] = [("type", "=", "project"), ("psgw_dimension", "!=", None)]
        if project_id is not None:
            if not is_canonical("project", project_id):
                return Page(items=[])
            domain.append(("number", "=", to_business_key("project", project_id)))
        rows, next_cursor = await self.page("project.work", domain, ["number", "psgw_dimension",
                                                                     "company.party.code"], cursor, limit)
        return Page(items=[self._dimension(r) for r in rows], next_cursor=next_cursor)

    async def upsert_project_dimension(self, data: ProjectDimensionCreate) -> tuple[ProjectDimension, bool]:
        fields = ["number", "psgw_dimension", "company.party.code"]
        project = await self.first("project.work", [("type", "=", "project"), ("number", "=", reference(
            "project", data.project_id, "/project_id"))], fields)
        if project is None:
            raise unknown_reference("project", data.project_id, "/project_id")
        entity = reference("legal_entity", data.legal_entity_id, "/legal_entity_id")
        taken = await self.first("project.work", [("psgw_dimension", "=", data.code), ("id", "!=", project["id"])],
                                 fields)
        if project.get("psgw_dimension") is None and taken is None and nested(
                project, "company.party.code") == entity:
            await self.rpc.write("project.work", [project["id"]], {"psgw_dimension": data.code})
            return self._dimension({**project, "psgw_dimension": data.code}), True
        if project.get("psgw_dimension") == data.code and nested(project, "company.party.code") == entity:
            return self._dimension(project), False
        existing = self._dimension(project) if project.get("psgw_dimension") else (
            self._dimension(taken) if taken else None)
        raise Conflict("the project already has another dimension, the code belongs to another project, or the "
                       "project is booked in another legal entity", slug="dimension-conflict",
                       existing=existing and {"id": existing.id, "project_id": existing.project_id,
                                              "legal_entity_id": existing.legal_entity_id, "code": existing.code})

    # postings

    async def _posting_for(self, source_type: str, source_ref: str) -> dict[str, Any] | None:
        return await self.first("psgw.posting", [("source_type", "=", source_type), ("source_ref", "=", source_ref),
                                                 ("kind", "=", "posting")], POSTING_FIELDS)

    async def _period_closed(self, company: int, day: dt.date) -> bool:
        period = await self.first("account.period", [("fiscalyear.company", "=", company), ("type", "=", "standard"),
                                                     ("start_date", "<=", day), ("end_date", ">=", day)], ["state"])
        return period is None or period["state"] != "open"

    async def create_posting(self, data: PostingCreate) -> tuple[Posting, bool]:
        source_ref = source_to_row(data.source_type, data.source_id, "/source_id")
        if existing := await self._posting_for(data.source_type, source_ref):
            return posting_from_row(existing), False
        work = await self.id_of("project.work", [("type", "=", "project"), ("number", "=", reference(
            "project", data.project_id, "/project_id"))])
        if work is None:
            raise unknown_reference("project", data.project_id, "/project_id")
        contract = await self.first("psgw.contract", [("number", "=", reference(
            "contract", data.contract_id, "/contract_id"))], ["currency.code"])
        if contract is None:
            raise unknown_reference("contract", data.contract_id, "/contract_id")
        if nested(contract, "currency.code") != data.currency:
            raise Unprocessable(f"the contract bills in {nested(contract, 'currency.code')}",
                                slug="validation-failed", errors=[FieldError(
                                    pointer="/currency", detail="is not the contract's currency")])
        company = await self._company_id(data.legal_entity_id, "/legal_entity_id")
        if await self._period_closed(company, data.work_date):
            raise Unprocessable(f"the accounting period of {data.work_date} is closed (or not open) in {VENDOR}",
                                slug="period-closed", errors=[FieldError(
                                    pointer="/work_date", detail="falls in a closed accounting period")],
                                downstream=VENDOR)
        values = {"source_type": data.source_type, "source_ref": source_ref, "work": work,
                  "contract": contract["id"], "company": company, "date": data.work_date,
                  "quantity": data.quantity if data.minutes is None else hours_to_row(data.minutes),
                  "amount": data.amount,
                  "currency": await self._currency_id(data.currency, "/currency"),
                  "timesheet_line": timesheet_line_of(data.source_type, source_ref)}
        try:
            created, = await self.rpc.create("psgw.posting", [values], field_map=POSTING_LABELS)
        except Unprocessable:
            if existing := await self._posting_for(data.source_type, source_ref):
                return posting_from_row(existing), False  # the unique constraint: posted by a concurrent call
            raise
        return posting_from_row((await self.rpc.read("psgw.posting", [created], POSTING_FIELDS))[0]), True

    async def create_postings(self, items: list[PostingCreate]) -> list[PostingBatchItem]:
        results: list[PostingBatchItem] = []
        for item in items:
            try:
                posting, created = await self.create_posting(item)
            except ProblemError as exc:
                if exc.status >= 500:
                    raise  # Tryton down: the whole batch is retried, nothing is half-reported
                results.append(PostingBatchItem(source_id=item.source_id, status="rejected",
                                                problem=exc.to_problem().to_dict()))
                continue
            results.append(PostingBatchItem(source_id=item.source_id, status="created" if created else "existing",
                                            posting=posting))
        return results

    async def credit_invoice(self, invoice_id: str, data: CreditNoteCreate, idempotency_key: str | None
                             ) -> CreditNote:
        """Tryton's own credit note for the lines asked (``account.invoice`` ``_credit`` and ``post``, in one
        Tryton transaction by the module's ``psgw_credit``): a source is never credited beyond what the invoice
        billed for it, and the same Idempotency-Key answers the same credit note."""
        vendor_id = _invoice_key(invoice_id)
        rows = await self.rpc.search_read("account.invoice", [("id", "=", vendor_id), *INVOICES_ONLY], ["state"])
        if not rows:
            raise NotFound(f"no invoice {invoice_id!r}", slug="unknown-id")
        state = INVOICE_STATE.get(rows[0]["state"], rows[0]["state"])
        if state not in ("posted", "paid"):
            raise Conflict(f"a {state} invoice is not credited", slug="invalid-transition", state=state)
        asked = [{"source_refs": [source_to_row(line.source_type, s, f"/lines/{i}/source_ids/{n}")
                                  for n, s in enumerate(line.source_ids)],
                  "quantity": tryton_lines(line, [], {})[0][0], "unit_price": line.unit_price,
                  "description": line.description}
                 for i, line in enumerate(data.lines)]
        for index, line in enumerate(asked):
            if not line["source_refs"]:
                raise Unprocessable("a credited line names the sources it takes back", slug="validation-failed",
                                    errors=[FieldError(pointer=f"/lines/{index}/source_ids", detail="is empty")])
        try:
            credited = await self.rpc.call("model.account.invoice.psgw_credit", [vendor_id], asked, idempotency_key)
        except Unprocessable as exc:  # a source not billed, or not for that much
            raise Unprocessable(exc.detail or "", slug="validation-failed", downstream=VENDOR,
                                errors=[FieldError(pointer="/lines", detail=exc.detail or "")]) from exc
        return await self._credit_note(int(credited))

    async def _credit_note(self, vendor_id: int) -> CreditNote:
        row, = await self.rpc.read("account.invoice", [vendor_id], INVOICE_FIELDS)
        lines = await self.rpc.search_read("account.invoice.line", [("invoice", "=", vendor_id)],
                                           INVOICE_LINE_FIELDS, order=[("sequence", "ASC"), ("id", "ASC")])
        return credit_note_from_rows(row, lines)

    async def list_credit_notes(self, *, invoice_id: str | None, cursor: str | None,
                                limit: int) -> Page[CreditNote]:
        domain: list[Any] = [("type", "=", "out"), ("psgw_credits", "!=", None)]
        if invoice_id is not None:
            key = to_business_key("invoice", invoice_id) if is_canonical("invoice", invoice_id) else ""
            if not key.startswith("INV-") or not key[4:].isdigit():
                return Page(items=[])
            domain.append(("psgw_credits", "=", int(key[4:])))
        rows, next_cursor = await self.page("account.invoice", domain, ["id"], cursor, limit)
        return Page(items=[await self._credit_note(r["id"]) for r in rows], next_cursor=next_cursor)

    async def reverse_posting(self, posting_id: str, on: dt.date) -> tuple[Posting, bool]:
        """The reversal of a posting: its negative, referencing it, dated ``on`` in an open period, at most once
        (asking again answers the first reversal). ``psgw.posting`` is the module's record (it books no journal
        entry), so the reversal is the module's too: Tryton has no native reversal for it."""
        key = to_business_key("posting", posting_id) if is_canonical("posting", posting_id) else ""
        if not key.startswith("JE-") or not key[3:].isdigit():
            raise NotFound(f"no posting {posting_id!r}", slug="unknown-id")
        rows = await self.rpc.search_read("psgw.posting", [("id", "=", int(key[3:]))],
                                          [*POSTING_FIELDS, "kind", "company", "work", "contract", "currency",
                                           "timesheet_line"])
        if not rows:
            raise NotFound(f"no posting {posting_id!r}", slug="unknown-id")
        original = rows[0]
        if original["kind"] != "posting":
            raise Conflict("a reversal is not reversed", slug="invalid-transition", state="reversal")
        if existing := await self.first("psgw.posting", [("reverses", "=", original["id"])], POSTING_FIELDS):
            return posting_from_row(existing), False
        if await self._period_closed(original["company"], on):
            raise Unprocessable(f"the accounting period of {on} is closed (or not open) in {VENDOR}",
                                slug="period-closed", errors=[FieldError(
                                    pointer="/on", detail="falls in a closed accounting period")], downstream=VENDOR)
        values = {"source_type": original["source_type"], "source_ref": original["source_ref"], "kind": "reversal",
                  "reverses": original["id"], "work": original["work"], "contract": original["contract"],
                  "company": original["company"], "date": on, "quantity": -Decimal(original["quantity"]),
                  "amount": -Decimal(original["amount"]), "currency": original["currency"],
                  "timesheet_line": original["timesheet_line"]}
        try:
            created, = await self.rpc.create("psgw.posting", [values], field_map=POSTING_LABELS)
        except Unprocessable:
            if existing := await self.first("psgw.posting", [("reverses", "=", original["id"])], POSTING_FIELDS):
                return posting_from_row(existing), False  # the unique constraint: reversed by a concurrent call
            raise
        return posting_from_row((await self.rpc.read("psgw.posting", [created], POSTING_FIELDS))[0]), True

    async def list_postings(self, filters: PostingFilter, *, cursor: str | None, limit: int) -> Page[Posting]:
        domain: list[Any] = []
        if filters.from_date is not None:
            domain.append(("date", ">=", filters.from_date))
        if filters.to_date is not None:
            domain.append(("date", "<=", filters.to_date))
        references: tuple[tuple[str | None, Kind, str], ...] = (
            (filters.project_id, "project", "work.number"), (filters.contract_id, "contract", "contract.number"))
        for value, kind, field in references:
            if value is not None:
                if not is_canonical(kind, value):
                    return Page(items=[])
                domain.append((field, "=", to_business_key(kind, value)))
        if filters.source_id is not None:
            source_kind = next((k for k in SOURCE_KINDS.values() if is_canonical(k, filters.source_id)), None)
            domain.append(("source_ref", "=", to_business_key(source_kind, filters.source_id) if source_kind
                           else filters.source_id))
        rows, next_cursor = await self.page("psgw.posting", domain, POSTING_FIELDS, cursor, limit,
                                            order=(("date", "ASC"), ("id", "ASC")))
        return Page(items=[posting_from_row(r) for r in rows], next_cursor=next_cursor)

    # invoices

    async def _invoice(self, invoice_vendor_id: int) -> Invoice:
        rows = await self.rpc.read("account.invoice", [invoice_vendor_id], INVOICE_FIELDS)
        lines = await self.rpc.search_read("account.invoice.line", [("invoice", "=", invoice_vendor_id)],
                                           INVOICE_LINE_FIELDS, order=[("sequence", "ASC"), ("id", "ASC")])
        return invoice_from_rows(rows[0], lines)

    async def _booked_time(self, refs: list[str]) -> dict[str, tuple[int, Decimal]]:
        """Each time entry's net posting (minutes, amount), a reversal netting its original out."""
        if not refs:
            return {}
        rows = await self.rpc.search_read("psgw.posting", [("source_type", "=", "time_entry"),
                                                           ("source_ref", "in", sorted(set(refs)))],
                                          ["source_ref", "quantity", "amount"])
        net: dict[str, tuple[int, Decimal]] = {}
        for row in rows:
            minutes, amount = net.get(row["source_ref"], (0, Decimal(0)))
            net[row["source_ref"]] = (minutes + minutes_of_row(row["quantity"]), amount + money(row["amount"]))
        return net

    async def _revenue_account(self, company: int) -> int:
        found = await self.first("account.account", [("type.revenue", "=", True), ("company", "=", company),
                                                      ("closed", "!=", True)], ["id"])
        if found is None:
            raise Unprocessable(f"{VENDOR} has no revenue account for the legal entity", slug="validation-failed",
                                errors=[FieldError(pointer="/legal_entity_id", detail="has no revenue account")])
        return int(found["id"])

    async def create_invoice(self, data: InvoiceCreate, idempotency_key: str | None) -> Invoice:
        if idempotency_key and (found := await self.id_of("account.invoice",
                                                          [("psgw_request", "=", idempotency_key)])):
            return await self._invoice(found)
        party = await self._party_id(data.customer_id, "/customer_id")
        company = await self._company_id(data.legal_entity_id, "/legal_entity_id")
        contract = await self.id_of("psgw.contract", [("number", "=", reference(
            "contract", data.contract_id, "/contract_id"))])
        if contract is None:
            raise unknown_reference("contract", data.contract_id, "/contract_id")
        receivable = await self._receivable(party)
        journal = await self.id_of("account.journal", [("type", "=", "revenue")])
        revenue = await self._revenue_account(company)
        refs = [[source_to_row(line.source_type, s, f"/lines/{i}/source_ids/{n}") for n, s in
                 enumerate(line.source_ids)] for i, line in enumerate(data.lines)]
        booked = await self._booked_time([r for line, line_refs in zip(data.lines, refs, strict=True)
                                          if line.minutes is not None for r in line_refs])
        lines = [{"type": "line", "description": line.description, "quantity": quantity,
                  "unit_price": line.unit_price, "account": revenue, "psgw_source_type": line.source_type,
                  "psgw_source_refs": " ".join(line_refs), "company": company, "currency": None}
                 for line, all_refs in zip(data.lines, refs, strict=True)
                 for quantity, line_refs in tryton_lines(line, all_refs, booked)]
        currency = await self._currency_id(data.currency, "/currency")
        for line in lines:
            line["currency"] = currency
        created, = await self.rpc.create("account.invoice", [{
            "type": "out", "party": party, "company": company, "currency": currency, "journal": journal,
            "account": receivable, "invoice_address": await self._address(party),
            "psgw_contract": contract, "psgw_period": data.period, "psgw_request": idempotency_key,
            "description": f"{to_business_key('contract', data.contract_id)} {data.period or ''}".strip(),
            "lines": [["create", lines]]}], field_map=INVOICE_LABELS)
        return await self._invoice(created)

    async def _receivable(self, party: int) -> int:
        """The party's receivable account, else the company's default (what Tryton's own form would pick)."""
        own = (await self.rpc.read("party.party", [party], ["account_receivable"]))[0].get("account_receivable")
        if own:
            return int(own)
        config = await self.rpc.read("account.configuration", [1], ["default_account_receivable"])
        default = config[0].get("default_account_receivable") if config else None
        if not default:
            raise Unprocessable(f"{VENDOR} has no receivable account for the customer", slug="validation-failed",
                                errors=[FieldError(pointer="/customer_id", detail="has no receivable account")])
        return int(default)

    async def _address(self, party: int) -> int | None:
        found = await self.id_of("party.address", [("party", "=", party)])
        return found

    async def post_invoice(self, invoice_id: str) -> Invoice:
        vendor_id = _invoice_key(invoice_id)
        rows = await self.rpc.search_read("account.invoice", [("id", "=", vendor_id), *INVOICES_ONLY], ["state"])
        if not rows:
            raise NotFound(f"no invoice {invoice_id!r}", slug="unknown-id")
        state = rows[0]["state"]
        if state == "cancelled":
            raise Conflict("a void invoice cannot be posted", slug="invalid-transition", from_state="void",
                           to_state="posted")
        if state in ("draft", "validated"):
            try:
                await self.rpc.call("model.account.invoice.post", [vendor_id])
            except Unprocessable:
                # Posted meanwhile by the same request sent again (a caller's retry after a timeout, while Tryton
                # was still posting): Tryton refuses to modify a posted invoice; posting is answered as done.
                again = await self.rpc.read("account.invoice", [vendor_id], ["state"])
                if not again or again[0]["state"] not in ("posted", "paid"):
                    raise
        return await self._invoice(vendor_id)

    async def void_invoice(self, invoice_id: str) -> Invoice:
        vendor_id = _invoice_key(invoice_id)
        rows = await self.rpc.search_read("account.invoice", [("id", "=", vendor_id), *INVOICES_ONLY], ["state"])
        if not rows:
            raise NotFound(f"no invoice {invoice_id!r}", slug="unknown-id")
        if rows[0]["state"] in ("draft", "validated"):
            await self.rpc.call("model.account.invoice.cancel", [vendor_id])
        elif rows[0]["state"] != "cancelled":
            raise Conflict(f"a {INVOICE_STATE.get(rows[0]['state'], rows[0]['state'])} invoice cannot be voided",
                           slug="invalid-transition", from_state=INVOICE_STATE.get(rows[0]["state"]),
                           to_state="void")
        return await self._invoice(vendor_id)

    async def get_invoice(self, invoice_id: str) -> Invoice:
        vendor_id = _invoice_key(invoice_id)
        if await self.id_of("account.invoice", [("id", "=", vendor_id), *INVOICES_ONLY]) is None:
            raise NotFound(f"no invoice {invoice_id!r}", slug="unknown-id")
        return await self._invoice(vendor_id)

    async def list_invoices(self, *, contract_id: str | None, state: InvoiceState | None, period: str | None,
                            cursor: str | None, limit: int) -> Page[Invoice]:
        domain: list[Any] = list(INVOICES_ONLY)
        if state is not None:
            domain.append(("state", "in", [k for k, v in INVOICE_STATE.items() if v == state]))
        if period is not None:
            domain.append(("psgw_period", "=", period))
        if contract_id is not None:
            if not is_canonical("contract", contract_id):
                return Page(items=[])
            domain.append(("psgw_contract.number", "=", to_business_key("contract", contract_id)))
        rows, next_cursor = await self.page("account.invoice", domain, ["id"], cursor, limit)
        return Page(items=[await self._invoice(r["id"]) for r in rows], next_cursor=next_cursor)

    async def list_revenue_schedules(self, *, contract_id: str | None, period: str | None, cursor: str | None,
                                     limit: int) -> Page[RevenueSchedule]:
        # An empty list would read as "nothing recognised yet" and plan every period as due: refuse instead.
        raise no_revenue_schedules()

    async def create_revenue_schedule(self, schedule: RevenueScheduleCreate) -> tuple[RevenueSchedule, bool]:
        raise no_revenue_schedules()
