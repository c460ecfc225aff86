"""The experience tier app: mobile time entry (v1, v2), approvals inbox, dashboards and the dashboard page,
finance operations and its page."""

from __future__ import annotations

from litestar import Litestar

from experience_apis.approvals.expenses import ApprovalExpensesV1
from experience_apis.approvals.routes import ApprovalsV1
from experience_apis.dashboards.routes import DashboardsV1
from experience_apis.dashboards.web import WebFront, create_web_app
from experience_apis.finance_ops.routes import FinanceOpsV1
from experience_apis.finance_ops.web import FinancePageFront, create_finance_page
from experience_apis.mobile_time.expenses import MobileExpensesV2
from experience_apis.mobile_time.routes import MobileTimeV1, MobileTimeV2
from experience_apis.settings import ExperienceSettings
from runtime.app import create_tier_app, gateway_downstream

SERVICE = "experience-apis"


def create_app(settings: ExperienceSettings) -> Litestar:
    web = create_web_app(settings, SERVICE)
    finance_page = create_finance_page(settings, SERVICE)

    app = create_tier_app(
        service=SERVICE,
        settings=settings,
        route_handlers=[MobileTimeV1, MobileTimeV2, MobileExpensesV2, ApprovalsV1, ApprovalExpensesV1, DashboardsV1,
                        FinanceOpsV1],
        downstreams=lambda: {"gateway": gateway_downstream(settings)},
    )
    # Outermost: the pages' own apps beside the API. (A deprecated version's Deprecation/Sunset headers are the
    # gateway's lifecycle policy, from the contract.)
    app.asgi_handler = FinancePageFront(WebFront(app.asgi_handler, web), finance_page)  # type: ignore[assignment]
    return app
