"""Insights process API v1 routes (contracts/process/insights/v1.yaml)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import FromQuery, QueryParameter

from process_apis.insights.models import (
    ExceptionsSummary,
    InvoiceReadyBacklog,
    ProjectMargins,
    UnbilledTimeAging,
    Utilization,
)
from process_apis.insights.service import InsightsService
from process_apis.insights.settings import InsightsSettings
from runtime.settings import load_settings

Id = Annotated[str | None, QueryParameter(min_length=1, max_length=64)]


def service_of(state: State) -> InsightsService:
    """One service per process, built on first use from the tier's services and the insights settings."""
    service: InsightsService | None = getattr(state, "insights", None)
    if service is None:
        service = InsightsService(state.services.db, state.services.systems, load_settings(InsightsSettings))
        state.insights = service
    return service


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class InsightsV1(Controller):
    path = "/process/insights/v1"

    @get("/utilization", operation_id="getUtilization")
    async def utilization(self, state: State, from_date: FromQuery[dt.date | None] = None,
                          to_date: FromQuery[dt.date | None] = None, business_unit_id: Id = None,
                          worker_id: Id = None) -> Utilization:
        to_date = to_date or _today()
        from_date = from_date or to_date.replace(day=1)
        return await service_of(state).utilization(from_date=from_date, to_date=to_date,
                                                   business_unit_id=business_unit_id, worker_id=worker_id)

    @get("/invoice-ready-backlog", operation_id="getInvoiceReadyBacklog")
    async def backlog(self, state: State, project_id: Id = None) -> InvoiceReadyBacklog:
        return await service_of(state).invoice_ready_backlog(project_id=project_id)

    @get("/unbilled-time-aging", operation_id="getUnbilledTimeAging")
    async def aging(self, state: State, as_of: FromQuery[dt.date | None] = None) -> UnbilledTimeAging:
        return await service_of(state).unbilled_time_aging(as_of=as_of or _today())

    @get("/exceptions-summary", operation_id="getExceptionsSummary")
    async def exceptions(self, state: State) -> ExceptionsSummary:
        return await service_of(state).exceptions_summary()

    @get("/project-margins", operation_id="getProjectMargins")
    async def margins(self, state: State, project_id: Id = None) -> ProjectMargins:
        return await service_of(state).project_margins(project_id=project_id)
