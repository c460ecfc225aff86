"""The gateway's own endpoints: OAuth2 (authorization, token, introspection, revocation), JWKS, OIDC discovery,
health, metrics, the admin API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from litestar import Litestar, Request, Response, get, post
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.admin.routes import admin_handlers
from gateway.catalog.routes import create_catalog_router
from gateway.oauth_server import FormRequest, OAuthServer
from gateway.signin.routes import signin_handlers, token_cors_headers
from runtime.edge import install_edge
from runtime.errors import handle_exception
from runtime.metrics import latest as latest_metrics
from runtime.problems import PROBLEM_CONTENT_TYPE, make_problem

if TYPE_CHECKING:
    from gateway.app import Gateway

# The contract of the endpoints below (the admin API and the catalog have their own).
ISSUER_CONTRACT = Path(__file__).with_name("oauth_openapi.yaml")


def oauth_error(status: int, error: str, description: str) -> Response[bytes]:
    """RFC 6749 section 5.2 errors, as problem+json carrying the OAuth2 ``error`` members too."""
    problem = make_problem(status, description, slug=f"oauth2-{error.replace('_', '-')}", error=error,
                           error_description=description)
    headers = {"Cache-Control": "no-store"}
    if error == "invalid_client":
        headers["WWW-Authenticate"] = 'Basic realm="psgateway"'
    return Response(problem.to_json(), status_code=status, media_type=PROBLEM_CONTENT_TYPE, headers=headers)


async def _form(request: Request[Any, Any, Any]) -> dict[str, str] | Response[bytes]:
    """The request's x-www-form-urlencoded body (RFC 6749 section 3.2), or the OAuth2 error saying why not."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return oauth_error(400, "invalid_request", "send the request as application/x-www-form-urlencoded")
    try:
        parsed = parse_qs((await request.body()).decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        return oauth_error(400, "invalid_request", "the form is not UTF-8")
    repeated = sorted(k for k, v in parsed.items() if len(v) > 1)
    if repeated:  # RFC 6749 section 3.1: parameters MUST NOT be included more than once
        return oauth_error(400, "invalid_request", f"sent more than once: {', '.join(repeated)}")
    return {k: v[0] for k, v in parsed.items()}


def create_control_app(gateway: Gateway) -> Litestar:
    oauth = OAuthServer(gateway)

    async def run_oauth(request: Request[Any, Any, Any], endpoint: str | None) -> tuple[Response[Any], FormRequest]:
        form = await _form(request)
        if isinstance(form, Response):
            return form, FormRequest({}, {})
        oauth_request = FormRequest(form, request.headers)
        # authlib is synchronous and a secret check (scrypt) costs tens of milliseconds: off the event loop.
        try:
            if endpoint is None:
                status, body, _ = await oauth.token_response(oauth_request)
            else:
                status, body, _ = await asyncio.to_thread(oauth.create_endpoint_response, endpoint, oauth_request)
        except UnicodeDecodeError:  # a Basic header whose credentials are not UTF-8
            return oauth_error(401, "invalid_client", "client authentication failed"), oauth_request
        if status >= 400:
            error = str(body.get("error", "invalid_request"))
            # invalid_client is always 401 here, whichever way the client tried to authenticate.
            return oauth_error(401 if error == "invalid_client" else status, error,
                               str(body.get("error_description") or error.replace("_", " "))), oauth_request
        return Response(body, status_code=status, headers={"Cache-Control": "no-store", "Pragma": "no-cache"}), \
            oauth_request

    @post("/oauth2/token", status_code=200)
    async def token(request: Request[Any, Any, Any]) -> Response[Any]:
        """RFC 6749 client_credentials and authorization code + PKCE, on authlib's authorization server."""
        response, _ = await run_oauth(request, None)
        response.headers.update(token_cors_headers(gateway, request.headers.get("origin")))
        return response

    @post("/oauth2/introspect", status_code=200)
    async def introspect(request: Request[Any, Any, Any]) -> Response[Any]:
        """RFC 7662: is this token of the built-in issuer active, and for whom (a client's own, or any for admins)."""
        response, _ = await run_oauth(request, "introspection")
        return response

    @post("/oauth2/revoke", status_code=200)
    async def revoke(request: Request[Any, Any, Any]) -> Response[Any]:
        """RFC 7009: a client revokes one of its access tokens; refused everywhere from then on."""
        response, oauth_request = await run_oauth(request, "revocation")
        revoked = oauth_request.revoked
        if revoked is not None and revoked.jti is not None:
            await gateway.revoke_access_token(revoked.jti, int(revoked.claims.get("exp", 0)),
                                              str(revoked.claims.get("client_id", "")))
        return response

    @get("/oauth2/openapi.yaml", media_type="application/yaml")
    async def issuer_contract() -> bytes:
        return ISSUER_CONTRACT.read_bytes()

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
        for name, store in gateway.required_stores.items():
            checks[f"{name}_store"] = await store.ping() or "ok"
        ready = all(v == "ok" for v in checks.values())
        return Response({"status": "ready" if ready else "not_ready", "service": "gateway", "checks": checks},
                        status_code=200 if ready else 503)

    catalog_router, warm_catalog = (create_catalog_router(gateway) if gateway.state.config.catalog.enabled
                                    else (None, None))
    app = Litestar(
        route_handlers=[token, introspect, revoke, issuer_contract, jwks, discovery, healthz, readyz, metrics,
                        *admin_handlers(gateway),
                        *signin_handlers(gateway, oauth, oauth_error), *([catalog_router] if catalog_router else [])],
        exception_handlers={Exception: handle_exception},
        openapi_config=None,
        on_startup=[gateway.start, *([warm_catalog] if warm_catalog else [])],
        on_shutdown=[gateway.stop, oauth.attempts.aclose],
        request_max_body_size=65_536,
    )
    # Same edge as the tiers (ids, access log), minus bearer checks and JSON-only bodies (OAuth2 uses forms).
    install_edge(app, verifier=None, service="gateway", json_bodies_only=False)
    return app
