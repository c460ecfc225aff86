"""The app factory every tier uses: Litestar + msgspec, problem+json, health, auth, pooled downstreams."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import msgspec
from litestar import Litestar, Response, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import NotAuthorizedException
from litestar.types import ControllerRouterHandler, Middleware

from runtime import metrics
from runtime.downstream import ClientCredentials, Downstream
from runtime.edge import current_principal, install_edge
from runtime.errors import handle_exception
from runtime.guards import ContractScopes
from runtime.heap import freeze_startup_heap
from runtime.problems import Unauthorized
from runtime.settings import TierSettings
from runtime.tokens import Principal, TokenVerifier, TrustedIssuer

ReadinessCheck = Callable[[State], Awaitable[str | None]]
"""Returns None when ready, or a short reason why not."""

Hook = Callable[[State], Awaitable[None]]


class Health(msgspec.Struct):
    status: str
    service: str
    checks: dict[str, str] = {}


def provide_principal() -> Principal:
    """The ``principal`` dependency: the caller the edge verified for this request (runtime/edge.py). No
    parameters: Litestar parses a dependency's parameters on every call (a ``request`` one was ~3% of the
    experience tier's instructions per read)."""
    principal = current_principal()
    if principal is None:
        raise Unauthorized("an authenticated caller is required")
    return principal


def gateway_downstream(settings: TierSettings, name: str = "gateway", scope: str | None = None) -> Downstream:
    """The gateway as this tier's downstream, with this tier's own client identity."""
    credentials = None
    if settings.client_id:
        credentials = ClientCredentials(
            settings.gateway_url.rstrip("/") + "/oauth2/token", settings.client_id, settings.client_secret, scope
        )
    return Downstream(name, settings.gateway_url, timeout_seconds=settings.outbound_timeout_seconds,
                      credentials=credentials, max_connections=settings.outbound_max_connections,
                      max_waiting=settings.outbound_max_waiting or None,
                      max_wait_seconds=settings.outbound_max_wait_seconds)


def create_tier_app(
    *,
    service: str,
    settings: TierSettings,
    route_handlers: Sequence[ControllerRouterHandler],
    downstreams: Callable[[], dict[str, Downstream]] | None = None,
    readiness: Sequence[tuple[str, ReadinessCheck]] = (),
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    verify_tokens: bool = True,
    middleware: Sequence[Middleware] = (),
    dependencies: dict[str, Provide] | None = None,
    max_body_bytes: int = 1_000_000,
    on_scrape: Sequence[metrics.ScrapeHook] = (),
    scopes_from_contracts: bool = True,
) -> Litestar:
    """Build a tier app. Downstreams are created at start-up (one pool each) and closed at shutdown.

    ``/metrics`` serves Prometheus metrics (no token, like the health checks); ``on_scrape`` hooks run before each
    scrape, to refresh gauges the tier computes from its own store.

    ``scopes_from_contracts``: every route must be an operation of a contract under contracts/, and its
    ``security`` scopes guard it (runtime/guards.py); off only for apps that serve no contract (tests, benchmarks)."""
    verifier = None
    if verify_tokens:
        verifier = TokenVerifier(
            [TrustedIssuer(issuer=settings.token_issuer, jwks_uri=settings.effective_jwks_url)],
            audience=settings.token_audience,
        )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.downstreams = downstreams() if downstreams else {}
        for hook in on_startup:
            await hook(app.state)
        freeze_startup_heap()
        try:
            yield
        finally:
            for hook in on_shutdown:
                await hook(app.state)
            for downstream in app.state.downstreams.values():
                await downstream.aclose()
            if verifier is not None:
                await verifier.aclose()

    @get("/healthz", include_in_schema=False, sync_to_thread=False)
    def healthz() -> Health:
        return Health(status="ok", service=service)

    @get("/readyz", include_in_schema=False)
    async def readyz(state: State) -> Response[Health]:
        checks: dict[str, str] = {}
        ready = True
        for name, check in readiness:
            try:
                reason = await check(state)
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
            checks[name] = reason or "ok"
            ready = ready and reason is None
        return Response(Health(status="ready" if ready else "not_ready", service=service, checks=checks),
                        status_code=200 if ready else 503)

    @get("/metrics", include_in_schema=False, media_type=metrics.CONTENT_TYPE_LATEST)
    async def metrics_endpoint(state: State) -> bytes:
        return await metrics.exposition(state, on_scrape)

    scope_guard = ContractScopes()
    app = Litestar(
        route_handlers=[healthz, readyz, metrics_endpoint, *route_handlers],
        lifespan=[lifespan],
        # The scope check is the innermost middleware: after the app's own (which may set the caller), before the
        # handler reads any parameter (runtime/guards.py says why it is not a Litestar guard).
        middleware=[*middleware, scope_guard.middleware] if scopes_from_contracts else list(middleware),
        exception_handlers={Exception: handle_exception, NotAuthorizedException: handle_exception},
        dependencies={"principal": Provide(provide_principal, sync_to_thread=False), **(dependencies or {})},
        openapi_config=None,  # the contract in contracts/ is the OpenAPI document, not a generated one
        request_max_body_size=max_body_bytes,
        debug=False,
    )
    if scopes_from_contracts:
        scope_guard.bind(app)
    install_edge(app, verifier=verifier, service=service, max_json_depth=settings.max_json_depth,
                 max_body_bytes=max_body_bytes)
    return app
