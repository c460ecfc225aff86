"""Sandbox HR: an HCM worker API in a Workday-like dialect.

Dialect: 32-hex ``WID`` reference ids beside the business ``Worker_ID``, Title_Snake_Case fields nested by
topic (``Personal_Data``, ``Employment_Data``, ``Compensation``), references as ``{"ID", "Descriptor"}``,
effective-dated cost rates (``Effective_Date`` / ``End_Date``), statuses "Active" / "On Leave" /
"Terminated", offset pagination (``?offset=0&limit=100`` -> ``{"total", "data"}``), errors as
``{"error", "errors": [{"error", "field"}]}``. Integrations only read; HR itself changes workers through its
business processes (``POST .../workers/<WID>/businessProcesses/Request_Compensation_Change`` with
``Effective_Date`` and ``Amount``: the cost rate from that day on, earlier rates ended the day before;
``.../Change_Worker_Status`` with ``Worker_Status``: leave, return, termination; ``.../Terminate_Employee``
with ``Termination_Date``, the last day worked, kept as ``Employment_Data.Termination_Date``, the status
"Terminated" once the day is past (``.../Rescind_Termination`` takes it back);
``.../Request_Leave_Of_Absence`` with ``First_Day_Of_Leave``, ``Estimated_Last_Day_Of_Leave`` and ``Leave_Type``,
kept in ``Employment_Data.Leaves_Of_Absence``, refused when it overlaps another leave).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal, InvalidOperation
from typing import Any

from litestar import Litestar, Request, get, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery
from litestar.response import Response

from sandbox import firm as demo
from sandbox.firm import Firm
from sandbox.store import DocumentStore
from sandbox.vendor_http import AuthDialect, LimitDialect, VendorError, json_object, vendor_error_response

TENANT = "northwind"
BASE = f"/ccx/api/v1/{TENANT}"
WORKER_STATUSES = {"active": "Active", "leave": "On Leave", "terminated": "Terminated"}
MAX_LIMIT = 100
LEAVE_TYPES = ("Vacation", "Sick", "Parental", "Personal", "Other")
MAX_LEAVE_DAYS = 366
CURRENCY = {code: currency for code, _name, _country, currency in demo.LEGAL_ENTITIES}


def wid(kind: str, key: str) -> str:
    """Workday ids are opaque 32-hex strings; derive them so every run of the sandbox agrees."""
    return hashlib.md5(f"{kind}:{key}".encode(), usedforsecurity=False).hexdigest()


def ref(kind: str, key: str, descriptor: str) -> dict[str, str]:
    return {"ID": key, "WID": wid(kind, key), "Descriptor": descriptor}


def seed(store: DocumentStore, firm: Firm) -> None:
    units = dict(demo.BUSINESS_UNITS)
    roles = {code: name for code, name, _cost in demo.ROLES}
    names = {w.number: w.name for w in firm.workers}
    store.put_many("organization", [
        (wid("org", code), {"WID": wid("org", code), "Organization_ID": code, "Name": name,
                            "Organization_Type": "Supervisory"})
        for code, name in demo.BUSINESS_UNITS
    ])
    store.put_many("jobProfile", [
        (wid("job", code), {"WID": wid("job", code), "Job_Profile_ID": "JP-" + code.upper(), "Name": name,
                            "Job_Family": "Consulting"})
        for code, name, _cost in demo.ROLES
    ])
    centers = sorted({(w.cost_center, w.business_unit) for w in firm.workers})
    store.put_many("costCenter", [
        (wid("cc", code), {"WID": wid("cc", code), "Cost_Center_ID": code,
                           "Name": f"{units[unit]} {code.rsplit('-', 1)[-1]}",
                           "Organization": ref("org", unit, units[unit])})
        for code, unit in centers
    ])
    workers = []
    for worker in firm.workers:
        first, last = worker.name.split(" ", 1)
        workers.append((wid("worker", worker.number), {
            "WID": wid("worker", worker.number),
            "Worker_ID": worker.number,
            "Personal_Data": {"Legal_Name": {"First_Name": first, "Last_Name": last},
                              "Email_Address": worker.email},
            "Employment_Data": {
                "Worker_Status": WORKER_STATUSES[worker.status],
                "Hire_Date": worker.hired.isoformat(),
                "Job_Profile": ref("job", "JP-" + worker.role.upper(), roles[worker.role]),
                "Supervisory_Organization": ref("org", worker.business_unit, units[worker.business_unit]),
                "Cost_Center": ref("cc", worker.cost_center, worker.cost_center),
                "Company": ref("company", worker.legal_entity, worker.legal_entity),
                "Scheduled_Weekly_Hours": worker.capacity,
                "Manager": ref("worker", worker.manager, names[worker.manager]) if worker.manager else None,
            },
            "Compensation": {"Cost_Rates": [
                {"Effective_Date": start.isoformat(), "End_Date": end.isoformat() if end else None,
                 "Amount": f"{rate:.2f}", "Currency": CURRENCY[worker.legal_entity], "Frequency": "Hourly"}
                for start, end, rate in worker.cost_rates
            ]},
        }))
    store.put_many("worker", workers)


def error(status: int, message: str, field: str | None = None) -> VendorError:
    body: dict[str, Any] = {"error": message}
    if field:
        body["errors"] = [{"error": message, "field": field}]
    return VendorError(status, body)


# Workday REST: past the tenant's call rate, 429 with Retry-After in Workday's error envelope.
LIMITS = LimitDialect(too_many=lambda seconds: error(429, f"Too many requests: retry after {seconds} s").body)


# Workday "API client for integrations": OAuth 2.0 client credentials at the tenant's token endpoint.
AUTH = AuthDialect(grant_path=f"/ccx/oauth2/{TENANT}/token", grant="client_credentials",
                   unauthorized=lambda: error(401, "invalid access token").body)


def _page(store: DocumentStore, kind: str, offset: int, limit: int, where: dict[str, Any]) -> dict[str, Any]:
    if offset < 0:
        raise error(400, "offset must be zero or more", "offset")
    if not 1 <= limit <= MAX_LIMIT:
        raise error(400, f"limit must be 1..{MAX_LIMIT}", "limit")
    rows, total = store.query(kind, where={k: v for k, v in where.items() if v is not None}, offset=offset,
                              limit=limit)
    return {"total": total, "data": rows}


def _one(store: DocumentStore, kind: str, key: str) -> dict[str, Any]:
    body = store.get(kind, key)
    if body is None:
        raise error(404, f"no {kind} with WID {key}")
    return body


def _amount(value: Any) -> Decimal | None:
    try:
        amount = Decimal(str(value)) if isinstance(value, str | int) and not isinstance(value, bool) else None
    except InvalidOperation:
        return None
    return amount if amount is not None and amount.is_finite() and 0 < amount < 10**6 else None


def _day(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def change_compensation(store: DocumentStore, worker_wid: str, body: dict[str, Any]) -> dict[str, Any]:
    worker = _one(store, "worker", worker_wid)
    effective, amount = _day(body.get("Effective_Date")), _amount(body.get("Amount"))
    if effective is None:
        raise error(400, "Effective_Date must be a date (YYYY-MM-DD)", "Effective_Date")
    if amount is None:
        raise error(400, "Amount must be a positive decimal string", "Amount")
    rates = [r for r in worker["Compensation"]["Cost_Rates"] if dt.date.fromisoformat(r["Effective_Date"]) < effective]
    currency = worker["Compensation"]["Cost_Rates"][-1]["Currency"]
    for rate in rates:
        if rate["End_Date"] is None or dt.date.fromisoformat(rate["End_Date"]) >= effective:
            rate["End_Date"] = (effective - dt.timedelta(days=1)).isoformat()
    rates.append({"Effective_Date": effective.isoformat(), "End_Date": None, "Amount": f"{amount:.2f}",
                  "Currency": currency, "Frequency": "Hourly"})
    worker["Compensation"]["Cost_Rates"] = rates
    store.put("worker", worker_wid, worker)
    return worker


def change_status(store: DocumentStore, worker_wid: str, body: dict[str, Any]) -> dict[str, Any]:
    worker = _one(store, "worker", worker_wid)
    status = body.get("Worker_Status")
    if status not in WORKER_STATUSES.values():
        raise error(400, f"Worker_Status must be one of {sorted(WORKER_STATUSES.values())}", "Worker_Status")
    worker["Employment_Data"]["Worker_Status"] = status
    store.put("worker", worker_wid, worker)
    return worker


def terminate(store: DocumentStore, worker_wid: str, body: dict[str, Any]) -> dict[str, Any]:
    worker = _one(store, "worker", worker_wid)
    employment = worker["Employment_Data"]
    last_day = _day(body.get("Termination_Date"))
    if last_day is None:
        raise error(400, "Termination_Date must be a date (YYYY-MM-DD)", "Termination_Date")
    if last_day < dt.date.fromisoformat(employment["Hire_Date"]):
        raise error(400, "Termination_Date is before the worker's Hire_Date", "Termination_Date")
    employment["Termination_Date"] = last_day.isoformat()
    if last_day < dt.datetime.now(dt.UTC).date():
        employment["Worker_Status"] = WORKER_STATUSES["terminated"]
    store.put("worker", worker_wid, worker)
    return worker


def rescind_termination(store: DocumentStore, worker_wid: str, _body: dict[str, Any]) -> dict[str, Any]:
    worker = _one(store, "worker", worker_wid)
    employment = worker["Employment_Data"]
    if employment.pop("Termination_Date", None) is not None and employment["Worker_Status"] == "Terminated":
        employment["Worker_Status"] = WORKER_STATUSES["active"]
    store.put("worker", worker_wid, worker)
    return worker


def request_leave(store: DocumentStore, worker_wid: str, body: dict[str, Any]) -> dict[str, Any]:
    worker = _one(store, "worker", worker_wid)
    employment = worker["Employment_Data"]
    first, last = _day(body.get("First_Day_Of_Leave")), _day(body.get("Estimated_Last_Day_Of_Leave"))
    kind = body.get("Leave_Type")
    if first is None:
        raise error(400, "First_Day_Of_Leave must be a date (YYYY-MM-DD)", "First_Day_Of_Leave")
    if last is None or last < first or (last - first).days >= MAX_LEAVE_DAYS:
        raise error(400, f"Estimated_Last_Day_Of_Leave must be a date from First_Day_Of_Leave, at most "
                         f"{MAX_LEAVE_DAYS} days on", "Estimated_Last_Day_Of_Leave")
    if kind not in LEAVE_TYPES:
        raise error(400, f"Leave_Type must be one of {list(LEAVE_TYPES)}", "Leave_Type")
    leave = {"First_Day_Of_Leave": first.isoformat(), "Estimated_Last_Day_Of_Leave": last.isoformat(),
             "Leave_Type": kind}
    leaves: list[dict[str, Any]] = employment.setdefault("Leaves_Of_Absence", [])
    if leave in leaves:  # the same request again: nothing new
        return worker
    for other in leaves:
        if (dt.date.fromisoformat(other["First_Day_Of_Leave"]) <= last
                and first <= dt.date.fromisoformat(other["Estimated_Last_Day_Of_Leave"])):
            raise error(409, "the leave overlaps a leave already recorded", "First_Day_Of_Leave")
    leaves.append(leave)
    leaves.sort(key=lambda item: item["First_Day_Of_Leave"])
    store.put("worker", worker_wid, worker)
    return worker


def _invalid(message: str) -> VendorError:
    return error(400, message)


def create_app(store: DocumentStore) -> Litestar:
    @get(f"{BASE}/workers")
    async def list_workers(offset: FromQuery[int] = 0, limit: FromQuery[int] = 20,
                           Worker_ID: FromQuery[str | None] = None,
                           Supervisory_Organization: FromQuery[str | None] = None,
                           Worker_Status: FromQuery[str | None] = None,
                           Job_Profile: FromQuery[str | None] = None) -> dict[str, Any]:
        where = {"Worker_ID": Worker_ID,
                 "Employment_Data.Supervisory_Organization.ID": Supervisory_Organization,
                 "Employment_Data.Worker_Status": Worker_Status,
                 "Employment_Data.Job_Profile.ID": Job_Profile}
        return await store.call(_page, store, "worker", offset, limit, where)

    @get(f"{BASE}/workers/{{worker_wid:str}}")
    async def get_worker(worker_wid: FromPath[str]) -> dict[str, Any]:
        return await store.call(_one, store, "worker", worker_wid)

    @post(f"{BASE}/workers/{{worker_wid:str}}/businessProcesses/Request_Compensation_Change", status_code=200)
    async def compensation_change(worker_wid: FromPath[str], request: Request[Any, Any, Any]) -> dict[str, Any]:
        return await store.call(change_compensation, store, worker_wid, await json_object(request, _invalid))

    @post(f"{BASE}/workers/{{worker_wid:str}}/businessProcesses/Change_Worker_Status", status_code=200)
    async def status_change(worker_wid: FromPath[str], request: Request[Any, Any, Any]) -> dict[str, Any]:
        return await store.call(change_status, store, worker_wid, await json_object(request, _invalid))

    @post(f"{BASE}/workers/{{worker_wid:str}}/businessProcesses/Terminate_Employee", status_code=200)
    async def terminate_employee(worker_wid: FromPath[str], request: Request[Any, Any, Any]) -> dict[str, Any]:
        return await store.call(terminate, store, worker_wid, await json_object(request, _invalid))

    @post(f"{BASE}/workers/{{worker_wid:str}}/businessProcesses/Rescind_Termination", status_code=200)
    async def rescind(worker_wid: FromPath[str], request: Request[Any, Any, Any]) -> dict[str, Any]:
        return await store.call(rescind_termination, store, worker_wid, await json_object(request, _invalid))

    @post(f"{BASE}/workers/{{worker_wid:str}}/businessProcesses/Request_Leave_Of_Absence", status_code=200)
    async def leave_of_absence(worker_wid: FromPath[str], request: Request[Any, Any, Any]) -> dict[str, Any]:
        return await store.call(request_leave, store, worker_wid, await json_object(request, _invalid))

    @get(f"{BASE}/jobProfiles")
    async def list_job_profiles(offset: FromQuery[int] = 0, limit: FromQuery[int] = 20) -> dict[str, Any]:
        return await store.call(_page, store, "jobProfile", offset, limit, {})

    @get(f"{BASE}/costCenters")
    async def list_cost_centers(offset: FromQuery[int] = 0, limit: FromQuery[int] = 20) -> dict[str, Any]:
        return await store.call(_page, store, "costCenter", offset, limit, {})

    @get(f"{BASE}/supervisoryOrganizations")
    async def list_organizations(offset: FromQuery[int] = 0, limit: FromQuery[int] = 20) -> dict[str, Any]:
        return await store.call(_page, store, "organization", offset, limit, {})

    return Litestar(
        [list_workers, get_worker, compensation_change, status_change, terminate_employee, rescind, leave_of_absence,
         list_job_profiles, list_cost_centers, list_organizations],
        exception_handlers={HTTPException: framework_error, VendorError: vendor_error_response},
        openapi_config=None,
    )


def framework_error(_request: Any, exc: HTTPException) -> Response[Any]:
    return Response({"error": str(exc.detail)}, status_code=exc.status_code)
