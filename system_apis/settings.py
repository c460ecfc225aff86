"""Settings of the system tier process."""

from __future__ import annotations

from runtime.settings import TierSettings


class SystemSettings(TierSettings, kw_only=True):
    port: int = 8101
    # Where each system of record is, and which connector speaks to it: "sandbox" (the bundled vendor stand-ins)
    # or "package.module:ClassName" for your own adapter (constructed with (url, timeout_seconds)).
    psa_backend: str = "sandbox"
    psa_url: str = "http://127.0.0.1:8201"
    erp_backend: str = "sandbox"
    erp_url: str = "http://127.0.0.1:8202"
    hr_backend: str = "sandbox"
    hr_url: str = "http://127.0.0.1:8203"
    crm_backend: str = "sandbox"
    crm_url: str = "http://127.0.0.1:8204"
    # The regional tax engines (one sandbox process, a path prefix per region) and the e-invoicing access point.
    tax_backend: str = "sandbox"
    tax_url: str = "http://127.0.0.1:8205"
    einvoice_backend: str = "sandbox"
    einvoice_url: str = "http://127.0.0.1:8206"
    vendor_timeout_seconds: float = 5.0
    # Idempotency records: SQLite under data_dir unless a database URL is given (postgresql://...).
    database_url: str = ""
    idempotency_retention_hours: float = 168.0
