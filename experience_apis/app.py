"""The experience tier app: mobile time entry (v1, v2), approvals inbox, dashboards, finance operations, and the
pages people use them from (time, approvals, dashboards, finance operations)."""

from __future__ import annotations

from litestar import Litestar

from experience_apis.approvals.expenses import ApprovalExpensesV1
from experience_apis.approvals.routes import ApprovalsV1
from experience_apis.approvals_web import APPROVALS_PAGE
from experience_apis.dashboards.routes import DashboardsV1
from experience_apis.dashboards.web import DASHBOARD_PAGE
from experience_apis.finance_ops.routes import FinanceOpsV1
from experience_apis.finance_ops.web import FINANCE_PAGE
from experience_apis.mobile_time.expenses import MobileExpensesV2, MobileExpensesV3
from experience_apis.mobile_time.routes import MobileTimeV1, MobileTimeV2, MobileTimeV3
from experience_apis.settings import ExperienceSettings
from experience_apis.signin.pages import PagesFront, create_pages_app
from experience_apis.time_web import TIME_PAGE
from runtime.app import create_tier_app, gateway_downstream

SERVICE = "experience-apis"
PAGES = (TIME_PAGE, APPROVALS_PAGE, DASHBOARD_PAGE, FINANCE_PAGE)


def create_app(settings: ExperienceSettings) -> Litestar:
    app = create_tier_app(
        service=SERVICE,
        settings=settings,
        route_handlers=[MobileTimeV1, MobileTimeV2, MobileTimeV3, MobileExpensesV2, MobileExpensesV3, ApprovalsV1,
                        ApprovalExpensesV1, DashboardsV1, FinanceOpsV1],
        downstreams=lambda: {"gateway": gateway_downstream(settings)},
    )
    # Outermost: the pages' own app beside the API. (A deprecated version's Deprecation/Sunset headers are the
    # gateway's lifecycle policy, from the contract.)
    pages_app = create_pages_app(settings, SERVICE, PAGES)
    app.asgi_handler = PagesFront(app.asgi_handler, pages_app, PAGES)  # type: ignore[assignment]
    return app
