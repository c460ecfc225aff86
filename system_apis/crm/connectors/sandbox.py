"""CRM adapter for the Salesforce-shaped sandbox (``sandbox/crm.py``): the CRM's sObjects and picklist labels
mapped to the canonical model; the platform (auth, SOQL paging, limits, error arrays) is ``system_apis.salesforce``.

Salesforce sends money as JSON numbers; they are decoded straight to ``Decimal`` (never through float) and
sent back as numbers. Module-level functions are the pure mapping, given the record-id maps in ``CrmKeys``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from contracts.canonical import (
    BillingModel,
    BillingProfile,
    BillingSchedule,
    Contract,
    ContractStatus,
    Customer,
    Opportunity,
    OpportunityStage,
    Page,
    RateCard,
    RateCardLine,
    ScheduleLine,
    UnusedHoursRule,
    role_id,
)
from runtime.problems import NotFound
from system_apis.crm.models import ChangedObject, RecordChange
from system_apis.ids import is_canonical, reference, to_business_key, to_canonical, unknown_reference
from system_apis.money import plain
from system_apis.salesforce import RecordKeys, SalesforceOrg, currency_value, number, soql_datetime, soql_text
from system_apis.vendor_auth import VendorCredentials
from system_apis.vendor_calls import VendorLimits
from system_apis.vendor_keys import KeyMap

VENDOR = "sandbox-crm"
STAGE: dict[str, OpportunityStage] = {"Prospecting": "prospecting", "Qualification": "qualification",
                                      "Proposal/Price Quote": "proposal", "Negotiation/Review": "negotiation",
                                      "Closed Won": "closed_won", "Closed Lost": "closed_lost"}
BILLING_MODEL: dict[str, BillingModel] = {"Time & Materials": "time_and_materials", "Fixed Fee": "fixed_fee",
                                          "Milestone": "milestone", "Retainer": "retainer"}
CONTRACT_STATUS: dict[str, ContractStatus] = {"Draft": "draft", "Activated": "active",
                                              "Amendment Pending": "amendment_pending", "Expired": "closed"}
INVOICE_STATUS = {"Draft": "draft", "Posted": "posted", "Paid": "paid", "Void": "void"}
STAGE_VENDOR = {v: k for k, v in STAGE.items()}
BILLING_MODEL_VENDOR = {v: k for k, v in BILLING_MODEL.items()}
CONTRACT_STATUS_VENDOR = {v: k for k, v in CONTRACT_STATUS.items()}
INVOICE_STATUS_VENDOR = {v: k for k, v in INVOICE_STATUS.items()}
UNUSED_HOURS: dict[str, UnusedHoursRule] = {"Expire": "expire", "Carry Forward": "carry_forward"}
UNUSED_HOURS_VENDOR = {v: k for k, v in UNUSED_HOURS.items()}
OPPORTUNITY_FIELDS = {"StageName": "/stage", "Provisioned_Project__c": "/provisioned_project_id",
                      "Invoice_Status__c": "/invoice_status", "CloseDate": "/close_date", "Amount": "/amount",
                      "Signed_Contract__c": "/signed_contract_ref"}
# What each read selects: explicit field lists, never FIELDS(ALL), which Salesforce refuses without LIMIT <= 200
# (and which would break the day an admin adds a field this mapping does not know).
SELECT = {
    "Account": "Id, AccountNumber, Name, CurrencyIsoCode, Legal_Entity__c, Tax_Jurisdiction__c",
    "Opportunity": "Id, Opportunity_Number__c, AccountId, Name, StageName, Amount, CurrencyIsoCode, CloseDate, "
                   "Billing_Model__c, Legal_Entity__c, Rate_Card__c, Start_Date__c, End_Date__c, NTE_Amount__c, "
                   "Signed_Contract__c, Provisioned_Project__c, Invoice_Status__c",
    "Contract": "Id, SOW_Number__c, AccountId, Legal_Entity__c, Name, CurrencyIsoCode, Billing_Model__c, "
                "NTE_Amount__c, StartDate, EndDate, Status, Version__c, Rate_Card__c, Invoice_Frequency__c, "
                "Payment_Terms__c, Scheduled_Amount__c, Contract_Value__c, Retainer_Hours__c, Unused_Hours_Policy__c, "
                "Expense_Markup__c",
    "Billing_Schedule_Line__c": "Id, Contract__c, Line_Number__c, Billing_Period__c, Billing_Date__c, Amount__c, "
                                "Percent_Complete__c, Description__c",
    "Rate_Card__c": "Id, Name, Display_Name__c, CurrencyIsoCode",
    "Rate_Card_Line__c": "Id, Rate_Card__c, Role__c, Hourly_Rate__c, Effective_From__c, Effective_To__c",
}


def select(sobject: str, rest: str) -> str:
    """SOQL reading ``sobject``'s mapped fields; ``rest`` (WHERE/ORDER BY) holds only values through soql_text."""
    return f"SELECT {SELECT[sobject]} FROM {sobject}{rest}"  # noqa: S608


def money(value: Any, currency: str) -> Decimal | None:
    """A CRM currency number as an exact Decimal in the currency's minor unit (420.0 -> 420.00)."""
    return None if value is None else currency_value(value, currency)


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


# The change feed: per canonical kind, the sObject and the field that carries its business key.
FEED: dict[ChangedObject, tuple[str, str]] = {"opportunity": ("Opportunity", "Opportunity_Number__c"),
                                              "contract": ("Contract", "SOW_Number__c")}


@dataclass
class CrmKeys(RecordKeys):
    """Salesforce record ids against business keys: accounts (number and name), rate cards, contracts."""

    accounts: KeyMap[str] = field(default_factory=KeyMap)
    account_names: dict[str, str] = field(default_factory=dict)
    rate_cards: KeyMap[str] = field(default_factory=KeyMap)
    contracts: KeyMap[str] = field(default_factory=KeyMap)


# --- pure mapping ----------------------------------------------------------------------------------------------

def account_from_vendor(body: dict[str, Any]) -> Customer:
    return Customer(id=to_canonical("customer", body["AccountNumber"]), external_ids={"crm": body["Id"]},
                    name=body["Name"], billing_currency=body["CurrencyIsoCode"],
                    legal_entity_id=to_canonical("legal_entity", body["Legal_Entity__c"]),
                    tax_jurisdiction=body.get("Tax_Jurisdiction__c") or "")


def account_to_vendor(customer: Customer) -> dict[str, Any]:
    return {"Id": customer.external_ids["crm"], "AccountNumber": to_business_key("customer", customer.id),
            "Name": customer.name, "CurrencyIsoCode": customer.billing_currency,
            "Legal_Entity__c": to_business_key("legal_entity", customer.legal_entity_id),
            "Tax_Jurisdiction__c": customer.tax_jurisdiction or None}


def opportunity_from_vendor(body: dict[str, Any], keys: CrmKeys) -> Opportunity:
    account = keys.key("accounts", body["AccountId"])
    return Opportunity(
        id=to_canonical("opportunity", body["Opportunity_Number__c"]), external_ids={"crm": body["Id"]},
        account_id=to_canonical("customer", account), account_name=keys.account_names[body["AccountId"]],
        name=body["Name"], stage=STAGE[body["StageName"]],
        amount=money(body.get("Amount"), body["CurrencyIsoCode"]) or Decimal(0),
        currency=body["CurrencyIsoCode"], close_date=_date(body.get("CloseDate")),
        billing_model=BILLING_MODEL[body["Billing_Model__c"]] if body.get("Billing_Model__c") else None,
        legal_entity_id=to_canonical("legal_entity", body["Legal_Entity__c"]) if body.get("Legal_Entity__c") else None,
        rate_card_id=to_canonical("rate_card", keys.key("rate_cards", body["Rate_Card__c"]))
        if body.get("Rate_Card__c") else None,
        start_date=_date(body.get("Start_Date__c")), end_date=_date(body.get("End_Date__c")),
        nte_amount=money(body.get("NTE_Amount__c"), body["CurrencyIsoCode"]),
        signed_contract_ref=to_canonical("contract", keys.key("contracts", body["Signed_Contract__c"]))
        if body.get("Signed_Contract__c") else None,
        provisioned_project_id=to_canonical("project", body["Provisioned_Project__c"])
        if body.get("Provisioned_Project__c") else None,
        invoice_status=INVOICE_STATUS[body["Invoice_Status__c"]] if body.get(  # type: ignore[arg-type]
            "Invoice_Status__c") else None,
    )


def opportunity_to_vendor(opportunity: Opportunity, keys: CrmKeys) -> dict[str, Any]:
    return {
        "Id": opportunity.external_ids["crm"],
        "Opportunity_Number__c": to_business_key("opportunity", opportunity.id),
        "AccountId": keys.record_id("accounts", to_business_key("customer", opportunity.account_id)),
        "Name": opportunity.name, "StageName": STAGE_VENDOR[opportunity.stage], "Amount": number(opportunity.amount),
        "CurrencyIsoCode": opportunity.currency,
        "CloseDate": opportunity.close_date.isoformat() if opportunity.close_date else None,
        "Billing_Model__c": BILLING_MODEL_VENDOR[opportunity.billing_model] if opportunity.billing_model else None,
        "Legal_Entity__c": to_business_key("legal_entity", opportunity.legal_entity_id)
        if opportunity.legal_entity_id else None,
        "Rate_Card__c": keys.record_id("rate_cards", to_business_key("rate_card", opportunity.rate_card_id))
        if opportunity.rate_card_id else None,
        "Start_Date__c": opportunity.start_date.isoformat() if opportunity.start_date else None,
        "End_Date__c": opportunity.end_date.isoformat() if opportunity.end_date else None,
        "NTE_Amount__c": number(opportunity.nte_amount),
        "Signed_Contract__c": keys.record_id("contracts", to_business_key("contract", opportunity.signed_contract_ref))
        if opportunity.signed_contract_ref else None,
        "Provisioned_Project__c": to_business_key("project", opportunity.provisioned_project_id)
        if opportunity.provisioned_project_id else None,
        "Invoice_Status__c": INVOICE_STATUS_VENDOR[opportunity.invoice_status] if opportunity.invoice_status else None,
    }


def schedule_from_vendor(body: dict[str, Any], lines: Iterable[dict[str, Any]]) -> BillingSchedule:
    currency = body["CurrencyIsoCode"]
    retainer = body.get("Billing_Model__c") == "Retainer"
    hours = body.get("Retainer_Hours__c")
    return BillingSchedule(
        lines=[ScheduleLine(
            line_no=int(line["Line_Number__c"]), amount=money(line["Amount__c"], currency) or Decimal(0),
            period=line.get("Billing_Period__c") or None, date=_date(line.get("Billing_Date__c")),
            percent_complete=None if line.get("Percent_Complete__c") is None
            else plain(Decimal(line["Percent_Complete__c"])), description=line.get("Description__c") or "")
            for line in sorted(lines, key=lambda line: line["Line_Number__c"])],
        period_fee=money(body.get("Scheduled_Amount__c"), currency) if retainer else None,
        hours_allowance=None if hours is None else plain(Decimal(hours)),
        unused_hours=UNUSED_HOURS[body.get("Unused_Hours_Policy__c") or "Expire"],
    )


def contract_from_vendor(body: dict[str, Any], keys: CrmKeys, lines: Iterable[dict[str, Any]] = ()) -> Contract:
    terms = body.get("Payment_Terms__c") or "Net 30"
    return Contract(
        id=to_canonical("contract", body["SOW_Number__c"]), external_ids={"crm": body["Id"]},
        customer_id=to_canonical("customer", keys.key("accounts", body["AccountId"])),
        legal_entity_id=to_canonical("legal_entity", body["Legal_Entity__c"]), name=body["Name"],
        currency=body["CurrencyIsoCode"], billing_model=BILLING_MODEL[body["Billing_Model__c"]],
        nte_amount=money(body.get("NTE_Amount__c"), body["CurrencyIsoCode"]),
        start_date=dt.date.fromisoformat(body["StartDate"]),
        end_date=_date(body.get("EndDate")), status=CONTRACT_STATUS[body["Status"]],
        version=int(body.get("Version__c") or 1),
        rate_card_id=to_canonical("rate_card", keys.key("rate_cards", body["Rate_Card__c"]))
        if body.get("Rate_Card__c") else None,
        billing_profile=BillingProfile(
            invoice_frequency=(body.get("Invoice_Frequency__c") or "Monthly").lower(),  # type: ignore[arg-type]
            payment_terms_days=int(terms.removeprefix("Net ")),
            scheduled_amount=money(body.get("Scheduled_Amount__c"), body["CurrencyIsoCode"]),
        ),
        total_value=money(body.get("Contract_Value__c"), body["CurrencyIsoCode"]),
        billing_schedule=schedule_from_vendor(body, lines),
        expense_markup_percent=None if body.get("Expense_Markup__c") is None
        else plain(Decimal(str(body["Expense_Markup__c"]))),
    )


def contract_to_vendor(contract: Contract, keys: CrmKeys) -> dict[str, Any]:
    return {
        "Id": contract.external_ids["crm"], "SOW_Number__c": to_business_key("contract", contract.id),
        "AccountId": keys.record_id("accounts", to_business_key("customer", contract.customer_id)),
        "Legal_Entity__c": to_business_key("legal_entity", contract.legal_entity_id), "Name": contract.name,
        "CurrencyIsoCode": contract.currency, "Billing_Model__c": BILLING_MODEL_VENDOR[contract.billing_model],
        "NTE_Amount__c": number(contract.nte_amount), "StartDate": contract.start_date.isoformat(),
        "EndDate": contract.end_date.isoformat() if contract.end_date else None,
        "Status": CONTRACT_STATUS_VENDOR[contract.status], "Version__c": contract.version,
        "Rate_Card__c": keys.record_id("rate_cards", to_business_key("rate_card", contract.rate_card_id))
        if contract.rate_card_id else None,
        "Invoice_Frequency__c": contract.billing_profile.invoice_frequency.title(),
        "Payment_Terms__c": f"Net {contract.billing_profile.payment_terms_days}",
        "Scheduled_Amount__c": number(contract.billing_schedule.period_fee
                                      if contract.billing_schedule.period_fee is not None
                                      else contract.billing_profile.scheduled_amount),
        "Contract_Value__c": number(contract.total_value),
        "Retainer_Hours__c": number(contract.billing_schedule.hours_allowance),
        "Unused_Hours_Policy__c": UNUSED_HOURS_VENDOR[contract.billing_schedule.unused_hours],
        "Expense_Markup__c": number(contract.expense_markup_percent),
    }


def schedule_lines_to_vendor(contract: Contract) -> list[dict[str, Any]]:
    return [{"Contract__c": contract.external_ids["crm"], "Line_Number__c": line.line_no,
             "Billing_Period__c": line.period, "Billing_Date__c": line.date.isoformat() if line.date else None,
             "Amount__c": number(line.amount), "Percent_Complete__c": number(line.percent_complete),
             "Description__c": line.description} for line in contract.billing_schedule.lines]


def rate_card_from_vendor(card: dict[str, Any], lines: Iterable[dict[str, Any]]) -> RateCard:
    return RateCard(
        id=to_canonical("rate_card", card["Name"]), external_ids={"crm": card["Id"]},
        name=card["Display_Name__c"], currency=card["CurrencyIsoCode"],
        lines=[RateCardLine(role=role_id(line["Role__c"]),
                            hourly_rate=money(line["Hourly_Rate__c"], card["CurrencyIsoCode"]) or Decimal(0),
                            valid_from=dt.date.fromisoformat(line["Effective_From__c"]),
                            valid_to=_date(line.get("Effective_To__c")))
               for line in lines],
    )


def rate_card_to_vendor(card: RateCard) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    record_id = card.external_ids["crm"]
    return ({"Id": record_id, "Name": to_business_key("rate_card", card.id), "Display_Name__c": card.name,
             "CurrencyIsoCode": card.currency},
            [{"Rate_Card__c": record_id, "Role__c": line.role.replace("_", " ").title(),
              "Hourly_Rate__c": number(line.hourly_rate), "Effective_From__c": line.valid_from.isoformat(),
              "Effective_To__c": line.valid_to.isoformat() if line.valid_to else None} for line in card.lines])


# --- the adapter -----------------------------------------------------------------------------------------------

class SandboxCrm:
    def __init__(self, base_url: str, timeout_seconds: float, *, limits: VendorLimits | None = None,
                 credentials: VendorCredentials | None = None) -> None:
        self._org = SalesforceOrg(VENDOR, base_url, timeout_seconds, limits=limits, credentials=credentials)
        self.keys = CrmKeys()

    async def aclose(self) -> None:
        await self._org.aclose()

    async def _load_accounts(self) -> None:
        for account in await self._org.query_all("SELECT Id, AccountNumber, Name FROM Account"):
            self.keys.accounts.learn(account["AccountNumber"], account["Id"])
            self.keys.account_names[account["Id"]] = account["Name"]

    async def _load_contracts(self) -> None:
        for contract in await self._org.query_all("SELECT Id, SOW_Number__c FROM Contract"):
            self.keys.contracts.learn(contract["SOW_Number__c"], contract["Id"])

    async def _know(self, rows: Iterable[dict[str, Any]]) -> None:
        """Make sure every record id these rows reference is in the id maps (one reload per kind at most)."""
        rows = list(rows)
        if any(r.get("AccountId") and self.keys.accounts.key(r["AccountId"]) is None for r in rows):
            await self._load_accounts()
        if any(r.get("Rate_Card__c") and self.keys.rate_cards.key(r["Rate_Card__c"]) is None for r in rows):
            for card in await self._org.query_all("SELECT Id, Name FROM Rate_Card__c"):
                self.keys.rate_cards.learn(card["Name"], card["Id"])
        if any(r.get("Signed_Contract__c") and self.keys.contracts.key(r["Signed_Contract__c"]) is None
               for r in rows):
            await self._load_contracts()

    async def _by_external_id(self, sobject: str, field_name: str, value: str, what: str) -> dict[str, Any]:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
            raise NotFound(f"no {what} with key {value!r}", slug="unknown-id")
        body: dict[str, Any] = await self._org.call("GET", f"/sobjects/{sobject}/{field_name}/{value}", what=what)
        return body

    # accounts

    async def list_accounts(self, *, cursor: str | None, limit: int) -> Page[Customer]:
        rows, next_cursor = await self._org.query(select("Account", " ORDER BY AccountNumber"), cursor, limit)
        return Page(items=[account_from_vendor(r) for r in rows], next_cursor=next_cursor)

    async def get_account(self, account_id: str) -> Customer:
        number_ = to_business_key("customer", account_id)
        return account_from_vendor(await self._by_external_id("Account", "AccountNumber", number_, "account"))

    # opportunities

    async def list_opportunities(self, *, stage: OpportunityStage | None, cursor: str | None,
                                 limit: int) -> Page[Opportunity]:
        where = f" WHERE StageName = {soql_text(STAGE_VENDOR[stage])}" if stage else ""
        rows, next_cursor = await self._org.query(
            select("Opportunity", f"{where} ORDER BY Opportunity_Number__c"), cursor, limit)
        await self._know(rows)
        return Page(items=[opportunity_from_vendor(r, self.keys) for r in rows], next_cursor=next_cursor)

    async def _opportunity_row(self, opportunity_id: str) -> dict[str, Any]:
        return await self._by_external_id("Opportunity", "Opportunity_Number__c",
                                          to_business_key("opportunity", opportunity_id), "opportunity")

    async def get_opportunity(self, opportunity_id: str) -> Opportunity:
        row = await self._opportunity_row(opportunity_id)
        await self._know([row])
        return opportunity_from_vendor(row, self.keys)

    async def update_opportunity(self, opportunity_id: str, changes: dict[str, object]) -> Opportunity:
        row = await self._opportunity_row(opportunity_id)
        body: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "stage":
                body["StageName"] = STAGE_VENDOR[value]  # type: ignore[index]
            elif name == "provisioned_project_id":
                body["Provisioned_Project__c"] = None if value is None else reference(
                    "project", str(value), "/provisioned_project_id")
            elif name == "invoice_status":
                body["Invoice_Status__c"] = None if value is None else INVOICE_STATUS_VENDOR[str(value)]
            elif name == "close_date":
                body["CloseDate"] = value.isoformat()  # type: ignore[attr-defined]
            elif name == "amount":
                body["Amount"] = number(value)  # type: ignore[arg-type]
            elif name == "signed_contract_ref":
                if value is None:
                    body["Signed_Contract__c"] = None
                else:
                    number_ = reference("contract", str(value), "/signed_contract_ref")
                    if self.keys.contracts.vendor_id(number_) is None:
                        await self._load_contracts()
                    record = self.keys.contracts.vendor_id(number_)
                    if record is None:
                        raise unknown_reference("contract", str(value), "/signed_contract_ref")
                    body["Signed_Contract__c"] = record
        if body:
            await self._org.call("PATCH", f"/sobjects/Opportunity/{row['Id']}", json=body, what="opportunity",
                             field_map=OPPORTUNITY_FIELDS)
        return await self.get_opportunity(opportunity_id)

    # contracts and rate cards

    async def list_contracts(self, *, account_id: str | None, status: ContractStatus | None, cursor: str | None,
                             limit: int) -> Page[Contract]:
        conditions = []
        if account_id is not None:
            if not is_canonical("customer", account_id):
                return Page(items=[])
            number_ = to_business_key("customer", account_id)
            if self.keys.accounts.vendor_id(number_) is None:
                await self._load_accounts()
            record = self.keys.accounts.vendor_id(number_)
            if record is None:
                return Page(items=[])
            conditions.append(f"AccountId = {soql_text(record)}")
        if status is not None:
            conditions.append(f"Status = {soql_text(CONTRACT_STATUS_VENDOR[status])}")
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        # SOQL, not SQL: every value in it went through soql_text (quoted and escaped).
        rows, next_cursor = await self._org.query(select("Contract", f"{where} ORDER BY SOW_Number__c"),
                                              cursor, limit)
        return Page(items=await self._contracts(rows), next_cursor=next_cursor)

    async def get_contract(self, contract_id: str) -> Contract:
        if not is_canonical("contract", contract_id):
            raise NotFound(f"no contract {contract_id!r}", slug="unknown-id")
        row = await self._by_external_id("Contract", "SOW_Number__c", to_business_key("contract", contract_id),
                                         "contract")
        return (await self._contracts([row]))[0]

    async def _contracts(self, rows: list[dict[str, Any]]) -> list[Contract]:
        """Contracts with their billing schedule lines (one query for the page)."""
        await self._know(rows)
        lines: dict[str, list[dict[str, Any]]] = {row["Id"]: [] for row in rows}
        if rows:
            in_list = ", ".join(soql_text(row["Id"]) for row in rows)
            soql = select("Billing_Schedule_Line__c", f" WHERE Contract__c IN ({in_list}) ORDER BY Name")
            for line in await self._org.query_all(soql):
                lines[line["Contract__c"]].append(line)
        return [contract_from_vendor(row, self.keys, lines[row["Id"]]) for row in rows]

    async def _lines(self, card_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        lines: dict[str, list[dict[str, Any]]] = {card_id: [] for card_id in card_ids}
        if card_ids:
            in_list = ", ".join(soql_text(c) for c in card_ids)
            soql = select("Rate_Card_Line__c", f" WHERE Rate_Card__c IN ({in_list}) ORDER BY Name")
            for line in await self._org.query_all(soql):
                lines[line["Rate_Card__c"]].append(line)
        return lines

    async def list_rate_cards(self, *, cursor: str | None, limit: int) -> Page[RateCard]:
        rows, next_cursor = await self._org.query(select("Rate_Card__c", " ORDER BY Name"), cursor, limit)
        lines = await self._lines([r["Id"] for r in rows])
        return Page(items=[rate_card_from_vendor(r, lines[r["Id"]]) for r in rows], next_cursor=next_cursor)

    async def get_rate_card(self, rate_card_id: str) -> RateCard:
        card = await self._by_external_id("Rate_Card__c", "Name", to_business_key("rate_card", rate_card_id),
                                          "rate card")
        lines = await self._lines([card["Id"]])
        return rate_card_from_vendor(card, lines[card["Id"]])

    # the change feed

    async def changes(self, *, object_: ChangedObject, since: dt.datetime, cursor: str | None,
                      limit: int) -> Page[RecordChange]:
        sobject, key_field = FEED[object_]
        # SOQL, not SQL: the only value in it is a datetime this adapter formatted.
        soql = (f"SELECT Id, {key_field}, SystemModstamp FROM {sobject} "  # noqa: S608
                f"WHERE SystemModstamp >= {soql_datetime(since)} ORDER BY SystemModstamp")
        rows, next_cursor = await self._org.query(soql, cursor, limit)
        return Page(items=[RecordChange(object=object_, id=to_canonical(object_, row[key_field]),
                                        modified_at=_instant(row["SystemModstamp"])) for row in rows],
                    next_cursor=next_cursor)
