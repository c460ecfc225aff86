"""Settings of the experience tier process."""

from __future__ import annotations

from runtime.settings import TierSettings


class ExperienceSettings(TierSettings, kw_only=True):
    port: int = 8103
    client_id: str = "experience-tier"
    # The dashboard page's demo login: a token of the dashboard-web client from the gateway's token endpoint.
    # Production turns it off and signs people in with the firm's OIDC provider instead.
    dashboard_demo_login: bool = True
    dashboard_client_id: str = "dashboard-web"
    dashboard_client_secret: str = "demo-secret-dashboard-web"  # noqa: S105 - the embedded demo's, as in gateway.yaml
    # Where browsers reach the gateway (the page calls the dashboards API there); empty: gateway_url.
    public_gateway_url: str = ""
