"""The dashboard page: static files served by the experience tier at /dashboards/, outside the API namespace.

It holds no data and no secret: the person signs in with authorization code + PKCE (experience_apis/signin; the
gateway's built-in issuer in the embedded demo, the firm's OIDC provider in production) and the page calls the
dashboards API through the gateway with their token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from experience_apis.signin.pages import Page

DASHBOARD_PAGE: Final = Page(
    prefix="/dashboards",
    static=Path(__file__).parent / "static",
    # vendor/ is built by vendor.sh from the npm registry.
    assets={
        "dashboard.js": "text/javascript",
        "dashboard.css": "text/css",
        "vendor/chart.umd.min.js": "text/javascript",
    },
    client_id=lambda settings: settings.dashboard_client_id,
    scope=lambda settings: settings.dashboard_scope,
)
