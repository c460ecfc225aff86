"""PSA adapter for Certinia PSA (formerly FinancialForce PSA): the canonical PSA model on Certinia's managed-package
objects in a Salesforce org, over Salesforce REST and SOQL (``psa_backend: certinia``; ``sandbox/certinia.py``
imitates the subset used, and says what it leaves out). The platform (JWT bearer auth, SOQL paging, API limits, error
arrays) is ``system_apis.salesforce``, shared with the CRM connector; this module is Certinia's object mapping.

Objects (Certinia "PSA Object Reference"): projects are ``pse__Proj__c`` (business key ``pse__Project_ID__c``),
tasks ``pse__Project_Task__c``, workers ``Contact`` resources (``Employee_Number__c``), assignments
``pse__Assignment__c`` (key: its auto-number ``Name``), time entries ``pse__Timecard_Header__c``, milestones
``pse__Milestone__c`` and expenses ``pse__Expense__c``.

Time entries on weekly timecards. A canonical time entry is one worker, project and day, with its own lifecycle,
version chain and client reference; a Certinia timecard header is one resource, project and week with an hours
field per day and one ``pse__Status__c``. This adapter writes **one timecard header per canonical entry**: the
week holding the work date, hours on that day only (``Work_Date__c`` names it), the entry's notes on that day's
notes field, and the header's auto-number (``TC-100001``) as the entry's business key. Why not one header per
resource, project and week with several entries in its day fields: the entries of one week then share one status,
so one day's approval, rejection or correction would drag the others with it (or need a header split on every
change), a correction could not keep the superseded version beside the new one, and an offline resend could not be
recognised (``External_Ref__c`` is unique per header). Certinia allows several headers for the same resource,
project and week, so split headers are ordinary Certinia data: totals, approvals and billing work on them unchanged.

Lifecycle: draft/submitted/approved/rejected are ``pse__Status__c`` Saved/Submitted/Approved/Rejected; posted is an
approved timecard with ``pse__Billed__c`` (released to the ERP), invoiced one with ``pse__Invoiced__c``. A
correction is a new header (``Version__c`` + 1, ``Supersedes__c``) created in one all-or-none composite request
with the old header's ``Superseded_By__c``, which Certinia's validation rule lets be set once: two racing
corrections cannot both win. Idempotent creation: ``External_Ref__c`` (the client_ref) is a unique external id,
so a resend is refused ``DUPLICATE_VALUE`` naming the first header, which is answered instead.

Hours: Certinia keeps day hours to two decimals, so only whole minutes that are a multiple of 3 are exact hours
(0.05 h = 3 min); any other is refused 422 on ``/hours`` rather than rounded (rounded time would bill and cost
differently from what the worker entered). Time entries whose header has hours on several days (entered in
Certinia's own timecard grid) are outside this mapping: reading one is a 502 naming the timecard.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

from contracts.canonical import (
    Assignment,
    AssignmentStatus,
    BillingModel,
    Expense,
    ExpenseState,
    Milestone,
    MilestoneState,
    Page,
    Project,
    ProjectStatus,
    Task,
    TimeActivity,
    TimeEntry,
    TimeEntryState,
    plain_decimal,
    role_id,
    whole_minutes,
)
from runtime.problems import Conflict, FieldError, NotFound, ProblemError, Unprocessable
from system_apis.ids import is_canonical, reference, to_business_key, to_canonical, unknown_reference
from system_apis.psa.models import (
    AssignmentCreate,
    ExpenseCreate,
    ProjectCreate,
    TaskCreate,
    TimeEntryCreate,
    TimeEntryFilter,
    TimeEntryTransitionItem,
)
from system_apis.salesforce import (
    API,
    RecordKeys,
    SalesforceOrg,
    currency_value,
    duplicate_of,
    number,
    soql_datetime,
    soql_text,
)
from system_apis.vendor_auth import VendorCredentials
from system_apis.vendor_calls import VendorLimits
from system_apis.vendor_keys import KeyMap

VENDOR = "certinia"
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
HOURS_FIELDS = tuple(f"pse__{day}_Hours__c" for day in DAYS)
NOTES_FIELDS = tuple(f"pse__{day}_Notes__c" for day in DAYS)
COLLECTION_MAX = 200  # records per sObject Collections call
NAMES_PER_QUERY = 200  # names per ``WHERE Name IN (...)`` (keeps the query URL short)

PROJECT_STATUS: dict[str, ProjectStatus] = {
    "Planned": "planned",
    "In Progress": "active",
    "On Hold": "on_hold",
    "Completed": "closed",
}
BILLING_MODEL: dict[str, BillingModel] = {
    "Time and Materials": "time_and_materials",
    "Fixed Price": "fixed_fee",
    "Milestone": "milestone",
    "Retainer": "retainer",
}
ASSIGNMENT_STATUS: dict[str, AssignmentStatus] = {"Tentative": "proposed", "Scheduled": "confirmed", "Closed": "ended"}
TIMECARD_STATUS: dict[str, TimeEntryState] = {
    "Saved": "draft",
    "Submitted": "submitted",
    "Approved": "approved",
    "Rejected": "rejected",
}
EXPENSE_STATUS: dict[str, ExpenseState] = {
    "Draft": "draft",
    "Submitted": "submitted",
    "Approved": "approved",
    "Rejected": "rejected",
}
MILESTONE_STATUS: dict[str, MilestoneState] = {"Open": "pending", "Complete": "completed", "Approved": "accepted"}
ACTIVITY: Final[dict[str, TimeActivity]] = {"Work": "work", "Travel": "travel"}
PROJECT_STATUS_VENDOR = {v: k for k, v in PROJECT_STATUS.items()}
BILLING_MODEL_VENDOR = {v: k for k, v in BILLING_MODEL.items()}
ASSIGNMENT_STATUS_VENDOR = {v: k for k, v in ASSIGNMENT_STATUS.items()}
ACTIVITY_VENDOR: Final[dict[str, str]] = {v: k for k, v in ACTIVITY.items()}

SELECT = {
    "pse__Proj__c": "Id, Name, pse__Project_ID__c, pse__Account__c, pse__Stage__c, pse__Billing_Type__c, "
    "pse__Planned_Hours__c, pse__Project_Manager__c, pse__Start_Date__c, pse__End_Date__c, "
    "SOW_Number__c, Legal_Entity__c, Business_Unit__c",
    "pse__Project_Task__c": "Id, Name, pse__Project__c, Task_Code__c, Billable__c",
    "pse__Assignment__c": "Id, Name, pse__Resource__c, pse__Project__c, pse__Role__c, Hours_Per_Week__c, "
    "pse__Start_Date__c, pse__End_Date__c, pse__Status__c",
    "pse__Timecard_Header__c": "Id, Name, pse__Resource__c, pse__Project__c, Project_Task__c, pse__Start_Date__c, "
    "Work_Date__c, "
    + ", ".join(HOURS_FIELDS)
    + ", "
    + ", ".join(NOTES_FIELDS)
    + ", pse__Timecard_Notes__c, pse__Status__c, pse__Billable__c, pse__Billed__c, "
    "pse__Invoiced__c, pse__Approver__c, External_Ref__c, Version__c, Supersedes__c, "
    "Superseded_By__c, Submitted_At__c, Approved_At__c, Rejection_Note__c, "
    "Activity_Type__c, LastModifiedDate",
    "pse__Expense__c": "Id, Name, pse__Resource__c, pse__Project__c, pse__Expense_Date__c, pse__Amount__c, "
    "CurrencyIsoCode, pse__Type__c, pse__Billable__c, pse__Status__c, pse__Billed__c, "
    "pse__Invoiced__c, Receipt_Ref__c, External_Ref__c",
    "pse__Milestone__c": "Id, Name, Milestone_Number__c, pse__Project__c, pse__Milestone_Amount__c, CurrencyIsoCode, "
    "pse__Target_Date__c, pse__Status__c, pse__Invoiced__c, Accepted_On__c",
}

# Vendor field -> canonical JSON pointer, for refusals.
TIMECARD_FIELDS = {
    "pse__Resource__c": "/worker_id",
    "pse__Project__c": "/project_id",
    "Project_Task__c": "/task_id",
    "pse__Start_Date__c": "/work_date",
    "Work_Date__c": "/work_date",
    **{f: "/hours" for f in HOURS_FIELDS},
    **{f: "/notes" for f in NOTES_FIELDS},
    "pse__Billable__c": "/billable",
    "Activity_Type__c": "/activity",
    "External_Ref__c": "/client_ref",
    "pse__Approver__c": "/actor_id",
    "Rejection_Note__c": "/reason",
    "pse__Status__c": "/to_state",
}
PROJECT_FIELDS = {
    "Name": "/name",
    "SOW_Number__c": "/contract_id",
    "pse__Account__c": "/customer_id",
    "Legal_Entity__c": "/legal_entity_id",
    "pse__Billing_Type__c": "/billing_model",
    "pse__Stage__c": "/status",
    "pse__Planned_Hours__c": "/budget_hours",
    "pse__Project_Manager__c": "/manager_id",
    "Business_Unit__c": "/business_unit_id",
    "pse__Start_Date__c": "/start_date",
    "pse__End_Date__c": "/end_date",
}
ASSIGNMENT_FIELDS = {
    "pse__Resource__c": "/worker_id",
    "pse__Project__c": "/project_id",
    "pse__Role__c": "/role",
    "Hours_Per_Week__c": "/planned_hours_per_week",
    "pse__Start_Date__c": "/start_date",
    "pse__End_Date__c": "/end_date",
    "pse__Status__c": "/status",
}
EXPENSE_FIELDS = {
    "pse__Resource__c": "/worker_id",
    "pse__Project__c": "/project_id",
    "pse__Expense_Date__c": "/expense_date",
    "pse__Amount__c": "/amount",
    "CurrencyIsoCode": "/currency",
    "pse__Type__c": "/category",
    "pse__Billable__c": "/billable",
    "Receipt_Ref__c": "/receipt_ref",
    "pse__Status__c": "/state",
    "External_Ref__c": "/source_ref",
}
TASK_FIELDS = {"Name": "/name", "Billable__c": "/billable"}
MILESTONE_FIELDS = {"pse__Status__c": "/to_state", "pse__Invoiced__c": "/to_state"}



def select(sobject: str, where: Iterable[str] = ()) -> str:
    """SOQL reading ``sobject``'s mapped fields; ``where`` holds only ids, values through soql_text, literals."""
    conditions = " AND ".join(where)
    return f"SELECT {SELECT[sobject]} FROM {sobject}" + (f" WHERE {conditions}" if conditions else "")  # noqa: S608


def hours_text(minutes: int) -> Decimal:
    """Whole minutes as Certinia's two-decimal hours; minutes that are no such hours are refused, never rounded."""
    if minutes % 3:
        raise Unprocessable(
            "Certinia keeps hours to two decimals: minutes must be a multiple of 3",
            slug=("validation-failed"),
            errors=[
                FieldError(
                    pointer="/hours",
                    detail=f"{minutes} minutes are not a whole hundredth of an hour (Certinia keeps two decimals)",
                )
            ],
        )
    return Decimal(minutes * 100 // 60) / 100


def minutes_of_hours(hours: Decimal) -> int:
    minutes = whole_minutes(hours)
    if minutes is None:
        raise Unprocessable(
            "hours must come to whole minutes",
            slug="validation-failed",
            errors=[FieldError(pointer="/hours", detail="must be a whole number of minutes")],
        )
    return minutes


def _minutes(hours: Any) -> int:
    return int((Decimal(hours or 0) * 60).to_integral_value(rounding=ROUND_HALF_EVEN))


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _instant(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


@dataclass
class CertiniaKeys(RecordKeys):
    """Salesforce record ids against business keys, learned as records are seen."""

    contacts: KeyMap[str] = field(default_factory=KeyMap)  # employee number
    accounts: KeyMap[str] = field(default_factory=KeyMap)  # account number
    projects: KeyMap[str] = field(default_factory=KeyMap)  # pse__Project_ID__c
    tasks: KeyMap[str] = field(default_factory=KeyMap)  # Task_Code__c
    timecards: KeyMap[str] = field(default_factory=KeyMap)  # Name (TC-...)


# --- pure mapping ---------------------------------------------------------------------------------------------


def project_from_vendor(row: dict[str, Any], keys: CertiniaKeys) -> Project:
    hours = row.get("pse__Planned_Hours__c")
    manager = row.get("pse__Project_Manager__c")
    return Project(
        id=to_canonical("project", row["pse__Project_ID__c"]),
        external_ids={"psa": row["Id"]},
        name=row["Name"],
        contract_id=to_canonical("contract", row["SOW_Number__c"]),
        customer_id=to_canonical("customer", keys.key("accounts", row["pse__Account__c"])),
        legal_entity_id=to_canonical("legal_entity", row["Legal_Entity__c"]),
        status=PROJECT_STATUS[row["pse__Stage__c"]],
        billing_model=BILLING_MODEL[row["pse__Billing_Type__c"]],
        budget_hours=plain_decimal(Decimal(hours)) if hours is not None else None,
        manager_id=to_canonical("worker", keys.key("contacts", manager)) if manager else None,
        business_unit_id=to_canonical("business_unit", row["Business_Unit__c"])
        if row.get("Business_Unit__c")
        else None,
        start_date=_date(row.get("pse__Start_Date__c")),
        end_date=_date(row.get("pse__End_Date__c")),
    )


def task_from_vendor(row: dict[str, Any], keys: CertiniaKeys) -> Task:
    return Task(
        id=to_canonical("task", row["Task_Code__c"]),
        external_ids={"psa": row["Id"]},
        project_id=to_canonical("project", keys.key("projects", row["pse__Project__c"])),
        name=row["Name"],
        billable=bool(row.get("Billable__c", True)),
    )


def assignment_from_vendor(row: dict[str, Any], keys: CertiniaKeys) -> Assignment:
    return Assignment(
        id=to_canonical("assignment", row["Name"]),
        external_ids={"psa": row["Id"]},
        worker_id=to_canonical("worker", keys.key("contacts", row["pse__Resource__c"])),
        project_id=to_canonical("project", keys.key("projects", row["pse__Project__c"])),
        role=role_id(row["pse__Role__c"]),
        planned_hours_per_week=plain_decimal(Decimal(row["Hours_Per_Week__c"])),
        start_date=dt.date.fromisoformat(row["pse__Start_Date__c"]),
        end_date=_date(row.get("pse__End_Date__c")),
        status=ASSIGNMENT_STATUS[row["pse__Status__c"]],
    )


def timecard_state(row: dict[str, Any]) -> TimeEntryState:
    if row["pse__Status__c"] == "Approved" and row.get("pse__Invoiced__c"):
        return "invoiced"
    if row["pse__Status__c"] == "Approved" and row.get("pse__Billed__c"):
        return "posted"
    return TIMECARD_STATUS[row["pse__Status__c"]]


def work_day(row: dict[str, Any]) -> int:
    """The day of the week (0 Monday) the header carries time on; one day only, else it maps to no entry."""
    if row.get("Work_Date__c"):
        return dt.date.fromisoformat(row["Work_Date__c"]).weekday()
    days = [index for index, name in enumerate(HOURS_FIELDS) if row.get(name)]
    if len(days) != 1:
        raise ProblemError(
            f"{VENDOR} timecard {row.get('Name')} has time on {len(days)} days; this integration "
            "maps a timecard with time on one day to one time entry",
            status=502,
            slug="downstream-error",
            downstream=VENDOR,
        )
    return days[0]


def timecard_from_vendor(row: dict[str, Any], keys: CertiniaKeys) -> TimeEntry:
    def worker(contact_id: str | None) -> str | None:
        return to_canonical("worker", keys.key("contacts", contact_id)) if contact_id else None

    def entry(timecard_id: str | None) -> str | None:
        return to_canonical("time_entry", keys.key("timecards", timecard_id)) if timecard_id else None

    day = work_day(row)
    minutes = _minutes(row.get(HOURS_FIELDS[day]))
    return TimeEntry(
        id=to_canonical("time_entry", row["Name"]),
        external_ids={"psa": row["Id"]},
        worker_id=worker(row["pse__Resource__c"]) or "",
        project_id=to_canonical("project", keys.key("projects", row["pse__Project__c"])),
        task_id=to_canonical("task", keys.key("tasks", row["Project_Task__c"])) if row.get("Project_Task__c") else None,
        work_date=dt.date.fromisoformat(row["pse__Start_Date__c"]) + dt.timedelta(days=day),
        hours=Decimal(minutes) / 60,
        minutes=minutes,
        billable=bool(row.get("pse__Billable__c")),
        activity=ACTIVITY.get(row.get("Activity_Type__c") or "Work", "work"),
        notes=row.get(NOTES_FIELDS[day]) or row.get("pse__Timecard_Notes__c") or "",
        state=timecard_state(row),
        version=int(row.get("Version__c") or 1),
        supersedes_id=entry(row.get("Supersedes__c")),
        superseded_by_id=entry(row.get("Superseded_By__c")),
        submitted_at=_instant(row.get("Submitted_At__c")),
        approved_at=_instant(row.get("Approved_At__c")),
        approved_by=worker(row.get("pse__Approver__c")),
        rejection_reason=row.get("Rejection_Note__c"),
        updated_at=_instant(row.get("LastModifiedDate")),
        client_ref=row.get("External_Ref__c"),
    )


def day_fields(work_date: dt.date, minutes: int, notes: str) -> dict[str, Any]:
    """The header's week and day fields for time on one day: that day's hours and notes, every other day empty."""
    start = week_start(work_date)
    day = work_date.weekday()
    hours = hours_text(minutes)
    return {
        "pse__Start_Date__c": start.isoformat(),
        "pse__End_Date__c": (start + dt.timedelta(days=6)).isoformat(),
        "Work_Date__c": work_date.isoformat(),
        **{f: (number(hours) if i == day else 0) for i, f in enumerate(HOURS_FIELDS)},
        **{f: (notes if i == day else None) for i, f in enumerate(NOTES_FIELDS)},
    }


def expense_state(row: dict[str, Any]) -> ExpenseState:
    if row["pse__Status__c"] == "Approved" and row.get("pse__Invoiced__c"):
        return "invoiced"
    if row["pse__Status__c"] == "Approved" and row.get("pse__Billed__c"):
        return "posted"
    return EXPENSE_STATUS[row["pse__Status__c"]]


def expense_from_vendor(row: dict[str, Any], keys: CertiniaKeys) -> Expense:
    currency = row["CurrencyIsoCode"]
    return Expense(
        id=to_canonical("expense", row["Name"]),
        external_ids={"psa": row["Id"]},
        worker_id=to_canonical("worker", keys.key("contacts", row["pse__Resource__c"])),
        project_id=to_canonical("project", keys.key("projects", row["pse__Project__c"])),
        expense_date=dt.date.fromisoformat(row["pse__Expense_Date__c"]),
        amount=currency_value(row["pse__Amount__c"], currency),
        currency=currency,
        category=str(row["pse__Type__c"]).lower(),
        billable=bool(row.get("pse__Billable__c")),
        receipt_ref=row.get("Receipt_Ref__c"),
        state=expense_state(row),
        source_ref=row.get("External_Ref__c"),
    )


def milestone_state(row: dict[str, Any]) -> MilestoneState:
    return "invoiced" if row.get("pse__Invoiced__c") else MILESTONE_STATUS[row["pse__Status__c"]]


def milestone_from_vendor(row: dict[str, Any], keys: CertiniaKeys) -> Milestone:
    currency = row["CurrencyIsoCode"]
    return Milestone(
        id=to_canonical("milestone", row["Milestone_Number__c"]),
        external_ids={"psa": row["Id"]},
        project_id=to_canonical("project", keys.key("projects", row["pse__Project__c"])),
        name=row["Name"],
        amount=currency_value(row["pse__Milestone_Amount__c"], currency),
        currency=currency,
        due_date=dt.date.fromisoformat(row["pse__Target_Date__c"]),
        state=milestone_state(row),
        accepted_on=_date(row.get("Accepted_On__c")),
    )


def _state_filter(state: TimeEntryState | None) -> list[str]:
    """SOQL conditions for a canonical time entry (or expense) state."""
    if state is None:
        return []
    if state == "invoiced":
        return ["pse__Invoiced__c = true"]
    if state == "posted":
        return ["pse__Status__c = 'Approved'", "pse__Billed__c = true", "pse__Invoiced__c = false"]
    if state == "approved":
        return ["pse__Status__c = 'Approved'", "pse__Billed__c = false"]
    return [f"pse__Status__c = {soql_text({'draft': 'Saved'}.get(state, state.title()))}"]


# --- the adapter -----------------------------------------------------------------------------------------------


class CertiniaPsa:
    def __init__(
        self,
        base_url: str,
        timeout_seconds: float,
        *,
        limits: VendorLimits | None = None,
        credentials: VendorCredentials | None = None,
    ) -> None:
        self._org = SalesforceOrg(VENDOR, base_url, timeout_seconds, limits=limits, credentials=credentials)
        self.keys = CertiniaKeys()

    async def aclose(self) -> None:
        await self._org.aclose()

    async def _one(self, sobject: str, where: list[str], what: str) -> dict[str, Any]:
        rows, _ = await self._org.query(select(sobject, where) + " LIMIT 1", None, 1)
        if not rows:
            raise NotFound(f"no such {what}", slug="unknown-id")
        await self._know(rows)
        return rows[0]

    async def _by_id(self, sobject: str, record_id: str, what: str) -> dict[str, Any]:
        return await self._one(sobject, [f"Id = {soql_text(record_id)}"], what)

    # id maps

    async def _load(self, kind: str) -> None:
        source = {
            "contacts": ("Contact", "Employee_Number__c"),
            "accounts": ("Account", "AccountNumber"),
            "projects": ("pse__Proj__c", "pse__Project_ID__c"),
            "tasks": ("pse__Project_Task__c", "Task_Code__c"),
        }[kind]
        for row in await self._org.query_all(f"SELECT Id, {source[1]} FROM {source[0]}"):  # noqa: S608 - constant names
            getattr(self.keys, kind).learn(row[source[1]], row["Id"])

    async def _know(self, rows: Iterable[dict[str, Any]]) -> None:
        """Make sure every record id these rows reference is in the id maps (one reload per kind at most)."""
        rows = list(rows)
        wanted = {
            "contacts": {
                r.get(f) for r in rows for f in ("pse__Resource__c", "pse__Approver__c", "pse__Project_Manager__c")
            },
            "accounts": {r.get("pse__Account__c") for r in rows},
            "projects": {r.get("pse__Project__c") for r in rows},
            "tasks": {r.get("Project_Task__c") for r in rows},
        }
        for row in rows:
            if row.get("pse__Project_ID__c"):
                self.keys.projects.learn(row["pse__Project_ID__c"], row["Id"])
            if row.get("attributes", {}).get("type") == "pse__Timecard_Header__c":
                self.keys.timecards.learn(row["Name"], row["Id"])
        for kind, referenced in wanted.items():
            if any(v is not None and getattr(self.keys, kind).key(v) is None for v in referenced):
                await self._load(kind)
        chain = {r.get(f) for r in rows for f in ("Supersedes__c", "Superseded_By__c")} - {None}
        unknown = sorted(str(i) for i in chain if self.keys.timecards.key(str(i)) is None)
        for start in range(0, len(unknown), NAMES_PER_QUERY):
            ids = ", ".join(soql_text(i) for i in unknown[start : start + NAMES_PER_QUERY])
            for row in await self._org.query_all(f"SELECT Id, Name FROM pse__Timecard_Header__c WHERE Id IN ({ids})"):  # noqa: S608
                self.keys.timecards.learn(row["Name"], row["Id"])

    async def _record_id(self, kind: str, key: str) -> str | None:
        found = getattr(self.keys, kind).vendor_id(key)
        if found is None:
            await self._load(kind)
            found = getattr(self.keys, kind).vendor_id(key)
        return None if found is None else str(found)

    async def _contact(self, worker_id: str, pointer: str) -> str:
        found = await self._record_id("contacts", reference("worker", worker_id, pointer))
        if found is None:
            raise unknown_reference("worker", worker_id, pointer)
        return found

    async def _project_ref(self, project_id: str, pointer: str) -> str:
        found = await self._record_id("projects", reference("project", project_id, pointer))
        if found is None:
            raise unknown_reference("project", project_id, pointer)
        return found

    async def _task_ref(self, task_id: str, pointer: str) -> str:
        found = await self._record_id("tasks", reference("task", task_id, pointer))
        if found is None:
            raise unknown_reference("task", task_id, pointer)
        return found

    async def _scope(self, worker_id: str | None = None, project_id: str | None = None) -> list[str] | None:
        """SOQL conditions for canonical worker/project filters; None when one names nothing Certinia holds, so the
        list is empty rather than an error (a filter is a question, not a reference that must exist)."""
        where: list[str] = []
        if worker_id is not None:
            contact = (
                await self._record_id("contacts", to_business_key("worker", worker_id))
                if is_canonical("worker", worker_id)
                else None
            )
            if contact is None:
                return None
            where.append(f"pse__Resource__c = {soql_text(contact)}")
        if project_id is not None:
            project = (
                await self._record_id("projects", to_business_key("project", project_id))
                if is_canonical("project", project_id)
                else None
            )
            if project is None:
                return None
            where.append(f"pse__Project__c = {soql_text(project)}")
        return where

    # projects and tasks

    async def _project_row(self, project_id: str) -> dict[str, Any]:
        code = to_business_key("project", project_id)
        return await self._one("pse__Proj__c", [f"pse__Project_ID__c = {soql_text(code)}"], "project")

    async def _project_body(self, values: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for name, value in values.items():
            if name == "name":
                body["Name"] = value
            elif name == "contract_id":
                body["SOW_Number__c"] = reference("contract", value, "/contract_id")
            elif name == "customer_id":
                account = await self._record_id("accounts", reference("customer", value, "/customer_id"))
                if account is None:
                    raise unknown_reference("customer", value, "/customer_id")
                body["pse__Account__c"] = account
            elif name == "legal_entity_id":
                body["Legal_Entity__c"] = reference("legal_entity", value, "/legal_entity_id")
            elif name == "billing_model":
                body["pse__Billing_Type__c"] = BILLING_MODEL_VENDOR[value]
            elif name == "status":
                body["pse__Stage__c"] = PROJECT_STATUS_VENDOR[value]
            elif name == "budget_hours":
                body["pse__Planned_Hours__c"] = None if value is None else number(value)
            elif name == "manager_id":
                body["pse__Project_Manager__c"] = None if value is None else await self._contact(value, "/manager_id")
            elif name == "business_unit_id":
                body["Business_Unit__c"] = (
                    None if value is None else reference("business_unit", value, "/business_unit_id")
                )
            elif name in ("start_date", "end_date"):
                body[{"start_date": "pse__Start_Date__c", "end_date": "pse__End_Date__c"}[name]] = (
                    None if value is None else value.isoformat()
                )
        return body

    async def list_projects(
        self,
        *,
        status: ProjectStatus | None,
        customer_id: str | None,
        contract_id: str | None,
        cursor: str | None,
        limit: int,
    ) -> Page[Project]:
        where = [f"pse__Stage__c = {soql_text(PROJECT_STATUS_VENDOR[status])}"] if status else []
        if customer_id is not None:
            account = (
                await self._record_id("accounts", to_business_key("customer", customer_id))
                if is_canonical("customer", customer_id)
                else None
            )
            if account is None:
                return Page(items=[])
            where.append(f"pse__Account__c = {soql_text(account)}")
        if contract_id is not None:
            if not is_canonical("contract", contract_id):
                return Page(items=[])
            where.append(f"SOW_Number__c = {soql_text(to_business_key('contract', contract_id))}")
        rows, next_cursor = await self._org.query(select("pse__Proj__c", where), cursor, limit)
        await self._know(rows)
        return Page(items=[project_from_vendor(r, self.keys) for r in rows], next_cursor=next_cursor)

    async def get_project(self, project_id: str) -> Project:
        return project_from_vendor(await self._project_row(project_id), self.keys)

    async def create_project(self, data: ProjectCreate, idempotency_key: str | None) -> Project:
        values = {name: getattr(data, name) for name in data.__struct_fields__}
        body = await self._project_body({k: v for k, v in values.items() if v is not None})
        created = await self._org.call(
            "POST", "/sobjects/pse__Proj__c", json=body, what="project", field_map=PROJECT_FIELDS
        )
        return project_from_vendor(await self._by_id("pse__Proj__c", created["id"], "project"), self.keys)

    async def update_project(self, project_id: str, changes: dict[str, object]) -> Project:
        row = await self._project_row(project_id)
        await self._org.call(
            "PATCH",
            f"/sobjects/pse__Proj__c/{row['Id']}",
            json=await self._project_body(changes),
            what="project",
            field_map=PROJECT_FIELDS,
        )
        return project_from_vendor(await self._by_id("pse__Proj__c", row["Id"], "project"), self.keys)

    async def list_tasks(self, project_id: str, *, cursor: str | None, limit: int) -> Page[Task]:
        row = await self._project_row(project_id)
        rows, next_cursor = await self._org.query(
            select("pse__Project_Task__c", [f"pse__Project__c = {soql_text(row['Id'])}"]), cursor, limit
        )
        await self._know(rows)
        return Page(items=[task_from_vendor(r, self.keys) for r in rows], next_cursor=next_cursor)

    async def create_task(self, project_id: str, data: TaskCreate, idempotency_key: str | None) -> Task:
        row = await self._project_row(project_id)
        created = await self._org.call(
            "POST",
            "/sobjects/pse__Project_Task__c",
            what="project",
            field_map=TASK_FIELDS,
            json={"Name": data.name, "pse__Project__c": row["Id"], "Billable__c": data.billable},
        )
        task = await self._by_id("pse__Project_Task__c", created["id"], "task")
        self.keys.tasks.learn(task["Task_Code__c"], task["Id"])
        return task_from_vendor(task, self.keys)

    # assignments

    async def list_assignments(
        self,
        *,
        worker_id: str | None,
        project_id: str | None,
        status: AssignmentStatus | None,
        cursor: str | None,
        limit: int,
    ) -> Page[Assignment]:
        where = await self._scope(worker_id, project_id)
        if where is None:
            return Page(items=[])
        if status:
            where.append(f"pse__Status__c = {soql_text(ASSIGNMENT_STATUS_VENDOR[status])}")
        rows, next_cursor = await self._org.query(select("pse__Assignment__c", where), cursor, limit)
        await self._know(rows)
        return Page(items=[assignment_from_vendor(r, self.keys) for r in rows], next_cursor=next_cursor)

    async def _assignment_row(self, assignment_id: str) -> dict[str, Any]:
        name = to_business_key("assignment", assignment_id)
        return await self._one("pse__Assignment__c", [f"Name = {soql_text(name)}"], "assignment")

    async def get_assignment(self, assignment_id: str) -> Assignment:
        return assignment_from_vendor(await self._assignment_row(assignment_id), self.keys)

    async def create_assignment(self, data: AssignmentCreate, idempotency_key: str | None) -> Assignment:
        body = {
            "pse__Resource__c": await self._contact(data.worker_id, "/worker_id"),
            "pse__Project__c": await self._project_ref(data.project_id, "/project_id"),
            "pse__Role__c": data.role.replace("_", " ").title(),
            "Hours_Per_Week__c": number(data.planned_hours_per_week),
            "pse__Start_Date__c": data.start_date.isoformat(),
            "pse__End_Date__c": data.end_date.isoformat() if data.end_date else None,
            "pse__Status__c": ASSIGNMENT_STATUS_VENDOR[data.status],
        }
        created = await self._org.call(
            "POST", "/sobjects/pse__Assignment__c", json=body, what="assignment", field_map=ASSIGNMENT_FIELDS
        )
        return assignment_from_vendor(await self._by_id("pse__Assignment__c", created["id"], "assignment"), self.keys)

    async def set_assignment_status(self, assignment_id: str, status: AssignmentStatus) -> Assignment:
        row = await self._assignment_row(assignment_id)
        try:
            await self._org.call(
                "PATCH",
                f"/sobjects/pse__Assignment__c/{row['Id']}",
                what="assignment",
                json={"pse__Status__c": ASSIGNMENT_STATUS_VENDOR[status]},
                field_map=ASSIGNMENT_FIELDS,
            )
        except Unprocessable as exc:  # the status rule: someone changed it first
            raise Conflict(
                f"{VENDOR} refused the change: {exc.detail}",
                slug="invalid-transition",
                from_state=ASSIGNMENT_STATUS[row["pse__Status__c"]],
                to_state=status,
            ) from exc
        return assignment_from_vendor(await self._by_id("pse__Assignment__c", row["Id"], "assignment"), self.keys)

    # time entries

    async def _timecard_row(self, time_entry_id: str) -> dict[str, Any]:
        name = to_business_key("time_entry", time_entry_id)
        return await self._one("pse__Timecard_Header__c", [f"Name = {soql_text(name)}"], "time entry")

    async def _timecard(self, record_id: str) -> TimeEntry:
        return timecard_from_vendor(await self._by_id("pse__Timecard_Header__c", record_id, "time entry"), self.keys)

    async def list_time_entries(self, filters: TimeEntryFilter, *, cursor: str | None, limit: int) -> Page[TimeEntry]:
        where = await self._scope(filters.worker_id, filters.project_id)
        if where is None:
            return Page(items=[])
        where.extend(_state_filter(filters.state))
        if filters.from_date:
            where.append(f"Work_Date__c >= {filters.from_date.isoformat()}")
        if filters.to_date:
            where.append(f"Work_Date__c <= {filters.to_date.isoformat()}")
        if filters.updated_since:
            where.append(f"LastModifiedDate >= {soql_datetime(filters.updated_since)}")
        rows, next_cursor = await self._org.query(select("pse__Timecard_Header__c", where), cursor, limit)
        await self._know(rows)
        return Page(items=[timecard_from_vendor(r, self.keys) for r in rows], next_cursor=next_cursor)

    async def get_time_entry(self, time_entry_id: str) -> TimeEntry:
        return timecard_from_vendor(await self._timecard_row(time_entry_id), self.keys)

    async def create_time_entry(self, data: TimeEntryCreate) -> tuple[TimeEntry, bool]:
        body: dict[str, Any] = {
            "pse__Resource__c": await self._contact(data.worker_id, "/worker_id"),
            "pse__Project__c": await self._project_ref(data.project_id, "/project_id"),
            "Project_Task__c": await self._task_ref(data.task_id, "/task_id") if data.task_id else None,
            **day_fields(data.work_date, minutes_of_hours(data.hours), data.notes),
            "pse__Billable__c": data.billable,
            "Activity_Type__c": ACTIVITY_VENDOR[data.activity],
            "pse__Status__c": "Saved",
            "Version__c": 1,
        }
        if data.client_ref is not None:
            body["External_Ref__c"] = data.client_ref
        status, answer = await self._org.send("POST", "/sobjects/pse__Timecard_Header__c", json=body)
        first = duplicate_of(answer, "External_Ref__c") if status == 400 else None
        if first is not None:  # sent before (an offline resend): the first one, never a second entry
            return await self._timecard(first), False
        if status >= 400 or not isinstance(answer, dict):
            raise self._org.refusal(status, answer, TIMECARD_FIELDS, "time entry")
        return await self._timecard(answer["id"]), True

    def _conflict(self, problem: ProblemError, row: dict[str, Any], to_state: str | None) -> ProblemError:
        """A Certinia validation rule on the status or the version chain: a state conflict, in canonical terms."""
        pointers = {e.pointer for e in getattr(problem, "errors", None) or []}
        if "/to_state" not in pointers and not row.get("Superseded_By__c"):
            return problem
        current = timecard_state(row)
        if row.get("Superseded_By__c"):
            return Conflict(
                f"{VENDOR} refused the change: the entry was superseded",
                slug="already-superseded",
                from_state=current,
                to_state=to_state,
            )
        slug = "invalid-transition" if to_state else "not-editable"
        return Conflict(
            f"{VENDOR} refused the change: {problem.detail}", slug=slug, from_state=current, to_state=to_state
        )

    async def update_time_entry(self, time_entry_id: str, changes: dict[str, object]) -> TimeEntry:
        row = await self._timecard_row(time_entry_id)
        current = timecard_from_vendor(row, self.keys)
        body: dict[str, Any] = {}
        if "task_id" in changes:
            body["Project_Task__c"] = (
                None if changes["task_id"] is None else await self._task_ref(str(changes["task_id"]), "/task_id")
            )
        if {"work_date", "hours", "notes"} & set(changes):
            work_date = changes.get("work_date", current.work_date)
            hours = changes.get("hours", current.hours)
            notes = changes.get("notes", current.notes)
            assert isinstance(work_date, dt.date) and isinstance(hours, Decimal) and isinstance(notes, str)
            body.update(day_fields(work_date, minutes_of_hours(hours), notes))
        if "billable" in changes:
            body["pse__Billable__c"] = changes["billable"]
        if "activity" in changes:
            body["Activity_Type__c"] = ACTIVITY_VENDOR[str(changes["activity"])]
        try:
            await self._org.call(
                "PATCH",
                f"/sobjects/pse__Timecard_Header__c/{row['Id']}",
                json=body,
                what="time entry",
                field_map=TIMECARD_FIELDS,
            )
        except Unprocessable as exc:
            raise self._conflict(
                exc, await self._by_id("pse__Timecard_Header__c", row["Id"], "time entry"), None
            ) from exc
        return await self._timecard(row["Id"])

    async def delete_time_entry(self, time_entry_id: str) -> None:
        row = await self._timecard_row(time_entry_id)
        try:
            await self._org.call(
                "DELETE", f"/sobjects/pse__Timecard_Header__c/{row['Id']}", what="time entry", field_map=TIMECARD_FIELDS
            )
        except Unprocessable as exc:
            raise self._conflict(exc, row, None) from exc
        self.keys.timecards.forget(row["Name"])

    async def _state_body(self, to_state: TimeEntryState, actor_id: str | None, reason: str | None) -> dict[str, Any]:
        if to_state == "submitted":
            return {"pse__Status__c": "Submitted", "Submitted_At__c": _now(), "Rejection_Note__c": None}
        if to_state == "approved":
            body: dict[str, Any] = {"pse__Status__c": "Approved", "Approved_At__c": _now()}
            if actor_id is not None:
                body["pse__Approver__c"] = await self._contact(actor_id, "/actor_id")
            return body
        if to_state == "rejected":
            return {"pse__Status__c": "Rejected", "Rejection_Note__c": reason}
        if to_state == "draft":
            return {"pse__Status__c": "Saved", "Submitted_At__c": None}
        return {"pse__Billed__c": True} if to_state == "posted" else {"pse__Invoiced__c": True}

    async def set_time_entry_state(
        self, time_entry_id: str, to_state: TimeEntryState, *, actor_id: str | None, reason: str | None
    ) -> TimeEntry:
        row = await self._timecard_row(time_entry_id)
        try:
            await self._org.call(
                "PATCH",
                f"/sobjects/pse__Timecard_Header__c/{row['Id']}",
                json=await self._state_body(to_state, actor_id, reason),
                what="time entry",
                field_map=TIMECARD_FIELDS,
            )
        except Unprocessable as exc:
            raise self._conflict(
                exc, await self._by_id("pse__Timecard_Header__c", row["Id"], "time entry"), to_state
            ) from exc
        return await self._timecard(row["Id"])

    async def _timecards_by_name(self, names: Sequence[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for start in range(0, len(names), NAMES_PER_QUERY):
            listed = ", ".join(soql_text(n) for n in names[start : start + NAMES_PER_QUERY])
            rows.extend(await self._org.query_all(select("pse__Timecard_Header__c", [f"Name IN ({listed})"])))
        await self._know(rows)
        return rows

    async def get_time_entries(self, time_entry_ids: Sequence[str]) -> dict[str, TimeEntry]:
        wanted = {to_business_key("time_entry", i): i for i in time_entry_ids if is_canonical("time_entry", i)}
        rows = await self._timecards_by_name(list(wanted))
        return {wanted[r["Name"]]: timecard_from_vendor(r, self.keys) for r in rows if r["Name"] in wanted}

    async def set_time_entry_states(self, changes: Sequence[TimeEntryTransitionItem]) -> list[TimeEntry | ProblemError]:
        rows = {
            r["Name"]: r
            for r in await self._timecards_by_name(
                [
                    to_business_key("time_entry", c.time_entry_id)
                    for c in changes
                    if is_canonical("time_entry", c.time_entry_id)
                ]
            )
        }
        outcomes: list[TimeEntry | ProblemError | None] = [None] * len(changes)
        records: list[tuple[int, dict[str, Any]]] = []
        for index, change in enumerate(changes):
            row = (
                rows.get(to_business_key("time_entry", change.time_entry_id))
                if is_canonical("time_entry", change.time_entry_id)
                else None
            )
            if row is None:
                outcomes[index] = NotFound(f"no time entry {change.time_entry_id!r}", slug="unknown-id")
                continue
            try:
                body = await self._state_body(change.to_state, change.actor_id, change.reason)
            except ProblemError as exc:
                outcomes[index] = exc
                continue
            records.append((index, {"attributes": {"type": "pse__Timecard_Header__c"}, "id": row["Id"], **body}))
        changed: list[str] = []
        for start in range(0, len(records), COLLECTION_MAX):
            chunk = records[start : start + COLLECTION_MAX]
            results = await self._org.call(
                "PATCH",
                "/composite/sobjects",
                what="time entry",
                field_map=TIMECARD_FIELDS,
                json={"allOrNone": False, "records": [r for _, r in chunk]},
            )
            for (index, record), result in zip(chunk, results, strict=True):
                if result.get("success"):
                    changed.append(record["id"])
                    continue
                errors = [
                    {"errorCode": e.get("statusCode"), "message": e.get("message"), "fields": e.get("fields")}
                    for e in result.get("errors") or []
                ]
                problem = self._org.refusal(400, errors, TIMECARD_FIELDS, "time entry")
                row = rows[to_business_key("time_entry", changes[index].time_entry_id)]
                outcomes[index] = self._conflict(problem, row, changes[index].to_state)
        if changed:
            fresh: dict[str, dict[str, Any]] = {}
            for start in range(0, len(changed), NAMES_PER_QUERY):
                listed = ", ".join(soql_text(i) for i in changed[start : start + NAMES_PER_QUERY])
                for row in await self._org.query_all(select("pse__Timecard_Header__c", [f"Id IN ({listed})"])):
                    fresh[row["Id"]] = row
            await self._know(fresh.values())
            for index, record in records:
                if record["id"] in fresh and outcomes[index] is None:
                    outcomes[index] = timecard_from_vendor(fresh[record["id"]], self.keys)
        return [outcome for outcome in outcomes if outcome is not None]

    async def correct_time_entry(
        self, time_entry_id: str, changes: dict[str, object], idempotency_key: str | None
    ) -> TimeEntry:
        row = await self._timecard_row(time_entry_id)
        old = timecard_from_vendor(row, self.keys)
        task_id = changes.get("task_id", old.task_id)
        work_date = changes.get("work_date", old.work_date)
        hours = changes.get("hours", old.hours)
        notes = changes.get("notes", old.notes)
        assert isinstance(work_date, dt.date) and isinstance(hours, Decimal) and isinstance(notes, str)
        body = {
            "pse__Resource__c": row["pse__Resource__c"],
            "pse__Project__c": row["pse__Project__c"],
            "Project_Task__c": None if task_id is None else await self._task_ref(str(task_id), "/task_id"),
            **day_fields(work_date, minutes_of_hours(hours), notes),
            "pse__Billable__c": changes.get("billable", old.billable),
            "Activity_Type__c": ACTIVITY_VENDOR[str(changes.get("activity", old.activity))],
            "pse__Status__c": "Saved",
            "Version__c": old.version + 1,
            "Supersedes__c": row["Id"],
        }
        answer = await self._org.call(
            "POST",
            "/composite",
            what="time entry",
            field_map=TIMECARD_FIELDS,
            json={
                "allOrNone": True,
                "compositeRequest": [
                    {
                        "method": "POST",
                        "url": f"{API}/sobjects/pse__Timecard_Header__c",
                        "referenceId": "version",
                        "body": body,
                    },
                    {
                        "method": "PATCH",
                        "url": f"{API}/sobjects/pse__Timecard_Header__c/{row['Id']}",
                        "referenceId": "superseded",
                        "body": {"Superseded_By__c": "@{version.id}"},
                    },
                ],
            },
        )
        outcome = answer["compositeResponse"]
        failed = next(
            (
                r
                for r in outcome
                if r["httpStatusCode"] >= 400 and not any(e.get("errorCode") == "PROCESSING_HALTED" for e in r["body"])
            ),
            None,
        )
        if failed is not None:
            current = await self._by_id("pse__Timecard_Header__c", row["Id"], "time entry")
            problem = self._org.refusal(failed["httpStatusCode"], failed["body"], TIMECARD_FIELDS, "time entry")
            if current.get("Superseded_By__c"):
                conflict = Conflict(
                    f"{VENDOR} refused the correction: the entry was superseded already", slug="already-superseded"
                )
                conflict.extensions["superseded_by_id"] = timecard_from_vendor(current, self.keys).superseded_by_id
                raise conflict
            raise problem
        return await self._timecard(outcome[0]["body"]["id"])

    # expenses and milestones

    async def list_expenses(
        self,
        *,
        worker_id: str | None,
        project_id: str | None,
        state: ExpenseState | None,
        cursor: str | None,
        limit: int,
    ) -> Page[Expense]:
        where = await self._scope(worker_id, project_id)
        if where is None:
            return Page(items=[])
        where.extend(c.replace("'Saved'", "'Draft'") for c in _state_filter(state))
        rows, next_cursor = await self._org.query(select("pse__Expense__c", where), cursor, limit)
        await self._know(rows)
        return Page(items=[expense_from_vendor(r, self.keys) for r in rows], next_cursor=next_cursor)

    async def create_expense(self, data: ExpenseCreate) -> tuple[Expense, bool]:
        vendor_status = {"draft": "Draft", "submitted": "Submitted", "rejected": "Rejected"}.get(data.state, "Approved")
        body = {
            "pse__Resource__c": await self._contact(data.worker_id, "/worker_id"),
            "pse__Project__c": await self._project_ref(data.project_id, "/project_id"),
            "pse__Expense_Date__c": data.expense_date.isoformat(),
            "pse__Amount__c": number(data.amount),
            "CurrencyIsoCode": data.currency,
            "pse__Type__c": data.category.title(),
            "pse__Billable__c": data.billable,
            "Receipt_Ref__c": data.receipt_ref,
            "pse__Status__c": vendor_status,
            "pse__Billed__c": data.state in ("posted", "invoiced"),
            "pse__Invoiced__c": data.state == "invoiced",
            "External_Ref__c": data.source_ref,
        }
        status, answer = await self._org.send("POST", "/sobjects/pse__Expense__c", json=body)
        first = duplicate_of(answer) if status == 400 else None
        if first is not None:  # written before (a retry): the first one, never a second expense
            return expense_from_vendor(await self._by_id("pse__Expense__c", first, "expense"), self.keys), False
        if status >= 400 or not isinstance(answer, dict):
            raise self._org.refusal(status, answer, EXPENSE_FIELDS, "expense")
        return expense_from_vendor(await self._by_id("pse__Expense__c", answer["id"], "expense"), self.keys), True

    async def list_milestones(
        self, *, project_id: str | None, state: MilestoneState | None, cursor: str | None, limit: int
    ) -> Page[Milestone]:
        where = await self._scope(project_id=project_id)
        if where is None:
            return Page(items=[])
        if state == "invoiced":
            where.append("pse__Invoiced__c = true")
        elif state is not None:
            vendor = {v: k for k, v in MILESTONE_STATUS.items()}[state]
            where.extend([f"pse__Status__c = {soql_text(vendor)}", "pse__Invoiced__c = false"])
        rows, next_cursor = await self._org.query(select("pse__Milestone__c", where), cursor, limit)
        await self._know(rows)
        return Page(items=[milestone_from_vendor(r, self.keys) for r in rows], next_cursor=next_cursor)

    async def _milestone_row(self, milestone_id: str) -> dict[str, Any]:
        number_ = to_business_key("milestone", milestone_id)
        return await self._one("pse__Milestone__c", [f"Milestone_Number__c = {soql_text(number_)}"], "milestone")

    async def get_milestone(self, milestone_id: str) -> Milestone:
        return milestone_from_vendor(await self._milestone_row(milestone_id), self.keys)

    async def set_milestone_state(self, milestone_id: str, to_state: MilestoneState) -> Milestone:
        row = await self._milestone_row(milestone_id)
        bodies: dict[str, dict[str, Any]] = {
            "completed": {"pse__Status__c": "Complete"},
            "accepted": {"pse__Status__c": "Approved", "Accepted_On__c": dt.datetime.now(dt.UTC).date().isoformat()},
            "invoiced": {"pse__Invoiced__c": True},
        }
        body = bodies.get(to_state, {"pse__Status__c": "Open"})
        try:
            await self._org.call(
                "PATCH",
                f"/sobjects/pse__Milestone__c/{row['Id']}",
                json=body,
                what="milestone",
                field_map=MILESTONE_FIELDS,
            )
        except Unprocessable as exc:
            raise Conflict(
                f"{VENDOR} refused the change: {exc.detail}",
                slug="invalid-transition",
                from_state=milestone_state(row),
                to_state=to_state,
            ) from exc
        return milestone_from_vendor(await self._by_id("pse__Milestone__c", row["Id"], "milestone"), self.keys)
