"""PSA adapter for the sandbox timecard PSA (``sandbox/psa.py``): its dialect in, the canonical model out.

The mapping functions at module level are pure (vendor JSON <-> canonical Struct, given the id maps), so they
can be tested round trip without a vendor; :class:`SandboxPsa` does the HTTP and keeps the id maps warm.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import msgspec

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
    decimal_text,
    hours_of_minutes,
    plain_decimal,
    role_id,
    whole_minutes,
)
from runtime import cursors
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
from system_apis.vendor_auth import ClientCredentialsToken, VendorCredentials
from system_apis.vendor_calls import VendorDownstream, VendorLimits
from system_apis.vendor_errors import vendor_problem
from system_apis.vendor_keys import KeyMap

VENDOR = "sandbox-psa"
# Every 4xx comes back to ``_call`` (it maps the vendor's error body): built once, not a 100-status set per call.
CLIENT_ERRORS: Final = frozenset(range(400, 500))
TOKEN_PATH = "/oauth2/token"  # noqa: S105 - the vendor's token endpoint, not a secret
PROJECT_STATUS: dict[str, ProjectStatus] = {"Planned": "planned", "In Progress": "active", "Paused": "on_hold",
                                            "Completed": "closed"}
BILLING_MODEL: dict[str, BillingModel] = {"T&M": "time_and_materials", "FIXED": "fixed_fee",
                                          "MILESTONE": "milestone", "RETAINER": "retainer"}
ASSIGNMENT_STATUS: dict[str, AssignmentStatus] = {"Tentative": "proposed", "Confirmed": "confirmed",
                                                  "Closed": "ended"}
TIMECARD_STATE: dict[str, TimeEntryState] = {"Saved": "draft", "Submitted": "submitted", "Approved": "approved",
                                             "Rejected": "rejected", "Posted": "posted", "Billed": "invoiced"}
MILESTONE_STATE: dict[str, MilestoneState] = {"Open": "pending", "Complete": "completed", "Accepted": "accepted",
                                              "Invoiced": "invoiced"}
PROJECT_STATUS_VENDOR = {v: k for k, v in PROJECT_STATUS.items()}
BILLING_MODEL_VENDOR = {v: k for k, v in BILLING_MODEL.items()}
ASSIGNMENT_STATUS_VENDOR = {v: k for k, v in ASSIGNMENT_STATUS.items()}
TIMECARD_STATE_VENDOR = {v: k for k, v in TIMECARD_STATE.items()}
MILESTONE_STATE_VENDOR = {v: k for k, v in MILESTONE_STATE.items()}

# Vendor field -> canonical JSON pointer, for refusals.
TIMECARD_FIELDS = {"resourceId": "/worker_id", "projectId": "/project_id", "taskId": "/task_id", "date": "/work_date",
                   "durationMinutes": "/hours", "isBillable": "/billable", "comments": "/notes",
                   "activityType": "/activity",
                   "externalRef": "/client_ref", "approverResourceId": "/actor_id", "note": "/reason",
                   "status": "/to_state", "fromDate": "/from_date", "toDate": "/to_date",
                   "modifiedSince": "/updated_since"}
EXPENSE_FIELDS = {"resourceId": "/worker_id", "projectId": "/project_id", "date": "/expense_date", "amount": "/amount",
                  "currency": "/currency", "category": "/category", "isBillable": "/billable",
                  "receiptRef": "/receipt_ref", "status": "/state", "externalRef": "/source_ref"}
PROJECT_FIELDS = {"title": "/name", "contractRef": "/contract_id", "accountRef": "/customer_id",
                  "entity": "/legal_entity_id", "billingType": "/billing_model", "stage": "/status",
                  "budgetHours": "/budget_hours", "managerEmployeeNumber": "/manager_id",
                  "practice": "/business_unit_id", "startDate": "/start_date", "endDate": "/end_date"}
TASK_FIELDS = {"name": "/name", "isBillable": "/billable"}
ASSIGNMENT_FIELDS = {"resourceId": "/worker_id", "projectId": "/project_id", "roleName": "/role",
                     "hoursPerWeek": "/planned_hours_per_week", "from": "/start_date", "to": "/end_date",
                     "status": "/status"}
MILESTONE_FIELDS = {"status": "/to_state"}
PAGE_SIZE_MAX = 500
VENDOR_BATCH_MAX = 500  # timecards per bulk look-up or bulk status change


def role_of(vendor_role: str) -> str:
    return role_id(vendor_role)


def vendor_role(role: str) -> str:
    return role.replace("_", " ").title()


def minutes_of(hours: Decimal) -> int:
    minutes = whole_minutes(hours)
    if minutes is None:
        raise Unprocessable("hours must come to whole minutes", slug="validation-failed",
                            errors=[FieldError(pointer="/hours", detail="must be a whole number of minutes")])
    return minutes


def number(value: Decimal) -> int | float:
    """A JSON number for the vendor (it takes numbers, not strings) without float error for whole values."""
    return int(value) if value == value.to_integral_value() else float(value)


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _instant(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _stamp(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment else None


@dataclass
class PsaKeys:
    """The PSA's internal ids against business keys (employee numbers, project and task codes, timecard numbers)."""

    resources: KeyMap[int] = field(default_factory=KeyMap)
    projects: KeyMap[int] = field(default_factory=KeyMap)
    tasks: KeyMap[int] = field(default_factory=KeyMap)
    timecards: KeyMap[int] = field(default_factory=KeyMap)

    def key(self, kind: str, vendor_id: int) -> str:
        found = getattr(self, kind).key(vendor_id)
        if found is None:
            raise LookupError(f"unknown {kind} id {vendor_id}")
        return str(found)

    def vendor_id(self, kind: str, key: str) -> int:
        found = getattr(self, kind).vendor_id(key)
        if found is None:
            raise LookupError(f"unknown {kind} key {key}")
        return int(found)


# --- pure mapping ----------------------------------------------------------------------------------------------

def project_from_vendor(body: dict[str, Any]) -> Project:
    return Project(
        id=to_canonical("project", body["projectCode"]),
        external_ids={"psa": str(body["projectId"])},
        name=body["title"],
        contract_id=to_canonical("contract", body["contractRef"]),
        customer_id=to_canonical("customer", body["accountRef"]),
        legal_entity_id=to_canonical("legal_entity", body["entity"]),
        status=PROJECT_STATUS[body["stage"]],
        billing_model=BILLING_MODEL[body["billingType"]],
        budget_hours=plain_decimal(Decimal(str(body["budgetHours"]))) if body.get("budgetHours") is not None else None,
        manager_id=to_canonical("worker", body["managerEmployeeNumber"]) if body.get(
            "managerEmployeeNumber") else None,
        business_unit_id=to_canonical("business_unit", body["practice"]) if body.get("practice") else None,
        start_date=_date(body.get("startDate")),
        end_date=_date(body.get("endDate")),
    )


def project_to_vendor(project: Project | ProjectCreate | dict[str, Any]) -> dict[str, Any]:
    """Canonical project fields (a whole project, a create body or a patch's changes) in the PSA's terms."""
    values = project if isinstance(project, dict) else {
        name: getattr(project, name) for name in project.__struct_fields__ if name not in ("id", "external_ids")}
    converters: dict[str, tuple[str, Any]] = {
        "name": ("title", lambda v: v),
        "contract_id": ("contractRef", lambda v: reference("contract", v, "/contract_id")),
        "customer_id": ("accountRef", lambda v: reference("customer", v, "/customer_id")),
        "legal_entity_id": ("entity", lambda v: reference("legal_entity", v, "/legal_entity_id")),
        "billing_model": ("billingType", BILLING_MODEL_VENDOR.__getitem__),
        "status": ("stage", PROJECT_STATUS_VENDOR.__getitem__),
        "budget_hours": ("budgetHours", number),
        "manager_id": ("managerEmployeeNumber", lambda v: reference("worker", v, "/manager_id")),
        "business_unit_id": ("practice", lambda v: reference("business_unit", v, "/business_unit_id")),
        "start_date": ("startDate", dt.date.isoformat),
        "end_date": ("endDate", dt.date.isoformat),
    }
    body: dict[str, Any] = {}
    for name, value in values.items():
        if name in converters:
            vendor_name, convert = converters[name]
            body[vendor_name] = None if value is None else convert(value)
    return body


def task_from_vendor(body: dict[str, Any], keys: PsaKeys) -> Task:
    return Task(id=to_canonical("task", body["taskCode"]), external_ids={"psa": str(body["taskId"])},
                project_id=to_canonical("project", keys.key("projects", body["projectId"])), name=body["name"],
                billable=body["isBillable"])


def task_to_vendor(task: Task, keys: PsaKeys) -> dict[str, Any]:
    return {"taskId": int(task.external_ids["psa"]), "taskCode": to_business_key("task", task.id),
            "projectId": keys.vendor_id("projects", to_business_key("project", task.project_id)),
            "name": task.name, "isBillable": task.billable}


def assignment_from_vendor(body: dict[str, Any], keys: PsaKeys) -> Assignment:
    return Assignment(
        id=to_canonical("assignment", body["assignmentNumber"]),
        external_ids={"psa": str(body["assignmentId"])},
        worker_id=to_canonical("worker", keys.key("resources", body["resourceId"])),
        project_id=to_canonical("project", keys.key("projects", body["projectId"])),
        role=role_of(body["roleName"]),
        planned_hours_per_week=plain_decimal(Decimal(str(body["hoursPerWeek"]))),
        start_date=dt.date.fromisoformat(body["from"]),
        end_date=_date(body.get("to")),
        status=ASSIGNMENT_STATUS[body["status"]],
    )


def assignment_to_vendor(assignment: Assignment, keys: PsaKeys) -> dict[str, Any]:
    return {
        "assignmentId": int(assignment.external_ids["psa"]),
        "assignmentNumber": to_business_key("assignment", assignment.id),
        "resourceId": keys.vendor_id("resources", to_business_key("worker", assignment.worker_id)),
        "projectId": keys.vendor_id("projects", to_business_key("project", assignment.project_id)),
        "roleName": vendor_role(assignment.role), "hoursPerWeek": number(assignment.planned_hours_per_week),
        "from": assignment.start_date.isoformat(),
        "to": assignment.end_date.isoformat() if assignment.end_date else None,
        "status": ASSIGNMENT_STATUS_VENDOR[assignment.status],
    }


# The PSA's activity types; a timecard written before it had them is work.
ACTIVITY: Final[dict[str, TimeActivity]] = {"Work": "work", "Travel": "travel"}
ACTIVITY_VENDOR: Final[dict[str, str]] = {canonical: vendor for vendor, canonical in ACTIVITY.items()}


def timecard_from_vendor(body: dict[str, Any], keys: PsaKeys) -> TimeEntry:
    def worker(resource_id: int | None) -> str | None:
        return to_canonical("worker", keys.key("resources", resource_id)) if resource_id is not None else None

    def entry(timecard_id: int | None) -> str | None:
        return to_canonical("time_entry", keys.key("timecards", timecard_id)) if timecard_id is not None else None

    return TimeEntry(
        id=to_canonical("time_entry", body["timecardNumber"]),
        external_ids={"psa": str(body["timecardId"])},
        worker_id=worker(body["resourceId"]) or "",
        project_id=to_canonical("project", keys.key("projects", body["projectId"])),
        task_id=to_canonical("task", keys.key("tasks", body["taskId"])) if body.get("taskId") is not None else None,
        work_date=dt.date.fromisoformat(body["date"]),
        hours=hours_of_minutes(body["durationMinutes"]), minutes=body["durationMinutes"],
        billable=body["isBillable"], activity=ACTIVITY.get(body.get("activityType") or "Work", "work"),
        notes=body.get("comments") or "",
        state=TIMECARD_STATE[body["status"]],
        version=body.get("version", 1),
        supersedes_id=entry(body.get("supersedesTimecardId")),
        superseded_by_id=entry(body.get("supersededByTimecardId")),
        submitted_at=_instant(body.get("submittedOn")),
        approved_at=_instant(body.get("approvedOn")),
        approved_by=worker(body.get("approverResourceId")),
        rejection_reason=body.get("rejectionNote"),
        updated_at=_instant(body.get("lastModified")),
        client_ref=body.get("externalRef"),
    )


def timecard_to_vendor(entry: TimeEntry, keys: PsaKeys) -> dict[str, Any]:
    def resource(worker_id: str | None) -> int | None:
        return keys.vendor_id("resources", to_business_key("worker", worker_id)) if worker_id else None

    def timecard(entry_id: str | None) -> int | None:
        return keys.vendor_id("timecards", to_business_key("time_entry", entry_id)) if entry_id else None

    return {
        "timecardId": int(entry.external_ids["psa"]), "timecardNumber": to_business_key("time_entry", entry.id),
        "resourceId": resource(entry.worker_id),
        "projectId": keys.vendor_id("projects", to_business_key("project", entry.project_id)),
        "taskId": keys.vendor_id("tasks", to_business_key("task", entry.task_id)) if entry.task_id else None,
        "date": entry.work_date.isoformat(), "durationMinutes": minutes_of(entry.hours), "isBillable": entry.billable,
        "activityType": ACTIVITY_VENDOR[entry.activity],
        "comments": entry.notes, "status": TIMECARD_STATE_VENDOR[entry.state], "version": entry.version,
        "supersedesTimecardId": timecard(entry.supersedes_id),
        "supersededByTimecardId": timecard(entry.superseded_by_id), "externalRef": entry.client_ref,
        "submittedOn": _stamp(entry.submitted_at), "approvedOn": _stamp(entry.approved_at),
        "approverResourceId": resource(entry.approved_by), "rejectionNote": entry.rejection_reason,
        "lastModified": _stamp(entry.updated_at),
    }


def expense_from_vendor(body: dict[str, Any], keys: PsaKeys) -> Expense:
    return Expense(
        id=to_canonical("expense", body["expenseNumber"]), external_ids={"psa": str(body["expenseId"])},
        worker_id=to_canonical("worker", keys.key("resources", body["resourceId"])),
        project_id=to_canonical("project", keys.key("projects", body["projectId"])),
        expense_date=dt.date.fromisoformat(body["date"]), amount=Decimal(body["amount"]), currency=body["currency"],
        category=body["category"].lower(), billable=body["isBillable"], receipt_ref=body.get("receiptRef"),
        state=TIMECARD_STATE[body["status"]], source_ref=body.get("externalRef"),
    )


def expense_to_vendor(expense: Expense, keys: PsaKeys) -> dict[str, Any]:
    return {
        "expenseId": int(expense.external_ids["psa"]), "expenseNumber": to_business_key("expense", expense.id),
        "resourceId": keys.vendor_id("resources", to_business_key("worker", expense.worker_id)),
        "projectId": keys.vendor_id("projects", to_business_key("project", expense.project_id)),
        "date": expense.expense_date.isoformat(), "amount": str(expense.amount), "currency": expense.currency,
        "category": expense.category.title(), "isBillable": expense.billable, "receiptRef": expense.receipt_ref,
        "status": TIMECARD_STATE_VENDOR[expense.state], "externalRef": expense.source_ref,
    }


def milestone_from_vendor(body: dict[str, Any], keys: PsaKeys) -> Milestone:
    return Milestone(
        id=to_canonical("milestone", body["milestoneNumber"]), external_ids={"psa": str(body["milestoneId"])},
        project_id=to_canonical("project", keys.key("projects", body["projectId"])), name=body["name"],
        amount=Decimal(body["amount"]), currency=body["currency"], due_date=dt.date.fromisoformat(body["dueDate"]),
        state=MILESTONE_STATE[body["status"]],
        accepted_on=dt.date.fromisoformat(body["acceptedOn"]) if body.get("acceptedOn") else None,
    )


def milestone_to_vendor(milestone: Milestone, keys: PsaKeys) -> dict[str, Any]:
    return {
        "milestoneId": int(milestone.external_ids["psa"]),
        "milestoneNumber": to_business_key("milestone", milestone.id),
        "projectId": keys.vendor_id("projects", to_business_key("project", milestone.project_id)),
        "name": milestone.name, "amount": str(milestone.amount), "currency": milestone.currency,
        "dueDate": milestone.due_date.isoformat(), "status": MILESTONE_STATE_VENDOR[milestone.state],
        "acceptedOn": milestone.accepted_on.isoformat() if milestone.accepted_on else None,
    }


def timecard_changes(changes: dict[str, object], keys: PsaKeys) -> dict[str, Any]:
    """A canonical time entry patch in the PSA's terms (task ids must already be known to ``keys``)."""
    body: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "task_id":
            if value is None:
                body["taskId"] = None
            else:
                code = reference("task", str(value), "/task_id")
                task_id = keys.tasks.vendor_id(code)
                if task_id is None:
                    raise unknown_reference("task", str(value), "/task_id")
                body["taskId"] = task_id
        elif name == "work_date":
            body["date"] = value.isoformat()  # type: ignore[attr-defined]
        elif name == "hours":
            body["durationMinutes"] = minutes_of(value)  # type: ignore[arg-type]
        elif name == "billable":
            body["isBillable"] = value
        elif name == "activity":
            body["activityType"] = ACTIVITY_VENDOR[value]  # type: ignore[index]
        elif name == "notes":
            body["comments"] = value
    return body


# --- the adapter -----------------------------------------------------------------------------------------------

class SandboxPsa:
    def __init__(self, base_url: str, timeout_seconds: float, *, limits: VendorLimits | None = None,
                 credentials: VendorCredentials | None = None) -> None:
        self._vendor = VendorDownstream(VENDOR, base_url, timeout_seconds=timeout_seconds, grant=ClientCredentialsToken,
                                        token_path=TOKEN_PATH, credentials=credentials,
                                        limits=limits, honours_idempotency_key=True)
        self.keys = PsaKeys()

    async def aclose(self) -> None:
        await self._vendor.aclose()

    async def _call(self, method: str, path: str, *, field_map: dict[str, str], what: str,
                    params: dict[str, Any] | None = None, json: Any = None, idempotency_key: str | None = None,
                    expect: Iterable[int] = ()) -> tuple[int, Any]:
        """One vendor call; a 4xx not in ``expect`` becomes the canonical problem, in canonical field names."""
        response = await self._vendor.request(method, path, params=params, json=json, idempotency_key=idempotency_key,
                                              allow_statuses=CLIENT_ERRORS)
        body = msgspec.json.decode(response.content) if response.content else None
        if response.status_code < 400 or response.status_code in expect:
            return response.status_code, body
        error = body if isinstance(body, dict) else {}
        fields = [(f.get("field"), str(f.get("message", ""))) for f in error.get("fieldErrors") or []]
        raise vendor_problem(VENDOR, response.status_code, str(error.get("message", "")), fields, field_map,
                             what=what)

    async def _get(self, path: str, *, what: str, params: dict[str, Any] | None = None,
                   field_map: dict[str, str] | None = None) -> Any:
        return (await self._call("GET", path, params=params, what=what, field_map=field_map or {}))[1]

    # id maps: load what is missing, reload a whole map when an id is new to us

    async def _load_all(self, kind: str, path: str, key_field: str, id_field: str) -> None:
        page = 1
        while True:
            body = await self._get(path, what=kind, params={"page": page, "pageSize": PAGE_SIZE_MAX})
            for row in body["data"]:
                getattr(self.keys, kind).learn(row[key_field], row[id_field])
            if page >= body["meta"]["totalPages"]:
                return
            page += 1

    async def _know(self, rows: Iterable[dict[str, Any]]) -> None:
        """Make sure every vendor id these rows reference is in the id maps before mapping them."""
        rows = list(rows)
        wanted = {
            "resources": {r.get(f) for r in rows for f in ("resourceId", "approverResourceId")},
            "projects": {r.get("projectId") for r in rows},
            "tasks": {r.get("taskId") for r in rows},
            "timecards": {r.get(f) for r in rows for f in ("supersedesTimecardId", "supersededByTimecardId")},
        }
        for row in rows:
            if "timecardNumber" in row:
                self.keys.timecards.learn(row["timecardNumber"], row["timecardId"])
            if "projectCode" in row:
                self.keys.projects.learn(row["projectCode"], row["projectId"])
        sources = {"resources": ("/api/v3/resources", "employeeNumber", "resourceId"),
                   "projects": ("/api/v3/projects", "projectCode", "projectId"),
                   "tasks": ("/api/v3/tasks", "taskCode", "taskId")}
        for kind, (path, key_field, id_field) in sources.items():
            if any(v is not None and getattr(self.keys, kind).key(v) is None for v in wanted[kind]):
                await self._load_all(kind, path, key_field, id_field)
        for timecard_id in wanted["timecards"]:
            if timecard_id is not None and self.keys.timecards.key(timecard_id) is None:
                body = await self._get(f"/api/v3/timecards/{timecard_id}", what="time entry")
                self.keys.timecards.learn(body["timecardNumber"], body["timecardId"])

    async def _lookup(self, kind: str, key: str, path: str, key_field: str, id_field: str) -> int | None:
        found = getattr(self.keys, kind).vendor_id(key)
        if found is None:
            body = await self._get(path, what=kind, params={key_field: key, "pageSize": 1})
            if not body["data"]:
                return None
            found = body["data"][0][id_field]
            getattr(self.keys, kind).learn(key, found)
        return int(found)

    async def _resource_id(self, worker_id: str, pointer: str | None = None) -> int | None:
        key = reference("worker", worker_id, pointer) if pointer else to_business_key("worker", worker_id)
        found = await self._lookup("resources", key, "/api/v3/resources", "employeeNumber", "resourceId")
        if found is None and pointer:
            raise unknown_reference("worker", worker_id, pointer)
        return found

    async def _project_id(self, project_id: str, pointer: str | None = None) -> int | None:
        key = reference("project", project_id, pointer) if pointer else to_business_key("project", project_id)
        found = await self._lookup("projects", key, "/api/v3/projects", "projectCode", "projectId")
        if found is None and pointer:
            raise unknown_reference("project", project_id, pointer)
        return found

    async def _task_id(self, task_id: str, pointer: str) -> int:
        found = await self._lookup("tasks", reference("task", task_id, pointer), "/api/v3/tasks", "taskCode",
                                   "taskId")
        if found is None:
            raise unknown_reference("task", task_id, pointer)
        return found

    async def _timecard_id(self, time_entry_id: str) -> int:
        key = to_business_key("time_entry", time_entry_id)
        found = await self._lookup("timecards", key, "/api/v3/timecards", "timecardNumber", "timecardId")
        if found is None:
            raise NotFound(f"no time entry {time_entry_id!r}", slug="unknown-id")
        return found

    async def _existing_project_id(self, project_id: str) -> int:
        found = await self._project_id(project_id)
        if found is None:
            raise NotFound(f"no project {project_id!r}", slug="unknown-id")
        return found

    async def _page(self, path: str, params: dict[str, Any], cursor: str | None, limit: int,
                    what: str, field_map: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], str | None]:
        # The filters' fingerprint only when a cursor is read or given out (a sha256 per call otherwise).
        state = cursors.decode(cursor, cursors.binding({"path": path, **params})) if cursor else {}
        page = cursors.number(state, "page", 1, minimum=1)
        size = cursors.number(state, "size", limit, minimum=1)  # the first page fixes the page size
        body = await self._get(path, what=what, params={**params, "page": page, "pageSize": size},
                               field_map=field_map)
        meta = body["meta"]
        next_cursor = (cursors.encode({"page": page + 1, "size": size}, cursors.binding({"path": path, **params}))
                       if page < meta["totalPages"] else None)
        await self._know(body["data"])
        return body["data"], next_cursor

    # projects and tasks

    async def list_projects(self, *, status: ProjectStatus | None, customer_id: str | None,
                            contract_id: str | None, cursor: str | None, limit: int) -> Page[Project]:
        params: dict[str, Any] = {"stage": PROJECT_STATUS_VENDOR[status] if status else None}
        if customer_id is not None:
            if not is_canonical("customer", customer_id):
                return Page(items=[])
            params["accountRef"] = to_business_key("customer", customer_id)
        if contract_id is not None:
            if not is_canonical("contract", contract_id):
                return Page(items=[])
            params["contractRef"] = to_business_key("contract", contract_id)
        rows, next_cursor = await self._page("/api/v3/projects", params, cursor, limit, "project")
        return Page(items=[project_from_vendor(row) for row in rows], next_cursor=next_cursor)

    async def get_project(self, project_id: str) -> Project:
        vendor_id = await self._existing_project_id(project_id)
        return project_from_vendor(await self._get(f"/api/v3/projects/{vendor_id}", what="project"))

    async def create_project(self, data: ProjectCreate, idempotency_key: str | None) -> Project:
        if data.manager_id is not None:
            await self._resource_id(data.manager_id, "/manager_id")
        _, body = await self._call("POST", "/api/v3/projects", json=project_to_vendor(data), what="project",
                                   field_map=PROJECT_FIELDS, idempotency_key=idempotency_key)
        self.keys.projects.learn(body["projectCode"], body["projectId"])
        return project_from_vendor(body)

    async def update_project(self, project_id: str, changes: dict[str, object]) -> Project:
        vendor_id = await self._existing_project_id(project_id)
        if changes.get("manager_id") is not None:
            await self._resource_id(str(changes["manager_id"]), "/manager_id")
        _, body = await self._call("PATCH", f"/api/v3/projects/{vendor_id}", json=project_to_vendor(changes),
                                   what="project", field_map=PROJECT_FIELDS, expect=(409,))
        if "errorCode" in body:
            raise Conflict(f"{VENDOR} refused the change: {body.get('message')}", slug="invalid-transition",
                           from_state=PROJECT_STATUS.get(body.get("currentStatus", "")),
                           to_state=changes.get("status"))
        return project_from_vendor(body)

    async def list_tasks(self, project_id: str, *, cursor: str | None, limit: int) -> Page[Task]:
        vendor_id = await self._existing_project_id(project_id)
        rows, next_cursor = await self._page(f"/api/v3/projects/{vendor_id}/tasks", {}, cursor, limit, "task")
        return Page(items=[task_from_vendor(row, self.keys) for row in rows], next_cursor=next_cursor)

    async def create_task(self, project_id: str, data: TaskCreate, idempotency_key: str | None) -> Task:
        vendor_id = await self._existing_project_id(project_id)
        _, body = await self._call("POST", f"/api/v3/projects/{vendor_id}/tasks",
                                   json={"name": data.name, "isBillable": data.billable}, what="project",
                                   field_map=TASK_FIELDS, idempotency_key=idempotency_key)
        self.keys.tasks.learn(body["taskCode"], body["taskId"])
        return task_from_vendor(body, self.keys)

    async def _scope(self, worker_id: str | None = None, project_id: str | None = None) -> dict[str, int] | None:
        """The vendor ids for canonical worker/project filters; None when one names nothing the PSA holds, so the
        list is empty rather than an error (a filter is a question, not a reference that must exist)."""
        scope: dict[str, int] = {}
        if worker_id is not None:
            resource_id = await self._resource_id(worker_id) if is_canonical("worker", worker_id) else None
            if resource_id is None:
                return None
            scope["resourceId"] = resource_id
        if project_id is not None:
            vendor_project = await self._project_id(project_id) if is_canonical("project", project_id) else None
            if vendor_project is None:
                return None
            scope["projectId"] = vendor_project
        return scope

    # assignments

    async def list_assignments(self, *, worker_id: str | None, project_id: str | None,
                               status: AssignmentStatus | None, cursor: str | None, limit: int) -> Page[Assignment]:
        params: dict[str, Any] = {"status": ASSIGNMENT_STATUS_VENDOR[status] if status else None}
        scope = await self._scope(worker_id, project_id)
        if scope is None:
            return Page(items=[])
        params.update(scope)
        rows, next_cursor = await self._page("/api/v3/assignments", params, cursor, limit, "assignment")
        return Page(items=[assignment_from_vendor(row, self.keys) for row in rows], next_cursor=next_cursor)

    async def _assignment_row(self, assignment_id: str) -> dict[str, Any]:
        number = to_business_key("assignment", assignment_id)
        body = await self._get("/api/v3/assignments", what="assignment",
                               params={"assignmentNumber": number, "pageSize": 1})
        if not body["data"]:
            raise NotFound(f"no assignment {assignment_id!r}", slug="unknown-id")
        row: dict[str, Any] = body["data"][0]
        return row

    async def get_assignment(self, assignment_id: str) -> Assignment:
        row = await self._assignment_row(assignment_id)
        await self._know([row])
        return assignment_from_vendor(row, self.keys)

    async def create_assignment(self, data: AssignmentCreate, idempotency_key: str | None) -> Assignment:
        body = {
            "resourceId": await self._resource_id(data.worker_id, "/worker_id"),
            "projectId": await self._project_id(data.project_id, "/project_id"),
            "roleName": vendor_role(data.role), "hoursPerWeek": number(data.planned_hours_per_week),
            "from": data.start_date.isoformat(), "to": data.end_date.isoformat() if data.end_date else None,
            "status": ASSIGNMENT_STATUS_VENDOR[data.status],
        }
        _, created = await self._call("POST", "/api/v3/assignments", json=body, what="assignment",
                                      field_map=ASSIGNMENT_FIELDS, idempotency_key=idempotency_key)
        await self._know([created])
        return assignment_from_vendor(created, self.keys)

    async def set_assignment_status(self, assignment_id: str, status: AssignmentStatus) -> Assignment:
        row = await self._assignment_row(assignment_id)
        status_code, body = await self._call("PATCH", f"/api/v3/assignments/{row['assignmentId']}",
                                             json={"status": ASSIGNMENT_STATUS_VENDOR[status]}, what="assignment",
                                             field_map={"status": "/to_status"}, expect=(409,))
        if status_code == 409:
            raise Conflict(f"{VENDOR} refused the change: {body.get('message')}", slug="invalid-transition",
                           from_state=ASSIGNMENT_STATUS.get(body.get("currentStatus", "")), to_state=status)
        await self._know([body])
        return assignment_from_vendor(body, self.keys)

    # time entries

    async def list_time_entries(self, filters: TimeEntryFilter, *, cursor: str | None,
                                limit: int) -> Page[TimeEntry]:
        params: dict[str, Any] = {
            "status": TIMECARD_STATE_VENDOR[filters.state] if filters.state else None,
            "fromDate": filters.from_date.isoformat() if filters.from_date else None,
            "toDate": filters.to_date.isoformat() if filters.to_date else None,
            "modifiedSince": filters.updated_since.astimezone(dt.UTC).isoformat() if filters.updated_since else None,
        }
        scope = await self._scope(filters.worker_id, filters.project_id)
        if scope is None:
            return Page(items=[])
        params.update(scope)
        rows, next_cursor = await self._page("/api/v3/timecards", params, cursor, limit, "time entry",
                                             TIMECARD_FIELDS)
        return Page(items=[timecard_from_vendor(row, self.keys) for row in rows], next_cursor=next_cursor)

    async def _timecard(self, vendor_id: int) -> dict[str, Any]:
        body: dict[str, Any] = await self._get(f"/api/v3/timecards/{vendor_id}", what="time entry")
        await self._know([body])
        return body

    async def get_time_entry(self, time_entry_id: str) -> TimeEntry:
        return timecard_from_vendor(await self._timecard(await self._timecard_id(time_entry_id)), self.keys)

    async def create_time_entry(self, data: TimeEntryCreate) -> tuple[TimeEntry, bool]:
        project_id = await self._project_id(data.project_id, "/project_id")
        body: dict[str, Any] = {
            "resourceId": await self._resource_id(data.worker_id, "/worker_id"), "projectId": project_id,
            "taskId": await self._task_id(data.task_id, "/task_id") if data.task_id else None,
            "date": data.work_date.isoformat(), "durationMinutes": minutes_of(data.hours),
            "isBillable": data.billable, "comments": data.notes, "activityType": ACTIVITY_VENDOR[data.activity],
        }
        if data.client_ref is not None:
            body["externalRef"] = data.client_ref
        status, created = await self._call("POST", "/api/v3/timecards", json=body, what="time entry",
                                           field_map=TIMECARD_FIELDS, expect=(409,))
        if status == 409:
            if created.get("errorCode") != "DUPLICATE_EXTERNAL_REF":
                raise Conflict(f"{VENDOR} refused the entry: {created.get('message')}")
            existing = await self._timecard(created["existingTimecardId"])
            return timecard_from_vendor(existing, self.keys), False
        await self._know([created])
        return timecard_from_vendor(created, self.keys), True

    def _state_conflict(self, body: dict[str, Any], to_state: str | None) -> Conflict:
        code = body.get("errorCode")
        from_state = TIMECARD_STATE.get(body.get("currentStatus", ""))
        if code in ("INVALID_STATUS_TRANSITION", "NOT_EDITABLE", "NOT_CORRECTABLE", "SUPERSEDED"):
            slug = {"INVALID_STATUS_TRANSITION": "invalid-transition", "NOT_EDITABLE": "not-editable",
                    "NOT_CORRECTABLE": "not-correctable", "SUPERSEDED": "already-superseded"}[code]
            return Conflict(f"{VENDOR} refused the change: {body.get('message')}", slug=slug, from_state=from_state,
                            to_state=to_state)
        return Conflict(f"{VENDOR} refused the change: {body.get('message')}")

    async def update_time_entry(self, time_entry_id: str, changes: dict[str, object]) -> TimeEntry:
        vendor_id = await self._timecard_id(time_entry_id)
        if changes.get("task_id") is not None:
            await self._task_id(str(changes["task_id"]), "/task_id")
        status, body = await self._call("PATCH", f"/api/v3/timecards/{vendor_id}",
                                        json=timecard_changes(changes, self.keys), what="time entry",
                                        field_map=TIMECARD_FIELDS, expect=(409,))
        if status == 409:
            raise self._state_conflict(body, None)
        await self._know([body])
        return timecard_from_vendor(body, self.keys)

    async def delete_time_entry(self, time_entry_id: str) -> None:
        vendor_id = await self._timecard_id(time_entry_id)
        status, body = await self._call("DELETE", f"/api/v3/timecards/{vendor_id}", what="time entry",
                                        field_map=TIMECARD_FIELDS, expect=(409,))
        if status == 409:
            raise self._state_conflict(body, None)
        self.keys.timecards.forget(to_business_key("time_entry", time_entry_id))

    async def set_time_entry_state(self, time_entry_id: str, to_state: TimeEntryState, *, actor_id: str | None,
                                   reason: str | None) -> TimeEntry:
        vendor_id = await self._timecard_id(time_entry_id)
        body: dict[str, Any] = {"status": TIMECARD_STATE_VENDOR[to_state]}
        if actor_id is not None and to_state == "approved":
            body["approverResourceId"] = await self._resource_id(actor_id, "/actor_id")
        if reason is not None:
            body["note"] = reason
        status, changed = await self._call("POST", f"/api/v3/timecards/{vendor_id}/status", json=body,
                                           what="time entry", field_map=TIMECARD_FIELDS, expect=(409,))
        if status == 409:
            raise self._state_conflict(changed, to_state)
        await self._know([changed])
        return timecard_from_vendor(changed, self.keys)

    async def get_time_entries(self, time_entry_ids: Sequence[str]) -> dict[str, TimeEntry]:
        wanted = {to_business_key("time_entry", i): i for i in time_entry_ids if is_canonical("time_entry", i)}
        numbers = list(wanted)
        found: dict[str, TimeEntry] = {}
        for start in range(0, len(numbers), VENDOR_BATCH_MAX):
            _, body = await self._call("POST", "/api/v3/timecards/lookup",
                                       json={"timecardNumbers": numbers[start:start + VENDOR_BATCH_MAX]},
                                       what="time entry", field_map=TIMECARD_FIELDS)
            await self._know(body["data"])
            for row in body["data"]:
                found[wanted[row["timecardNumber"]]] = timecard_from_vendor(row, self.keys)
        return found

    async def set_time_entry_states(self, changes: Sequence[TimeEntryTransitionItem]
                                    ) -> list[TimeEntry | ProblemError]:
        outcomes: list[TimeEntry | ProblemError | None] = [None] * len(changes)
        bodies: list[tuple[int, dict[str, Any]]] = []
        for index, change in enumerate(changes):
            try:
                body: dict[str, Any] = {"timecardId": await self._timecard_id(change.time_entry_id),
                                        "status": TIMECARD_STATE_VENDOR[change.to_state]}
                if change.actor_id is not None and change.to_state == "approved":
                    body["approverResourceId"] = await self._resource_id(change.actor_id, "/actor_id")
            except ProblemError as exc:
                outcomes[index] = exc
                continue
            if change.reason is not None:
                body["note"] = change.reason
            bodies.append((index, body))
        for start in range(0, len(bodies), VENDOR_BATCH_MAX):
            chunk = bodies[start:start + VENDOR_BATCH_MAX]
            _, answer = await self._call("POST", "/api/v3/timecards/status-batch",
                                         json={"changes": [body for _, body in chunk]}, what="time entry",
                                         field_map=TIMECARD_FIELDS)
            results = answer["results"]
            await self._know([r["timecard"] for r in results if r.get("timecard")])
            for (index, _), result in zip(chunk, results, strict=True):
                outcomes[index] = self._status_outcome(result, changes[index].to_state)
        return [outcome for outcome in outcomes if outcome is not None]

    def _status_outcome(self, result: dict[str, Any], to_state: TimeEntryState) -> TimeEntry | ProblemError:
        status = result["httpStatus"]
        if status == 200:
            return timecard_from_vendor(result["timecard"], self.keys)
        refusal = result.get("error") or {}
        if status == 409:
            return self._state_conflict(refusal, to_state)
        fields = [(f.get("field"), str(f.get("message", ""))) for f in refusal.get("fieldErrors") or []]
        return vendor_problem(VENDOR, status, str(refusal.get("message", "")), fields, TIMECARD_FIELDS,
                              what="time entry")

    async def correct_time_entry(self, time_entry_id: str, changes: dict[str, object],
                                 idempotency_key: str | None) -> TimeEntry:
        vendor_id = await self._timecard_id(time_entry_id)
        if changes.get("task_id") is not None:
            await self._task_id(str(changes["task_id"]), "/task_id")
        status, created = await self._call("POST", f"/api/v3/timecards/{vendor_id}/versions",
                                           json=timecard_changes(changes, self.keys), what="time entry",
                                           field_map=TIMECARD_FIELDS, idempotency_key=idempotency_key,
                                           expect=(409,))
        if status == 409:
            conflict = self._state_conflict(created, None)
            if created.get("supersededByTimecardId"):
                await self._know([{"supersededByTimecardId": created["supersededByTimecardId"]}])
                conflict.extensions["superseded_by_id"] = to_canonical(
                    "time_entry", self.keys.key("timecards", created["supersededByTimecardId"]))
            raise conflict
        await self._know([created])
        return timecard_from_vendor(created, self.keys)

    # expenses and milestones

    async def list_expenses(self, *, worker_id: str | None, project_id: str | None, state: ExpenseState | None,
                            cursor: str | None, limit: int) -> Page[Expense]:
        params: dict[str, Any] = {"status": TIMECARD_STATE_VENDOR[state] if state else None}
        scope = await self._scope(worker_id, project_id)
        if scope is None:
            return Page(items=[])
        params.update(scope)
        rows, next_cursor = await self._page("/api/v3/expenses", params, cursor, limit, "expense")
        return Page(items=[expense_from_vendor(row, self.keys) for row in rows], next_cursor=next_cursor)

    async def create_expense(self, data: ExpenseCreate) -> tuple[Expense, bool]:
        body = {
            "resourceId": await self._resource_id(data.worker_id, "/worker_id"),
            "projectId": await self._project_id(data.project_id, "/project_id"),
            "date": data.expense_date.isoformat(), "amount": decimal_text(data.amount), "currency": data.currency,
            "category": data.category.title(), "isBillable": data.billable, "receiptRef": data.receipt_ref,
            "status": TIMECARD_STATE_VENDOR[data.state], "externalRef": data.source_ref,
        }
        status, created = await self._call("POST", "/api/v3/expenses", json=body, what="expense",
                                           field_map=EXPENSE_FIELDS, expect=(409,))
        if status == 409:  # written before (a retry): the first one, never a second expense
            if created.get("errorCode") != "DUPLICATE_EXTERNAL_REF":
                raise Conflict(f"{VENDOR} refused the expense: {created.get('message')}")
            existing = await self._get("/api/v3/expenses", what="expense",
                                       params={"externalRef": data.source_ref, "pageSize": 1})
            return expense_from_vendor(existing["data"][0], self.keys), False
        return expense_from_vendor(created, self.keys), True

    async def list_milestones(self, *, project_id: str | None, state: MilestoneState | None, cursor: str | None,
                              limit: int) -> Page[Milestone]:
        params: dict[str, Any] = {"status": MILESTONE_STATE_VENDOR[state] if state else None}
        scope = await self._scope(project_id=project_id)
        if scope is None:
            return Page(items=[])
        params.update(scope)
        rows, next_cursor = await self._page("/api/v3/milestones", params, cursor, limit, "milestone")
        return Page(items=[milestone_from_vendor(row, self.keys) for row in rows], next_cursor=next_cursor)

    async def _milestone_row(self, milestone_id: str) -> dict[str, Any]:
        body = await self._get("/api/v3/milestones", what="milestone", params={
            "milestoneNumber": to_business_key("milestone", milestone_id), "pageSize": 1})
        if not body["data"]:
            raise NotFound(f"no milestone {milestone_id!r}", slug="unknown-id")
        row: dict[str, Any] = body["data"][0]
        await self._know([row])
        return row

    async def get_milestone(self, milestone_id: str) -> Milestone:
        return milestone_from_vendor(await self._milestone_row(milestone_id), self.keys)

    async def set_milestone_state(self, milestone_id: str, to_state: MilestoneState) -> Milestone:
        row = await self._milestone_row(milestone_id)
        status, body = await self._call("POST", f"/api/v3/milestones/{row['milestoneId']}/status",
                                        json={"status": MILESTONE_STATE_VENDOR[to_state]}, what="milestone",
                                        field_map=MILESTONE_FIELDS, expect=(409,))
        if status == 409:
            raise Conflict(f"{VENDOR} refused the change: {body.get('message')}", slug="invalid-transition",
                           from_state=MILESTONE_STATE.get(body.get("currentStatus", "")), to_state=to_state)
        return milestone_from_vendor(body, self.keys)
