"""Dashboards API v1 routes: one panel per call, for delivery and finance leads (scope dashboards:read)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from experience_apis.dashboards.models import AgingPanel, BacklogPanel, ExceptionsPanel, MarginsPanel, UtilizationPanel
from experience_apis.dashboards.service import Dashboards
from runtime.app import require_scopes
from runtime.tokens import Principal


def dashboards(state: State, principal: Principal) -> Dashboards:
    require_scopes(principal, "dashboards:read")
    return Dashboards(state.downstreams["gateway"])


class DashboardsV1(Controller):
    path = "/experience/dashboards/v1"

    @get("/utilization", operation_id="getUtilizationPanel")
    async def utilization(self, state: State, principal: NamedDependency[Principal],
                          from_date: FromQuery[dt.date | None] = None,
                          to_date: FromQuery[dt.date | None] = None,
                          business_unit_id: Annotated[str | None, QueryParameter(max_length=64)] = None
                          ) -> UtilizationPanel:
        return await dashboards(state, principal).utilization(from_date, to_date, business_unit_id)

    @get("/invoice-ready-backlog", operation_id="getBacklogPanel")
    async def backlog(self, state: State, principal: NamedDependency[Principal]) -> BacklogPanel:
        return await dashboards(state, principal).backlog()

    @get("/unbilled-time-aging", operation_id="getAgingPanel")
    async def aging(self, state: State, principal: NamedDependency[Principal],
                    as_of: FromQuery[dt.date | None] = None) -> AgingPanel:
        return await dashboards(state, principal).aging(as_of)

    @get("/exceptions-summary", operation_id="getExceptionsPanel")
    async def exceptions(self, state: State, principal: NamedDependency[Principal]) -> ExceptionsPanel:
        return await dashboards(state, principal).exceptions()

    @get("/project-margins", operation_id="getMarginsPanel")
    async def margins(self, state: State, principal: NamedDependency[Principal]) -> MarginsPanel:
        return await dashboards(state, principal).margins()
