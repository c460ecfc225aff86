"""Settings of the experience tier process."""

from __future__ import annotations

from runtime.settings import TierSettings


class ExperienceSettings(TierSettings, kw_only=True):
    port: int = 8103
    client_id: str = "experience-tier"
    # The pages sign people in with authorization code + PKCE (experience_apis/signin). Empty endpoints: the
    # gateway's built-in issuer (<public gateway url>/authorize and /oauth2/token); with the firm's OIDC provider,
    # its authorization and token endpoints, the pages' client ids there and the scopes to ask it for.
    sign_in_authorization_url: str = ""
    sign_in_token_url: str = ""
    dashboard_client_id: str = "dashboard-web"
    dashboard_scope: str = "dashboards:read"
    finance_client_id: str = "finance-web"
    finance_scope: str = "finance:read finance:write finance:month-end"
    time_client_id: str = "time-web"
    time_scope: str = "time:read time:write"
    approvals_client_id: str = "approvals-web"
    approvals_scope: str = "approvals:read approvals:write"
    # Where browsers reach the gateway (the page calls the dashboards API there); empty: gateway_url.
    public_gateway_url: str = ""
