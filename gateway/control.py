"""The gateway's own endpoints: OAuth2 token, JWKS, OIDC discovery, health, metrics, the admin API."""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote_plus

from litestar import Litestar, Request, Response, get, post
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.admin.routes import admin_handlers
from gateway.catalog.routes import create_catalog_router
from gateway.issuer import secret_matches
from runtime.edge import install_edge
from runtime.errors import handle_exception
from runtime.metrics import latest as latest_metrics
from runtime.problems import PROBLEM_CONTENT_TYPE, make_problem

if TYPE_CHECKING:
    from gateway.app import Gateway


def oauth_error(status: int, error: str, description: str) -> Response[bytes]:
    """RFC 6749 section 5.2 errors, as problem+json carrying the OAuth2 ``error`` members too."""
    problem = make_problem(status, description, slug=f"oauth2-{error.replace('_', '-')}", error=error,
                           error_description=description)
    headers = {"Cache-Control": "no-store"}
    if error == "invalid_client":
        headers["WWW-Authenticate"] = 'Basic realm="psgateway"'
    return Response(problem.to_json(), status_code=status, media_type=PROBLEM_CONTENT_TYPE, headers=headers)


def _client_credentials(request: Request[Any, Any, Any], form: dict[str, str]) -> tuple[str, str] | None:
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            return None
        return unquote_plus(client_id), unquote_plus(secret)
    if "client_id" in form and "client_secret" in form:
        return form["client_id"], form["client_secret"]
    return None


def create_control_app(gateway: Gateway) -> Litestar:
    @post("/oauth2/token", status_code=200)
    async def token(request: Request[Any, Any, Any]) -> Response[Any]:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return oauth_error(400, "invalid_request", "send the token request as application/x-www-form-urlencoded")
        raw = await request.body()
        try:
            parsed = parse_qs(raw.decode(), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            return oauth_error(400, "invalid_request", "the form is not UTF-8")
        form = {k: v[0] for k, v in parsed.items()}
        credentials = _client_credentials(request, form)
        if credentials is None:
            return oauth_error(401, "invalid_client", "client authentication is required")
        state = gateway.state
        client = state.clients.get(credentials[0])
        identity = state.identities.get(credentials[0])
        # scrypt costs tens of milliseconds of CPU: off the event loop, so proxied calls never wait on it.
        if client is None or identity is None or client.status != "active" or not await asyncio.to_thread(
                secret_matches, credentials[1], client.secret_hash):
            return oauth_error(401, "invalid_client", "unknown client or wrong secret")
        if gateway.issuer.issuer not in identity.issuers:
            return oauth_error(401, "invalid_client", "this client is registered with another issuer")
        if form.get("grant_type") != "client_credentials":
            return oauth_error(400, "unsupported_grant_type", "only client_credentials is supported")
        requested = form.get("scope", "").split()
        if requested:
            not_granted = sorted(set(requested) - set(client.scopes))
            if not_granted:
                return oauth_error(400, "invalid_scope", f"scope {not_granted[0]!r} is not granted to this client")
        access_token, ttl = gateway.issuer.mint(client, requested or None)
        return Response(
            {"access_token": access_token, "token_type": "Bearer", "expires_in": ttl,
             "scope": " ".join(requested or client.scopes)},
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    @get("/.well-known/jwks.json")
    async def jwks() -> Response[dict[str, Any]]:
        gateway.issuer.refresh()  # a rotation by another instance sharing the key files shows at once
        return Response(gateway.issuer.jwks(), headers={"Cache-Control": "public, max-age=300"})

    @get("/metrics", media_type=CONTENT_TYPE_LATEST)
    async def metrics() -> bytes:
        gateway.telemetry.drain()  # calls queued since the last tick count in this scrape
        return latest_metrics()

    @get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        return gateway.issuer.discovery()

    @get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": "gateway"}

    @get("/readyz")
    async def readyz() -> Response[dict[str, Any]]:
        checks = await gateway.check_upstreams()
        ready = all(v == "ok" for v in checks.values())
        return Response({"status": "ready" if ready else "not_ready", "service": "gateway", "checks": checks},
                        status_code=200 if ready else 503)

    catalog_router, warm_catalog = (create_catalog_router(gateway) if gateway.state.config.catalog.enabled
                                    else (None, None))
    app = Litestar(
        route_handlers=[token, jwks, discovery, healthz, readyz, metrics, *admin_handlers(gateway),
                        *([catalog_router] if catalog_router else [])],
        exception_handlers={Exception: handle_exception},
        openapi_config=None,
        on_startup=[gateway.start, *([warm_catalog] if warm_catalog else [])],
        on_shutdown=[gateway.stop],
        request_max_body_size=65_536,
    )
    # Same edge as the tiers (ids, access log), minus bearer checks and JSON-only bodies (OAuth2 uses forms).
    install_edge(app, verifier=None, service="gateway", json_bodies_only=False)
    return app
