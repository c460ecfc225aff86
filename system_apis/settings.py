"""Settings of the system tier process."""

from __future__ import annotations

from typing import Annotated

import msgspec

from runtime.settings import TierSettings


class SystemSettings(TierSettings, kw_only=True):
    port: int = 8101
    # Where each system of record is, and which connector speaks to it: "sandbox" (the bundled vendor stand-ins),
    # "tryton", a vendor's API where one is bundled (erp: "netsuite", NetSuite REST web services; "dynamics365",
    # Dynamics 365 Finance OData; "s4hana", SAP S/4HANA Cloud OData v2; psa: "certinia", Certinia PSA on
    # Salesforce), or
    # "package.module:ClassName" for your own adapter (constructed with (url, timeout_seconds)); system_apis.backends.
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
    # Vendor API limits (system_apis.vendor_calls): calls in flight per vendor, the longest a call waits out a
    # vendor's Retry-After before giving its caller 503, and the Retry-After to give when a vendor's daily budget is
    # spent without saying when it comes back.
    psa_max_concurrency: Annotated[int, msgspec.Meta(ge=1)] = 16
    erp_max_concurrency: Annotated[int, msgspec.Meta(ge=1)] = 16
    hr_max_concurrency: Annotated[int, msgspec.Meta(ge=1)] = 8
    crm_max_concurrency: Annotated[int, msgspec.Meta(ge=1)] = 8
    vendor_max_wait_seconds: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    vendor_exhausted_retry_after_seconds: Annotated[int, msgspec.Meta(ge=1)] = 3600
    # Vendor credentials of the bundled connectors (system_apis.vendor_auth), from the environment only:
    # OAuth 2.0 client credentials for the PSA, ERP and HR (Workday); Salesforce's JWT bearer flow for the CRM
    # (consumer key, integration user, and the file holding the connected app's RS256 private key).
    psa_client_id: str = ""
    psa_client_secret: str = ""
    # psa_backend certinia (Salesforce's JWT bearer flow, like the CRM): the org's integration user and the file
    # holding the connected app's RS256 private key; psa_client_id is the connected app's consumer key.
    psa_username: str = ""
    psa_private_key_file: str = ""
    erp_client_id: str = ""
    erp_client_secret: str = ""
    # erp_backend netsuite (OAuth 2.0 M2M): the certificate id NetSuite gave the mapping, and the file holding the
    # certificate's private key (the client assertion is signed with it; no client secret is used).
    erp_certificate_id: str = ""
    erp_private_key_file: str = ""
    # erp_backend dynamics365 (Microsoft Entra ID client credentials with erp_client_id/erp_client_secret): the
    # directory (tenant) id, and the token endpoint when it is not ``<erp_url>/<tenant>/oauth2/v2.0/token`` (a real
    # tenant: https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token). The scope is ``<erp_url>/.default``.
    erp_tenant_id: str = ""
    erp_token_url: str = ""
    hr_client_id: str = ""
    hr_client_secret: str = ""
    crm_client_id: str = ""
    crm_username: str = ""
    crm_private_key_file: str = ""
    # Idempotency records: SQLite under data_dir unless a database URL is given (postgresql://...).
    database_url: str = ""
    idempotency_retention_hours: float = 168.0

    def __post_init__(self) -> None:
        super().__post_init__()
        from system_apis.backends import BUNDLED, check_backend

        # A misspelt backend stops the tier at start-up naming the setting, before any connector is built.
        for system in BUNDLED:
            check_backend(system, getattr(self, f"{system}_backend"))
