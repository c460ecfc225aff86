"""Sandbox PSA: a timecard-centric PSA in its own dialect.

Dialect (deliberately unlike the canonical model): integer internal ids, camelCase fields, title-case
statuses ("In Progress", "Confirmed", timecards "Saved" -> "Submitted" -> "Approved" | "Rejected", then "Posted"
and "Billed"), durations in minutes, page-number pagination (``?page=1&pageSize=50`` ->
``{"data": [...], "meta": {"page", "pageSize", "totalPages", "totalCount"}}``), errors as
``{"errorCode", "message", "fieldErrors": [{"field", "message"}]}``. A correction of an approved timecard is a
new version (``POST /timecards/{id}/versions``) that supersedes the old one, which is kept. POSTs that create
honour an ``Idempotency-Key`` header; timecards are also unique by the client's ``externalRef``. Bulk calls
(up to 500): ``POST /timecards/lookup`` reads timecards by number, ``POST /timecards/status-batch`` changes
statuses with a result per item.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from litestar import Litestar, Request, delete, get, patch, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery
from litestar.response import Response

from sandbox.firm import Firm
from sandbox.store import DocumentStore
from sandbox.vendor_http import (
    AuthDialect,
    LimitDialect,
    VendorError,
    json_object,
    parse_date,
    utc_now,
    vendor_error_response,
)

PROJECT_STAGES = {"planned": "Planned", "active": "In Progress", "on_hold": "Paused", "closed": "Completed"}
BILLING_TYPES = {"time_and_materials": "T&M", "fixed_fee": "FIXED", "milestone": "MILESTONE", "retainer": "RETAINER"}
ASSIGNMENT_STATUSES = {"proposed": "Tentative", "confirmed": "Confirmed", "ended": "Closed"}
TIMECARD_STATUSES = {"draft": "Saved", "submitted": "Submitted", "approved": "Approved", "rejected": "Rejected",
                     "posted": "Posted", "invoiced": "Billed"}
MILESTONE_STATUSES = {"pending": "Open", "completed": "Complete", "accepted": "Accepted", "invoiced": "Invoiced"}

# The vendor's own workflow rules (it enforces them whoever calls).
TIMECARD_FLOW = {"Saved": {"Submitted"}, "Submitted": {"Approved", "Rejected", "Saved"},
                 "Rejected": {"Saved", "Submitted"}, "Approved": {"Posted"}, "Posted": {"Billed"}, "Billed": set()}
ASSIGNMENT_FLOW = {"Tentative": {"Confirmed", "Closed"}, "Confirmed": {"Closed"}, "Closed": set()}
MILESTONE_FLOW = {"Open": {"Complete"}, "Complete": {"Accepted"}, "Accepted": {"Invoiced"}, "Invoiced": set()}
EDITABLE = {"Saved", "Rejected"}
CORRECTABLE = {"Approved", "Posted", "Billed"}
MAX_PAGE_SIZE = 1000
MAX_BATCH = 500


def stamp(moment: dt.datetime) -> str:
    """The PSA's timestamp format: UTC, microseconds, ``Z`` (fixed width, so it also sorts as text)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _at(day: dt.date, hour: int) -> str:
    return stamp(dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC))


def seed(store: DocumentStore, firm: Firm) -> None:
    resource_ids: dict[str, int] = {}
    resources = []
    for index, worker in enumerate(firm.workers):
        resource_id = 17 + index * 3
        resource_ids[worker.number] = resource_id
        resources.append((str(resource_id), {
            "resourceId": resource_id, "employeeNumber": worker.number, "displayName": worker.name,
            "email": worker.email, "primaryRole": worker.role.replace("_", " ").title(),
            "practice": worker.business_unit, "isActive": worker.status == "active",
        }))
    store.put_many("resource", resources)
    project_ids: dict[str, int] = {}
    projects = []
    tasks: list[tuple[str, dict[str, Any]]] = []
    task_ids: dict[str, int] = {}
    for index, project in enumerate(firm.projects):
        project_id = 501 + index
        project_ids[project.code] = project_id
        projects.append((str(project_id), {
            "projectId": project_id, "projectCode": project.code, "title": project.name,
            "stage": PROJECT_STAGES[project.status], "contractRef": project.contract, "accountRef": project.customer,
            "billingType": BILLING_TYPES[project.billing_model], "budgetHours": project.budget_hours,
            "managerEmployeeNumber": project.manager, "practice": project.business_unit,
            "entity": project.legal_entity, "startDate": project.start.isoformat(), "endDate": project.end.isoformat(),
        }))
        for code, name, billable in project.tasks:
            task_id = 3001 + len(tasks)
            task_ids[code] = task_id
            tasks.append((str(task_id), {"taskId": task_id, "taskCode": code, "projectId": project_id,
                                         "name": name, "isBillable": billable}))
    store.put_many("project", projects)
    store.put_many("task", tasks)
    store.put_many("assignment", [
        (str(9001 + index), {
            "assignmentId": 9001 + index, "assignmentNumber": a.number, "resourceId": resource_ids[a.worker],
            "projectId": project_ids[a.project], "roleName": a.role.replace("_", " ").title(),
            "hoursPerWeek": a.hours_per_week, "from": a.start.isoformat(), "to": a.end.isoformat(),
            "status": ASSIGNMENT_STATUSES[a.status],
        })
        for index, a in enumerate(firm.assignments)
    ])
    managers = {p.code: p.manager for p in firm.projects}
    timecards = []
    for index, entry in enumerate(firm.time_entries):
        status = TIMECARD_STATUSES[entry.state]
        submitted = _at(entry.work_date + dt.timedelta(days=1), 9) if status != "Saved" else None
        approved = _at(entry.work_date + dt.timedelta(days=3), 10) if status in CORRECTABLE | {"Billed"} else None
        timecard_id = 880001 + index
        timecards.append((str(timecard_id), {
            "timecardId": timecard_id, "timecardNumber": entry.number, "resourceId": resource_ids[entry.worker],
            "projectId": project_ids[entry.project], "taskId": task_ids[entry.task],
            "date": entry.work_date.isoformat(), "durationMinutes": entry.minutes, "isBillable": entry.billable,
            "comments": entry.notes, "status": status, "version": 1, "supersedesTimecardId": None,
            "supersededByTimecardId": None, "externalRef": None, "submittedOn": submitted, "approvedOn": approved,
            "approverResourceId": resource_ids[managers[entry.project]] if approved else None,
            "rejectionNote": None, "lastModified": approved or submitted or _at(entry.work_date, 18),
        }))
    store.put_many("timecard", timecards)
    store.put_many("expense", [
        (str(420001 + index), {
            "expenseId": 420001 + index, "expenseNumber": e.number, "resourceId": resource_ids[e.worker],
            "projectId": project_ids[e.project], "date": e.expense_date.isoformat(), "amount": str(e.amount),
            "currency": e.currency, "category": e.category.title(), "isBillable": e.billable,
            "receiptRef": e.receipt, "status": TIMECARD_STATUSES[e.state], "externalRef": None,
        })
        for index, e in enumerate(firm.expenses)
    ])
    store.put_many("milestone", [
        (str(7701 + index), {
            "milestoneId": 7701 + index, "milestoneNumber": m.number, "projectId": project_ids[m.project],
            "name": m.name, "amount": str(m.amount), "currency": m.currency, "dueDate": m.due.isoformat(),
            "status": MILESTONE_STATUSES[m.state], "acceptedOn": m.accepted.isoformat() if m.accepted else None,
        })
        for index, m in enumerate(firm.milestones)
    ])
    # Numbers the PSA hands out next: after the seeded ones.
    store.reserve("projectCode", 4001 + len(firm.projects))
    store.reserve("assignmentNumber", 6001 + len(firm.assignments))
    store.reserve("timecardNumber", 100001 + len(firm.time_entries))
    store.reserve("projectId", 501 + len(firm.projects))
    store.reserve("taskId", 3001 + len(tasks))
    store.reserve("assignmentId", 9001 + len(firm.assignments))
    store.reserve("timecardId", 880001 + len(firm.time_entries))


def error(status: int, code: str, message: str, fields: dict[str, str] | None = None, **extra: Any) -> VendorError:
    body: dict[str, Any] = {"errorCode": code, "message": message, **extra}
    if fields:
        body["fieldErrors"] = [{"field": name, "message": text} for name, text in fields.items()]
    return VendorError(status, body)


# Past the call rate: 429 with Retry-After, in this API's error shape.
LIMITS = LimitDialect(
    too_many=lambda seconds: error(429, "RATE_LIMITED", f"Too many requests: retry after {seconds} s").body)


# OAuth 2.0 client credentials; a call without a live token: 401 in this API's error shape.
AUTH = AuthDialect(
    grant_path="/oauth2/token", grant="client_credentials",
    unauthorized=lambda: error(401, "INVALID_TOKEN", "missing, unknown or expired access token").body)


def invalid(message: str) -> VendorError:
    return error(400, "BAD_REQUEST", message)


def _page(store: DocumentStore, kind: str, page: int, page_size: int, where: dict[str, Any],
          ranges: dict[str, tuple[Any, Any]] | None = None) -> dict[str, Any]:
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise invalid(f"page must be >= 1 and pageSize 1..{MAX_PAGE_SIZE}")
    rows, total = store.query(kind, where=where, ranges=ranges, offset=(page - 1) * page_size, limit=page_size)
    return {"data": rows, "meta": {"page": page, "pageSize": page_size,
                                   "totalPages": max(1, -(-total // page_size)), "totalCount": total}}


def _one(store: DocumentStore, kind: str, doc_id: int) -> dict[str, Any]:
    body = store.get(kind, str(doc_id))
    if body is None:
        raise error(404, "NOT_FOUND", f"{kind} {doc_id} does not exist")
    return body


def _exists(store: DocumentStore, kind: str, field: str, value: Any) -> dict[str, Any] | None:
    rows = store.list(kind, where={field: value}, limit=1)
    return rows[0][1] if rows else None


def _check_minutes(value: Any, problems: dict[str, str]) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        problems["durationMinutes"] = "must be a whole number of minutes"
    elif not 1 <= value <= 1440:
        problems["durationMinutes"] = "must be between 1 and 1440 minutes"


def _check_date(body: dict[str, Any], field: str, problems: dict[str, str], required: bool = False) -> None:
    if field not in body or body[field] is None:
        if required:
            problems[field] = "is required"
        return
    if parse_date(body[field]) is None:
        problems[field] = "must be a date (YYYY-MM-DD)"


# --- projects, tasks -------------------------------------------------------------------------------------------

PROJECT_FIELDS = {"title", "contractRef", "accountRef", "entity", "billingType", "stage", "budgetHours",
                  "managerEmployeeNumber", "practice", "startDate", "endDate"}


def _check_project(store: DocumentStore, body: dict[str, Any], creating: bool) -> None:
    problems: dict[str, str] = {}
    for field in sorted(set(body) - PROJECT_FIELDS):
        problems[field] = "unknown field"
    required = ("title", "contractRef", "accountRef", "entity", "billingType") if creating else ()
    for field in required:
        if not body.get(field):
            problems[field] = "is required"
    if "title" in body and (not isinstance(body["title"], str) or not body["title"].strip()):
        problems["title"] = "must be a non-empty text"
    if "billingType" in body and body["billingType"] not in BILLING_TYPES.values():
        problems["billingType"] = f"must be one of {sorted(BILLING_TYPES.values())}"
    if "stage" in body and body["stage"] not in PROJECT_STAGES.values():
        problems["stage"] = f"must be one of {sorted(PROJECT_STAGES.values())}"
    hours = body.get("budgetHours")
    if hours is not None and (isinstance(hours, bool) or not isinstance(hours, int | float) or hours < 0):
        problems["budgetHours"] = "must be a non-negative number"
    manager = body.get("managerEmployeeNumber")
    if manager is not None and _exists(store, "resource", "employeeNumber", manager) is None:
        problems["managerEmployeeNumber"] = f"no resource with employee number {manager}"
    for field in ("startDate", "endDate"):
        _check_date(body, field, problems)
    start, end = parse_date(body.get("startDate")), parse_date(body.get("endDate"))
    if start and end and end < start:
        problems["endDate"] = "must not be before startDate"
    if problems:
        raise error(400, "VALIDATION_FAILED", "the project is invalid", problems)


def create_project(store: DocumentStore, body: dict[str, Any], key: str | None) -> tuple[int, Any]:
    replay = store.recall("project", key)
    if replay:
        return replay
    _check_project(store, body, creating=True)
    project_id = store.next_number("projectId")
    project = {"projectId": project_id, "projectCode": f"PRJ-{store.next_number('projectCode')}",
               "stage": "Planned", "budgetHours": None, "managerEmployeeNumber": None, "practice": None,
               "startDate": None, "endDate": None, **body}
    store.put("project", str(project_id), project)
    store.remember("project", key, 201, project)
    return 201, project


def update_project(store: DocumentStore, project_id: int, body: dict[str, Any]) -> dict[str, Any]:
    project = _one(store, "project", project_id)
    _check_project(store, body, creating=False)
    if project["stage"] == "Completed" and body.get("stage", "Completed") != "Completed":
        raise error(409, "INVALID_STATUS_TRANSITION", "a completed project cannot be reopened",
                    currentStatus=project["stage"])
    merged = {**project, **body}
    start, end = parse_date(merged.get("startDate")), parse_date(merged.get("endDate"))
    if start and end and end < start:
        raise error(400, "VALIDATION_FAILED", "the project is invalid", {"endDate": "must not be before startDate"})
    store.put("project", str(project_id), merged)
    return merged


def create_task(store: DocumentStore, project_id: int, body: dict[str, Any], key: str | None) -> tuple[int, Any]:
    replay = store.recall(f"task:{project_id}", key)
    if replay:
        return replay
    project = _one(store, "project", project_id)
    problems: dict[str, str] = {}
    if not isinstance(body.get("name"), str) or not body["name"].strip():
        problems["name"] = "is required"
    if not isinstance(body.get("isBillable", True), bool):
        problems["isBillable"] = "must be true or false"
    if problems:
        raise error(400, "VALIDATION_FAILED", "the task is invalid", problems)
    _, count = store.query("task", where={"projectId": project_id}, limit=0)
    task_id = store.next_number("taskId")
    task = {"taskId": task_id, "taskCode": f"{project['projectCode']}-T{count + 1}", "projectId": project_id,
            "name": body["name"], "isBillable": body.get("isBillable", True)}
    store.put("task", str(task_id), task)
    store.remember(f"task:{project_id}", key, 201, task)
    return 201, task


# --- assignments -----------------------------------------------------------------------------------------------

def create_assignment(store: DocumentStore, body: dict[str, Any], key: str | None) -> tuple[int, Any]:
    replay = store.recall("assignment", key)
    if replay:
        return replay
    problems: dict[str, str] = {}
    if not isinstance(body.get("resourceId"), int) or store.get("resource", str(body["resourceId"])) is None:
        problems["resourceId"] = "no such resource"
    if not isinstance(body.get("projectId"), int) or store.get("project", str(body["projectId"])) is None:
        problems["projectId"] = "no such project"
    if not isinstance(body.get("roleName"), str) or not body["roleName"].strip():
        problems["roleName"] = "is required"
    hours = body.get("hoursPerWeek")
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= 80:
        problems["hoursPerWeek"] = "must be a number of hours between 0 and 80"
    _check_date(body, "from", problems, required=True)
    _check_date(body, "to", problems)
    start, end = parse_date(body.get("from")), parse_date(body.get("to"))
    if start and end and end < start:
        problems["to"] = "must not be before from"
    status = body.get("status", "Tentative")
    if status not in ("Tentative", "Confirmed"):
        problems["status"] = "a new assignment is Tentative or Confirmed"
    if problems:
        raise error(400, "VALIDATION_FAILED", "the assignment is invalid", problems)
    assignment_id = store.next_number("assignmentId")
    assignment = {"assignmentId": assignment_id, "assignmentNumber": f"ASG-{store.next_number('assignmentNumber')}",
                  "resourceId": body["resourceId"], "projectId": body["projectId"], "roleName": body["roleName"],
                  "hoursPerWeek": hours, "from": body["from"], "to": body.get("to"), "status": status}
    store.put("assignment", str(assignment_id), assignment)
    store.remember("assignment", key, 201, assignment)
    return 201, assignment


def change_assignment(store: DocumentStore, assignment_id: int, body: dict[str, Any]) -> dict[str, Any]:
    assignment = _one(store, "assignment", assignment_id)
    status = body.get("status")
    if status not in ASSIGNMENT_FLOW:
        raise error(400, "VALIDATION_FAILED", "unknown status", {"status": f"must be one of {sorted(ASSIGNMENT_FLOW)}"})
    if status != assignment["status"]:
        if status not in ASSIGNMENT_FLOW[assignment["status"]]:
            raise error(409, "INVALID_STATUS_TRANSITION", f"cannot go from {assignment['status']} to {status}",
                        currentStatus=assignment["status"])
        assignment["status"] = status
        store.put("assignment", str(assignment_id), assignment)
    return assignment


# --- timecards -------------------------------------------------------------------------------------------------

TIMECARD_INPUT = {"resourceId", "projectId", "taskId", "date", "durationMinutes", "isBillable", "comments",
                  "externalRef", "activityType"}
TIMECARD_EDITABLE = {"taskId", "date", "durationMinutes", "isBillable", "comments", "activityType"}
# What the time was spent on, in the PSA's words (a timecard without one predates the field: "Work").
ACTIVITY_TYPES = ("Work", "Travel")


def _check_timecard(store: DocumentStore, body: dict[str, Any], allowed: set[str], project_id: int | None) -> None:
    problems: dict[str, str] = {}
    for field in sorted(set(body) - allowed):
        problems[field] = "unknown or read-only field"
    if "resourceId" in allowed and (not isinstance(body.get("resourceId"), int)
                                    or store.get("resource", str(body["resourceId"])) is None):
        problems["resourceId"] = "no such resource"
    if "projectId" in allowed:
        project = store.get("project", str(body.get("projectId"))) if isinstance(body.get("projectId"), int) else None
        if project is None:
            problems["projectId"] = "no such project"
        elif project["stage"] == "Completed":
            problems["projectId"] = "the project is completed and takes no more time"
        project_id = body.get("projectId")
    if body.get("taskId") is not None:
        task = store.get("task", str(body["taskId"])) if isinstance(body["taskId"], int) else None
        if task is None or task["projectId"] != project_id:
            problems["taskId"] = "no such task on this project"
    if "durationMinutes" in body or "resourceId" in allowed:
        _check_minutes(body.get("durationMinutes"), problems)
    _check_date(body, "date", problems, required="resourceId" in allowed)
    if "isBillable" in body and not isinstance(body["isBillable"], bool):
        problems["isBillable"] = "must be true or false"
    if "comments" in body and not isinstance(body["comments"], str):
        problems["comments"] = "must be text"
    if "activityType" in body and body["activityType"] not in ACTIVITY_TYPES:
        problems["activityType"] = "must be one of " + ", ".join(ACTIVITY_TYPES)
    ref = body.get("externalRef")
    if ref is not None and (not isinstance(ref, str) or not 1 <= len(ref) <= 200):
        problems["externalRef"] = "must be text of 1..200 characters"
    if problems:
        raise error(400, "VALIDATION_FAILED", "the timecard is invalid", problems)


def create_timecard(store: DocumentStore, body: dict[str, Any]) -> tuple[int, Any]:
    ref = body.get("externalRef")
    if ref:
        existing = _exists(store, "timecard", "externalRef", ref)
        if existing is not None:
            raise error(409, "DUPLICATE_EXTERNAL_REF", f"a timecard with externalRef {ref!r} exists",
                        existingTimecardId=existing["timecardId"])
    _check_timecard(store, body, TIMECARD_INPUT, None)
    timecard_id = store.next_number("timecardId")
    timecard = {
        "timecardId": timecard_id, "timecardNumber": f"TC-{store.next_number('timecardNumber')}",
        "resourceId": body["resourceId"], "projectId": body["projectId"], "taskId": body.get("taskId"),
        "date": body["date"], "durationMinutes": body["durationMinutes"], "isBillable": body.get("isBillable", True),
        "activityType": body.get("activityType", "Work"), "comments": body.get("comments", ""), "status": "Saved",
        "version": 1, "supersedesTimecardId": None,
        "supersededByTimecardId": None, "externalRef": ref, "submittedOn": None, "approvedOn": None,
        "approverResourceId": None, "rejectionNote": None, "lastModified": stamp(utc_now()),
    }
    store.put("timecard", str(timecard_id), timecard)
    return 201, timecard


def update_timecard(store: DocumentStore, timecard_id: int, body: dict[str, Any]) -> dict[str, Any]:
    timecard = _one(store, "timecard", timecard_id)
    if timecard["status"] not in EDITABLE:
        raise error(409, "NOT_EDITABLE", f"a {timecard['status']} timecard cannot be edited",
                    currentStatus=timecard["status"])
    _check_timecard(store, body, TIMECARD_EDITABLE, timecard["projectId"])
    timecard.update(body)
    timecard["lastModified"] = stamp(utc_now())
    store.put("timecard", str(timecard_id), timecard)
    return timecard


def delete_timecard(store: DocumentStore, timecard_id: int) -> None:
    timecard = _one(store, "timecard", timecard_id)
    if timecard["status"] not in EDITABLE:
        raise error(409, "NOT_EDITABLE", f"a {timecard['status']} timecard cannot be deleted",
                    currentStatus=timecard["status"])
    store.delete("timecard", str(timecard_id))


def change_timecard_status(store: DocumentStore, timecard_id: int, body: dict[str, Any]) -> dict[str, Any]:
    timecard = _one(store, "timecard", timecard_id)
    status = body.get("status")
    if status not in TIMECARD_FLOW:
        raise error(400, "VALIDATION_FAILED", "unknown status", {"status": f"must be one of {sorted(TIMECARD_FLOW)}"})
    current = timecard["status"]
    if status == current:
        return timecard
    if status not in TIMECARD_FLOW[current]:
        raise error(409, "INVALID_STATUS_TRANSITION", f"cannot go from {current} to {status}", currentStatus=current)
    if timecard["supersededByTimecardId"] is not None:
        raise error(409, "SUPERSEDED", "this timecard was superseded by a newer version", currentStatus=current)
    approver = body.get("approverResourceId")
    if approver is not None and (not isinstance(approver, int) or store.get("resource", str(approver)) is None):
        raise error(400, "VALIDATION_FAILED", "unknown approver", {"approverResourceId": "no such resource"})
    note = body.get("note")
    if status == "Rejected" and (not isinstance(note, str) or not note.strip()):
        raise error(400, "VALIDATION_FAILED", "a rejection needs a note", {"note": "is required to reject"})
    now = stamp(utc_now())
    timecard["status"] = status
    if status == "Submitted":
        timecard["submittedOn"] = now
        timecard["rejectionNote"] = None
    elif status == "Approved":
        timecard["approvedOn"] = now
        timecard["approverResourceId"] = approver
    elif status == "Rejected":
        timecard["rejectionNote"] = note
    elif status == "Saved":
        timecard["submittedOn"] = None
    timecard["lastModified"] = now
    store.put("timecard", str(timecard_id), timecard)
    return timecard


def lookup_timecards(store: DocumentStore, body: dict[str, Any]) -> dict[str, Any]:
    """Timecards by number, many at once (``{"timecardNumbers": [...]}``); numbers it does not hold are left out."""
    numbers = body.get("timecardNumbers")
    if not isinstance(numbers, list) or not 1 <= len(numbers) <= MAX_BATCH or not all(
            isinstance(n, str) for n in numbers):
        raise error(400, "VALIDATION_FAILED", "the lookup is invalid",
                    {"timecardNumbers": f"must be a list of 1..{MAX_BATCH} timecard numbers"})
    rows, _ = store.query("timecard", where={"timecardNumber": list(dict.fromkeys(numbers))}, limit=len(numbers))
    return {"data": rows}


def change_timecard_statuses(store: DocumentStore, body: dict[str, Any]) -> dict[str, Any]:
    """Many status changes in one call, each as ``POST /timecards/{id}/status`` would make it, each with its own
    outcome (``{"results": [{"timecardId", "httpStatus", "timecard" | "error"}]}``): a refusal stops only its item."""
    changes = body.get("changes")
    if not isinstance(changes, list) or not 1 <= len(changes) <= MAX_BATCH:
        raise error(400, "VALIDATION_FAILED", "the batch is invalid",
                    {"changes": f"must be a list of 1..{MAX_BATCH} status changes"})
    results: list[dict[str, Any]] = []
    for change in changes:
        timecard_id = change.get("timecardId") if isinstance(change, dict) else None
        if not isinstance(change, dict) or isinstance(timecard_id, bool) or not isinstance(timecard_id, int):
            failure = error(400, "VALIDATION_FAILED", "the change is invalid", {"timecardId": "is required"})
            results.append({"timecardId": timecard_id, "httpStatus": 400, "error": failure.body})
            continue
        try:
            timecard = change_timecard_status(store, timecard_id,
                                              {k: v for k, v in change.items() if k != "timecardId"})
        except VendorError as exc:  # raised before the item wrote anything
            results.append({"timecardId": timecard_id, "httpStatus": exc.status, "error": exc.body})
            continue
        results.append({"timecardId": timecard_id, "httpStatus": 200, "timecard": timecard})
    return {"results": results}


def new_timecard_version(store: DocumentStore, timecard_id: int, body: dict[str, Any],
                         key: str | None) -> tuple[int, Any]:
    replay = store.recall(f"version:{timecard_id}", key)
    if replay:
        return replay
    old = _one(store, "timecard", timecard_id)
    if old["supersededByTimecardId"] is not None:
        raise error(409, "SUPERSEDED", "this timecard was already superseded", currentStatus=old["status"],
                    supersededByTimecardId=old["supersededByTimecardId"])
    if old["status"] not in CORRECTABLE:
        raise error(409, "NOT_CORRECTABLE", f"a {old['status']} timecard cannot be corrected by a new version",
                    currentStatus=old["status"])
    _check_timecard(store, body, TIMECARD_EDITABLE, old["projectId"])
    now = stamp(utc_now())
    new_id = store.next_number("timecardId")
    timecard = {
        **{k: old[k] for k in ("resourceId", "projectId", "taskId", "date", "durationMinutes", "isBillable",
                               "comments")},
        "activityType": old.get("activityType", "Work"),
        **body,
        "timecardId": new_id, "timecardNumber": f"TC-{store.next_number('timecardNumber')}", "status": "Saved",
        "version": old["version"] + 1, "supersedesTimecardId": old["timecardId"], "supersededByTimecardId": None,
        "externalRef": None, "submittedOn": None, "approvedOn": None, "approverResourceId": None,
        "rejectionNote": None, "lastModified": now,
    }
    old["supersededByTimecardId"] = new_id
    old["lastModified"] = now
    store.put("timecard", str(new_id), timecard)
    store.put("timecard", str(timecard_id), old)
    store.remember(f"version:{timecard_id}", key, 201, timecard)
    return 201, timecard


def change_milestone_status(store: DocumentStore, milestone_id: int, body: dict[str, Any]) -> dict[str, Any]:
    milestone = _one(store, "milestone", milestone_id)
    status = body.get("status")
    if status not in MILESTONE_FLOW:
        raise error(400, "VALIDATION_FAILED", "unknown status", {"status": f"must be one of {sorted(MILESTONE_FLOW)}"})
    if status != milestone["status"]:
        if status not in MILESTONE_FLOW[milestone["status"]]:
            raise error(409, "INVALID_STATUS_TRANSITION", f"cannot go from {milestone['status']} to {status}",
                        currentStatus=milestone["status"])
        milestone["status"] = status
        if status == "Accepted":
            milestone["acceptedOn"] = utc_now().date().isoformat()
        store.put("milestone", str(milestone_id), milestone)
    return milestone


def _instant(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise error(400, "VALIDATION_FAILED", f"{field} is not an ISO 8601 instant",
                    {field: "must be an ISO 8601 instant"}) from exc
    if moment.tzinfo is None:
        raise error(400, "VALIDATION_FAILED", f"{field} needs a UTC offset", {field: "must carry a UTC offset"})
    return stamp(moment)


# --- expenses ---------------------------------------------------------------------------------------------------

EXPENSE_INPUT = {"resourceId", "projectId", "date", "amount", "currency", "category", "isBillable", "receiptRef",
                 "status", "externalRef"}
EXPENSE_WRITABLE_STATUSES = {"Submitted", "Approved", "Posted"}


def create_expense(store: DocumentStore, body: dict[str, Any]) -> tuple[int, Any]:
    """An expense captured elsewhere (the integration's expense process), unique by the caller's ``externalRef``:
    a second one with the same reference is a 409 naming the first, like a timecard's."""
    ref = body.get("externalRef")
    if isinstance(ref, str) and (existing := _exists(store, "expense", "externalRef", ref)) is not None:
        raise error(409, "DUPLICATE_EXTERNAL_REF", f"an expense with externalRef {ref!r} exists",
                    existingExpenseId=existing["expenseId"])
    problems: dict[str, str] = {field: "unknown or read-only field" for field in sorted(set(body) - EXPENSE_INPUT)}
    if not isinstance(body.get("resourceId"), int) or store.get("resource", str(body["resourceId"])) is None:
        problems["resourceId"] = "no such resource"
    if not isinstance(body.get("projectId"), int) or store.get("project", str(body["projectId"])) is None:
        problems["projectId"] = "no such project"
    _check_date(body, "date", problems, required=True)
    raw = body.get("amount")
    try:
        amount = Decimal(raw) if isinstance(raw, str) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount <= 0:
        problems["amount"] = "must be a positive decimal number as a string"
    if not isinstance(body.get("currency"), str) or len(body["currency"]) != 3:
        problems["currency"] = "must be an ISO 4217 code"
    if not isinstance(body.get("category"), str) or not 1 <= len(body["category"]) <= 40:
        problems["category"] = "must be text of 1..40 characters"
    if "isBillable" in body and not isinstance(body["isBillable"], bool):
        problems["isBillable"] = "must be true or false"
    if body.get("status", "Submitted") not in EXPENSE_WRITABLE_STATUSES:
        problems["status"] = f"must be one of {', '.join(sorted(EXPENSE_WRITABLE_STATUSES))}"
    if not isinstance(ref, str) or not 1 <= len(ref) <= 200:
        problems["externalRef"] = "is required: text of 1..200 characters"
    if problems:
        raise error(400, "VALIDATION_FAILED", "the expense is invalid", problems)
    expense_id = store.next_number("expenseId")
    expense = {
        "expenseId": expense_id, "expenseNumber": f"EX-W{store.next_number('expenseNumber')}",
        "resourceId": body["resourceId"], "projectId": body["projectId"], "date": body["date"],
        "amount": body["amount"], "currency": body["currency"], "category": body["category"],
        "isBillable": body.get("isBillable", True), "receiptRef": body.get("receiptRef"),
        "status": body.get("status", "Submitted"), "externalRef": ref,
    }
    store.put("expense", str(expense_id), expense)
    return 201, expense


def _day(value: str | None, field: str) -> str | None:
    if value is not None and parse_date(value) is None:
        raise error(400, "VALIDATION_FAILED", f"{field} is not a date", {field: "must be a date (YYYY-MM-DD)"})
    return value


def create_app(store: DocumentStore) -> Litestar:
    # The filters that meet thousands of timecards (a month's approved time, look-ups by number or client ref,
    # a worker's day or week: read before every write of time, so the day's rule is checked).
    store.index("timecardNumber")
    store.index("externalRef")
    store.index("status", "date")
    store.index("resourceId", "date")

    def paged(kind: str, page: int, page_size: int, where: dict[str, Any],
              ranges: dict[str, tuple[Any, Any]] | None = None) -> Any:
        return store.call(_page, store, kind, page, page_size, {k: v for k, v in where.items() if v is not None},
                          ranges)

    @get("/api/v3/resources")
    async def list_resources(page: FromQuery[int] = 1, pageSize: FromQuery[int] = 50,
                             employeeNumber: FromQuery[str | None] = None) -> dict[str, Any]:
        return await paged("resource", page, pageSize, {"employeeNumber": employeeNumber})

    @get("/api/v3/projects")
    async def list_projects(page: FromQuery[int] = 1, pageSize: FromQuery[int] = 50,
                            projectCode: FromQuery[str | None] = None,
                            stage: FromQuery[str | None] = None, accountRef: FromQuery[str | None] = None,
                            contractRef: FromQuery[str | None] = None) -> dict[str, Any]:
        return await paged("project", page, pageSize, {"projectCode": projectCode, "stage": stage,
                                                        "accountRef": accountRef, "contractRef": contractRef})

    @get("/api/v3/projects/{project_id:int}")
    async def get_project(project_id: FromPath[int]) -> dict[str, Any]:
        return await store.call(_one, store, "project", project_id)

    @post("/api/v3/projects")
    async def post_project(request: Request[Any, Any, Any]) -> Response[Any]:
        body = await json_object(request, invalid)
        status, created = await store.call(store.transaction, create_project, store, body,
                                           request.headers.get("idempotency-key"))
        return Response(created, status_code=status)

    @patch("/api/v3/projects/{project_id:int}")
    async def patch_project(project_id: FromPath[int], request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await json_object(request, invalid)
        return await store.call(update_project, store, project_id, body)

    @get("/api/v3/projects/{project_id:int}/tasks")
    async def list_project_tasks(project_id: FromPath[int], page: FromQuery[int] = 1,
                                 pageSize: FromQuery[int] = 50) -> dict[str, Any]:
        await store.call(_one, store, "project", project_id)
        return await paged("task", page, pageSize, {"projectId": project_id})

    @post("/api/v3/projects/{project_id:int}/tasks")
    async def post_task(project_id: FromPath[int], request: Request[Any, Any, Any]) -> Response[Any]:
        body = await json_object(request, invalid)
        status, created = await store.call(store.transaction, create_task, store, project_id, body,
                                           request.headers.get("idempotency-key"))
        return Response(created, status_code=status)

    @get("/api/v3/tasks")
    async def list_tasks(page: FromQuery[int] = 1, pageSize: FromQuery[int] = 50,
                         taskCode: FromQuery[str | None] = None) -> dict[str, Any]:
        return await paged("task", page, pageSize, {"taskCode": taskCode})

    @get("/api/v3/assignments")
    async def list_assignments(page: FromQuery[int] = 1, pageSize: FromQuery[int] = 50,
                               resourceId: FromQuery[int | None] = None,
                               projectId: FromQuery[int | None] = None, status: FromQuery[str | None] = None,
                               assignmentNumber: FromQuery[str | None] = None) -> dict[str, Any]:
        return await paged("assignment", page, pageSize, {"resourceId": resourceId, "projectId": projectId,
                                                           "status": status, "assignmentNumber": assignmentNumber})

    @get("/api/v3/assignments/{assignment_id:int}")
    async def get_assignment(assignment_id: FromPath[int]) -> dict[str, Any]:
        return await store.call(_one, store, "assignment", assignment_id)

    @post("/api/v3/assignments")
    async def post_assignment(request: Request[Any, Any, Any]) -> Response[Any]:
        body = await json_object(request, invalid)
        status, created = await store.call(store.transaction, create_assignment, store, body,
                                           request.headers.get("idempotency-key"))
        return Response(created, status_code=status)

    @patch("/api/v3/assignments/{assignment_id:int}")
    async def patch_assignment(assignment_id: FromPath[int], request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await json_object(request, invalid)
        return await store.call(change_assignment, store, assignment_id, body)

    @get("/api/v3/timecards")
    async def list_timecards(page: FromQuery[int] = 1, pageSize: FromQuery[int] = 50,
                             resourceId: FromQuery[int | None] = None,
                             projectId: FromQuery[int | None] = None, status: FromQuery[str | None] = None,
                             fromDate: FromQuery[str | None] = None,
                             toDate: FromQuery[str | None] = None, modifiedSince: FromQuery[str | None] = None,
                             timecardNumber: FromQuery[str | None] = None,
                             externalRef: FromQuery[str | None] = None) -> dict[str, Any]:
        ranges = {"date": (_day(fromDate, "fromDate"), _day(toDate, "toDate")),
                  "lastModified": (_instant(modifiedSince, "modifiedSince"), None)}
        return await paged("timecard", page, pageSize, {
            "resourceId": resourceId, "projectId": projectId, "status": status, "timecardNumber": timecardNumber,
            "externalRef": externalRef}, ranges)

    @get("/api/v3/timecards/{timecard_id:int}")
    async def get_timecard(timecard_id: FromPath[int]) -> dict[str, Any]:
        return await store.call(_one, store, "timecard", timecard_id)

    @post("/api/v3/timecards")
    async def post_timecard(request: Request[Any, Any, Any]) -> Response[Any]:
        body = await json_object(request, invalid)
        status, created = await store.call(store.transaction, create_timecard, store, body)
        return Response(created, status_code=status)

    @patch("/api/v3/timecards/{timecard_id:int}")
    async def patch_timecard(timecard_id: FromPath[int], request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await json_object(request, invalid)
        return await store.call(update_timecard, store, timecard_id, body)

    @delete("/api/v3/timecards/{timecard_id:int}", status_code=204)
    async def delete_one_timecard(timecard_id: FromPath[int]) -> None:
        await store.call(delete_timecard, store, timecard_id)

    @post("/api/v3/timecards/{timecard_id:int}/status", status_code=200)
    async def post_timecard_status(timecard_id: FromPath[int], request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await json_object(request, invalid)
        return await store.call(change_timecard_status, store, timecard_id, body)

    @post("/api/v3/timecards/lookup", status_code=200)
    async def post_timecard_lookup(request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await json_object(request, invalid)
        return await store.call(lookup_timecards, store, body)

    @post("/api/v3/timecards/status-batch", status_code=200)
    async def post_timecard_status_batch(request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await json_object(request, invalid)
        return await store.call(store.transaction, change_timecard_statuses, store, body)

    @post("/api/v3/timecards/{timecard_id:int}/versions")
    async def post_timecard_version(timecard_id: FromPath[int], request: Request[Any, Any, Any]) -> Response[Any]:
        body = await json_object(request, invalid)
        status, created = await store.call(store.transaction, new_timecard_version, store, timecard_id, body,
                                           request.headers.get("idempotency-key"))
        return Response(created, status_code=status)

    @get("/api/v3/expenses")
    async def list_expenses(page: FromQuery[int] = 1, pageSize: FromQuery[int] = 50,
                            resourceId: FromQuery[int | None] = None,
                            projectId: FromQuery[int | None] = None, status: FromQuery[str | None] = None,
                            externalRef: FromQuery[str | None] = None) -> dict[str, Any]:
        return await paged("expense", page, pageSize, {"resourceId": resourceId, "projectId": projectId,
                                                        "status": status, "externalRef": externalRef})

    @post("/api/v3/expenses")
    async def post_expense(request: Request[Any, Any, Any]) -> Response[Any]:
        body = await json_object(request, invalid)
        status, created = await store.call(store.transaction, create_expense, store, body)
        return Response(created, status_code=status)

    @get("/api/v3/milestones")
    async def list_milestones(page: FromQuery[int] = 1, pageSize: FromQuery[int] = 50,
                              projectId: FromQuery[int | None] = None,
                              status: FromQuery[str | None] = None,
                              milestoneNumber: FromQuery[str | None] = None) -> dict[str, Any]:
        return await paged("milestone", page, pageSize, {"projectId": projectId, "status": status,
                                                          "milestoneNumber": milestoneNumber})

    @get("/api/v3/milestones/{milestone_id:int}")
    async def get_milestone(milestone_id: FromPath[int]) -> dict[str, Any]:
        return await store.call(_one, store, "milestone", milestone_id)

    @post("/api/v3/milestones/{milestone_id:int}/status", status_code=200)
    async def post_milestone_status(milestone_id: FromPath[int], request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await json_object(request, invalid)
        return await store.call(change_milestone_status, store, milestone_id, body)

    return Litestar(
        [list_resources, list_projects, get_project, post_project, patch_project, list_project_tasks, post_task,
         list_tasks, list_assignments, get_assignment, post_assignment, patch_assignment, list_timecards,
         get_timecard, post_timecard, patch_timecard, delete_one_timecard, post_timecard_status,
         post_timecard_lookup, post_timecard_status_batch, post_timecard_version, list_expenses, post_expense,
         list_milestones,
         get_milestone, post_milestone_status],
        exception_handlers={HTTPException: vendor_error, VendorError: vendor_error_response},
        openapi_config=None,
    )


def vendor_error(_request: Any, exc: HTTPException) -> Response[dict[str, Any]]:
    codes = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 409: "CONFLICT"}
    return Response({"errorCode": codes.get(exc.status_code, "ERROR"), "message": exc.detail},
                    status_code=exc.status_code)

