"""The experience tier app."""

from __future__ import annotations

from litestar import Litestar

from experience_apis.mobile_time.routes import MobileTimeV1
from experience_apis.settings import ExperienceSettings
from runtime.app import create_tier_app, gateway_downstream

SERVICE = "experience-apis"


def create_app(settings: ExperienceSettings) -> Litestar:
    return create_tier_app(
        service=SERVICE,
        settings=settings,
        route_handlers=[MobileTimeV1],
        downstreams=lambda: {"gateway": gateway_downstream(settings)},
    )
