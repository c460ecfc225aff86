"""Settings of the process tier process."""

from __future__ import annotations

from runtime.settings import TierSettings


class ProcessSettings(TierSettings, kw_only=True):
    port: int = 8102
    client_id: str = "process-tier"
