"""The system tier app: every system API of this tier, each under /system/<api>/v<N>."""

from __future__ import annotations

from litestar import Litestar
from litestar.datastructures import State

from runtime.app import create_tier_app
from runtime.idempotency import IdempotencyStore
from runtime.storage import database_url
from system_apis.backends import VENDOR_SYSTEMS, connector_for
from system_apis.crm.routes import CrmV1
from system_apis.einvoice.routes import EinvoiceV1
from system_apis.erp.routes import ErpV1
from system_apis.hr.routes import HrV1
from system_apis.psa.routes import PsaV1
from system_apis.settings import SystemSettings
from system_apis.tax.routes import TaxV1
from system_apis.vendor_auth import VendorCredentials
from system_apis.vendor_calls import VendorLimits

SERVICE = "system-apis"
SYSTEMS = ("psa", "erp", "hr", "crm", "tax", "einvoice")


def create_app(settings: SystemSettings) -> Litestar:
    async def start(state: State) -> None:
        for system in SYSTEMS:
            limits = credentials = None
            if system in VENDOR_SYSTEMS:
                limits = VendorLimits(max_concurrency=getattr(settings, f"{system}_max_concurrency"),
                                      max_wait_seconds=settings.vendor_max_wait_seconds,
                                      exhausted_retry_after_seconds=settings.vendor_exhausted_retry_after_seconds)
                credentials = VendorCredentials(
                    client_id=getattr(settings, f"{system}_client_id"),
                    client_secret=getattr(settings, f"{system}_client_secret", ""),
                    username=getattr(settings, f"{system}_username", ""),
                    private_key_file=getattr(settings, f"{system}_private_key_file", ""),
                    certificate_id=getattr(settings, f"{system}_certificate_id", ""),
                    tenant_id=getattr(settings, f"{system}_tenant_id", ""),
                    token_url=getattr(settings, f"{system}_token_url", ""))
            setattr(state, system, connector_for(system, getattr(settings, f"{system}_backend"),
                                                 getattr(settings, f"{system}_url"), settings.vendor_timeout_seconds,
                                                 limits, credentials))
        state.idempotency = IdempotencyStore(
            database_url(settings.database_url, settings.data_dir, "system-idempotency"),
            lease_seconds=max(30.0, settings.vendor_timeout_seconds * 4),
            retention_seconds=settings.idempotency_retention_hours * 3600,
        )
        await state.idempotency.start()

    async def stop(state: State) -> None:
        for system in SYSTEMS:
            connector = getattr(state, system, None)
            if connector is not None:
                await connector.aclose()
        if getattr(state, "idempotency", None) is not None:
            await state.idempotency.aclose()

    return create_tier_app(
        service=SERVICE,
        settings=settings,
        route_handlers=[PsaV1, ErpV1, HrV1, CrmV1, TaxV1, EinvoiceV1],
        on_startup=[start],
        on_shutdown=[stop],
    )
