"""The process tier app."""

from __future__ import annotations

from litestar import Litestar

from process_apis.settings import ProcessSettings
from process_apis.staffing.routes import StaffingV1
from runtime.app import create_tier_app, gateway_downstream

SERVICE = "process-apis"


def create_app(settings: ProcessSettings) -> Litestar:
    return create_tier_app(
        service=SERVICE,
        settings=settings,
        route_handlers=[StaffingV1],
        downstreams=lambda: {"gateway": gateway_downstream(settings)},
    )
