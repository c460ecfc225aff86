"""Settings of the experience tier process."""

from __future__ import annotations

from runtime.settings import TierSettings


class ExperienceSettings(TierSettings, kw_only=True):
    port: int = 8103
    client_id: str = "experience-tier"
