"""Sandbox PSA in Certinia's dialect: Certinia PSA (formerly FinancialForce PSA, namespace ``pse``) managed-package
custom objects in a Salesforce org, over Salesforce REST and SOQL.

What it imitates. The objects and fields of Certinia's PSA object reference as integrations use them (Certinia
"PSA Object Reference"; FinancialForce PSA "Timecard Header" / "Assignment" / "Project" / "Milestone" /
"Expense" fields; checked against public integrations that query these objects): resources are ``Contact``
records (``pse__Is_Resource__c``, ``pse__Is_Resource_Active__c``, ``pse__Resource_Role__c``); ``pse__Proj__c``
(``pse__Project_ID__c``, ``pse__Account__c``, ``pse__Stage__c`` Planned / In Progress / On Hold / Completed,
``pse__Billing_Type__c``, ``pse__Is_Active__c``, ``pse__Closed_for_Time_Entry__c``, ``pse__Planned_Hours__c``,
``pse__Project_Manager__c``, ``pse__Start_Date__c``, ``pse__End_Date__c``); ``pse__Project_Task__c``
(``pse__Project__c``); ``pse__Assignment__c`` (``pse__Resource__c`` a Contact, ``pse__Project__c``,
``pse__Role__c``, ``pse__Bill_Rate__c``, ``pse__Start_Date__c``/``pse__End_Date__c``, ``pse__Status__c`` Tentative /
Scheduled / Closed); ``pse__Timecard_Header__c`` (one resource, project and week: ``pse__Start_Date__c`` the week's
Monday, ``pse__End_Date__c`` its Sunday, ``pse__Monday_Hours__c`` ... ``pse__Sunday_Hours__c`` and the matching
``..._Notes__c``, ``pse__Timecard_Notes__c``, ``pse__Total_Hours__c`` (read-only sum), ``pse__Status__c`` Saved /
Submitted / Approved / Rejected, ``pse__Submitted__c``, ``pse__Approved__c``, ``pse__Approver__c``,
``pse__Billable__c``, ``pse__Billed__c``, ``pse__Invoiced__c``, ``pse__Assignment__c``); ``pse__Milestone__c``
(``pse__Project__c``, ``pse__Milestone_Amount__c``, ``pse__Target_Date__c``, ``pse__Status__c`` Open / Complete /
Approved, ``pse__Approved__c``, ``pse__Invoiced__c``); ``pse__Expense__c`` (``pse__Resource__c``,
``pse__Project__c``, ``pse__Expense_Date__c``, ``pse__Amount__c``, ``CurrencyIsoCode``, ``pse__Type__c``,
``pse__Billable__c``, ``pse__Status__c`` Draft / Submitted / Approved / Rejected, ``pse__Billed__c``,
``pse__Invoiced__c``); ``Account`` (the same org's customers, the CRM sandbox's ids).

Fields without the ``pse__`` namespace are the org's own custom fields that the integration installs beside the
managed package (as every Certinia customer does): business keys (``Employee_Number__c``, ``SOW_Number__c``,
``Legal_Entity__c``, ``Business_Unit__c``, ``Task_Code__c``, ``Milestone_Number__c``), the unique external id
``External_Ref__c`` on timecards and expenses, and a timecard's correction chain and audit (``Version__c``,
``Supersedes__c``, ``Superseded_By__c``, ``Work_Date__c``, ``Submitted_At__c``, ``Approved_At__c``,
``Rejection_Note__c``, ``Activity_Type__c``, ``Project_Task__c``).

What Certinia enforces here whoever calls (its triggers and validation rules): the timecard status flow (Saved ->
Submitted -> Approved | Rejected, Rejected -> Saved | Submitted, Submitted -> Saved), approved timecards locked
(only ``pse__Billed__c`` then ``pse__Invoiced__c`` and, once, ``Superseded_By__c`` change), only Saved or Rejected
timecards deleted, no time on a project closed for time entry, a timecard's week from Monday to Sunday, 0..24 hours
a day kept to two decimals (Salesforce rounds a number to its field's scale), a task of the timecard's project, and
the milestone and assignment flows. Refusals are Salesforce's error array, 400 ``FIELD_CUSTOM_VALIDATION_EXCEPTION``
(validation rule), ``REQUIRED_FIELD_MISSING``, ``INVALID_CROSS_REFERENCE_KEY``, ``DUPLICATE_VALUE`` ("duplicate value
found: External_Ref__c duplicates value on record with id: ...").

Wire (Salesforce REST API Developer Guide): ``GET/PATCH/DELETE /sobjects/<T>/<Id>``, ``POST /sobjects/<T>`` -> 201
``{"id", "success", "errors"}``, ``PATCH /composite/sobjects`` (sObject Collections, up to 200 records, per-record
results, ``allOrNone``), ``POST /composite`` (up to 25 subrequests, ``allOrNone``, ``@{ref.id}`` references), SOQL
at ``/query`` (sandbox/salesforce.py), the JWT bearer flow and the org's daily API limit with ``Sforce-Limit-Info``.

Not imitated: resource requests, schedules (``pse__Schedule__c``), timecard splits (``pse__Timecard__c``), billing
events, work calendars (the week always starts on Monday), approval processes (a status change is one update),
field-level security, relationship queries (``pse__Project__r.Name``) and SOQL beyond the shared subset.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from litestar import Litestar, Request, delete, get, patch, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.response import Response

from sandbox import firm as demo
from sandbox.firm import Firm
from sandbox.salesforce import (
    API,
    AUTH,
    LIMITS,
    attributes,
    error,
    framework_error,
    get_record,
    query_routes,
    sf_time,
)
from sandbox.salesforce_ids import is_record_id, record_id
from sandbox.store import DocumentStore
from sandbox.vendor_http import VendorError, json_object, parse_date, utc_now, vendor_error_response

__all__ = ["AUTH", "LIMITS", "OBJECTS", "create_app", "seed"]

PROJECT_STAGES = {"planned": "Planned", "active": "In Progress", "on_hold": "On Hold", "closed": "Completed"}
BILLING_TYPES = {
    "time_and_materials": "Time and Materials",
    "fixed_fee": "Fixed Price",
    "milestone": "Milestone",
    "retainer": "Retainer",
}
ASSIGNMENT_STATUSES = {"proposed": "Tentative", "confirmed": "Scheduled", "ended": "Closed"}
TIMECARD_STATUSES = ("Saved", "Submitted", "Approved", "Rejected")
EXPENSE_STATUSES = ("Draft", "Submitted", "Approved", "Rejected")
MILESTONE_STATUSES = ("Open", "Complete", "Approved")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
HOURS_FIELDS = tuple(f"pse__{day}_Hours__c" for day in DAYS)
NOTES_FIELDS = tuple(f"pse__{day}_Notes__c" for day in DAYS)

TIMECARD_FLOW = {
    "Saved": {"Submitted"},
    "Submitted": {"Approved", "Rejected", "Saved"},
    "Rejected": {"Saved", "Submitted"},
    "Approved": set(),
}
EXPENSE_FLOW = {
    "Draft": {"Submitted"},
    "Submitted": {"Approved", "Rejected", "Draft"},
    "Rejected": {"Draft", "Submitted"},
    "Approved": set(),
}
ASSIGNMENT_FLOW = {"Tentative": {"Scheduled", "Closed"}, "Scheduled": {"Closed"}, "Closed": set()}
MILESTONE_FLOW = {"Open": {"Complete"}, "Complete": {"Approved"}, "Approved": set()}
EDITABLE = {"Saved", "Rejected"}
COLLECTION_MAX = 200  # sObject Collections: records per call
COMPOSITE_MAX = 25  # composite: subrequests per call

# Field kinds: "s" text, "d" date, "t" datetime, "n" number, "b" checkbox, "p:<values>" picklist, "r:<Type>" lookup.
# Flags: "c" createable, "u" updateable, "q" required on create.
_T = dict[str, tuple[str, str]]
SCHEMA: dict[str, _T] = {
    "Account": {"Name": ("s", ""), "AccountNumber": ("s", "")},
    "Contact": {
        "Name": ("s", ""),
        "Email": ("s", ""),
        "Employee_Number__c": ("s", ""),
        "pse__Is_Resource__c": ("b", ""),
        "pse__Is_Resource_Active__c": ("b", ""),
        "pse__Resource_Role__c": ("s", ""),
    },
    "pse__Proj__c": {
        "Name": ("s", "cuq"),
        "pse__Project_ID__c": ("s", ""),
        "pse__Account__c": ("r:Account", "cuq"),
        "pse__Stage__c": ("p:" + "|".join(PROJECT_STAGES.values()), "cu"),
        "pse__Billing_Type__c": ("p:" + "|".join(BILLING_TYPES.values()), "cuq"),
        "pse__Is_Active__c": ("b", "cu"),
        "pse__Closed_for_Time_Entry__c": ("b", "cu"),
        "pse__Planned_Hours__c": ("n", "cu"),
        "pse__Project_Manager__c": ("r:Contact", "cu"),
        "pse__Start_Date__c": ("d", "cu"),
        "pse__End_Date__c": ("d", "cu"),
        "SOW_Number__c": ("s", "cuq"),
        "Legal_Entity__c": ("s", "cuq"),
        "Business_Unit__c": ("s", "cu"),
        "CurrencyIsoCode": ("s", "c"),
    },
    "pse__Project_Task__c": {
        "Name": ("s", "cuq"),
        "pse__Project__c": ("r:pse__Proj__c", "cq"),
        "Task_Code__c": ("s", ""),
        "Billable__c": ("b", "cu"),
    },
    "pse__Assignment__c": {
        "pse__Resource__c": ("r:Contact", "cq"),
        "pse__Project__c": ("r:pse__Proj__c", "cq"),
        "pse__Role__c": ("s", "cuq"),
        "pse__Bill_Rate__c": ("n", "cu"),
        "pse__Start_Date__c": ("d", "cuq"),
        "pse__End_Date__c": ("d", "cu"),
        "pse__Status__c": ("p:" + "|".join(ASSIGNMENT_FLOW), "cu"),
        "Hours_Per_Week__c": ("n", "cuq"),
        "pse__Is_Billable__c": ("b", "cu"),
    },
    "pse__Timecard_Header__c": {
        "pse__Resource__c": ("r:Contact", "cq"),
        "pse__Project__c": ("r:pse__Proj__c", "cq"),
        "pse__Assignment__c": ("r:pse__Assignment__c", "c"),
        "Project_Task__c": ("r:pse__Project_Task__c", "cu"),
        "pse__Start_Date__c": ("d", "cuq"),
        "pse__End_Date__c": ("d", "cuq"),
        "Work_Date__c": ("d", "cu"),
        **{f: ("n", "cu") for f in HOURS_FIELDS},
        **{f: ("s", "cu") for f in NOTES_FIELDS},
        "pse__Timecard_Notes__c": ("s", "cu"),
        "pse__Total_Hours__c": ("n", ""),
        "pse__Status__c": ("p:" + "|".join(TIMECARD_STATUSES), "cu"),
        "pse__Submitted__c": ("b", "cu"),
        "pse__Approved__c": ("b", "cu"),
        "pse__Approver__c": ("r:Contact", "cu"),
        "pse__Billable__c": ("b", "cu"),
        "pse__Billed__c": ("b", "u"),
        "pse__Invoiced__c": ("b", "u"),
        "External_Ref__c": ("s", "c"),
        "Version__c": ("n", "c"),
        "Supersedes__c": ("r:pse__Timecard_Header__c", "c"),
        "Superseded_By__c": ("r:pse__Timecard_Header__c", "u"),
        "Submitted_At__c": ("t", "cu"),
        "Approved_At__c": ("t", "cu"),
        "Rejection_Note__c": ("s", "cu"),
        "Activity_Type__c": ("p:Work|Travel", "cu"),
    },
    "pse__Milestone__c": {
        "Name": ("s", ""),
        "Milestone_Number__c": ("s", ""),
        "pse__Project__c": ("r:pse__Proj__c", ""),
        "pse__Milestone_Amount__c": ("n", ""),
        "CurrencyIsoCode": ("s", ""),
        "pse__Target_Date__c": ("d", ""),
        "pse__Status__c": ("p:" + "|".join(MILESTONE_STATUSES), "u"),
        "pse__Approved__c": ("b", "u"),
        "pse__Invoiced__c": ("b", "u"),
        "Accepted_On__c": ("d", "u"),
    },
    "pse__Expense__c": {
        "pse__Resource__c": ("r:Contact", "cq"),
        "pse__Project__c": ("r:pse__Proj__c", "cq"),
        "pse__Expense_Date__c": ("d", "cq"),
        "pse__Amount__c": ("n", "cq"),
        "CurrencyIsoCode": ("s", "cq"),
        "pse__Type__c": ("s", "cq"),
        "pse__Billable__c": ("b", "c"),
        "pse__Status__c": ("p:" + "|".join(EXPENSE_STATUSES), "cu"),
        "pse__Billed__c": ("b", "cu"),
        "pse__Invoiced__c": ("b", "cu"),
        "Receipt_Ref__c": ("s", "c"),
        "External_Ref__c": ("s", "cq"),
    },
}
OBJECTS = tuple(SCHEMA)
# Record names Certinia numbers itself (auto-number fields with a display format).
AUTO_NAMES = {"pse__Assignment__c": "ASG-", "pse__Timecard_Header__c": "TC-", "pse__Expense__c": "EX-W"}
UNIQUE = {
    "pse__Timecard_Header__c": ("External_Ref__c",),
    "pse__Expense__c": ("External_Ref__c",),
    "pse__Proj__c": ("pse__Project_ID__c",),
}


def _validation(message: str, fields: list[str] | None = None) -> VendorError:
    return error(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", message, fields)


def _at(day: dt.date, hour: int) -> str:
    return sf_time(dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC))


def week_of(day: dt.date) -> tuple[dt.date, dt.date]:
    monday = day - dt.timedelta(days=day.weekday())
    return monday, monday + dt.timedelta(days=6)


def _stamped(sobject: str, record_id_: str, fields: dict[str, Any], moment: str) -> dict[str, Any]:
    return {
        "attributes": attributes(sobject, record_id_),
        "Id": record_id_,
        **fields,
        "CreatedDate": moment,
        "LastModifiedDate": moment,
        "SystemModstamp": moment,
    }


def _hours(minutes: int) -> float:
    return float((Decimal(minutes) / 60).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def seed(store: DocumentStore, firm: Firm) -> None:
    created = _at(firm.today - dt.timedelta(days=400), 9)
    accounts = {}
    for index, (number, name, *_rest) in enumerate(demo.CUSTOMERS):
        account_id = record_id("Account", index + 1)  # the CRM sandbox's ids: one org
        accounts[number] = account_id
        store.put(
            "Account", account_id, _stamped("Account", account_id, {"Name": name, "AccountNumber": number}, created)
        )
    contacts: dict[str, str] = {}
    for index, worker in enumerate(firm.workers):
        contact_id = record_id("Contact", index + 1)
        contacts[worker.number] = contact_id
        store.put(
            "Contact",
            contact_id,
            _stamped(
                "Contact",
                contact_id,
                {
                    "Name": worker.name,
                    "Email": worker.email,
                    "Employee_Number__c": worker.number,
                    "pse__Is_Resource__c": True,
                    "pse__Is_Resource_Active__c": worker.status == "active",
                    "pse__Resource_Role__c": worker.role.replace("_", " ").title(),
                },
                created,
            ),
        )
    contracts = {c.number: c for c in firm.contracts}
    cards = {card.code: card for card in firm.rate_cards}
    projects: dict[str, str] = {}
    tasks: dict[str, str] = {}
    for index, project in enumerate(firm.projects):
        project_id = record_id("pse__Proj__c", index + 1)
        projects[project.code] = project_id
        store.put(
            "pse__Proj__c",
            project_id,
            _stamped(
                "pse__Proj__c",
                project_id,
                {
                    "Name": project.name,
                    "pse__Project_ID__c": project.code,
                    "pse__Account__c": accounts[project.customer],
                    "pse__Stage__c": PROJECT_STAGES[project.status],
                    "pse__Billing_Type__c": BILLING_TYPES[project.billing_model],
                    "pse__Is_Active__c": project.status == "active",
                    "pse__Closed_for_Time_Entry__c": project.status == "closed",
                    "pse__Planned_Hours__c": project.budget_hours,
                    "pse__Project_Manager__c": contacts[project.manager],
                    "pse__Start_Date__c": project.start.isoformat(),
                    "pse__End_Date__c": project.end.isoformat(),
                    "SOW_Number__c": project.contract,
                    "Legal_Entity__c": project.legal_entity,
                    "Business_Unit__c": project.business_unit,
                    "CurrencyIsoCode": contracts[project.contract].currency if project.contract in contracts else "USD",
                },
                created,
            ),
        )
        for code, name, billable in project.tasks:
            task_id = record_id("pse__Project_Task__c", len(tasks) + 1)
            tasks[code] = task_id
            store.put(
                "pse__Project_Task__c",
                task_id,
                _stamped(
                    "pse__Project_Task__c",
                    task_id,
                    {"Name": name, "pse__Project__c": project_id, "Task_Code__c": code, "Billable__c": billable},
                    created,
                ),
            )
    assignments: dict[tuple[str, str], str] = {}
    by_code = {p.code: p for p in firm.projects}
    for index, a in enumerate(firm.assignments):
        assignment_id = record_id("pse__Assignment__c", index + 1)
        assignments.setdefault((a.worker, a.project), assignment_id)
        contract = contracts.get(by_code[a.project].contract)
        rate = cards[contract.rate_card].rates.get(a.role) if contract else None
        store.put(
            "pse__Assignment__c",
            assignment_id,
            _stamped(
                "pse__Assignment__c",
                assignment_id,
                {
                    "Name": a.number,
                    "pse__Resource__c": contacts[a.worker],
                    "pse__Project__c": projects[a.project],
                    "pse__Role__c": a.role.replace("_", " ").title(),
                    "pse__Bill_Rate__c": float(rate) if rate else None,
                    "pse__Start_Date__c": a.start.isoformat(),
                    "pse__End_Date__c": a.end.isoformat(),
                    "pse__Status__c": ASSIGNMENT_STATUSES[a.status],
                    "Hours_Per_Week__c": a.hours_per_week,
                    "pse__Is_Billable__c": True,
                },
                created,
            ),
        )
    managers = {p.code: p.manager for p in firm.projects}
    rows = []
    for index, entry in enumerate(firm.time_entries):
        timecard_id = record_id("pse__Timecard_Header__c", index + 1)
        rows.append(
            (
                timecard_id,
                _seed_timecard(
                    timecard_id, entry, contacts, projects, tasks, assignments, contacts[managers[entry.project]]
                ),
            )
        )
    store.put_many("pse__Timecard_Header__c", rows)
    store.put_many(
        "pse__Expense__c",
        [
            (
                expense_id := record_id("pse__Expense__c", index + 1),
                _stamped(
                    "pse__Expense__c",
                    expense_id,
                    {
                        "Name": e.number,
                        "pse__Resource__c": contacts[e.worker],
                        "pse__Project__c": projects[e.project],
                        "pse__Expense_Date__c": e.expense_date.isoformat(),
                        "pse__Amount__c": float(e.amount),
                        "CurrencyIsoCode": e.currency,
                        "pse__Type__c": e.category.title(),
                        "pse__Billable__c": e.billable,
                        "pse__Status__c": {"draft": "Draft", "submitted": "Submitted", "rejected": "Rejected"}.get(
                            e.state, "Approved"
                        ),
                        "pse__Billed__c": e.state in ("posted", "invoiced"),
                        "pse__Invoiced__c": e.state == "invoiced",
                        "Receipt_Ref__c": e.receipt,
                        "External_Ref__c": None,
                    },
                    _at(e.expense_date, 18),
                ),
            )
            for index, e in enumerate(firm.expenses)
        ],
    )
    store.put_many(
        "pse__Milestone__c",
        [
            (
                milestone_id := record_id("pse__Milestone__c", index + 1),
                _stamped(
                    "pse__Milestone__c",
                    milestone_id,
                    {
                        "Name": m.name,
                        "Milestone_Number__c": m.number,
                        "pse__Project__c": projects[m.project],
                        "pse__Milestone_Amount__c": float(m.amount),
                        "CurrencyIsoCode": m.currency,
                        "pse__Target_Date__c": m.due.isoformat(),
                        "pse__Status__c": {"pending": "Open", "completed": "Complete"}.get(m.state, "Approved"),
                        "pse__Approved__c": m.state in ("accepted", "invoiced"),
                        "pse__Invoiced__c": m.state == "invoiced",
                        "Accepted_On__c": m.accepted.isoformat() if m.accepted else None,
                    },
                    created,
                ),
            )
            for index, m in enumerate(firm.milestones)
        ],
    )
    # Auto numbers and record ids continue after the seeded records.
    store.reserve("pse__Timecard_Header__c", len(firm.time_entries) + 1)
    store.reserve("pse__Timecard_Header__c:name", 100001 + len(firm.time_entries))
    store.reserve("pse__Assignment__c", len(firm.assignments) + 1)
    store.reserve("pse__Assignment__c:name", 6001 + len(firm.assignments))
    store.reserve("pse__Expense__c", len(firm.expenses) + 1)
    store.reserve("pse__Expense__c:name", 1)
    store.reserve("pse__Proj__c", len(firm.projects) + 1)
    store.reserve("pse__Proj__c:code", 4001 + len(firm.projects))
    store.reserve("pse__Project_Task__c", len(tasks) + 1)


def _seed_timecard(
    timecard_id: str,
    entry: demo.TimeEntry,
    contacts: dict[str, str],
    projects: dict[str, str],
    tasks: dict[str, str],
    assignments: dict[tuple[str, str], str],
    approver: str,
) -> dict[str, Any]:
    start, end = week_of(entry.work_date)
    state = entry.state
    submitted = state != "draft"
    approved = state in ("approved", "posted", "invoiced")
    day = entry.work_date.weekday()
    modified = (
        _at(entry.work_date + dt.timedelta(days=3), 10)
        if approved
        else _at(entry.work_date + dt.timedelta(days=1), 9)
        if submitted
        else _at(entry.work_date, 18)
    )
    return _stamped(
        "pse__Timecard_Header__c",
        timecard_id,
        {
            "Name": entry.number,
            "pse__Resource__c": contacts[entry.worker],
            "pse__Project__c": projects[entry.project],
            "pse__Assignment__c": assignments.get((entry.worker, entry.project)),
            "Project_Task__c": tasks[entry.task],
            "pse__Start_Date__c": start.isoformat(),
            "pse__End_Date__c": end.isoformat(),
            "Work_Date__c": entry.work_date.isoformat(),
            **{f: (_hours(entry.minutes) if i == day else 0.0) for i, f in enumerate(HOURS_FIELDS)},
            **{f: (entry.notes if i == day else None) for i, f in enumerate(NOTES_FIELDS)},
            "pse__Timecard_Notes__c": None,
            "pse__Total_Hours__c": _hours(entry.minutes),
            "pse__Status__c": {"draft": "Saved", "submitted": "Submitted", "rejected": "Rejected"}.get(
                state, "Approved"
            ),
            "pse__Submitted__c": submitted,
            "pse__Approved__c": approved,
            "pse__Approver__c": approver if approved else None,
            "pse__Billable__c": entry.billable,
            "pse__Billed__c": state in ("posted", "invoiced"),
            "pse__Invoiced__c": state == "invoiced",
            "External_Ref__c": None,
            "Version__c": 1,
            "Supersedes__c": None,
            "Superseded_By__c": None,
            "Submitted_At__c": _at(entry.work_date + dt.timedelta(days=1), 9) if submitted else None,
            "Approved_At__c": _at(entry.work_date + dt.timedelta(days=3), 10) if approved else None,
            "Rejection_Note__c": None,
            "Activity_Type__c": "Work",
        },
        modified,
    )


# --- field checks (Salesforce's own) -----------------------------------------------------------------------------


def _check_value(store: DocumentStore, sobject: str, field: str, value: Any) -> Any:
    """The value as stored, or the Salesforce error for it (numbers are rounded to the field's scale)."""
    kind, _ = SCHEMA[sobject][field]
    if value is None:
        return None
    wrong = error(400, "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{field}: value not of required type: {value}", [field])
    if kind == "s":
        if not isinstance(value, str) or len(value) > 32_768:
            raise wrong
        return value
    if kind == "b":
        if not isinstance(value, bool):
            raise wrong
        return value
    if kind == "d":
        if parse_date(value) is None:
            raise wrong
        return value
    if kind == "t":
        try:
            return sf_time(dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")))
        except (ValueError, TypeError, OverflowError) as exc:
            raise wrong from exc
    if kind == "n":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong
        try:
            number = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        except InvalidOperation as exc:
            raise wrong from exc
        if not number.is_finite() or abs(number) >= Decimal("1e16"):
            raise error(400, "NUMBER_OUTSIDE_VALID_RANGE", f"{field}: value outside of valid range: {value}", [field])
        return float(number)
    if kind.startswith("p:"):
        if value not in kind[2:].split("|"):
            raise error(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{field}: bad value for restricted picklist field: {value}",
                [field],
            )
        return value
    target = kind[2:]
    if not isinstance(value, str) or not is_record_id(value):
        raise error(400, "MALFORMED_ID", f"{field}: id value of incorrect type: {value}", [field])
    if store.get(target, value) is None:
        raise error(400, "INVALID_CROSS_REFERENCE_KEY", f"{field}: invalid cross reference id", [field])
    return value


def _checked(store: DocumentStore, sobject: str, body: dict[str, Any], flag: str) -> dict[str, Any]:
    schema = SCHEMA[sobject]
    values: dict[str, Any] = {}
    problems: list[dict[str, Any]] = []
    for field, value in body.items():
        if field == "attributes":
            continue
        if field not in schema:
            raise error(400, "INVALID_FIELD", f"No such column '{field}' on sobject of type {sobject}", [field])
        if flag not in schema[field][1]:
            raise error(
                400,
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {field}. Please check the security settings of this field.",
                [field],
            )
        try:
            values[field] = _check_value(store, sobject, field, value)
        except VendorError as exc:
            problems.extend(exc.body)
    if flag == "c":
        missing = [f for f, (_, flags) in schema.items() if "q" in flags and values.get(f) in (None, "")]
        if missing:
            problems.append(
                {
                    "message": f"Required fields are missing: [{', '.join(missing)}]",
                    "errorCode": "REQUIRED_FIELD_MISSING",
                    "fields": missing,
                }
            )
    if problems:
        raise VendorError(400, problems)
    return values


def _unique(store: DocumentStore, sobject: str, record: dict[str, Any]) -> None:
    for field in UNIQUE.get(sobject, ()):
        value = record.get(field)
        if value is None:
            continue
        rows, _ = store.query(sobject, where={field: value}, limit=2)
        other = [r for r in rows if r["Id"] != record["Id"]]
        if other:
            raise error(
                400,
                "DUPLICATE_VALUE",
                f"duplicate value found: {field} duplicates value on record with id: {other[0]['Id']}",
                [field],
            )


# --- Certinia's rules ---------------------------------------------------------------------------------------------


def _project(store: DocumentStore, project_id: str) -> dict[str, Any]:
    project = store.get("pse__Proj__c", project_id)
    assert project is not None  # checked as a cross reference
    return project


def _timecard_rules(store: DocumentStore, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    changed = {f for f in new if old is None or old.get(f) != new.get(f)} - {"LastModifiedDate", "SystemModstamp"}
    if old is None:
        project = _project(store, new["pse__Project__c"])
        if project.get("pse__Closed_for_Time_Entry__c") or project.get("pse__Stage__c") == "Completed":
            raise _validation("This project is closed for time entry.", ["pse__Project__c"])
        if new.get("pse__Status__c", "Saved") not in ("Saved", "Submitted"):
            raise _validation("A new timecard is Saved or Submitted.", ["pse__Status__c"])
    else:
        status = old["pse__Status__c"]
        target = new["pse__Status__c"]
        if target != status and target not in TIMECARD_FLOW[status]:
            raise _validation(f"Timecard status cannot change from {status} to {target}.", ["pse__Status__c"])
        if status == "Approved":
            allowed = {"pse__Billed__c", "pse__Invoiced__c", "Superseded_By__c"}
            if changed - allowed:
                raise _validation("Approved timecards cannot be edited.", sorted(changed - allowed))
            if old.get("Superseded_By__c") and "Superseded_By__c" in changed:
                raise _validation("This timecard was already superseded.", ["Superseded_By__c"])
            if (
                (new["pse__Billed__c"] is False and old["pse__Billed__c"])
                or (new["pse__Invoiced__c"] and not new["pse__Billed__c"])
                or (old["pse__Invoiced__c"] and not new["pse__Invoiced__c"])
            ):
                raise _validation(
                    "Billed and invoiced timecards stay so; a timecard is billed before it is invoiced.",
                    ["pse__Invoiced__c"],
                )
        elif status not in EDITABLE and changed - {
            "pse__Status__c",
            "pse__Submitted__c",
            "pse__Approved__c",
            "pse__Approver__c",
            "Submitted_At__c",
            "Approved_At__c",
            "Rejection_Note__c",
        }:
            raise _validation(f"A {status} timecard cannot be edited.", ["pse__Status__c"])
        if old.get("Superseded_By__c") and changed - {"LastModifiedDate"}:
            raise _validation("This timecard was superseded by a newer version.", ["Superseded_By__c"])
        if status != "Approved" and ({"pse__Billed__c", "pse__Invoiced__c"} & changed):
            raise _validation("Only approved timecards are billed.", ["pse__Billed__c"])
    start, end = parse_date(new.get("pse__Start_Date__c")), parse_date(new.get("pse__End_Date__c"))
    if start is None or end is None or start.weekday() != 0 or end != start + dt.timedelta(days=6):
        raise _validation(
            "A timecard runs from the week's start day (Monday) to the day before the next.", ["pse__Start_Date__c"]
        )
    work_date = parse_date(new.get("Work_Date__c"))
    if new.get("Work_Date__c") is not None and (work_date is None or not start <= work_date <= end):
        raise _validation("Work_Date__c must be a day of the timecard's week.", ["Work_Date__c"])
    for field in HOURS_FIELDS:
        hours = new.get(field) or 0
        if not 0 <= hours <= 24:
            raise _validation(f"{field}: hours must be between 0 and 24.", [field])
    task_id = new.get("Project_Task__c")
    if task_id is not None:
        task = store.get("pse__Project_Task__c", task_id)
        if task is None or task["pse__Project__c"] != new["pse__Project__c"]:
            raise _validation("The task must belong to the timecard's project.", ["Project_Task__c"])
    new["pse__Total_Hours__c"] = float(sum(Decimal(str(new.get(f) or 0)) for f in HOURS_FIELDS))
    new["pse__Submitted__c"] = new["pse__Status__c"] in ("Submitted", "Approved")
    new["pse__Approved__c"] = new["pse__Status__c"] == "Approved"


def _expense_rules(store: DocumentStore, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    if old is None:
        project = _project(store, new["pse__Project__c"])
        if project.get("pse__Stage__c") == "Completed":
            raise _validation("This project is closed for expense entry.", ["pse__Project__c"])
        if new["pse__Amount__c"] <= 0:
            raise _validation("pse__Amount__c: an expense amount is positive.", ["pse__Amount__c"])
        new.setdefault("pse__Status__c", "Draft")
    elif (
        new["pse__Status__c"] != old["pse__Status__c"]
        and new["pse__Status__c"] not in EXPENSE_FLOW[old["pse__Status__c"]]
    ):
        raise _validation(
            f"Expense status cannot change from {old['pse__Status__c']} to {new['pse__Status__c']}.", ["pse__Status__c"]
        )
    if (new.get("pse__Billed__c") or new.get("pse__Invoiced__c")) and new["pse__Status__c"] != "Approved":
        raise _validation("Only approved expenses are billed.", ["pse__Billed__c"])


def _project_rules(_store: DocumentStore, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    if old is not None and old["pse__Stage__c"] == "Completed" and new["pse__Stage__c"] != "Completed":
        raise _validation("A completed project cannot be reopened.", ["pse__Stage__c"])
    start, end = parse_date(new.get("pse__Start_Date__c")), parse_date(new.get("pse__End_Date__c"))
    if start and end and end < start:
        raise _validation("The end date must not be before the start date.", ["pse__End_Date__c"])
    if (new.get("pse__Planned_Hours__c") or 0) < 0:
        raise _validation("Planned hours are not negative.", ["pse__Planned_Hours__c"])
    new["pse__Is_Active__c"] = new["pse__Stage__c"] == "In Progress"
    new["pse__Closed_for_Time_Entry__c"] = new["pse__Stage__c"] == "Completed"


def _assignment_rules(_store: DocumentStore, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    status = new["pse__Status__c"]
    if old is None and status == "Closed":
        raise _validation("A new assignment is Tentative or Scheduled.", ["pse__Status__c"])
    if old is not None and status != old["pse__Status__c"] and status not in ASSIGNMENT_FLOW[old["pse__Status__c"]]:
        raise _validation(
            f"Assignment status cannot change from {old['pse__Status__c']} to {status}.", ["pse__Status__c"]
        )
    start, end = parse_date(new.get("pse__Start_Date__c")), parse_date(new.get("pse__End_Date__c"))
    if start and end and end < start:
        raise _validation("The end date must not be before the start date.", ["pse__End_Date__c"])
    if not 0 < (new.get("Hours_Per_Week__c") or 0) <= 80:
        raise _validation("Hours_Per_Week__c: between 0 and 80 hours a week.", ["Hours_Per_Week__c"])


def _milestone_rules(_store: DocumentStore, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    assert old is not None  # milestones are read and changed here, never created
    status = new["pse__Status__c"]
    if status != old["pse__Status__c"] and status not in MILESTONE_FLOW[old["pse__Status__c"]]:
        raise _validation(
            f"Milestone status cannot change from {old['pse__Status__c']} to {status}.", ["pse__Status__c"]
        )
    new["pse__Approved__c"] = status == "Approved"
    if new.get("pse__Invoiced__c") and status != "Approved":
        raise _validation("Only approved milestones are invoiced.", ["pse__Invoiced__c"])
    if old.get("pse__Invoiced__c") and not new.get("pse__Invoiced__c"):
        raise _validation("An invoiced milestone stays invoiced.", ["pse__Invoiced__c"])


def _task_rules(_store: DocumentStore, _old: dict[str, Any] | None, _new: dict[str, Any]) -> None:
    return None


RULES: dict[str, Callable[[DocumentStore, dict[str, Any] | None, dict[str, Any]], None]] = {
    "pse__Timecard_Header__c": _timecard_rules,
    "pse__Expense__c": _expense_rules,
    "pse__Proj__c": _project_rules,
    "pse__Assignment__c": _assignment_rules,
    "pse__Milestone__c": _milestone_rules,
    "pse__Project_Task__c": _task_rules,
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "pse__Timecard_Header__c": {
        **{f: 0.0 for f in HOURS_FIELDS},
        **{f: None for f in NOTES_FIELDS},
        "pse__Status__c": "Saved",
        "pse__Billable__c": True,
        "pse__Billed__c": False,
        "pse__Invoiced__c": False,
        "Version__c": 1,
        "Activity_Type__c": "Work",
    },
    "pse__Expense__c": {"pse__Billable__c": True, "pse__Billed__c": False, "pse__Invoiced__c": False},
    "pse__Proj__c": {"pse__Stage__c": "Planned", "CurrencyIsoCode": "USD"},
    "pse__Assignment__c": {"pse__Status__c": "Tentative", "pse__Is_Billable__c": True},
    "pse__Project_Task__c": {"Billable__c": True},
}


# --- writes -------------------------------------------------------------------------------------------------------


def _writable(sobject: str) -> None:
    if sobject not in RULES:
        raise error(
            404 if sobject not in SCHEMA else 400,
            "NOT_FOUND" if sobject not in SCHEMA else "INSUFFICIENT_ACCESS_OR_READONLY",
            f"The requested resource does not exist: {sobject}"
            if sobject not in SCHEMA
            else f"{sobject} is read-only for this integration user",
        )


def create_record(store: DocumentStore, sobject: str, body: dict[str, Any]) -> str:
    _writable(sobject)
    values = _checked(store, sobject, body, "c")
    number = store.next_number(sobject)
    record_id_ = record_id(sobject, number)
    now = sf_time(utc_now())
    fields = {f: None for f in SCHEMA[sobject]}
    record = _stamped(sobject, record_id_, {**fields, **DEFAULTS.get(sobject, {}), **values}, now)
    if sobject in AUTO_NAMES:
        record["Name"] = f"{AUTO_NAMES[sobject]}{store.next_number(f'{sobject}:name')}"
    if sobject == "pse__Proj__c":
        record["pse__Project_ID__c"] = f"PRJ-{store.next_number('pse__Proj__c:code')}"
    if sobject == "pse__Project_Task__c":
        project = _project(store, record["pse__Project__c"])
        _, count = store.query(sobject, where={"pse__Project__c": record["pse__Project__c"]}, limit=0)
        record["Task_Code__c"] = f"{project['pse__Project_ID__c']}-T{count + 1}"
    RULES[sobject](store, None, record)
    _unique(store, sobject, record)
    store.put(sobject, record_id_, record)
    return record_id_


def update_record(store: DocumentStore, sobject: str, key: str, body: dict[str, Any]) -> None:
    _writable(sobject)
    old = get_record(store, sobject, key, OBJECTS)
    values = _checked(store, sobject, body, "u")
    new = {**old, **values}
    RULES[sobject](store, old, new)
    _unique(store, sobject, new)
    new["LastModifiedDate"] = new["SystemModstamp"] = sf_time(utc_now())
    store.put(sobject, old["Id"], new)


def delete_record(store: DocumentStore, sobject: str, key: str) -> None:
    _writable(sobject)
    record = get_record(store, sobject, key, OBJECTS)
    if sobject == "pse__Timecard_Header__c" and record["pse__Status__c"] not in EDITABLE:
        raise _validation(f"A {record['pse__Status__c']} timecard cannot be deleted.", ["pse__Status__c"])
    if sobject != "pse__Timecard_Header__c":
        raise error(400, "DELETE_FAILED", f"{sobject} records are not deleted by this integration")
    store.delete(sobject, record["Id"])


def _result(exc: VendorError) -> dict[str, Any]:
    return {
        "success": False,
        "errors": [
            {"statusCode": e["errorCode"], "message": e["message"], "fields": e.get("fields", [])} for e in exc.body
        ],
    }


def update_collection(store: DocumentStore, body: dict[str, Any]) -> list[dict[str, Any]]:
    """sObject Collections update: each record its own result, unless ``allOrNone`` rolls all of them back."""
    records = body.get("records")
    if not isinstance(records, list) or not 1 <= len(records) <= COLLECTION_MAX:
        raise error(400, "INVALID_BATCH_SIZE", f"records must be a list of 1..{COLLECTION_MAX}")
    all_or_none = body.get("allOrNone") is True
    results: list[dict[str, Any]] = []
    for record in records:
        sobject = record.get("attributes", {}).get("type") if isinstance(record, dict) else None
        record_id_ = record.get("id") if isinstance(record, dict) else None
        try:
            if not isinstance(sobject, str) or not isinstance(record_id_, str):
                raise error(400, "INVALID_FIELD", "each record needs attributes.type and id")
            update_record(
                store, sobject, record_id_, {k: v for k, v in record.items() if k not in ("id", "attributes")}
            )
        except VendorError as exc:
            if all_or_none:
                raise VendorError(400, exc.body) from exc
            results.append({"id": record_id_, **_result(exc)})
            continue
        results.append({"id": record_id_, "success": True, "errors": []})
    return results


_REFERENCE = re.compile(r"@\{(\w+)\.id\}")


def run_composite(store: DocumentStore, body: dict[str, Any]) -> dict[str, Any]:
    """``POST /composite`` with ``allOrNone: true``: subrequests in order, ``@{ref.id}`` naming an earlier result;
    one failure rolls every subrequest back (the others answer ``PROCESSING_HALTED``)."""
    requests = body.get("compositeRequest")
    if body.get("allOrNone") is not True or not isinstance(requests, list) or not 1 <= len(requests) <= COMPOSITE_MAX:
        raise error(400, "INVALID_COMPOSITE", f"allOrNone true and 1..{COMPOSITE_MAX} subrequests are supported")
    ids: dict[str, str] = {}
    answers: list[dict[str, Any]] = []
    for index, sub in enumerate(requests):
        ref = sub.get("referenceId") if isinstance(sub, dict) else None
        try:
            if not isinstance(sub, dict) or not isinstance(ref, str) or not isinstance(sub.get("url"), str):
                raise error(400, "INVALID_COMPOSITE", "each subrequest needs method, url and referenceId")
            url = _REFERENCE.sub(lambda m: ids.get(m.group(1), "unknown"), sub["url"])
            payload = {
                k: (_REFERENCE.sub(lambda m: ids.get(m.group(1), "unknown"), v) if isinstance(v, str) else v)
                for k, v in (sub.get("body") or {}).items()
            }
            parts = url.removeprefix(API).strip("/").split("/")
            if parts[0] != "sobjects" or len(parts) not in (2, 3):
                raise error(400, "INVALID_COMPOSITE", f"unsupported subrequest url {sub['url']}")
            if sub.get("method") == "POST" and len(parts) == 2:
                new_id = create_record(store, parts[1], payload)
                ids[ref] = new_id
                answers.append(
                    {"body": {"id": new_id, "success": True, "errors": []}, "httpStatusCode": 201, "referenceId": ref}
                )
            elif sub.get("method") == "PATCH" and len(parts) == 3:
                update_record(store, parts[1], parts[2], payload)
                answers.append({"body": None, "httpStatusCode": 204, "referenceId": ref})
            else:
                raise error(400, "INVALID_COMPOSITE", "POST to /sobjects/<T> and PATCH to /sobjects/<T>/<Id> only")
        except VendorError as exc:
            halted = [
                {
                    "errorCode": "PROCESSING_HALTED",
                    "message": "The transaction was rolled back since another "
                    "operation in the same transaction failed.",
                }
            ]
            raise _RolledBack(
                [
                    {
                        "body": exc.body if i == index else halted,
                        "httpStatusCode": exc.status if i == index else 400,
                        "referenceId": r.get("referenceId") if isinstance(r, dict) else None,
                    }
                    for i, r in enumerate(requests)
                ]
            ) from exc
    return {"compositeResponse": answers}


class _RolledBack(Exception):
    def __init__(self, answers: list[dict[str, Any]]) -> None:
        super().__init__("composite rolled back")
        self.answers = answers


def _composite(store: DocumentStore, body: dict[str, Any]) -> dict[str, Any]:
    try:
        return dict(store.transaction(run_composite, store, body))
    except _RolledBack as exc:  # the transaction rolled back; Salesforce still answers 200 with each outcome
        return {"compositeResponse": exc.answers}


# The store's indexes: the integration's frequent filters (``Id IN (...)``: a batch read back after an sObject
# Collections update; ``Name IN (...)``: time entries by business key).
INDEXED = ("Id", "Name", "External_Ref__c", "pse__Status__c", "pse__Project__c", "Work_Date__c")


def create_app(store: DocumentStore) -> Litestar:
    for indexed in INDEXED:
        store.index(indexed)

    def invalid_json(message: str) -> VendorError:
        return error(400, "JSON_PARSER_ERROR", message)

    @get(f"{API}/sobjects/{{sobject:str}}/{{key:str}}")
    async def read_record(sobject: FromPath[str], key: FromPath[str]) -> dict[str, Any]:
        return await store.call(get_record, store, sobject, key, OBJECTS)

    @post(f"{API}/sobjects/{{sobject:str}}")
    async def post_record(sobject: FromPath[str], request: Request[Any, Any, Any]) -> Response[Any]:
        body = await json_object(request, invalid_json)
        new_id = await store.call(store.transaction, create_record, store, sobject, body)
        return Response({"id": new_id, "success": True, "errors": []}, status_code=201)

    @patch(f"{API}/sobjects/{{sobject:str}}/{{key:str}}", status_code=204)
    async def patch_record(sobject: FromPath[str], key: FromPath[str], request: Request[Any, Any, Any]) -> None:
        body = await json_object(request, invalid_json)
        await store.call(store.transaction, update_record, store, sobject, key, body)

    @delete(f"{API}/sobjects/{{sobject:str}}/{{key:str}}", status_code=204)
    async def delete_one(sobject: FromPath[str], key: FromPath[str]) -> None:
        await store.call(store.transaction, delete_record, store, sobject, key)

    @patch(f"{API}/composite/sobjects", status_code=200)
    async def patch_collection(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        body = await json_object(request, invalid_json)
        results: list[dict[str, Any]] = await store.call(store.transaction, update_collection, store, body)
        return results

    @post(f"{API}/composite", status_code=200)
    async def post_composite(request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await json_object(request, invalid_json)
        answer: dict[str, Any] = await store.call(_composite, store, body)
        return answer

    return Litestar(
        [
            *query_routes(store, OBJECTS, INDEXED),
            read_record,
            post_record,
            patch_record,
            delete_one,
            patch_collection,
            post_composite,
        ],
        exception_handlers={HTTPException: framework_error, VendorError: vendor_error_response},
        openapi_config=None,
    )
