"""PSA adapter for the sandbox timecard PSA (``sandbox/psa.py``): its dialect in, the canonical model out."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from contracts.canonical import Assignment, AssignmentStatus, BillingModel, Page, Project, ProjectStatus
from runtime.downstream import Downstream
from runtime.problems import NotFound
from system_apis import cursors
from system_apis.ids import to_business_key, to_canonical

PROJECT_STATUS: dict[str, ProjectStatus] = {"Planned": "planned", "In Progress": "active", "Paused": "on_hold",
                                            "Completed": "closed"}
BILLING_MODEL: dict[str, BillingModel] = {"T&M": "time_and_materials", "FIXED": "fixed_fee",
                                          "MILESTONE": "milestone", "RETAINER": "retainer"}
ASSIGNMENT_STATUS: dict[str, AssignmentStatus] = {"Tentative": "proposed", "Confirmed": "confirmed",
                                                  "Closed": "ended"}
ASSIGNMENT_STATUS_VENDOR = {v: k for k, v in ASSIGNMENT_STATUS.items()}


def _role(vendor_role: str) -> str:
    return vendor_role.strip().lower().replace(" ", "_")


class SandboxPsa:
    def __init__(self, base_url: str, timeout_seconds: float) -> None:
        self._vendor = Downstream("sandbox-psa", base_url, timeout_seconds=timeout_seconds)
        # Internal vendor ids never change for a record: cache the lookups both ways.
        self._resource_by_employee: dict[str, int] = {}
        self._employee_by_resource: dict[int, str] = {}
        self._project_id_by_code: dict[str, int] = {}
        self._code_by_project_id: dict[int, str] = {}

    async def aclose(self) -> None:
        await self._vendor.aclose()

    async def _resource_id(self, worker_id: str) -> int | None:
        number = to_business_key("worker", worker_id)
        if number not in self._resource_by_employee:
            page = await self._vendor.get_json("/api/v3/resources", dict, params={"employeeNumber": number})
            if not page["data"]:
                return None
            self._remember_resource(page["data"][0])
        return self._resource_by_employee[number]

    def _remember_resource(self, body: dict[str, Any]) -> None:
        self._resource_by_employee[body["employeeNumber"]] = body["resourceId"]
        self._employee_by_resource[body["resourceId"]] = body["employeeNumber"]

    async def _employee_number(self, resource_id: int) -> str:
        if resource_id not in self._employee_by_resource:
            page = 1
            while True:  # a cold cache loads the resource list once
                body = await self._vendor.get_json("/api/v3/resources", dict,
                                                   params={"page": page, "pageSize": 500})
                for resource in body["data"]:
                    self._remember_resource(resource)
                if page >= body["meta"]["totalPages"]:
                    break
                page += 1
        return self._employee_by_resource[resource_id]

    async def _project_id(self, code: str) -> int:
        if code not in self._project_id_by_code:
            page = await self._vendor.get_json("/api/v3/projects", dict, params={"projectCode": code})
            if not page["data"]:
                raise NotFound(f"no project {to_canonical('project', code)!r}", slug="unknown-id")
            self._remember_project(page["data"][0])
        return self._project_id_by_code[code]

    async def _project_code(self, project_id: int) -> str:
        if project_id not in self._code_by_project_id:
            self._remember_project(await self._vendor.get_json(f"/api/v3/projects/{project_id}", dict))
        return self._code_by_project_id[project_id]

    def _remember_project(self, body: dict[str, Any]) -> None:
        # Only the id pair is cached: project status and dates change and are always read fresh.
        self._project_id_by_code[body["projectCode"]] = body["projectId"]
        self._code_by_project_id[body["projectId"]] = body["projectCode"]

    async def list_assignments(
        self,
        *,
        worker_id: str | None,
        project_id: str | None,
        status: AssignmentStatus | None,
        cursor: str | None,
        limit: int,
    ) -> Page[Assignment]:
        params: dict[str, Any] = {"page": int(cursors.decode(cursor).get("page", 1)), "pageSize": limit}
        if worker_id is not None:
            resource_id = await self._resource_id(worker_id)
            if resource_id is None:
                return Page(items=[])
            params["resourceId"] = resource_id
        if project_id is not None:
            params["projectId"] = await self._project_id(to_business_key("project", project_id))
        if status is not None:
            params["status"] = ASSIGNMENT_STATUS_VENDOR[status]
        body = await self._vendor.get_json("/api/v3/assignments", dict, params=params)
        items = [await self._assignment(row) for row in body["data"]]
        meta = body["meta"]
        next_cursor = cursors.encode({"page": meta["page"] + 1}) if meta["page"] < meta["totalPages"] else None
        return Page(items=items, next_cursor=next_cursor)

    async def _assignment(self, row: dict[str, Any]) -> Assignment:
        return Assignment(
            id=to_canonical("assignment", row["assignmentNumber"]),
            external_ids={"psa": str(row["assignmentId"])},
            worker_id=to_canonical("worker", await self._employee_number(row["resourceId"])),
            project_id=to_canonical("project", await self._project_code(row["projectId"])),
            role=_role(row["roleName"]),
            planned_hours_per_week=Decimal(str(row["hoursPerWeek"])),
            start_date=dt.date.fromisoformat(row["from"]),
            end_date=dt.date.fromisoformat(row["to"]) if row.get("to") else None,
            status=ASSIGNMENT_STATUS[row["status"]],
        )

    async def get_project(self, project_id: str) -> Project:
        vendor_id = await self._project_id(to_business_key("project", project_id))
        return self._project(await self._vendor.get_json(f"/api/v3/projects/{vendor_id}", dict))

    @staticmethod
    def _project(body: dict[str, Any]) -> Project:
        return Project(
            id=to_canonical("project", body["projectCode"]),
            external_ids={"psa": str(body["projectId"])},
            name=body["title"],
            contract_id=to_canonical("contract", body["contractRef"]),
            customer_id=to_canonical("customer", body["accountRef"]),
            legal_entity_id=to_canonical("legal_entity", body["entity"]),
            status=PROJECT_STATUS[body["stage"]],
            billing_model=BILLING_MODEL[body["billingType"]],
            budget_hours=Decimal(str(body["budgetHours"])) if body.get("budgetHours") is not None else None,
            manager_id=to_canonical("worker", body["managerEmployeeNumber"]) if body.get(
                "managerEmployeeNumber") else None,
            business_unit_id=to_canonical("business_unit", body["practice"]) if body.get("practice") else None,
            start_date=dt.date.fromisoformat(body["startDate"]) if body.get("startDate") else None,
            end_date=dt.date.fromisoformat(body["endDate"]) if body.get("endDate") else None,
        )
