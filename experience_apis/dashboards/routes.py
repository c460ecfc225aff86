"""Dashboards API v1 routes: one panel per call, for delivery and finance leads (scope dashboards:read)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import FromQuery, QueryParameter

from experience_apis.dashboards.models import AgingPanel, BacklogPanel, ExceptionsPanel, MarginsPanel, UtilizationPanel
from experience_apis.dashboards.service import Dashboards


def dashboards(state: State) -> Dashboards:
    return Dashboards(state.downstreams["gateway"])


class DashboardsV1(Controller):
    path = "/experience/dashboards/v1"

    @get("/utilization", operation_id="getUtilizationPanel")
    async def utilization(self, state: State, from_date: FromQuery[dt.date | None] = None,
                          to_date: FromQuery[dt.date | None] = None,
                          business_unit_id: Annotated[str | None, QueryParameter(max_length=64)] = None
                          ) -> UtilizationPanel:
        return await dashboards(state).utilization(from_date, to_date, business_unit_id)

    @get("/invoice-ready-backlog", operation_id="getBacklogPanel")
    async def backlog(self, state: State) -> BacklogPanel:
        return await dashboards(state).backlog()

    @get("/unbilled-time-aging", operation_id="getAgingPanel")
    async def aging(self, state: State, as_of: FromQuery[dt.date | None] = None) -> AgingPanel:
        return await dashboards(state).aging(as_of)

    @get("/exceptions-summary", operation_id="getExceptionsPanel")
    async def exceptions(self, state: State) -> ExceptionsPanel:
        return await dashboards(state).exceptions()

    @get("/project-margins", operation_id="getMarginsPanel")
    async def margins(self, state: State) -> MarginsPanel:
        return await dashboards(state).margins()
