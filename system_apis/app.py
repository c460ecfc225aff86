"""The system tier app: every system API of this tier, each under /system/<api>/v<N>."""

from __future__ import annotations

from litestar import Litestar
from litestar.datastructures import State

from runtime.app import create_tier_app
from system_apis.psa.connectors.sandbox import SandboxPsa
from system_apis.psa.routes import PsaV1
from system_apis.settings import SystemSettings

SERVICE = "system-apis"


def create_app(settings: SystemSettings) -> Litestar:
    async def start_connectors(state: State) -> None:
        state.psa = SandboxPsa(settings.psa_url, settings.vendor_timeout_seconds)

    async def stop_connectors(state: State) -> None:
        await state.psa.aclose()

    return create_tier_app(
        service=SERVICE,
        settings=settings,
        route_handlers=[PsaV1],
        on_startup=[start_connectors],
        on_shutdown=[stop_connectors],
    )
