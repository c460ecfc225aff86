"""The process tier app: workflows and business rules composed from system APIs (through the gateway)."""

from __future__ import annotations

from litestar import Litestar
from litestar.datastructures import State

from process_apis.billing.routes import BillingV1
from process_apis.events.routes import EventsV1, EventsV2
from process_apis.exceptions.routes import ExceptionsV1
from process_apis.expenses.routes import ExpensesV1
from process_apis.insights.routes import InsightsV1
from process_apis.invoicing.routes import InvoicingV1
from process_apis.metrics import refresh_business_metrics
from process_apis.provisioning.routes import ProvisioningV1
from process_apis.reconciliation.routes import ReconciliationV1
from process_apis.revenue.routes import RevenueV1, RevenueV2
from process_apis.services import start_services, stop_services
from process_apis.settings import ProcessSettings
from process_apis.staffing.routes import StaffingV1
from process_apis.timesheets.routes import TimesheetsV1
from runtime.app import create_tier_app, gateway_downstream

SERVICE = "process-apis"


def create_app(settings: ProcessSettings) -> Litestar:
    async def start(state: State) -> None:
        state.services = await start_services(settings, state.downstreams["gateway"])

    async def stop(state: State) -> None:
        if getattr(state, "services", None) is not None:
            await stop_services(state.services)

    async def database_ready(state: State) -> str | None:
        await state.services.db.ping()
        return None

    return create_tier_app(
        service=SERVICE,
        settings=settings,
        route_handlers=[StaffingV1, BillingV1, TimesheetsV1, ExceptionsV1, ProvisioningV1, InvoicingV1,
                        ReconciliationV1, EventsV1, EventsV2, InsightsV1, RevenueV1, RevenueV2, ExpensesV1],
        downstreams=lambda: {"gateway": gateway_downstream(settings)},
        on_startup=[start],
        on_shutdown=[stop],
        readiness=[("database", database_ready)],
        on_scrape=[refresh_business_metrics],
    )
