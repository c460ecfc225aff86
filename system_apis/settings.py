"""Settings of the system tier process."""

from __future__ import annotations

from typing import Literal

from runtime.settings import TierSettings


class SystemSettings(TierSettings, kw_only=True):
    port: int = 8101
    # Where each system of record is, and which connector speaks to it.
    psa_backend: Literal["sandbox"] = "sandbox"
    psa_url: str = "http://127.0.0.1:8201"
    vendor_timeout_seconds: float = 5.0
