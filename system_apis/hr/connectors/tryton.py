"""HR adapter over Tryton: workers are ``company.employee`` with the dated cost prices of ``timesheet_cost``.

What maps natively: the worker's number is the code of the employee's party (E1001), the name and email are
the party's, the legal entity is the employee's company, employment ends at ``end_date`` (the termination
date, the last day worked: terminated after it), the manager is the ``supervisor``, and cost rates are
``company.employee_cost_price`` (each valid from its
date until the next one starts) in the company's currency. Tryton has no job roles, business units, cost
centers, weekly capacity or leave on employees: the psgateway Tryton module keeps them as ``psgw_*`` fields (leave as a
flag without dates, so this adapter lists no leaves of absence),
and roles, cost centers and business units are listed from what the employees carry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from contracts.canonical import (
    BusinessUnit,
    CostCenter,
    CostRate,
    Page,
    Role,
    Worker,
    WorkerStatus,
    plain_decimal,
    role_id,
)
from runtime import cursors
from runtime.problems import NotFound
from system_apis.ids import is_canonical, to_business_key, to_canonical
from system_apis.tryton_rpc import TrytonRecords, nested

T = TypeVar("T")
WORKER_FIELDS = ["party.code", "party.name", "party.email", "company.party.code", "company.currency.code",
                 "end_date", "supervisor.party.code", "psgw_role", "psgw_business_unit", "psgw_cost_center",
                 "psgw_capacity", "psgw_on_leave", "cost_prices"]


def status_of(row: dict[str, Any], today: dt.date) -> WorkerStatus:
    if row.get("end_date") is not None and row["end_date"] < today:
        return "terminated"
    return "leave" if row.get("psgw_on_leave") else "active"


def cost_rates_of(prices: list[dict[str, Any]], currency: str) -> list[CostRate]:
    ordered = sorted(prices, key=lambda p: p["date"])
    return [CostRate(hourly_cost=Decimal(str(p["cost_price"])).quantize(Decimal("0.01")), currency=currency,
                     valid_from=p["date"],
                     valid_to=ordered[i + 1]["date"] - dt.timedelta(days=1) if i + 1 < len(ordered) else None)
            for i, p in enumerate(ordered)]


def worker_from_row(row: dict[str, Any], prices: list[dict[str, Any]], today: dt.date) -> Worker:
    manager = nested(row, "supervisor.party.code")
    return Worker(
        id=to_canonical("worker", nested(row, "party.code") or ""), external_ids={"hr": str(row["id"])},
        name=nested(row, "party.name") or "", email=nested(row, "party.email") or "",
        role=row.get("psgw_role") or "", status=status_of(row, today),
        business_unit_id=to_canonical("business_unit", row.get("psgw_business_unit") or ""),
        cost_center_id=to_canonical("cost_center", row.get("psgw_cost_center") or ""),
        legal_entity_id=to_canonical("legal_entity", nested(row, "company.party.code") or ""),
        capacity_hours_per_week=plain_decimal(Decimal(str(row.get("psgw_capacity") or 40))),
        cost_rates=cost_rates_of(prices, nested(row, "company.currency.code") or ""),
        manager_id=to_canonical("worker", manager) if manager else None,
        termination_date=row.get("end_date"),
    )


def slice_page(items: list[T], cursor: str | None, limit: int, what: str,
               key: Callable[[T], str] = str) -> Page[T]:
    bound = cursors.binding({"list": what})
    state = cursors.decode(cursor, bound)
    offset = cursors.number(state, "offset", 0)
    size = cursors.number(state, "size", limit, minimum=1)
    ordered = sorted(items, key=key)
    rest = offset + size < len(ordered)
    return Page(items=ordered[offset:offset + size],
                next_cursor=cursors.encode({"offset": offset + size, "size": size}, bound) if rest else None)


class TrytonHr(TrytonRecords):
    async def _workers(self, rows: list[dict[str, Any]]) -> list[Worker]:
        price_ids = [p for r in rows for p in r.get("cost_prices") or []]
        prices = await self.rpc.read("company.employee_cost_price", price_ids, ["date", "cost_price", "employee"]) \
            if price_ids else []
        today = dt.datetime.now(dt.UTC).date()
        return [worker_from_row(r, [p for p in prices if p["employee"] == r["id"]], today) for r in rows]

    async def list_workers(self, *, business_unit_id: str | None, status: WorkerStatus | None, role: str | None,
                           cursor: str | None, limit: int) -> Page[Worker]:
        today = dt.datetime.now(dt.UTC).date()
        domain: list[Any] = []
        if business_unit_id is not None:
            if not is_canonical("business_unit", business_unit_id):
                return Page(items=[])
            domain.append(("psgw_business_unit", "=", to_business_key("business_unit", business_unit_id)))
        if role is not None:
            domain.append(("psgw_role", "=", role))
        if status == "terminated":
            domain.append(("end_date", "<", today))
        elif status is not None:
            domain.append(["OR", ("end_date", "=", None), ("end_date", ">=", today)])
            domain.append(("psgw_on_leave", "=", status == "leave"))
        rows, next_cursor = await self.page("company.employee", domain, WORKER_FIELDS, cursor, limit)
        return Page(items=await self._workers(rows), next_cursor=next_cursor)

    async def get_worker(self, worker_id: str) -> Worker:
        row = await self.first("company.employee", [("party.code", "=", to_business_key("worker", worker_id))],
                               WORKER_FIELDS)
        if row is None:
            raise NotFound(f"no worker {worker_id!r}", slug="unknown-id")
        return (await self._workers([row]))[0]

    async def _attributes(self) -> list[dict[str, Any]]:
        return await self.rpc.search_read("company.employee", [], ["psgw_role", "psgw_business_unit",
                                                                   "psgw_cost_center"])

    async def list_roles(self, *, cursor: str | None, limit: int) -> Page[Role]:
        roles = {r["psgw_role"] for r in await self._attributes() if r.get("psgw_role")}
        items = [Role(id=role_id(role), name=role.replace("_", " ").title()) for role in roles]
        return slice_page(items, cursor, limit, "roles", key=lambda r: r.id)

    async def list_cost_centers(self, *, cursor: str | None, limit: int) -> Page[CostCenter]:
        centers = {(r["psgw_cost_center"], r.get("psgw_business_unit") or "") for r in await self._attributes()
                   if r.get("psgw_cost_center")}
        items = [CostCenter(id=to_canonical("cost_center", code), name=code,
                            business_unit_id=to_canonical("business_unit", unit)) for code, unit in centers]
        return slice_page(items, cursor, limit, "cost-centers", key=lambda c: c.id)

    async def list_business_units(self, *, cursor: str | None, limit: int) -> Page[BusinessUnit]:
        units = {r["psgw_business_unit"] for r in await self._attributes() if r.get("psgw_business_unit")}
        items = [BusinessUnit(id=to_canonical("business_unit", code), name=code) for code in units]
        return slice_page(items, cursor, limit, "business-units", key=lambda b: b.id)
