"""Small helpers the process scenarios share: reading the systems, waiting for background work to finish."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

PSA = "/system/psa/v1"
ERP = "/system/erp/v1"


def ok(response: httpx.Response, *statuses: int) -> Any:
    assert response.status_code in (statuses or (200,)), f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 90.0, every: float = 0.25) -> T:
    """Poll until ``probe`` returns something truthy; fail naming ``what`` when the deadline passes."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"gave up waiting for {what}; last seen: {last!r}")


def all_items(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = ok(client.get(path, params={**params, "limit": 200, **({"cursor": cursor} if cursor else {})}))
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items


def entries(system: httpx.Client, **filters: Any) -> list[dict[str, Any]]:
    return all_items(system, f"{PSA}/time-entries", **filters)


def manager_of(system: httpx.Client, project_id: str) -> str:
    return str(ok(system.get(f"{PSA}/projects/{project_id}"))["manager_id"])


def erp_postings_of(system: httpx.Client, source_id: str) -> list[dict[str, Any]]:
    return all_items(system, f"{ERP}/postings", source_id=source_id)


def billed_on(system: httpx.Client, contract_id: str) -> Decimal:
    return sum((Decimal(p["amount"]) for p in all_items(system, f"{ERP}/postings", contract_id=contract_id)),
               Decimal(0))


def postings_settled(experience: httpx.Client, entry_ids: list[str]) -> bool:
    """Every named entry's posting is done (posted in the ERP and in the PSA)."""
    for entry_id in entry_ids:
        items = ok(experience.get("/process/billing/v1/postings", params={"time_entry_id": entry_id}))["items"]
        if not items or items[0]["state"] != "done":
            return False
    return True


def log_and_approve(experience: httpx.Client, system: httpx.Client, *, worker_id: str, project_id: str,
                    work_date: dt.date, hours: str) -> dict[str, Any]:
    """A new entry on the project's Delivery task, submitted by the worker and approved by the project's
    manager through the process tier; returns the approval's settlement of it."""
    entry = ok(experience.post("/process/timesheets/v1/time-entries", json={
        "worker_id": worker_id, "project_id": project_id, "task_id": f"tsk_{project_id.removeprefix('prj_')}-t2",
        "work_date": work_date.isoformat(), "hours": hours}), 201)
    ok(experience.post("/process/timesheets/v1/submissions", json={
        "worker_id": worker_id, "week_start": work_date.isoformat(), "time_entry_ids": [entry["id"]]}))
    approval = ok(experience.post("/process/timesheets/v1/approvals", json={
        "time_entry_ids": [entry["id"]], "approver_id": manager_of(system, project_id), "decision": "approve"}), 201)
    return {"time_entry_id": entry["id"], **approval["entries"][0]["settlement"]}


def at_once(connect: Callable[[], httpx.Client], n: int, send: Callable[[httpx.Client], httpx.Response]
            ) -> list[httpx.Response]:
    """``n`` requests sent together, each from its own client (its own connection), so they overlap at the server
    as a phone's retries and a second device's would."""

    def one(_n: int) -> httpx.Response:
        with connect() as client:
            return send(client)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))
