"""The dashboard page: static files served by the experience tier outside the API namespace.

The gateway authenticates every call under /experience/..., and a browser opening a page carries no token, so
the page lives at /dashboards/ on the experience tier. It holds no data and no secret: the person signs in with
authorization code + PKCE (experience_apis/signin; the gateway's built-in issuer in the embedded demo, the
firm's OIDC provider in production) and the page calls the dashboards API through the gateway with their token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Final

from litestar import Litestar, Response, get
from litestar.datastructures import State
from litestar.params import PathParameter

from experience_apis import signin
from experience_apis.settings import ExperienceSettings
from runtime.edge import install_edge
from runtime.errors import handle_exception
from runtime.problems import NotFound

STATIC: Final = Path(__file__).parent / "static"
PREFIX: Final = "/dashboards"
# Served name -> (file under static/, media type). vendor/ is built by vendor.sh from the npm registry.
ASSETS: Final = {
    "dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    "chart.umd.min.js": ("vendor/chart.umd.min.js", "text/javascript; charset=utf-8"),
}


def _read(name: str) -> bytes:
    return (STATIC / name).read_bytes()


# Litestar serves "/dashboards" and "/dashboards/" alike; the page names its files by absolute path.
@get(PREFIX, include_in_schema=False)
async def page(state: State) -> Response[bytes]:
    settings: ExperienceSettings = state.settings
    return signin.page_response(
        state.web_files["index.html"], settings, client_id=settings.dashboard_client_id, scope=settings.dashboard_scope
    )


@get(PREFIX + "/assets/{name:str}", include_in_schema=False)
async def asset(state: State, name: Annotated[str, PathParameter(max_length=64)]) -> Response[bytes]:
    if name == "signin.js":
        return Response(signin.SCRIPT, media_type=signin.SCRIPT_MEDIA_TYPE, headers=signin.PAGE_HEADERS)
    if name not in ASSETS:
        raise NotFound(f"no asset {name!r}")
    return Response(state.web_files[name], media_type=ASSETS[name][1], headers=signin.PAGE_HEADERS)


def create_web_app(settings: ExperienceSettings, service: str) -> Litestar:
    """The page's own small app: no bearer check (a page load carries no token), ids and access log kept.

    It is not part of the tier's API app, so no route of it can be mistaken for an API operation."""
    app = Litestar(
        route_handlers=[page, asset],
        state=State(
            {
                "settings": settings,
                "web_files": {
                    "index.html": _read("index.html"),
                    **{name: _read(path) for name, (path, _media) in ASSETS.items()},
                },
            }
        ),
        exception_handlers={Exception: handle_exception},
        openapi_config=None,
        request_max_body_size=1024,
        debug=False,
    )
    install_edge(app, verifier=None, service=service, json_bodies_only=False)
    return app


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
