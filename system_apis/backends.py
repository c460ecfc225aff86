"""Which adapter speaks to each system of record, chosen by settings (``<system>_backend``).

A backend is a bundled name ("sandbox": the bundled sandbox vendor in its own dialect; "tryton" for a Tryton
server, with ``<system>_url`` reading ``http://<login>:<password>@<host>:<port>/<database>``; a vendor's API:
erp "netsuite", NetSuite REST web services, ``python -m sandbox erp --dialect netsuite`` being its sandbox; erp
"dynamics365", Dynamics 365 Finance OData v4, ``--dialect dynamics365``; erp "s4hana", SAP S/4HANA Cloud OData v2,
``--dialect s4hana``; psa "certinia", Certinia PSA on Salesforce,
``python -m sandbox psa --dialect certinia``) or
``package.module:ClassName`` for your own adapter;
an adapter is constructed as ``Adapter(url, timeout_seconds)`` and must satisfy the system's port
(``<api>/connectors``).
"""

from __future__ import annotations

import importlib
from typing import Any

from runtime.settings import SettingsError

# The systems of record whose sandbox connectors authenticate and keep within vendor limits.
VENDOR_SYSTEMS = ("psa", "erp", "hr", "crm")
BUNDLED: dict[str, dict[str, str]] = {
    "psa": {"sandbox": "system_apis.psa.connectors.sandbox:SandboxPsa",
            "certinia": "system_apis.psa.connectors.certinia:CertiniaPsa",
            "tryton": "system_apis.psa.connectors.tryton:TrytonPsa"},
    "erp": {"sandbox": "system_apis.erp.connectors.sandbox:SandboxErp",
            "netsuite": "system_apis.erp.connectors.netsuite:NetSuiteErp",
            "dynamics365": "system_apis.erp.connectors.dynamics365:Dynamics365Erp",
            "s4hana": "system_apis.erp.connectors.s4hana:S4HanaErp",
            "tryton": "system_apis.erp.connectors.tryton:TrytonErp"},
    "hr": {"sandbox": "system_apis.hr.connectors.sandbox:SandboxHr",
           "tryton": "system_apis.hr.connectors.tryton:TrytonHr"},
    "crm": {"sandbox": "system_apis.crm.connectors.sandbox:SandboxCrm",
            "tryton": "system_apis.crm.connectors.tryton:TrytonCrm"},
    "tax": {"sandbox": "system_apis.tax.connectors.sandbox:SandboxTax"},
    "einvoice": {"sandbox": "system_apis.einvoice.connectors.sandbox:SandboxAccessPoint"},
}


# Bundled backends that are no vendor API (their connectors take neither vendor limits nor credentials).
NOT_VENDORS = ("tryton",)


def check_backend(system: str, backend: str) -> None:
    """Refuse a backend that is neither bundled for this system nor ``package.module:ClassName``."""
    module_name, _, class_name = BUNDLED[system].get(backend, backend).partition(":")
    if not module_name or not class_name:
        raise SettingsError(f"{system}_backend {backend!r} is neither one of {sorted(BUNDLED[system])} "
                            "nor 'package.module:ClassName'")


def connector_for(system: str, backend: str, url: str, timeout_seconds: float, limits: Any = None,
                  credentials: Any = None) -> Any:
    """The adapter; the bundled connectors to the systems of record (``VENDOR_SYSTEMS``) also take the vendor's
    ``limits`` (system_apis.vendor_calls) and ``credentials`` (system_apis.vendor_auth)."""
    check_backend(system, backend)
    module_name, _, class_name = BUNDLED[system].get(backend, backend).partition(":")
    try:
        adapter = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise SettingsError(f"{system}_backend {backend!r} cannot be loaded: {exc}") from exc
    if backend in BUNDLED[system] and backend not in NOT_VENDORS and system in VENDOR_SYSTEMS:
        return adapter(url, timeout_seconds, limits=limits, credentials=credentials)
    return adapter(url, timeout_seconds)
