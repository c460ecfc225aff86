"""Catalog routes: HTML pages for people, JSON for tools (and a Backstage export), try-it tokens.

Try-it is off unless ``catalog.try_it.enabled``; it hands out short tokens only of clients marked ``try_it``
(app clients: never a tier's or the admin identity), each with a ``try_it`` claim saying how it was obtained.
``signed_in`` mode: only for a caller presenting a valid user token, and only as that person. ``demo`` mode
(an embedded demo, e.g. ``psgw up``): for anyone, and every catalog page carries a banner saying so.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import yaml
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import MediaType, Request, Response, Router, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, RequestBody
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from contracts import CONTRACTS_DIR
from contracts.toolchain.diff import build_changelog
from contracts.toolchain.loader import load_contract
from gateway.catalog.events import event_types
from gateway.catalog.model import ApiView, Catalog, VersionView, may_call
from gateway.catalog.problems import PROBLEM_TYPES
from gateway.config import ClientConfig
from runtime.heap import freeze_startup_heap
from runtime.problems import Forbidden, NotFound, ProblemError
from runtime.tokens import Principal, TokenError, bearer_token

if TYPE_CHECKING:
    from gateway.app import Gateway

HERE = Path(__file__).resolve().parent
_templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["j2", "html"]),
                         trim_blocks=True, lstrip_blocks=True)


class TryItRequest(msgspec.Struct, forbid_unknown_fields=True):
    client_id: str
    subject: str | None = None


def render(template: str, status_code: int = 200, **context: Any) -> Response[str]:
    # Litestar adds "; charset=utf-8" to text/* media types itself: naming it here too sent it twice.
    return Response(_templates.get_template(template).render(**context), media_type=MediaType.HTML,
                    status_code=status_code)


def _api_json(api: ApiView) -> dict[str, Any]:
    return {
        "api_id": api.api_id, "layer": api.layer, "name": api.name, "title": api.title,
        "description": api.description, "latest_version": api.latest.major,
        "versions": [
            {"major": v.major, "base_path": v.base_path, "contract_version": v.contract_version,
             "lifecycle": v.lifecycle, "sunset": v.sunset, "owner_tier": v.owner_tier, "published": v.published,
             "scopes": v.scopes, "sla_tiers": [msgspec.to_builtins(t) for t in v.sla_tiers],
             "docs_url": f"/catalog/apis/{api.api_id}/v{v.major}",
             "contract_url": f"/catalog/apis/{api.api_id}/v{v.major}/openapi.yaml",
             "operations": [{"method": op.method, "path": op.path, "operation_id": op.operation_id,
                             "summary": op.summary, "scopes": op.scopes} for op in v.operations]}
            for v in api.versions
        ],
    }


def create_catalog_router(gateway: Gateway,
                          contracts_dir: Path = CONTRACTS_DIR) -> tuple[Router, Callable[[], Awaitable[None]]]:
    """The /catalog router, and a start-up hook that builds the catalog in the background."""
    built: dict[int, Catalog] = {}
    building = asyncio.Lock()

    async def catalog() -> Catalog:
        # One catalog per live config, rebuilt only when a reload swaps the config. Building parses every
        # contract (about 2 s of CPU): it runs in a worker thread so proxied calls never wait on it.
        config = gateway.state.config
        key = id(config)
        if key not in built:
            async with building:
                if key not in built:
                    fresh = await asyncio.to_thread(Catalog.build, contracts_dir, config)
                    built.clear()
                    built[key] = fresh
        return built[key]

    warming: set[asyncio.Task[Catalog]] = set()

    async def warm_up() -> None:
        # Not awaited: the gateway serves APIs at once. A failure here shows up again on the first page view.
        task = asyncio.get_running_loop().create_task(catalog())
        warming.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(finished_warming)

    def finished_warming(task: asyncio.Task[Catalog]) -> None:
        warming.discard(task)
        if not task.cancelled() and task.exception() is None:  # retrieved: asyncio does not log it as lost
            freeze_startup_heap()  # the catalog lives as long as its config: keep it out of full GC passes

    async def api_or_404(layer: str, api: str) -> ApiView:
        view = (await catalog()).get(f"{layer}/{api}")
        if view is None:
            raise NotFoundException(detail=f"no API {layer}/{api} in the catalog")
        return view

    def try_it_clients() -> list[ClientConfig]:
        config = gateway.state.config
        if not config.catalog.try_it.enabled:
            return []
        # The layer check repeats the config's own: this door must stay shut even if that one is ever loosened.
        return [c for c in config.clients if c.try_it and c.layer == "app" and c.status == "active"]

    def try_it_callers(version: VersionView) -> tuple[list[ClientConfig], dict[str, list[str]]]:
        """The try-it clients the layer rule and their scopes let call some operation of ``version`` (the first
        is the console's default), and for each operation the ones that may call it."""
        offered = try_it_clients()
        by_operation = {op.anchor: [c.id for c in offered if may_call(c, version.layer, op)]
                        for op in version.operations}
        callers = {client_id for ids in by_operation.values() for client_id in ids}
        return [c for c in offered if c.id in callers], by_operation

    def _html(template: str, status_code: int = 200, **context: Any) -> Response[str]:
        try_it = gateway.state.config.catalog.try_it
        return render(template, status_code, demo_banner=try_it.enabled and try_it.mode == "demo",
                      try_it_mode=try_it.mode, try_it_enabled=try_it.enabled, **context)

    @get("/", include_in_schema=False)
    async def index(q: FromQuery[str] = "", layer: FromQuery[str | None] = None) -> Response[str]:
        current = await catalog()
        found = current.search(q, layer)
        return _html("index.html.j2", layers=current.by_layer(found), query=q, total=len(found))

    @get("/apis")
    async def apis_json(q: FromQuery[str] = "", layer: FromQuery[str | None] = None) -> dict[str, Any]:
        return {"items": [_api_json(api) for api in (await catalog()).search(q, layer)]}

    @get("/apis/{layer:str}/{api:str}")
    async def api_latest(layer: FromPath[str], api: FromPath[str]) -> Redirect:
        view = await api_or_404(layer, api)
        return Redirect(f"/catalog/apis/{view.api_id}/v{view.latest.major}")

    @get("/apis/{layer:str}/{api:str}/{version:str}")
    async def api_version(layer: FromPath[str], api: FromPath[str], version: FromPath[str]) -> Response[str]:
        view = await api_or_404(layer, api)
        if version == "changelog":
            steps = await asyncio.to_thread(changelog_steps, view, contracts_dir)
            return _html("changelog.html.j2", api=view, steps=steps)
        major = int(version[1:]) if version.startswith("v") and version[1:].isdigit() else -1
        selected = view.version(major)
        if selected is None:
            raise NotFoundException(detail=f"{view.api_id} has no version {version}")
        successor = next((v for v in view.versions if v.major > major and v.lifecycle == "active"), None)
        clients, callers = try_it_callers(selected)
        return _html("version.html.j2", api=view, version=selected, successor=successor,
                     try_it_clients=clients, try_it_callers=callers)

    async def contract_text(layer: str, api: str, version: str) -> str:
        view = await api_or_404(layer, api)
        selected = view.version(int(version[1:])) if version[1:].isdigit() else None
        if selected is None:
            raise NotFoundException(detail=f"no contract for {layer}/{api}/{version}")
        return (contracts_dir / selected.contract_file).read_text()

    @get("/apis/{layer:str}/{api:str}/{version:str}/openapi.yaml")
    async def contract_yaml(layer: FromPath[str], api: FromPath[str], version: FromPath[str]) -> Response[str]:
        return Response(await contract_text(layer, api, version), media_type="application/yaml")

    @get("/apis/{layer:str}/{api:str}/{version:str}/openapi.json")
    async def contract_json(layer: FromPath[str], api: FromPath[str], version: FromPath[str]) -> Response[str]:
        document = yaml.safe_load(await contract_text(layer, api, version))
        return Response(json.dumps(document, indent=2, default=str), media_type="application/json")

    @get("/backstage.json")
    async def backstage() -> dict[str, Any]:
        """Backstage API entities (kind: API), one per published version, for a software catalog to import."""
        entities = []
        for api in (await catalog()).apis:
            for v in api.versions:
                entities.append({
                    "apiVersion": "backstage.io/v1alpha1", "kind": "API",
                    "metadata": {
                        "name": f"{api.api_id.replace('/', '-')}-v{v.major}", "title": f"{v.title} v{v.major}",
                        "description": v.description.strip(),
                        "tags": [api.layer, v.lifecycle], "annotations": {"psgateway/base-path": v.base_path},
                    },
                    "spec": {"type": "openapi", "lifecycle": {"active": "production"}.get(v.lifecycle, v.lifecycle),
                             "owner": f"{v.owner_tier or api.layer}-tier", "system": "psgateway",
                             "definition": (contracts_dir / v.contract_file).read_text()},
                })
        return {"items": entities}

    @get("/problems")
    async def problems() -> Response[str]:
        return _html("problems.html.j2", problems=PROBLEM_TYPES, selected=None)

    @get("/problems/{slug:str}")
    async def problem(slug: FromPath[str]) -> Response[str]:
        if slug not in PROBLEM_TYPES:
            raise NotFoundException(detail=f"no problem type {slug!r}")
        return _html("problems.html.j2", problems=PROBLEM_TYPES, selected=slug)

    asyncapi_file = contracts_dir / "process" / "events" / "asyncapi.yaml"

    @get("/events")
    async def events_page() -> Response[str]:
        return _html("events.html.j2", events=await asyncio.to_thread(event_types, asyncapi_file))

    @get("/events/asyncapi.yaml")
    async def events_asyncapi() -> Response[str]:
        return Response(asyncapi_file.read_text(), media_type="application/yaml")

    @post("/try-it/token", status_code=200)
    async def try_it_token(request: Request[Any, Any, Any], data: RequestBody[TryItRequest]) -> Response[dict[str,
                                                                                                         Any]]:
        settings = gateway.state.config.catalog.try_it
        if not settings.enabled:
            raise NotFound("try-it is turned off on this gateway", reason="try_it_disabled")
        client = next((c for c in try_it_clients() if c.id == data.client_id), None)
        if client is None:
            raise Forbidden(f"client {data.client_id!r} is not offered for try-it on this gateway",
                            slug="forbidden", reason="not_offered")
        scopes: list[str] | None = None
        if settings.mode == "demo":
            subject = data.subject or None
        else:
            person = await signed_in_person(request)
            subject = person.subject
            if data.subject and data.subject != subject:
                raise Forbidden("a signed-in user gets try-it tokens for themselves only", slug="forbidden",
                                reason="other_subject")
            # Never more than the sign-in token itself was granted: a consultant signed in to the time page
            # gets no approvals scope by asking try-it for a client that holds one.
            scopes = [scope for scope in client.scopes if scope in person.scopes]
            if not scopes:
                raise Forbidden(f"your sign-in token holds none of client {client.id!r}'s scopes", slug="forbidden",
                                reason="no_common_scope")
        if subject and not client.user_tokens:
            raise ProblemError(f"client {client.id!r} cannot act for a person", status=400,
                               reason="no_user_tokens")
        token, ttl = gateway.issuer.mint(client, scopes, subject=subject, ttl_seconds=settings.ttl_seconds,
                                         extra_claims={"try_it": settings.mode})
        return Response({"access_token": token, "token_type": "Bearer", "expires_in": ttl},
                        headers={"Cache-Control": "no-store"})

    async def signed_in_person(request: Request[Any, Any, Any]) -> Principal:
        """The person behind the bearer token of this request (a user token of any trusted issuer), with the
        scopes that token is granted."""
        assert gateway.verifier is not None
        try:
            verified = await gateway.verifier.verify(bearer_token(request.headers.get("authorization")))
            principal, _ = gateway.state.binder.bind(verified)
        except TokenError as exc:
            raise ProblemError(f"sign in to use try-it: {exc.detail}", status=401, slug="invalid-token",
                               reason=exc.reason, headers={"WWW-Authenticate": 'Bearer realm="psgateway"'}) from exc
        if principal.subject == principal.client_id:
            raise Forbidden("try-it needs a person's token, not a client's", slug="forbidden", reason="not_a_person")
        return principal

    static = create_static_files_router(path="/static", directories=[HERE / "static"], name="catalog-static",
                                        include_in_schema=False)
    handlers: list[ControllerRouterHandler] = [
        index, apis_json, api_latest, api_version, contract_yaml, contract_json, backstage, problems, problem,
        try_it_token, static, events_page, events_asyncapi,
    ]
    return Router(path="/catalog", route_handlers=handlers, before_request=refuse_encoded_slash), warm_up


async def refuse_encoded_slash(request: Request[Any, Any, Any]) -> None:
    """``experience%2Fmobile-time`` is one segment to the caller; decoded, it would name another page."""
    if b"%2f" in request.scope.get("raw_path", b"").lower():
        raise ProblemError(f"nothing is published at {request.url.path}: a path segment holds an encoded '/'",
                           status=404, slug="no-such-resource", reason="encoded_slash")


def changelog_steps(api: ApiView, contracts_dir: Path) -> list[dict[str, Any]]:
    """The diff tool's changelog between consecutive major versions (the same one `psgw contracts diff` prints)."""
    steps = []
    for old, new in itertools.pairwise(api.versions):
        old_file, new_file = contracts_dir / old.contract_file, contracts_dir / new.contract_file
        changelog = _changelog(old_file, old_file.stat().st_mtime_ns, new_file, new_file.stat().st_mtime_ns)
        steps.append({"old": old.major, "new": new.major, "changelog": changelog})
    return steps


@functools.lru_cache(maxsize=64)
def _changelog(old_file: Path, old_mtime: int, new_file: Path, new_mtime: int) -> Any:
    """One step's changelog, computed once per pair of file versions (a diff takes seconds; an API with three
    versions took two of them on every page view). The modification times key it, so an edited contract shows."""
    return build_changelog(load_contract(old_file), load_contract(new_file))
