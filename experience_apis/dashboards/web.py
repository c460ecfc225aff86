"""The dashboard page: static files and a demo login, served by the experience tier outside the API namespace.

The gateway authenticates every call under /experience/..., and a browser opening a page carries no token, so
the page lives at /dashboards/ on the experience tier. It holds no data: once signed in, it calls the
dashboards API through the gateway with a bearer token. The demo login (``POST /dashboards/sessions``) asks
the gateway's token endpoint for a token of the ``dashboard-web`` client (client_credentials, scope
``dashboards:read``); this tier mints nothing itself. Production replaces it with the firm's OIDC login.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import httpx
from litestar import Litestar, Response, get, post
from litestar.datastructures import State
from litestar.params import FromQuery

from experience_apis.dashboards.models import DashboardSession
from experience_apis.settings import ExperienceSettings
from runtime.edge import install_edge
from runtime.errors import handle_exception
from runtime.problems import NotFound, ProblemError

STATIC: Final = Path(__file__).parent / "static"
PREFIX: Final = "/dashboards"
# Served name -> (file under static/, media type). vendor/ is built by vendor.sh from the npm registry.
ASSETS: Final = {"dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
                 "dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
                 "chart.umd.min.js": ("vendor/chart.umd.min.js", "text/javascript; charset=utf-8")}
# The page runs only its own script and style, and talks only to itself and the gateway.
_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' {api}; " \
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"


def _read(name: str) -> bytes:
    return (STATIC / name).read_bytes()


def api_base_url(settings: ExperienceSettings) -> str:
    return (settings.public_gateway_url or settings.gateway_url).rstrip("/")


# Litestar serves "/dashboards" and "/dashboards/" alike; the page names its files by absolute path.
@get(PREFIX, include_in_schema=False)
async def page(state: State) -> Response[bytes]:
    csp = _CSP.format(api=api_base_url(state.settings))
    return Response(state.web_files["index.html"], media_type="text/html; charset=utf-8",
                    headers={"Content-Security-Policy": csp, "Cache-Control": "no-cache",
                             "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})


@get(PREFIX + "/assets/{name:str}", include_in_schema=False)
async def asset(state: State, name: FromQuery[str]) -> Response[bytes]:
    if name not in ASSETS:
        raise NotFound(f"no asset {name!r}")
    return Response(state.web_files[name], media_type=ASSETS[name][1],
                    headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


@post(PREFIX + "/sessions", include_in_schema=False, status_code=201)
async def session(state: State) -> DashboardSession:
    settings: ExperienceSettings = state.settings
    if not settings.dashboard_demo_login:
        raise NotFound("the demo login is turned off: sign in with the firm's identity provider")
    try:
        response = await state.web_http.post(
            settings.gateway_url.rstrip("/") + "/oauth2/token",
            data={"grant_type": "client_credentials", "scope": "dashboards:read"},
            auth=(settings.dashboard_client_id, settings.dashboard_client_secret))
    except httpx.HTTPError as exc:
        raise ProblemError(f"the gateway's token endpoint is unavailable ({type(exc).__name__})", status=503,
                           slug="token-unavailable", downstream="gateway") from exc
    if response.status_code != 200:
        raise ProblemError(f"the gateway refused the dashboard client's credentials ({response.status_code})",
                           status=502, slug="token-refused", downstream="gateway")
    body = response.json()
    return DashboardSession(access_token=body["access_token"], token_type=body.get("token_type", "Bearer"),
                            expires_in=int(body.get("expires_in", 0)), api_base_url=api_base_url(settings))


def create_web_app(settings: ExperienceSettings, service: str) -> Litestar:
    """The page's own small app: no bearer check (a page load carries no token), ids and access log kept.

    It is not part of the tier's API app, so no route of it can be mistaken for an API operation; its HTTP
    client is closed by the tier app's shutdown (see :func:`close_web_app`)."""
    app = Litestar(
        route_handlers=[page, asset, session],
        state=State({"settings": settings, "web_http": httpx.AsyncClient(timeout=httpx.Timeout(5.0)),
                     "web_files": {"index.html": _read("index.html"),
                                   **{name: _read(path) for name, (path, _media) in ASSETS.items()}}}),
        exception_handlers={Exception: handle_exception},
        openapi_config=None,
        request_max_body_size=1024,
        debug=False,
    )
    install_edge(app, verifier=None, service=service, json_bodies_only=False)
    return app


async def close_web_app(web_app: Litestar) -> None:
    await web_app.state.web_http.aclose()


class WebFront:
    """Sends /dashboards and /dashboards/... to the page's app, everything else to the tier's API app."""

    def __init__(self, api: Any, web: Litestar) -> None:
        self.api = api
        self.web = web

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == PREFIX or path.startswith(PREFIX + "/"):
            await self.web(scope, receive, send)  # type: ignore[arg-type]
        else:
            await self.api(scope, receive, send)
