"""The finance-operations page: static files served by the experience tier at /finance-ops/, outside the API.

A page load carries no token, so the page lives beside the API namespace, like the dashboards page. It holds no
data and no secret: the finance person signs in with their own user token (in the embedded demo, one printed by
``psgw token finance-web --subject <worker id>``), and the page calls the finance-operations API through the
gateway with it. There is no demo login here: a client_credentials token has no person behind it, and every
action on this page must be recorded as the person. The firm's single sign-on replaces the pasted token.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Final

from litestar import Litestar, Response, get
from litestar.datastructures import State
from litestar.params import FromQuery

from experience_apis.settings import ExperienceSettings
from runtime.edge import install_edge
from runtime.errors import handle_exception
from runtime.problems import NotFound

STATIC: Final = Path(__file__).parent / "static"
PREFIX: Final = "/finance-ops"
ASSETS: Final = {"finance.js": "text/javascript", "finance.css": "text/css"}
# The page runs only its own script and style, and talks only to itself and the gateway.
_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' {api}; " \
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
_SECURITY_HEADERS: Final = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                            "Cache-Control": "no-cache"}


def api_base_url(settings: ExperienceSettings) -> str:
    return (settings.public_gateway_url or settings.gateway_url).rstrip("/")


@get(PREFIX, include_in_schema=False)
async def page(state: State) -> Response[bytes]:
    api = api_base_url(state.settings)
    # The page learns where the API is from a meta tag: no inline script, so the CSP stays script-src 'self'.
    body = state.finance_files["index.html"].replace(b"{{api_base_url}}", html.escape(api, quote=True).encode())
    return Response(body, media_type="text/html",
                    headers={"Content-Security-Policy": _CSP.format(api=api), **_SECURITY_HEADERS})


@get(PREFIX + "/assets/{name:str}", include_in_schema=False)
async def asset(state: State, name: FromQuery[str]) -> Response[bytes]:
    if name not in ASSETS:
        raise NotFound(f"no asset {name!r}")
    return Response(state.finance_files[name], media_type=ASSETS[name], headers=_SECURITY_HEADERS)


def create_finance_page(settings: ExperienceSettings, service: str) -> Litestar:
    """The page's own small app: no bearer check (a page load carries no token), ids and access log kept."""
    app = Litestar(
        route_handlers=[page, asset],
        state=State({"settings": settings,
                     "finance_files": {name: (STATIC / name).read_bytes() for name in ("index.html", *ASSETS)}}),
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
