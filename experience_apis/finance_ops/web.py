"""The finance-operations page: static files served by the experience tier at /finance-ops/, outside the API.

It holds no data and no secret: the finance person signs in with authorization code + PKCE (experience_apis/signin;
the gateway's built-in issuer in the embedded demo, the firm's OIDC provider in production), and the page calls the
finance-operations API through the gateway with their own token, so every action is recorded as that person.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from experience_apis.signin.pages import Page

FINANCE_PAGE: Final = Page(
    prefix="/finance-ops",
    static=Path(__file__).parent / "static",
    assets={"finance.js": "text/javascript", "finance.css": "text/css"},
    client_id=lambda settings: settings.finance_client_id,
    scope=lambda settings: settings.finance_scope,
    why_sign_in="everything you do here is recorded under your name.",
)
