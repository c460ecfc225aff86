"""The dashboards: process/insights figures picked, labelled and ordered for the page. No figure is computed here.

Labels come from the systems of record (business unit names from HR); reason codes are shown as the
process tier names them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any, TypeAlias

import msgspec

from contracts.canonical import Page
from experience_apis.dashboards.models import (
    AgingPanel,
    AgingRow,
    BacklogPanel,
    BacklogRow,
    BusinessUnitMarginRow,
    CountRow,
    CurrencyAmount,
    ExceptionsPanel,
    MarginFigures,
    MarginRow,
    MarginsPanel,
    UtilizationPanel,
    UtilizationRow,
)
from experience_apis.process_calls import HR, INSIGHTS
from runtime.downstream import Downstream

# The reason the invoicing process API gives a draft held while its region's tax service is down.
TAX_HOLD_REASON = "TAX_SERVICE_UNAVAILABLE"
_BUCKET_LABELS = {"0-7": "0 to 7 days", "8-30": "8 to 30 days", "31-60": "31 to 60 days", "60+": "over 60 days"}


class _Unit(msgspec.Struct):
    id: str
    name: str


_UnitPage: TypeAlias = Page[_Unit]


def _row(key: str, label: str, unit: str, workers: int, figures: dict[str, Any]) -> UtilizationRow:
    return UtilizationRow(
        key=key, label=label, business_unit_id=unit, workers=workers,
        capacity_hours=Decimal(figures["capacity_hours"]), planned_hours=Decimal(figures["planned_hours"]),
        actual_hours=Decimal(figures["actual_hours"]), billable_hours=Decimal(figures["billable_hours"]),
        planned_pct=_pct(figures.get("planned_utilization_pct")),
        actual_pct=_pct(figures.get("actual_utilization_pct")),
        billable_pct=_pct(figures.get("billable_utilization_pct")))


def _pct(value: Any) -> Decimal | None:
    return Decimal(value) if value is not None else None


def _amounts(values: list[dict[str, Any]]) -> list[CurrencyAmount]:
    return [CurrencyAmount(currency=v["currency"], amount=Decimal(v["amount"])) for v in values]


class Dashboards:
    def __init__(self, gateway: Downstream) -> None:
        self.gateway = gateway

    async def _figures(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.gateway.request("GET", f"{INSIGHTS}{path}", params=params)
        decoded: dict[str, Any] = msgspec.json.decode(response.content)
        return decoded

    async def _unit_names(self) -> dict[str, str]:
        page = await self.gateway.get_json(f"{HR}/business-units", _UnitPage, params={"limit": 200})
        return {u.id: u.name for u in page.items}

    async def utilization(self, from_date: dt.date | None, to_date: dt.date | None,
                          business_unit_id: str | None) -> UtilizationPanel:
        figures = await self._figures("/utilization", {
            "from_date": from_date.isoformat() if from_date else None,
            "to_date": to_date.isoformat() if to_date else None, "business_unit_id": business_unit_id})
        units = [_row(u["business_unit_id"], u["name"], u["business_unit_id"], u["workers"], u)
                 for u in figures["business_units"]]
        workers = [_row(w["worker_id"], w["name"], w["business_unit_id"], 1, w) for w in figures["workers"]]
        # The page leads with who is furthest below plan: sort by actual minus planned, lowest first.
        workers.sort(key=lambda r: ((r.actual_pct or Decimal(0)) - (r.planned_pct or Decimal(0)), r.key))
        return UtilizationPanel(from_date=dt.date.fromisoformat(figures["from_date"]),
                                to_date=dt.date.fromisoformat(figures["to_date"]),
                                working_days=figures["working_days"], business_units=units, workers=workers,
                                totals=_row("all", "All business units", "", len(workers), figures["totals"]))

    async def backlog(self) -> BacklogPanel:
        figures = await self._figures("/invoice-ready-backlog")
        return BacklogPanel(projects=[msgspec.convert(p, BacklogRow, strict=False) for p in figures["projects"]],
                            totals=_amounts(figures["totals"]))

    async def aging(self, as_of: dt.date | None) -> AgingPanel:
        figures = await self._figures("/unbilled-time-aging", {"as_of": as_of.isoformat() if as_of else None})
        buckets = [AgingRow(bucket=b["bucket"], label=_BUCKET_LABELS.get(b["bucket"], b["bucket"]),
                            entries=b["entries"], hours=Decimal(b["hours"]), held_entries=b["held_entries"],
                            amounts=_amounts(b["amounts"])) for b in figures["buckets"]]
        return AgingPanel(as_of=dt.date.fromisoformat(figures["as_of"]), buckets=buckets,
                          total_entries=figures["total_entries"], total_hours=Decimal(figures["total_hours"]),
                          totals=_amounts(figures["totals"]))

    async def exceptions(self) -> ExceptionsPanel:
        figures, names = await asyncio.gather(self._figures("/exceptions-summary"), self._unit_names())
        tax_holds = sum(c["count"] for c in figures["by_reason"] if c["key"] == TAX_HOLD_REASON)
        return ExceptionsPanel(
            tax_holds=tax_holds,
            open_total=figures["open_total"],
            by_business_unit=[CountRow(key=c["key"], label=names.get(c["key"], c["key"].replace("_", " ")),
                                       count=c["count"]) for c in figures["by_business_unit"]],
            by_reason=[CountRow(key=c["key"], label=c["key"], count=c["count"]) for c in figures["by_reason"]],
            by_age=[CountRow(key=b["bucket"], label=_BUCKET_LABELS.get(b["bucket"], b["bucket"]), count=b["count"])
                    for b in figures["by_age"]])

    async def margins(self) -> MarginsPanel:
        figures = await self._figures("/project-margins")
        rows = [msgspec.convert(p, MarginRow, strict=False) for p in figures["projects"]]
        # Contracts closest to their not-to-exceed first, then the rest by project.
        rows.sort(key=lambda r: (r.nte_burn_pct is None, -(r.nte_burn_pct or Decimal(0)), r.project_id))
        units = [msgspec.convert({**u, "label": u["name"]}, BusinessUnitMarginRow, strict=False)
                 for u in figures.get("business_units", [])]
        totals = figures.get("totals")
        planned_as_of = figures.get("planned_as_of")
        return MarginsPanel(projects=rows, fx_rates_to_usd={k: Decimal(v) for k, v in
                                                            figures["fx_rates_to_usd"].items()},
                            fx_rates_as_of=dt.date.fromisoformat(figures["fx_rates_as_of"]),
                            planned_as_of=dt.date.fromisoformat(planned_as_of) if planned_as_of else None,
                            reporting_currency=figures.get("reporting_currency", "USD"), business_units=units,
                            totals=msgspec.convert(totals, MarginFigures, strict=False) if totals else None)
