"""HR adapter for the sandbox HCM (``sandbox/hr.py``): Workday-like WIDs, nested topics, effective dating."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import msgspec

from contracts.canonical import (
    BusinessUnit,
    CostCenter,
    CostRate,
    LeaveType,
    Page,
    Role,
    Worker,
    WorkerLeave,
    WorkerStatus,
    role_id,
)
from runtime import cursors
from runtime.problems import NotFound
from system_apis.ids import is_canonical, to_business_key, to_canonical
from system_apis.vendor_auth import ClientCredentialsToken, VendorCredentials
from system_apis.vendor_calls import VendorDownstream, VendorLimits
from system_apis.vendor_errors import vendor_problem
from system_apis.vendor_keys import KeyMap

VENDOR = "sandbox-hr"
TOKEN_PATH = "/ccx/oauth2/northwind/token"  # noqa: S105 - the vendor's token endpoint, not a secret
BASE = "/ccx/api/v1/northwind"
WORKER_STATUS: dict[str, WorkerStatus] = {"Active": "active", "On Leave": "leave", "Terminated": "terminated"}
WORKER_STATUS_VENDOR = {v: k for k, v in WORKER_STATUS.items()}
LEAVE_TYPE: dict[str, LeaveType] = {"Vacation": "vacation", "Sick": "sick", "Parental": "parental",
                                    "Personal": "personal", "Other": "other"}
LEAVE_TYPE_VENDOR = {v: k for k, v in LEAVE_TYPE.items()}
PAGE_MAX = 100
QUERY_FIELDS = {"offset": "/cursor", "limit": "/limit"}


def role_of(job_profile_id: str) -> str:
    """Job profile ``JP-SENIOR_CONSULTANT`` is the canonical role ``senior_consultant``."""
    return role_id(job_profile_id.removeprefix("JP-"))


def job_profile_of(role: str) -> str:
    return "JP-" + role.upper()


def _ref(key: str, descriptor: str | None = None) -> dict[str, str]:
    return {"ID": key, "Descriptor": descriptor or key}


def _day(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def worker_from_vendor(body: dict[str, Any], today: dt.date | None = None) -> Worker:
    personal, employment = body["Personal_Data"], body["Employment_Data"]
    name = personal["Legal_Name"]
    manager = employment.get("Manager")
    last_day = _day(employment.get("Termination_Date"))
    status = WORKER_STATUS[employment["Worker_Status"]]
    if last_day is not None and last_day < (today or dt.datetime.now(dt.UTC).date()):
        status = "terminated"  # HR flips the status the day after the last day; the date says it already
    return Worker(
        id=to_canonical("worker", body["Worker_ID"]), external_ids={"hr": body["WID"]},
        name=f"{name['First_Name']} {name['Last_Name']}".strip(), email=personal["Email_Address"],
        role=role_of(employment["Job_Profile"]["ID"]), status=status,
        business_unit_id=to_canonical("business_unit", employment["Supervisory_Organization"]["ID"]),
        cost_center_id=to_canonical("cost_center", employment["Cost_Center"]["ID"]),
        legal_entity_id=to_canonical("legal_entity", employment["Company"]["ID"]),
        capacity_hours_per_week=Decimal(str(employment["Scheduled_Weekly_Hours"])),
        cost_rates=[CostRate(hourly_cost=Decimal(rate["Amount"]), currency=rate["Currency"],
                             valid_from=dt.date.fromisoformat(rate["Effective_Date"]),
                             valid_to=dt.date.fromisoformat(rate["End_Date"]) if rate.get("End_Date") else None)
                    for rate in body["Compensation"]["Cost_Rates"]],
        manager_id=to_canonical("worker", manager["ID"]) if manager else None,
        termination_date=last_day,
        leaves=[WorkerLeave(first_day=dt.date.fromisoformat(leave["First_Day_Of_Leave"]),
                            last_day=dt.date.fromisoformat(leave["Estimated_Last_Day_Of_Leave"]),
                            leave_type=LEAVE_TYPE[leave["Leave_Type"]])
                for leave in employment.get("Leaves_Of_Absence") or []],
    )


def worker_to_vendor(worker: Worker) -> dict[str, Any]:
    first, _, last = worker.name.partition(" ")
    return {
        "WID": worker.external_ids["hr"], "Worker_ID": to_business_key("worker", worker.id),
        "Personal_Data": {"Legal_Name": {"First_Name": first, "Last_Name": last}, "Email_Address": worker.email},
        "Employment_Data": {
            "Worker_Status": WORKER_STATUS_VENDOR[worker.status],
            "Job_Profile": _ref(job_profile_of(worker.role), worker.role.replace("_", " ").title()),
            "Supervisory_Organization": _ref(to_business_key("business_unit", worker.business_unit_id)),
            "Cost_Center": _ref(to_business_key("cost_center", worker.cost_center_id)),
            "Company": _ref(to_business_key("legal_entity", worker.legal_entity_id)),
            "Scheduled_Weekly_Hours": int(worker.capacity_hours_per_week)
            if worker.capacity_hours_per_week == worker.capacity_hours_per_week.to_integral_value()
            else float(worker.capacity_hours_per_week),
            "Manager": _ref(to_business_key("worker", worker.manager_id)) if worker.manager_id else None,
            "Termination_Date": worker.termination_date.isoformat() if worker.termination_date else None,
            "Leaves_Of_Absence": [
                {"First_Day_Of_Leave": leave.first_day.isoformat(),
                 "Estimated_Last_Day_Of_Leave": leave.last_day.isoformat(),
                 "Leave_Type": LEAVE_TYPE_VENDOR[leave.leave_type]}
                for leave in worker.leaves
            ],
        },
        "Compensation": {"Cost_Rates": [
            {"Effective_Date": rate.valid_from.isoformat(),
             "End_Date": rate.valid_to.isoformat() if rate.valid_to else None,
             "Amount": f"{rate.hourly_cost:.2f}", "Currency": rate.currency, "Frequency": "Hourly"}
            for rate in worker.cost_rates
        ]},
    }


def role_from_vendor(body: dict[str, Any]) -> Role:
    return Role(id=role_of(body["Job_Profile_ID"]), external_ids={"hr": body["WID"]},
                name=body["Name"])


def cost_center_from_vendor(body: dict[str, Any]) -> CostCenter:
    return CostCenter(id=to_canonical("cost_center", body["Cost_Center_ID"]), external_ids={"hr": body["WID"]},
                      name=body["Name"],
                      business_unit_id=to_canonical("business_unit", body["Organization"]["ID"]))


def business_unit_from_vendor(body: dict[str, Any]) -> BusinessUnit:
    return BusinessUnit(id=to_canonical("business_unit", body["Organization_ID"]), external_ids={"hr": body["WID"]},
                        name=body["Name"])


class SandboxHr:
    def __init__(self, base_url: str, timeout_seconds: float, *, limits: VendorLimits | None = None,
                 credentials: VendorCredentials | None = None) -> None:
        self._vendor = VendorDownstream(VENDOR, base_url, timeout_seconds=timeout_seconds, grant=ClientCredentialsToken,
                                        token_path=TOKEN_PATH, credentials=credentials,
                                        limits=limits)
        self.wids: KeyMap[str] = KeyMap()

    async def aclose(self) -> None:
        await self._vendor.aclose()

    async def _get(self, path: str, params: dict[str, Any] | None = None, what: str = "record") -> Any:
        response = await self._vendor.request("GET", BASE + path, params=params,
                                              allow_statuses=frozenset(range(400, 500)))
        body = msgspec.json.decode(response.content) if response.content else {}
        if response.status_code >= 400:
            errors = body.get("errors") or [] if isinstance(body, dict) else []
            raise vendor_problem(VENDOR, response.status_code, str(body.get("error", "")) if isinstance(
                body, dict) else "", [(e.get("field"), str(e.get("error", ""))) for e in errors], QUERY_FIELDS,
                what=what)
        return body

    async def _page(self, path: str, params: dict[str, Any], cursor: str | None,
                    limit: int) -> tuple[list[dict[str, Any]], str | None]:
        bound = cursors.binding({"path": path, **params})
        state = cursors.decode(cursor, bound)
        offset = cursors.number(state, "offset", 0)
        size = min(cursors.number(state, "size", limit, minimum=1), PAGE_MAX)
        body = await self._get(path, {**params, "offset": offset, "limit": size})
        rows: list[dict[str, Any]] = body["data"]
        more = offset + len(rows) < body["total"]
        return rows, cursors.encode({"offset": offset + len(rows), "size": size}, bound) if more else None

    async def list_workers(self, *, business_unit_id: str | None, status: WorkerStatus | None, role: str | None,
                           cursor: str | None, limit: int) -> Page[Worker]:
        params: dict[str, Any] = {"Worker_Status": WORKER_STATUS_VENDOR[status] if status else None,
                                  "Job_Profile": job_profile_of(role) if role else None}
        if business_unit_id is not None:
            if not is_canonical("business_unit", business_unit_id):
                return Page(items=[])
            params["Supervisory_Organization"] = to_business_key("business_unit", business_unit_id)
        rows, next_cursor = await self._page("/workers", params, cursor, limit)
        for row in rows:
            self.wids.learn(row["Worker_ID"], row["WID"])
        return Page(items=[worker_from_vendor(r) for r in rows], next_cursor=next_cursor)

    async def get_worker(self, worker_id: str) -> Worker:
        number = to_business_key("worker", worker_id)
        wid = self.wids.vendor_id(number)
        if wid is None:
            found = await self._get("/workers", {"Worker_ID": number, "limit": 1}, "worker")
            if not found["data"]:
                raise NotFound(f"no worker {worker_id!r}", slug="unknown-id")
            wid = found["data"][0]["WID"]
            self.wids.learn(number, wid)
        return worker_from_vendor(await self._get(f"/workers/{wid}", what="worker"))

    async def list_roles(self, *, cursor: str | None, limit: int) -> Page[Role]:
        rows, next_cursor = await self._page("/jobProfiles", {}, cursor, limit)
        return Page(items=[role_from_vendor(r) for r in rows], next_cursor=next_cursor)

    async def list_cost_centers(self, *, cursor: str | None, limit: int) -> Page[CostCenter]:
        rows, next_cursor = await self._page("/costCenters", {}, cursor, limit)
        return Page(items=[cost_center_from_vendor(r) for r in rows], next_cursor=next_cursor)

    async def list_business_units(self, *, cursor: str | None, limit: int) -> Page[BusinessUnit]:
        rows, next_cursor = await self._page("/supervisoryOrganizations", {}, cursor, limit)
        return Page(items=[business_unit_from_vendor(r) for r in rows], next_cursor=next_cursor)
