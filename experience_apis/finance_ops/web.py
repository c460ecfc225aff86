"""The finance-operations page: static files served by the experience tier at /finance-ops/, outside the API.

A page load carries no token, so the page lives beside the API namespace, like the dashboards page. It holds no
data and no secret: the finance person signs in with authorization code + PKCE (experience_apis/signin; the
gateway's built-in issuer in the embedded demo, the firm's OIDC provider in production), and the page calls the
finance-operations API through the gateway with their own token, so every action is recorded as that person.
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
PREFIX: Final = "/finance-ops"
ASSETS: Final = {"finance.js": "text/javascript", "finance.css": "text/css", "signin.js": signin.SCRIPT_MEDIA_TYPE}


@get(PREFIX, include_in_schema=False)
async def page(state: State) -> Response[bytes]:
    settings: ExperienceSettings = state.settings
    return signin.page_response(
        state.finance_files["index.html"], settings, client_id=settings.finance_client_id, scope=settings.finance_scope
    )


@get(PREFIX + "/assets/{name:str}", include_in_schema=False)
async def asset(state: State, name: Annotated[str, PathParameter(max_length=64)]) -> Response[bytes]:
    if name not in ASSETS:
        raise NotFound(f"no asset {name!r}")
    return Response(state.finance_files[name], media_type=ASSETS[name], headers=signin.PAGE_HEADERS)


def create_finance_page(settings: ExperienceSettings, service: str) -> Litestar:
    """The page's own small app: no bearer check (a page load carries no token), ids and access log kept."""
    files = {name: (STATIC / name).read_bytes() for name in ("index.html", "finance.js", "finance.css")}
    app = Litestar(
        route_handlers=[page, asset],
        state=State({"settings": settings, "finance_files": {**files, "signin.js": signin.SCRIPT}}),
        exception_handlers={Exception: handle_exception},
        openapi_config=None,
        request_max_body_size=1024,
        debug=False,
    )
    install_edge(app, verifier=None, service=service, json_bodies_only=False)
    return app


class FinancePageFront:
    """Sends /finance-ops and /finance-ops/... to the page's app, everything else on to ``inner``."""

    def __init__(self, inner: Any, page_app: Litestar) -> None:
        self.inner = inner
        self.page_app = page_app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == PREFIX or path.startswith(PREFIX + "/"):
            await self.page_app(scope, receive, send)  # type: ignore[arg-type]
        else:
            await self.inner(scope, receive, send)
