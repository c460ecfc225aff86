"""Sandbox CRM: Salesforce-shaped sObjects over REST.

Dialect: 18-character record ids (``001...`` Account, ``006...`` Opportunity, ``800...`` Contract, custom
``Rate_Card__c`` / ``Rate_Card_Line__c`` and a contract's ``Billing_Schedule_Line__c``), PascalCase standard
fields (``Name``, ``StageName``, ``CloseDate``), ``__c`` custom fields (``Billing_Model__c``), picklist labels
("Closed Won", "Time & Materials"), money as JSON numbers, timestamps like ``2026-10-05T18:00:00.000+0000``.
Every record carries ``SystemModstamp``, the instant of its last change, which a change feed polls
(``WHERE SystemModstamp >= 2026-10-05T18:00:00.000Z``: unquoted datetime literals; ``=``, ``!=``, ``<``,
``<=``, ``>``, ``>=``). Reads: ``GET /sobjects/<Type>/<Id>``, by external id
``GET /sobjects/<Type>/<Field>/<value>``, and a SOQL subset at ``GET /query?q=`` (``SELECT f, ... | FIELDS(ALL)
FROM T [WHERE f = 'v' AND f IN ('a','b') AND f != null] [ORDER BY f [ASC|DESC]] [LIMIT n]``) paged by
``nextRecordsUrl`` (batch size from the ``Sforce-Query-Options: batchSize=N`` header). ``FIELDS(ALL)`` and
``FIELDS(CUSTOM)`` are unbounded field lists, so, as in Salesforce (SOQL and SOSL Reference, "SELECT":
FIELDS()), such a query must carry ``LIMIT n`` with n <= 200 or it is refused with 400 ``MALFORMED_QUERY``
"The SOQL FIELDS function must have a LIMIT of at most 200". Writes: ``PATCH
/sobjects/<Type>/<Id>`` -> 204; changing a contract's terms (rate card, NTE, end date, value) raises its
``Version__c``, as an amendment does. Errors are a JSON array ``[{"message", "errorCode", "fields"}]``.
"""


from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from litestar import Litestar, Request, get, patch
from litestar.exceptions import HTTPException
from litestar.params import FromPath

from sandbox import firm as demo
from sandbox.firm import Firm
from sandbox.salesforce import (
    API,
    AUTH,
    FIELDS_LIMIT,
    LIMITS,
    MAX_BATCH,
    attributes,
    error,
    framework_error,
    get_record,
    malformed,
    query_routes,
    run_query,
    sf_time,
)
from sandbox.salesforce_ids import record_id
from sandbox.store import DocumentStore
from sandbox.vendor_http import VendorError, json_object, parse_date, utc_now, vendor_error_response

__all__ = ["API", "AUTH", "FIELDS_LIMIT", "LIMITS", "MAX_BATCH", "create_app", "malformed", "run_query", "seed",
           "sf_time"]

STAGES = {"prospecting": "Prospecting", "qualification": "Qualification", "proposal": "Proposal/Price Quote",
          "negotiation": "Negotiation/Review", "closed_won": "Closed Won", "closed_lost": "Closed Lost"}
BILLING_MODELS = {"time_and_materials": "Time & Materials", "fixed_fee": "Fixed Fee", "milestone": "Milestone",
                  "retainer": "Retainer"}
CONTRACT_STATUSES = {"draft": "Draft", "active": "Activated", "amendment_pending": "Amendment Pending",
                     "closed": "Expired"}
INVOICE_STATUSES = ("Draft", "Posted", "Paid", "Void")
UNUSED_HOURS_POLICIES = {"expire": "Expire", "carry_forward": "Carry Forward"}
# The sObject types this org serves (Certinia's, sandbox/certinia.py, live in their own sandbox).
OBJECTS = ("Account", "Contract", "Opportunity", "Rate_Card__c", "Rate_Card_Line__c", "Billing_Schedule_Line__c")
EXTERNAL_IDS = {"Account": "AccountNumber", "Opportunity": "Opportunity_Number__c", "Contract": "SOW_Number__c",
                "Rate_Card__c": "Name"}
# What an integration may change, per object; everything else is read-only or system-maintained.
UPDATABLE = {
    "Opportunity": {"StageName", "Amount", "CloseDate", "Name", "Provisioned_Project__c", "Invoice_Status__c",
                    "Signed_Contract__c", "Description"},
    "Account": {"Name", "Tax_Jurisdiction__c"},
    "Contract": {"Status", "EndDate", "NTE_Amount__c", "Rate_Card__c", "Contract_Value__c"},
}
# A change to one of these is an amendment of the contract's terms: its version goes up.
CONTRACT_TERMS = frozenset({"EndDate", "NTE_Amount__c", "Rate_Card__c", "Contract_Value__c"})
NUMBER_FIELDS = frozenset({"Amount", "NTE_Amount__c", "Contract_Value__c"})
PICKLISTS = {"StageName": set(STAGES.values()), "Invoice_Status__c": set(INVOICE_STATUSES),
             "Status": set(CONTRACT_STATUSES.values())}


def money(amount: Decimal | None) -> float | None:
    # Salesforce returns currency fields as JSON numbers (and so does this sandbox, exactly like the real one).
    return float(amount) if amount is not None else None



def _attributes(sobject: str, record_id_: str) -> dict[str, str]:
    return attributes(sobject, record_id_)


def seed(store: DocumentStore, firm: Firm) -> None:
    created = sf_time(dt.datetime.combine(firm.today - dt.timedelta(days=400), dt.time(9), tzinfo=dt.UTC))
    accounts: dict[str, str] = {}
    rows = []
    for index, (number, name, entity, currency, region) in enumerate(demo.CUSTOMERS):
        account_id = record_id("Account", index + 1)
        accounts[number] = account_id
        rows.append((account_id, {
            "attributes": _attributes("Account", account_id), "Id": account_id, "Name": name,
            "AccountNumber": number, "Type": "Customer", "CurrencyIsoCode": currency,
            "BillingCountry": {"LE-US": "United States", "LE-UK": "United Kingdom", "LE-DE": "Germany"}[entity],
            "Legal_Entity__c": entity, "Tax_Jurisdiction__c": region, "CreatedDate": created,
            "LastModifiedDate": created, "SystemModstamp": created,
        }))
    store.put_many("Account", rows)
    cards: dict[str, str] = {}
    lines: list[tuple[str, dict[str, Any]]] = []
    card_rows: list[tuple[str, dict[str, Any]]] = []
    for index, card in enumerate(firm.rate_cards):
        card_id = record_id("Rate_Card__c", index + 1)
        cards[card.code] = card_id
        card_rows.append((card_id, {
            "attributes": _attributes("Rate_Card__c", card_id), "Id": card_id, "Name": card.code,
            "Display_Name__c": card.name, "CurrencyIsoCode": card.currency,
            "Effective_From__c": card.valid_from.isoformat(), "LastModifiedDate": created,
            "SystemModstamp": created,
        }))
        for role, rate in card.rates.items():
            line_id = record_id("Rate_Card_Line__c", len(lines) + 1)
            lines.append((line_id, {
                "attributes": _attributes("Rate_Card_Line__c", line_id), "Id": line_id,
                "Name": f"RCL-{len(lines) + 1:04d}", "Rate_Card__c": card_id,
                "Role__c": role.replace("_", " ").title(), "Hourly_Rate__c": money(rate),
                "Effective_From__c": card.valid_from.isoformat(), "Effective_To__c": None,
            }))
    store.put_many("Rate_Card__c", card_rows)
    store.put_many("Rate_Card_Line__c", lines)
    contracts: dict[str, str] = {}
    contract_rows = []
    schedule_rows: list[tuple[str, dict[str, Any]]] = []
    # Signed contracts of deals not provisioned yet are in the CRM only (the ERP gets them from provisioning).
    for index, c in enumerate([*firm.contracts, *firm.signed_contracts]):
        contract_id = record_id("Contract", index + 1)
        contracts[c.number] = contract_id
        contract_rows.append((contract_id, {
            "attributes": _attributes("Contract", contract_id), "Id": contract_id,
            "ContractNumber": f"{index + 101:08d}", "SOW_Number__c": c.number, "Name": c.name,
            "AccountId": accounts[c.customer], "Status": CONTRACT_STATUSES[c.status],
            "StartDate": c.start.isoformat(), "EndDate": c.end.isoformat(), "CurrencyIsoCode": c.currency,
            "Billing_Model__c": BILLING_MODELS[c.billing_model], "NTE_Amount__c": money(c.nte),
            "Rate_Card__c": cards[c.rate_card], "Legal_Entity__c": c.legal_entity, "Version__c": 1,
            "Invoice_Frequency__c": "Milestone" if c.billing_model == "milestone" else "Monthly",
            "Payment_Terms__c": "Net 30", "Scheduled_Amount__c": money(c.scheduled_amount),
            "Contract_Value__c": money(c.total_value), "Retainer_Hours__c": money(c.retainer_hours),
            "Unused_Hours_Policy__c": UNUSED_HOURS_POLICIES[c.unused_hours],
            "Expense_Markup__c": money(c.expense_markup), "LastModifiedDate": created,
            "SystemModstamp": created,
        }))
        for line_no, (period, amount, percent) in enumerate(c.schedule, start=1):
            line_id = record_id("Billing_Schedule_Line__c", len(schedule_rows) + 1)
            schedule_rows.append((line_id, {
                "attributes": _attributes("Billing_Schedule_Line__c", line_id), "Id": line_id,
                "Name": f"BSL-{len(schedule_rows) + 1:04d}", "Contract__c": contract_id, "Line_Number__c": line_no,
                "Billing_Period__c": period, "Billing_Date__c": None, "Amount__c": money(amount),
                "Percent_Complete__c": money(percent), "Description__c": f"Instalment {line_no} of {len(c.schedule)}",
            }))
    store.put_many("Contract", contract_rows)
    store.put_many("Billing_Schedule_Line__c", schedule_rows)
    projects = {p.contract: p.code for p in firm.projects}
    won_by = {c.opportunity: c.number for c in [*firm.contracts, *firm.signed_contracts]}
    opportunity_rows = []
    for index, o in enumerate(firm.opportunities):
        opportunity_id = record_id("Opportunity", index + 1)
        contract_number = won_by.get(o.number)
        opportunity_rows.append((opportunity_id, {
            "attributes": _attributes("Opportunity", opportunity_id), "Id": opportunity_id, "Name": o.name,
            "Opportunity_Number__c": o.number, "AccountId": accounts[o.customer], "StageName": STAGES[o.stage],
            "Amount": money(o.amount), "CurrencyIsoCode": o.currency, "CloseDate": o.close_date.isoformat(),
            "IsClosed": o.stage.startswith("closed"), "IsWon": o.stage == "closed_won",
            "Billing_Model__c": BILLING_MODELS[o.billing_model], "Legal_Entity__c": o.legal_entity,
            "Rate_Card__c": cards[o.rate_card], "Start_Date__c": o.start.isoformat(),
            "End_Date__c": o.end.isoformat(), "NTE_Amount__c": money(o.nte),
            "Signed_Contract__c": contracts[contract_number] if contract_number else None,
            "Provisioned_Project__c": projects.get(contract_number) if contract_number else None,
            "Invoice_Status__c": None, "Description": None, "LastModifiedDate": created,
            "SystemModstamp": created,
        }))
    store.put_many("Opportunity", opportunity_rows)


# --- records ---------------------------------------------------------------------------------------------------

def _record(store: DocumentStore, sobject: str, key: str) -> dict[str, Any]:
    return get_record(store, sobject, key, OBJECTS)


def _by_external_id(store: DocumentStore, sobject: str, field: str, value: str) -> dict[str, Any]:
    if EXTERNAL_IDS.get(sobject) != field:
        raise error(400, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {field}")
    rows, _ = store.query(sobject, where={field: value}, limit=1)
    if not rows:
        raise error(404, "NOT_FOUND", "The requested resource does not exist")
    return rows[0]


def update_record(store: DocumentStore, sobject: str, key: str, changes: dict[str, Any]) -> None:
    record = _record(store, sobject, key)
    updatable = UPDATABLE.get(sobject, set())
    problems: list[VendorError] = []
    for field, value in changes.items():
        if field not in record:
            raise error(400, "INVALID_FIELD", f"No such column '{field}' on sobject of type {sobject}", [field])
        if field not in updatable:
            raise error(400, "INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {field}. Please "
                        "check the security settings of this field.", [field])
        if field in PICKLISTS and value is not None and value not in PICKLISTS[field]:
            problems.append(error(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                  f"{field}: bad value for restricted picklist field: {value}", [field]))
        if field.endswith(("Date", "Date__c")) and value is not None and parse_date(value) is None:
            problems.append(error(400, "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{field}: value not of required type: "
                                  f"{value}", [field]))
        if field in NUMBER_FIELDS and value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e15):
            problems.append(error(400, "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{field}: value not of required type",
                                  [field]))
        if field == "Rate_Card__c" and (not isinstance(value, str) or store.get("Rate_Card__c", value) is None):
            problems.append(error(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [field]))
        if field == "Signed_Contract__c" and value is not None and (
                not isinstance(value, str) or store.get("Contract", value) is None):
            problems.append(error(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [field]))
    if problems:
        raise VendorError(400, [p.body[0] for p in problems])
    if sobject == "Contract" and any(record[f] != v for f, v in changes.items() if f in CONTRACT_TERMS):
        record["Version__c"] = int(record.get("Version__c") or 1) + 1
    record.update(changes)
    if sobject == "Opportunity" and "StageName" in changes:
        record["IsClosed"] = record["StageName"] in ("Closed Won", "Closed Lost")
        record["IsWon"] = record["StageName"] == "Closed Won"
    record["LastModifiedDate"] = record["SystemModstamp"] = sf_time(utc_now())
    store.put(sobject, record["Id"], record)


def create_app(store: DocumentStore) -> Litestar:
    @get(f"{API}/sobjects/{{sobject:str}}/{{key:str}}")
    async def read_record(sobject: FromPath[str], key: FromPath[str]) -> dict[str, Any]:
        return await store.call(_record, store, sobject, key)

    @get(f"{API}/sobjects/{{sobject:str}}/{{field:str}}/{{value:str}}")
    async def get_by_external_id(sobject: FromPath[str], field: FromPath[str], value: FromPath[str]) -> dict[str,
                                                                                                                Any]:
        return await store.call(_by_external_id, store, sobject, field, value)

    @patch(f"{API}/sobjects/{{sobject:str}}/{{key:str}}", status_code=204)
    async def patch_record(sobject: FromPath[str], key: FromPath[str], request: Request[Any, Any, Any]) -> None:
        changes = await json_object(request, lambda message: error(400, "JSON_PARSER_ERROR", message))
        await store.call(update_record, store, sobject, key, changes)

    return Litestar(
        [*query_routes(store, OBJECTS), read_record, get_by_external_id, patch_record],
        exception_handlers={HTTPException: framework_error, VendorError: vendor_error_response},
        openapi_config=None,
    )
