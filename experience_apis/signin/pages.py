"""The tier's pages beside its API: each at its own prefix, its files under /<prefix>/assets/, no bearer check.

A page load carries no token, so a page cannot live under /experience/..., where the gateway wants one. Each page
is a template that signs its person in (:func:`experience_apis.signin.page_response`) plus its own scripts and
style; every page also serves the shared ``signin.js``, ``pages.js`` and ``pages.css``, so no page keeps a copy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final

from litestar import Litestar, Response, get
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from litestar.params import PathParameter

from experience_apis import signin
from experience_apis.settings import ExperienceSettings
from runtime.edge import install_edge
from runtime.errors import handle_exception
from runtime.problems import NotFound

_HERE: Final = Path(__file__).parent
# What every page's <head> holds, in place of its {{shared_head}}: the sign-in settings and the shared files.
SHARED_HEAD: Final = (_HERE / "head.html").read_bytes()
# The sign-in card, in place of a page's {{sign_in_card}}, saying why the page wants to know who you are.
SIGN_IN_CARD: Final = (_HERE / "sign-in.html").read_bytes()
# Served by every page: sign-in, the shared helpers and the shared look.
SHARED: Final = {
    "signin.js": (signin.SCRIPT, signin.SCRIPT_MEDIA_TYPE),
    "pages.js": ((_HERE / "pages.js").read_bytes(), "text/javascript"),
    "pages.css": ((_HERE / "pages.css").read_bytes(), "text/css"),
}


@dataclass(frozen=True)
class Page:
    """One page: where it is served, its files (``static``/index.html plus ``assets``: path under ``static`` -> media
    type, served by file name) and, from the tier's settings, the client it signs people in as and the scopes it
    asks for."""

    prefix: str
    static: Path
    assets: Mapping[str, str]
    client_id: Callable[[ExperienceSettings], str]
    scope: Callable[[ExperienceSettings], str]
    why_sign_in: str = ""


def _handlers(page: Page) -> list[HTTPRouteHandler]:
    head = SHARED_HEAD.replace(b"{{prefix}}", page.prefix.encode())
    card = SIGN_IN_CARD.replace(b"{{why}}", page.why_sign_in.encode())
    template = (
        (page.static / "index.html")
        .read_bytes()
        .replace(b"  {{shared_head}}\n", head)
        .replace(b"    {{sign_in_card}}\n", card)
    )
    files = {
        **SHARED,
        **{Path(path).name: ((page.static / path).read_bytes(), media) for path, media in page.assets.items()},
    }
    slug = page.prefix.strip("/")

    async def show(state: State) -> Response[bytes]:
        settings: ExperienceSettings = state.settings
        return signin.page_response(template, settings, client_id=page.client_id(settings), scope=page.scope(settings))

    async def asset(name: Annotated[str, PathParameter(max_length=64)]) -> Response[bytes]:
        if name not in files:
            raise NotFound(f"no asset {name!r}")
        body, media_type = files[name]
        return Response(body, media_type=media_type, headers=signin.PAGE_HEADERS)

    # Litestar serves "/time" and "/time/" alike; the page names its files by absolute path.
    return [
        get(page.prefix, include_in_schema=False, name=f"{slug}-page")(show),
        get(page.prefix + "/assets/{name:str}", include_in_schema=False, name=f"{slug}-asset")(asset),
    ]


def create_pages_app(settings: ExperienceSettings, service: str, pages: Sequence[Page]) -> Litestar:
    """The pages' own small app: no bearer check (a page load carries no token), ids and access log kept. It is
    not part of the tier's API app, so no route of it can be mistaken for an API operation."""
    app = Litestar(
        route_handlers=[handler for page in pages for handler in _handlers(page)],
        state=State({"settings": settings}),
        exception_handlers={Exception: handle_exception},
        openapi_config=None,
        request_max_body_size=1024,
        debug=False,
    )
    install_edge(app, verifier=None, service=service, json_bodies_only=False)
    return app


class PagesFront:
    """Sends each page's prefix and everything under it to the pages' app, everything else on to ``inner``."""

    def __init__(self, inner: Any, pages_app: Litestar, pages: Sequence[Page]) -> None:
        self.inner = inner
        self.pages_app = pages_app
        self.prefixes = frozenset(page.prefix for page in pages)
        self._under = tuple(page.prefix + "/" for page in pages)

    def _is_page(self, path: str) -> bool:
        # Asked on every call the tier serves: a set look-up and one startswith over a tuple, no generator.
        return path in self.prefixes or path.startswith(self._under)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self._is_page(scope.get("path", "")):
            await self.pages_app(scope, receive, send)  # type: ignore[arg-type]
        else:
            await self.inner(scope, receive, send)
