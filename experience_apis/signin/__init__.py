"""Sign-in for the experience tier's pages: OAuth 2.0 authorization code with PKCE from the browser.

A page holds no secret. It sends the person to the issuer's authorization endpoint (the gateway's built-in one in
the embedded demo, the firm's OIDC provider in production), gets a code back at its own address, and redeems it
with its PKCE verifier at the token endpoint (``signin.js``). The tier only tells the page where those endpoints
are, which client it is and what to ask for, in meta tags, and locks the page down with one Content-Security-Policy.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from litestar import Response

from experience_apis.settings import ExperienceSettings

SCRIPT: Final = (Path(__file__).parent / "signin.js").read_bytes()
SCRIPT_MEDIA_TYPE: Final = "text/javascript"
# The page runs only its own scripts and style, and talks only to itself, the gateway and the token endpoint.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' {connect}; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def api_base_url(settings: ExperienceSettings) -> str:
    return (settings.public_gateway_url or settings.gateway_url).rstrip("/")


def authorization_endpoint(settings: ExperienceSettings) -> str:
    return settings.sign_in_authorization_url or api_base_url(settings) + "/authorize"


def token_endpoint(settings: ExperienceSettings) -> str:
    return settings.sign_in_token_url or api_base_url(settings) + "/oauth2/token"


def revocation_endpoint(settings: ExperienceSettings) -> str:
    """Where a page revokes its person's token on sign-out: the built-in issuer's; empty with the firm's IdP (its
    token is then only forgotten, and lapses at its expiry)."""
    return "" if settings.sign_in_token_url else api_base_url(settings) + "/oauth2/revoke"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(settings: ExperienceSettings) -> str:
    connect = sorted({_origin(api_base_url(settings)), _origin(token_endpoint(settings))})
    return _CSP.format(connect=" ".join(connect))


def render_page(template: bytes, settings: ExperienceSettings, *, client_id: str, scope: str) -> bytes:
    """The page with its sign-in settings in meta tags: no inline script, so the CSP keeps script-src 'self'."""
    values = {
        "api_base_url": api_base_url(settings),
        "authorization_endpoint": authorization_endpoint(settings),
        "token_endpoint": token_endpoint(settings),
        "revocation_endpoint": revocation_endpoint(settings),
        "client_id": client_id,
        "scope": scope,
    }
    for name, value in values.items():
        template = template.replace(f"{{{{{name}}}}}".encode(), html.escape(value, quote=True).encode())
    return template


def page_response(template: bytes, settings: ExperienceSettings, *, client_id: str, scope: str) -> Response[bytes]:
    """A page of the tier, ready to sign its person in, locked down by the CSP."""
    body = render_page(template, settings, client_id=client_id, scope=scope)
    return Response(
        body,
        media_type="text/html",
        headers={"Content-Security-Policy": content_security_policy(settings), **PAGE_HEADERS},
    )
