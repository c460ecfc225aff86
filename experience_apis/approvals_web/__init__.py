"""The manager's approvals page at /approvals/ on the experience tier: submitted time on the projects I manage
(never my own: separation of duties), approve or reject it with a reason, decide correction requests, and see
what each decision did.

It holds no data and no secret: the manager signs in with authorization code + PKCE (experience_apis/signin) and
the page calls the approvals API through the gateway with their own token, so every decision is recorded as them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from experience_apis.signin.pages import Page

APPROVALS_PAGE: Final = Page(
    prefix="/approvals",
    static=Path(__file__).parent / "static",
    assets={"approvals.js": "text/javascript", "approvals.css": "text/css"},
    client_id=lambda settings: settings.approvals_client_id,
    scope=lambda settings: settings.approvals_scope,
    why_sign_in="every decision here is recorded under your name.",
)
