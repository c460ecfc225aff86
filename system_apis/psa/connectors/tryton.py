"""PSA adapter over Tryton: projects and tasks are ``project.work``, time is ``timesheet.line``.

What maps natively: a project is a ``project.work`` of type project (number PRJ-4001, customer ``party``,
legal entity ``company``, budget ``effort_duration``); a task is a ``project.work`` of type task under it; time
is a ``timesheet.line`` (employee, date, duration, description) on the ``timesheet.work`` of the task (or of
the project when no task is named). What Tryton lacks is kept by the psgateway Tryton module: the approval
state of a line and its history (``psgw_state``, who approved, when, the correction chain), the offline
client's id (``psgw_client_ref``, unique; Tryton's own ``uuid`` is read-only over RPC), the project's stage,
contract and manager, and staffing assignments (``psgw.assignment``). Tryton has no expenses or milestones in
this module set: they list empty and a milestone id is unknown (404).
"""

from __future__ import annotations

import datetime as dt
import uuid as uuid_module
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from contracts.canonical import (
    Assignment,
    AssignmentStatus,
    Expense,
    ExpenseState,
    Milestone,
    MilestoneState,
    Page,
    Project,
    ProjectStatus,
    Task,
    TimeEntry,
    TimeEntryState,
    plain_decimal,
    whole_minutes,
)
from runtime.problems import FieldError, NotFound, ProblemError, Unprocessable
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
from system_apis.tryton_rpc import TrytonRecords, nested

PROJECT_FIELDS = ["number", "name", "party.code", "company.party.code", "psgw_contract.number",
                  "psgw_contract.billing_model", "psgw_stage", "psgw_billing_model", "effort_duration",
                  "psgw_manager.party.code", "psgw_business_unit", "psgw_start_date", "psgw_end_date"]
TASK_FIELDS = ["number", "name", "parent.number", "psgw_billable"]
ASSIGNMENT_FIELDS = ["number", "employee.party.code", "work.number", "role", "hours_per_week", "start_date",
                     "end_date", "state"]
LINE_FIELDS = ["date", "duration", "description", "psgw_client_ref", "employee.party.code", "work.origin",
               "work.origin.number", "work.origin.type", "work.origin.parent.number", "psgw_state",
               "psgw_billable", "psgw_version", "psgw_supersedes", "psgw_superseded_by", "psgw_submitted_at",
               "psgw_approved_at", "psgw_approved_by.party.code", "psgw_rejection_reason", "write_date",
               "create_date"]
# Tryton's field labels -> canonical pointers, for its refusals.
LINE_LABELS = {"Date": "/work_date", "Duration": "/hours", "Employee": "/worker_id", "Work": "/project_id",
               "Description": "/notes", "Client Reference": "/client_ref"}
PROJECT_LABELS = {"Name": "/name", "Party": "/customer_id", "Company": "/legal_entity_id",
                  "Contract": "/contract_id", "Effort": "/budget_hours", "Project Manager": "/manager_id"}
ASSIGNMENT_LABELS = {"Employee": "/worker_id", "Project": "/project_id", "Role": "/role",
                     "Hours per Week": "/planned_hours_per_week", "Start Date": "/start_date",
                     "End Date": "/end_date"}


def hours_of(duration: dt.timedelta | None) -> Decimal:
    seconds = Decimal(int(duration.total_seconds())) if duration else Decimal(0)
    return plain_decimal((seconds / 3600).quantize(Decimal("0.01")))


def minutes_in(duration: dt.timedelta | None) -> int:
    return int(duration.total_seconds()) // 60 if duration else 0


def duration_of(hours: Decimal) -> dt.timedelta:
    minutes = whole_minutes(hours)
    if minutes is None:
        raise Unprocessable("hours must come to whole minutes", slug="validation-failed",
                            errors=[FieldError(pointer="/hours", detail="must be a whole number of minutes")])
    return dt.timedelta(minutes=minutes)


def entry_key(line_id: int) -> str:
    """Tryton numbers no timesheet line: the line's id is its business key (TC-<id>)."""
    return f"TC-{line_id}"


def project_from_row(row: dict[str, Any]) -> Project:
    budget = row.get("effort_duration")
    return Project(
        id=to_canonical("project", row["number"]), external_ids={"psa": str(row["id"])}, name=row["name"],
        contract_id=to_canonical("contract", nested(row, "psgw_contract.number") or ""),
        customer_id=to_canonical("customer", nested(row, "party.code") or ""),
        legal_entity_id=to_canonical("legal_entity", nested(row, "company.party.code") or ""),
        status=row.get("psgw_stage") or "active",
        billing_model=row.get("psgw_billing_model") or nested(row, "psgw_contract.billing_model")
        or "time_and_materials",
        budget_hours=hours_of(budget) if budget else None,
        manager_id=to_canonical("worker", code) if (code := nested(row, "psgw_manager.party.code")) else None,
        business_unit_id=to_canonical("business_unit", row["psgw_business_unit"])
        if row.get("psgw_business_unit") else None,
        start_date=row.get("psgw_start_date"), end_date=row.get("psgw_end_date"),
    )


def task_from_row(row: dict[str, Any]) -> Task:
    return Task(id=to_canonical("task", row["number"]), external_ids={"psa": str(row["id"])},
                project_id=to_canonical("project", nested(row, "parent.number") or ""), name=row["name"],
                billable=bool(row.get("psgw_billable", True)))


def assignment_from_row(row: dict[str, Any]) -> Assignment:
    return Assignment(
        id=to_canonical("assignment", row["number"]), external_ids={"psa": str(row["id"])},
        worker_id=to_canonical("worker", nested(row, "employee.party.code") or ""),
        project_id=to_canonical("project", nested(row, "work.number") or ""), role=row["role"],
        planned_hours_per_week=plain_decimal(Decimal(row["hours_per_week"])), start_date=row["start_date"],
        end_date=row.get("end_date"), status=row["state"],
    )


def entry_from_row(row: dict[str, Any]) -> TimeEntry:
    origin_type = nested(row, "work.origin.type")
    if origin_type == "task":
        project_number, task_number = nested(row, "work.origin.parent.number"), nested(row, "work.origin.number")
    else:
        project_number, task_number = nested(row, "work.origin.number"), None
    approver = nested(row, "psgw_approved_by.party.code")
    return TimeEntry(
        id=to_canonical("time_entry", entry_key(row["id"])), external_ids={"psa": str(row["id"])},
        worker_id=to_canonical("worker", nested(row, "employee.party.code") or ""),
        project_id=to_canonical("project", project_number or ""),
        task_id=to_canonical("task", task_number) if task_number else None, work_date=row["date"],
        hours=hours_of(row.get("duration")), minutes=minutes_in(row.get("duration")),
        billable=bool(row.get("psgw_billable")),
        notes=row.get("description") or "", state=row["psgw_state"], version=row.get("psgw_version") or 1,
        supersedes_id=to_canonical("time_entry", entry_key(row["psgw_supersedes"]))
        if row.get("psgw_supersedes") else None,
        superseded_by_id=to_canonical("time_entry", entry_key(row["psgw_superseded_by"]))
        if row.get("psgw_superseded_by") else None,
        submitted_at=row.get("psgw_submitted_at"), approved_at=row.get("psgw_approved_at"),
        approved_by=to_canonical("worker", approver) if approver else None,
        rejection_reason=row.get("psgw_rejection_reason"),
        updated_at=row.get("write_date") or row.get("create_date"), client_ref=row.get("psgw_client_ref"),
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _refuse_travel(activity: object) -> None:
    """Tryton's timesheet lines have no activity type in this module set: travel is refused plainly rather than
    stored as work (which would bill it at the role's rate)."""
    if activity == "travel":
        raise Unprocessable("this PSA (Tryton) records no travel time: log travel in the sandbox PSA",
                            slug="not-supported", errors=[FieldError(pointer="/activity", detail="travel is not "
                                                                     "recorded by this PSA")])


class TrytonPsa(TrytonRecords):
    # look-ups by business key

    async def _project_row(self, project_id: str) -> dict[str, Any]:
        row = await self.first("project.work", [("type", "=", "project"),
                                                ("number", "=", to_business_key("project", project_id))],
                               PROJECT_FIELDS)
        if row is None:
            raise NotFound(f"no project {project_id!r}", slug="unknown-id")
        return row

    async def _project_id(self, project_id: str, pointer: str) -> int:
        number = reference("project", project_id, pointer)
        found = await self.id_of("project.work", [("type", "=", "project"), ("number", "=", number)])
        if found is None:
            raise unknown_reference("project", project_id, pointer)
        return found

    async def _employee_id(self, worker_id: str, pointer: str) -> int:
        found = await self.id_of("company.employee", [("party.code", "=", reference("worker", worker_id, pointer))])
        if found is None:
            raise unknown_reference("worker", worker_id, pointer)
        return found

    async def _timesheet_work(self, project_work_id: int) -> int:
        found = await self.id_of("timesheet.work", [("origin", "=", f"project.work,{project_work_id}")])
        if found is None:
            raise Unprocessable("the project or task is not open for timesheets in Tryton", slug="validation-failed",
                                errors=[FieldError(pointer="/project_id", detail="not open for timesheets")])
        return found

    async def _work_for(self, project_vendor_id: int, task_id: str | None) -> int:
        """The timesheet.work a line books to: the task's, else the project's."""
        if task_id is None:
            return await self._timesheet_work(project_vendor_id)
        task = await self.id_of("project.work", [("type", "=", "task"), ("parent", "=", project_vendor_id),
                                                 ("number", "=", reference("task", task_id, "/task_id"))])
        if task is None:
            raise unknown_reference("task", task_id, "/task_id")
        return await self._timesheet_work(task)

    async def _line_id(self, time_entry_id: str) -> int:
        key = to_business_key("time_entry", time_entry_id)
        if not key.startswith("TC-") or not key[3:].isdigit():
            raise NotFound(f"no time entry {time_entry_id!r}", slug="unknown-id")
        found = await self.id_of("timesheet.line", [("id", "=", int(key[3:]))])
        if found is None:
            raise NotFound(f"no time entry {time_entry_id!r}", slug="unknown-id")
        return found

    async def _entry(self, line_id: int) -> TimeEntry:
        rows = await self.rpc.read("timesheet.line", [line_id], LINE_FIELDS)
        return entry_from_row(rows[0])

    # projects and tasks

    async def list_projects(self, *, status: ProjectStatus | None, customer_id: str | None,
                            contract_id: str | None, cursor: str | None, limit: int) -> Page[Project]:
        domain: list[Any] = [("type", "=", "project")]
        if status is not None:
            domain.append(("psgw_stage", "=", status))
        if customer_id is not None:
            if not is_canonical("customer", customer_id):
                return Page(items=[])
            domain.append(("party.code", "=", to_business_key("customer", customer_id)))
        if contract_id is not None:
            if not is_canonical("contract", contract_id):
                return Page(items=[])
            domain.append(("psgw_contract.number", "=", to_business_key("contract", contract_id)))
        rows, next_cursor = await self.page("project.work", domain, PROJECT_FIELDS, cursor, limit)
        return Page(items=[project_from_row(r) for r in rows], next_cursor=next_cursor)

    async def get_project(self, project_id: str) -> Project:
        return project_from_row(await self._project_row(project_id))

    async def _project_values(self, values: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in values.items():
            if name == "name":
                out["name"] = value
            elif name == "status":
                out["psgw_stage"] = value
            elif name == "billing_model":
                out["psgw_billing_model"] = value
            elif name == "budget_hours":
                out["effort_duration"] = None if value is None else dt.timedelta(hours=float(value))
            elif name == "manager_id":
                out["psgw_manager"] = None if value is None else await self._employee_id(value, "/manager_id")
            elif name == "business_unit_id":
                out["psgw_business_unit"] = None if value is None else reference(
                    "business_unit", value, "/business_unit_id")
            elif name in ("start_date", "end_date"):
                out[f"psgw_{name}"] = value
        return out

    async def create_project(self, data: ProjectCreate, idempotency_key: str | None) -> Project:
        contract = await self.first("psgw.contract", [("number", "=", reference(
            "contract", data.contract_id, "/contract_id"))], ["party.code", "company.party.code"])
        if contract is None:
            raise unknown_reference("contract", data.contract_id, "/contract_id")
        party = await self.id_of("party.party", [("code", "=", reference("customer", data.customer_id,
                                                                          "/customer_id"))])
        if party is None:
            raise unknown_reference("customer", data.customer_id, "/customer_id")
        company = await self.id_of("company.company", [("party.code", "=", reference(
            "legal_entity", data.legal_entity_id, "/legal_entity_id"))])
        if company is None:
            raise unknown_reference("legal_entity", data.legal_entity_id, "/legal_entity_id")
        values = await self._project_values({n: getattr(data, n) for n in data.__struct_fields__})
        values.update({"type": "project", "party": party, "company": company, "psgw_contract": contract["id"],
                       "timesheet_available": True, "project_invoice_method": "manual"})
        created, = await self.rpc.create("project.work", [values], field_map=PROJECT_LABELS)
        return project_from_row((await self.rpc.read("project.work", [created], PROJECT_FIELDS))[0])

    async def update_project(self, project_id: str, changes: dict[str, object]) -> Project:
        row = await self._project_row(project_id)
        values = await self._project_values(dict(changes))
        if values:
            await self.rpc.write("project.work", [row["id"]], values, field_map=PROJECT_LABELS)
        return project_from_row((await self.rpc.read("project.work", [row["id"]], PROJECT_FIELDS))[0])

    async def list_tasks(self, project_id: str, *, cursor: str | None, limit: int) -> Page[Task]:
        row = await self._project_row(project_id)
        rows, next_cursor = await self.page("project.work", [("type", "=", "task"), ("parent", "=", row["id"])],
                                            TASK_FIELDS, cursor, limit)
        return Page(items=[task_from_row(r) for r in rows], next_cursor=next_cursor)

    async def create_task(self, project_id: str, data: TaskCreate, idempotency_key: str | None) -> Task:
        row = await self._project_row(project_id)
        company = await self.rpc.read("project.work", [row["id"]], ["company"])
        created, = await self.rpc.create("project.work", [{
            "type": "task", "name": data.name, "parent": row["id"], "company": company[0]["company"],
            "psgw_billable": data.billable, "timesheet_available": True}], field_map={"Name": "/name"})
        return task_from_row((await self.rpc.read("project.work", [created], TASK_FIELDS))[0])

    # assignments

    async def list_assignments(self, *, worker_id: str | None, project_id: str | None,
                               status: AssignmentStatus | None, cursor: str | None, limit: int) -> Page[Assignment]:
        domain: list[Any] = []
        if status is not None:
            domain.append(("state", "=", status))
        if worker_id is not None:
            if not is_canonical("worker", worker_id):
                return Page(items=[])
            domain.append(("employee.party.code", "=", to_business_key("worker", worker_id)))
        if project_id is not None:
            if not is_canonical("project", project_id):
                return Page(items=[])
            domain.append(("work.number", "=", to_business_key("project", project_id)))
        rows, next_cursor = await self.page("psgw.assignment", domain, ASSIGNMENT_FIELDS, cursor, limit)
        return Page(items=[assignment_from_row(r) for r in rows], next_cursor=next_cursor)

    async def _assignment_row(self, assignment_id: str) -> dict[str, Any]:
        row = await self.first("psgw.assignment", [("number", "=", to_business_key("assignment", assignment_id))],
                               ASSIGNMENT_FIELDS)
        if row is None:
            raise NotFound(f"no assignment {assignment_id!r}", slug="unknown-id")
        return row

    async def get_assignment(self, assignment_id: str) -> Assignment:
        return assignment_from_row(await self._assignment_row(assignment_id))

    async def create_assignment(self, data: AssignmentCreate, idempotency_key: str | None) -> Assignment:
        values = {"employee": await self._employee_id(data.worker_id, "/worker_id"),
                  "work": await self._project_id(data.project_id, "/project_id"), "role": data.role,
                  "hours_per_week": data.planned_hours_per_week, "start_date": data.start_date,
                  "end_date": data.end_date, "state": data.status,
                  "number": f"ASG-NEW-{uuid_module.uuid4().hex[:12].upper()}"}
        created, = await self.rpc.create("psgw.assignment", [values], field_map=ASSIGNMENT_LABELS)
        # Numbered from the record's id, like the firm's ASG-6001: unique without a second sequence in Tryton.
        await self.rpc.write("psgw.assignment", [created], {"number": f"ASG-{100000 + created}"})
        return assignment_from_row((await self.rpc.read("psgw.assignment", [created], ASSIGNMENT_FIELDS))[0])

    async def set_assignment_status(self, assignment_id: str, status: AssignmentStatus) -> Assignment:
        row = await self._assignment_row(assignment_id)
        await self.rpc.write("psgw.assignment", [row["id"]], {"state": status})
        return assignment_from_row((await self.rpc.read("psgw.assignment", [row["id"]], ASSIGNMENT_FIELDS))[0])

    # time entries

    async def list_time_entries(self, filters: TimeEntryFilter, *, cursor: str | None,
                                limit: int) -> Page[TimeEntry]:
        domain: list[Any] = []
        if filters.state is not None:
            domain.append(("psgw_state", "=", filters.state))
        if filters.from_date is not None:
            domain.append(("date", ">=", filters.from_date))
        if filters.to_date is not None:
            domain.append(("date", "<=", filters.to_date))
        if filters.updated_since is not None:
            since = filters.updated_since
            domain.append(["OR", ("write_date", ">=", since), [("write_date", "=", None),
                                                                ("create_date", ">=", since)]])
        if filters.worker_id is not None:
            if not is_canonical("worker", filters.worker_id):
                return Page(items=[])
            domain.append(("employee.party.code", "=", to_business_key("worker", filters.worker_id)))
        if filters.project_id is not None:
            if not is_canonical("project", filters.project_id):
                return Page(items=[])
            number = to_business_key("project", filters.project_id)
            works = await self.rpc.search_read("project.work", ["OR", ("number", "=", number),
                                                                ("parent.number", "=", number)], ["id"])
            if not works:
                return Page(items=[])
            sheets = await self.rpc.search_read("timesheet.work", [
                ("origin", "in", [f"project.work,{w['id']}" for w in works])], ["id"])
            domain.append(("work", "in", [s["id"] for s in sheets]))
        rows, next_cursor = await self.page("timesheet.line", domain, LINE_FIELDS, cursor, limit,
                                            order=(("date", "ASC"), ("id", "ASC")))
        return Page(items=[entry_from_row(r) for r in rows], next_cursor=next_cursor)

    async def get_time_entry(self, time_entry_id: str) -> TimeEntry:
        return await self._entry(await self._line_id(time_entry_id))

    async def _by_client_ref(self, client_ref: str) -> TimeEntry | None:
        row = await self.first("timesheet.line", [("psgw_client_ref", "=", client_ref)], LINE_FIELDS)
        return entry_from_row(row) if row else None

    async def create_time_entry(self, data: TimeEntryCreate) -> tuple[TimeEntry, bool]:
        _refuse_travel(data.activity)
        if data.client_ref is not None and (existing := await self._by_client_ref(data.client_ref)):
            return existing, False
        project = await self._project_id(data.project_id, "/project_id")
        values: dict[str, Any] = {
            "employee": await self._employee_id(data.worker_id, "/worker_id"),
            "work": await self._work_for(project, data.task_id), "date": data.work_date,
            "duration": duration_of(data.hours), "description": data.notes, "psgw_billable": data.billable,
            "psgw_state": "draft", "psgw_version": 1,
        }
        company = await self.rpc.read("project.work", [project], ["company"])
        values["company"] = company[0]["company"]
        if data.client_ref is not None:
            values["psgw_client_ref"] = data.client_ref
        try:
            created, = await self.rpc.create("timesheet.line", [values], field_map=LINE_LABELS)
        except Unprocessable:
            # The client reference is unique in Tryton: a concurrent re-send created it first, answer that one.
            if data.client_ref is not None and (existing := await self._by_client_ref(data.client_ref)):
                return existing, False
            raise
        return await self._entry(created), True

    async def _line_values(self, changes: dict[str, object], project_vendor_id: int | None) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "work_date":
                values["date"] = value
            elif name == "hours":
                values["duration"] = duration_of(value)  # type: ignore[arg-type]
            elif name == "billable":
                values["psgw_billable"] = value
            elif name == "activity":
                _refuse_travel(value)
            elif name == "notes":
                values["description"] = value
            elif name == "task_id" and project_vendor_id is not None:
                values["work"] = await self._work_for(project_vendor_id, None if value is None else str(value))
        return values

    async def _project_vendor_id(self, entry: TimeEntry) -> int:
        return await self._project_id(entry.project_id, "/project_id")

    async def update_time_entry(self, time_entry_id: str, changes: dict[str, object]) -> TimeEntry:
        line_id = await self._line_id(time_entry_id)
        project = await self._project_vendor_id(await self._entry(line_id)) if "task_id" in changes else None
        values = await self._line_values(changes, project)
        if values:
            await self.rpc.write("timesheet.line", [line_id], values, field_map=LINE_LABELS)
        return await self._entry(line_id)

    async def delete_time_entry(self, time_entry_id: str) -> None:
        await self.rpc.delete("timesheet.line", [await self._line_id(time_entry_id)])

    async def set_time_entry_state(self, time_entry_id: str, to_state: TimeEntryState, *, actor_id: str | None,
                                   reason: str | None) -> TimeEntry:
        line_id = await self._line_id(time_entry_id)
        values: dict[str, Any] = {"psgw_state": to_state}
        if to_state == "submitted":
            values["psgw_submitted_at"] = _now()
        elif to_state == "approved":
            values["psgw_approved_at"] = _now()
            values["psgw_approved_by"] = await self._employee_id(actor_id, "/actor_id") if actor_id else None
        elif to_state == "rejected":
            values["psgw_rejection_reason"] = reason
        elif to_state == "draft":
            values.update({"psgw_submitted_at": None, "psgw_approved_at": None, "psgw_approved_by": None})
        await self.rpc.write("timesheet.line", [line_id], values, field_map=LINE_LABELS)
        return await self._entry(line_id)

    async def get_time_entries(self, time_entry_ids: Sequence[str]) -> dict[str, TimeEntry]:
        wanted: dict[int, str] = {}
        for time_entry_id in time_entry_ids:
            key = to_business_key("time_entry", time_entry_id) if is_canonical("time_entry", time_entry_id) else ""
            if key.startswith("TC-") and key[3:].isdigit():
                wanted[int(key[3:])] = time_entry_id
        if not wanted:
            return {}
        rows = await self.rpc.search_read("timesheet.line", [("id", "in", list(wanted))], LINE_FIELDS)
        return {wanted[row["id"]]: entry_from_row(row) for row in rows}

    async def set_time_entry_states(self, changes: Sequence[TimeEntryTransitionItem]
                                    ) -> list[TimeEntry | ProblemError]:
        # Tryton has no bulk call for lines that change differently: one write each, each with its own outcome.
        outcomes: list[TimeEntry | ProblemError] = []
        for change in changes:
            try:
                outcomes.append(await self.set_time_entry_state(change.time_entry_id, change.to_state,
                                                                actor_id=change.actor_id, reason=change.reason))
            except ProblemError as exc:
                if exc.status >= 500:
                    raise  # Tryton failing: the whole batch is sent again, nothing is half-reported
                outcomes.append(exc)
        return outcomes

    async def correct_time_entry(self, time_entry_id: str, changes: dict[str, object],
                                 idempotency_key: str | None) -> TimeEntry:
        line_id = await self._line_id(time_entry_id)
        old = (await self.rpc.read("timesheet.line", [line_id], [
            "company", "employee", "work", "date", "duration", "description", "psgw_billable", "psgw_version"]))[0]
        entry = await self._entry(line_id)
        values = {"company": old["company"], "employee": old["employee"], "work": old["work"], "date": old["date"],
                  "duration": old["duration"], "description": old["description"],
                  "psgw_billable": old["psgw_billable"], "psgw_state": "draft",
                  "psgw_version": (old["psgw_version"] or 1) + 1, "psgw_supersedes": line_id}
        values.update(await self._line_values(changes, await self._project_vendor_id(entry)))
        created, = await self.rpc.create("timesheet.line", [values], field_map=LINE_LABELS)
        await self.rpc.write("timesheet.line", [line_id], {"psgw_superseded_by": created})
        return await self._entry(created)

    # Tryton's project modules have no expenses or milestones.

    async def list_expenses(self, *, worker_id: str | None, project_id: str | None, state: ExpenseState | None,
                            cursor: str | None, limit: int) -> Page[Expense]:
        return Page(items=[])

    async def create_expense(self, data: ExpenseCreate) -> tuple[Expense, bool]:
        raise Unprocessable("this PSA (Tryton) has no expenses: its project and timesheet modules keep none, so "
                            "expenses are supported on the sandbox PSA only", slug="not-supported")

    async def list_milestones(self, *, project_id: str | None, state: MilestoneState | None, cursor: str | None,
                              limit: int) -> Page[Milestone]:
        return Page(items=[])

    async def get_milestone(self, milestone_id: str) -> Milestone:
        raise NotFound(f"no milestone {milestone_id!r}: Tryton keeps no milestones", slug="unknown-id")

    async def set_milestone_state(self, milestone_id: str, to_state: MilestoneState) -> Milestone:
        raise NotFound(f"no milestone {milestone_id!r}: Tryton keeps no milestones", slug="unknown-id")
