"""The authorization endpoint (RFC 6749 section 3.1): ``GET /authorize`` shows the sign-in page for a valid
request, ``POST /authorize`` checks the person's password and sends them back to the page with a code.

Errors follow section 4.1.2.1: once the client and its exact redirect URI are known good, the person is sent back
with ``error=`` (and the request's ``state``); before that (unknown client, a redirect URI not registered,
parameters too large or with control characters) the browser gets a 400 in the OAuth2 error form and is never
redirected anywhere. A wrong password shows the page again (401); nothing says whether the username exists.
Repeated wrong passwords from one address make it wait (429, :mod:`gateway.signin.attempts`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from authlib.oauth2.rfc6749.errors import OAuth2Error
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request, Response, get, post
from litestar.types import ControllerRouterHandler

from gateway.oauth_server import FormRequest, OAuthServer, RegisteredClient

if TYPE_CHECKING:
    from gateway.app import Gateway

HERE = Path(__file__).resolve().parent
_templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["j2", "html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_STYLE = (HERE / "templates" / "sign-in.css").read_text()
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

# The parameters of an authorization request (RFC 6749 section 4.1.1, RFC 7636 section 4.3), carried from the
# GET to the POST in hidden fields. Others are ignored, as section 3.1 asks.
REQUEST_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)
MAX_QUERY_BYTES = 8192
MAX_VALUE_CHARS = {"state": 1024, "redirect_uri": 2048, "scope": 1024, "username": 64, "password": 256}
DEFAULT_MAX_VALUE_CHARS = 256

OAuthError = Callable[[int, str, str], Response[bytes]]


def _bad_values(values: dict[str, list[str]]) -> str | None:
    """Why these parameters are refused before anything else looks at them, or None."""
    for name, found in values.items():
        for value in found:
            if len(value) > MAX_VALUE_CHARS.get(name, DEFAULT_MAX_VALUE_CHARS):
                return f"parameter {name[:64]!r} is too long"
            if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
                return f"parameter {name[:64]!r} holds control characters (CR, LF, ...)"
    return None


def _minutes(seconds: int) -> str:
    minutes = -(-seconds // 60)
    return "a minute" if minutes == 1 else f"{minutes} minutes"


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def _form_target(uri: str) -> str:
    """The CSP ``form-action`` source the sign-in form's redirect goes to: a page's origin, or an app's own URI
    scheme (RFC 8252 section 7.1, ``com.psgateway.time:``), which has no host to name."""
    parts = urlsplit(uri)
    return _origin(uri) if parts.netloc else f"{parts.scheme}:"


def page_origins(gateway: Gateway) -> set[str]:
    """Origins of the registered redirect URIs: the pages that may read the token endpoint's answers (CORS)."""
    return {_origin(uri) for client in gateway.state.config.clients for uri in client.redirect_uris
            if urlsplit(uri).netloc}  # an app's own scheme is no origin a browser sends


def token_cors_headers(gateway: Gateway, origin: str | None) -> dict[str, str]:
    """A page redeems its code from the browser (a CORS-simple form POST): let it read the answer."""
    if origin and origin in page_origins(gateway):
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {"Vary": "Origin"}


def _page(
    status: int, *, client: RegisteredClient | None, values: dict[str, str], error: str | None, form_targets: str
) -> Response[str]:
    config = client.config if client else None
    body = _templates.get_template("sign-in.html.j2").render(
        style=_STYLE,
        client_name=(config.name or config.id) if config else "",
        client_id=config.id if config else "",
        scopes=str(values.get("scope") or " ".join(config.scopes if config else [])).split(),
        hidden={k: values[k] for k in REQUEST_PARAMS if k in values},
        error=error,
        username=values.get("username", ""),
    )
    csp = (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src data:; base-uri 'none'; "
        f"form-action 'self' {form_targets}; frame-ancestors 'none'"
    )
    return Response(
        body,
        status_code=status,
        media_type="text/html",
        headers={
            "Content-Security-Policy": csp,
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


def signin_handlers(gateway: Gateway, oauth: OAuthServer, oauth_error: OAuthError) -> list[ControllerRouterHandler]:
    def error_response(error: OAuth2Error, *, after_post: bool) -> Response[Any]:
        if error.redirect_uri:  # the client and its redirect URI are known good: tell the page
            status, _, headers = error()
            return Response(b"", status_code=303 if after_post else status, headers=dict(headers))
        return oauth_error(400, error.error or "invalid_request", error.get_error_description() or "bad request")

    def parse(raw: bytes) -> dict[str, list[str]] | Response[bytes]:
        if len(raw) > MAX_QUERY_BYTES:
            return oauth_error(400, "invalid_request", f"the request's parameters exceed {MAX_QUERY_BYTES} bytes")
        try:
            values = parse_qs(raw.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            return oauth_error(400, "invalid_request", "the parameters are not UTF-8")
        bad = _bad_values(values)
        return oauth_error(400, "invalid_request", bad) if bad else values

    def consent(raw: bytes, *, after_post: bool) -> tuple[FormRequest, Any] | Response[Any]:
        """The authorization request and authlib's grant for it, once its parameters pass every check."""
        values = parse(raw)
        if isinstance(values, Response):
            return values
        oauth_request = FormRequest({}, {}, values=values)
        try:
            return oauth_request, oauth.get_consent_grant(oauth_request)
        except OAuth2Error as error:
            return error_response(error, after_post=after_post)

    @get("/authorize", include_in_schema=False)
    async def authorize_page(request: Request[Any, Any, Any]) -> Response[Any]:
        """The sign-in page for a valid authorization request (code + PKCE S256)."""
        checked = consent(request.scope.get("query_string", b""), after_post=False)
        if isinstance(checked, Response):
            return checked
        oauth_request, grant = checked
        return _page(
            200,
            client=grant.request.client,
            values=oauth_request.payload.data,
            error=None,
            form_targets=_form_target(grant.redirect_uri),
        )

    @post("/authorize", include_in_schema=False, status_code=303)
    async def authorize(request: Request[Any, Any, Any]) -> Response[Any]:
        """The person's username and password: back to the page with a code, or the page again saying why not."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return oauth_error(400, "invalid_request", "send the sign-in form as application/x-www-form-urlencoded")
        checked = consent(await request.body(), after_post=True)
        if isinstance(checked, Response):
            return checked
        oauth_request, grant = checked
        data = oauth_request.payload.data
        username = data.get("username", "")
        address = oauth.attempts.address_of(request.client.host if request.client else "",
                                            request.headers.get("x-forwarded-for"))
        wait = await oauth.attempts.wait_seconds(username, address)
        if wait:  # the password is not even checked: guessing gains nothing while it waits
            page = _page(
                429,
                client=grant.request.client,
                values=data,
                error=f"Too many failed sign-ins from here. Try again in {_minutes(wait)}.",
                form_targets=_form_target(grant.redirect_uri),
            )
            page.headers["Retry-After"] = str(wait)
            return page
        # scrypt costs tens of milliseconds: off the event loop.
        person = await asyncio.to_thread(oauth.people.authenticate, username, data.get("password", ""))
        if person is None:
            await oauth.attempts.failed(username, address)
            return _page(
                401,
                client=grant.request.client,
                values=data,
                error="Wrong username or password.",
                form_targets=_form_target(grant.redirect_uri),
            )
        await oauth.attempts.succeeded(username, address)
        status, _, headers = oauth.create_authorization_response(oauth_request, grant_user=person, grant=grant)
        await oauth.save_issued_code(oauth_request)
        return Response(b"", status_code=303 if status == 302 else status, headers=dict(headers))

    return [authorize_page, authorize]
