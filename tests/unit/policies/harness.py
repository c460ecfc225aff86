"""Driving one policy handler in-process, as the gateway's chain does: built through its ``POLICY`` spec, given a
fake call (:func:`exchange`) and, for the response phase, an answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.exchange import Answer, ApiTarget, ClientIdentity, Exchange
from policies.registry import BuildContext, PolicySpec, Services
from runtime import correlation
from runtime.tokens import Principal


def api_target(api_id: str, version: int, scope: str) -> ApiTarget:
    """An API version as the chain sees it: ``<layer>/<name>``, upstream = its layer, ``<scope>:read|write``."""
    layer = api_id.split("/", 1)[0]
    return ApiTarget(
        api_id=api_id,
        layer=layer,
        version=version,
        base_path=f"/{api_id}/v{version}",  # type: ignore[arg-type]
        upstream=layer,
        read_scopes=frozenset({f"{scope}:read"}),
        write_scopes=frozenset({f"{scope}:write"}),
    )


API = api_target("experience/mobile-time", 2, "time")
SYSTEM_API = api_target("system/psa", 1, "psa")
MOBILE = ClientIdentity(
    id="mobile-app",
    layer="app",
    scopes=frozenset({"time:read", "time:write"}),
    sla_tier="silver",
    allowed_layers=frozenset(),
)


def services(
    *,
    apis: tuple[ApiTarget, ...] = (API,),
    sla_tiers: Mapping[str, Any] | None = None,
    max_body_bytes: int = 1_048_576,
    **extra: Any,
) -> Services:
    return Services(
        clients={MOBILE.id: MOBILE}, apis=apis, max_body_bytes=max_body_bytes, sla_tiers=sla_tiers or {}, extra=extra
    )


def build(
    spec: PolicySpec[Any],
    config: Any = None,
    *,
    api: ApiTarget = API,
    contract: Any = None,
    store: Any = None,
    lent: Services | None = None,
) -> Any:
    """The handler the chain would hold for ``api`` (None when the policy does not apply there)."""
    context = BuildContext(api=api, contract=contract, services=lent or services(), store=store)
    return spec.build(spec.config() if config is None else spec.parse(config), context)


def principal_of(client: ClientIdentity = MOBILE, subject: str | None = None) -> Principal:
    return Principal(
        subject=subject or client.id,
        client_id=client.id,
        scopes=client.scopes,
        issuer="http://issuer.test",
        expires_at=2**40,
        claims={},
    )


def exchange(
    method: str = "GET",
    path: str = "/experience/mobile-time/v2/me/assignments",
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    api: ApiTarget = API,
    client: ClientIdentity | None = None,
    subject: str | None = None,
    client_addr: str = "127.0.0.1",
    query: bytes = b"",
    contract: Any = None,
) -> Exchange:
    """One call; ``client`` set: as authenticate leaves it (with a principal of that client)."""
    chunks = [body]

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": False}

    pairs = [(k.lower().encode(), v.encode("latin-1")) for k, v in (headers or {}).items()]
    if body and "content-length" not in {k.lower() for k in (headers or {})}:
        pairs.append((b"content-length", str(len(body)).encode()))
    found = exchange_operation(contract, method, path)
    call = Exchange(
        method=method,
        path=path,
        raw_query=query,
        headers=pairs,
        client_addr=client_addr,
        trace=correlation.from_headers(None, None),
        api=api,
        receive=receive,
        raw_path=path.encode(),
    )
    if found is not None:
        call.operation, call.path_params = found
        call.route = found[0].path
    if client is not None:
        call.client = client
        call.principal = principal_of(client, subject)
    return call


def exchange_operation(contract: Any, method: str, path: str) -> tuple[Any, dict[str, str]] | None:
    if contract is None:
        return None
    found = contract.match(method, path)
    return None if found is None else (found.operation, found.path_params)


def upstream_answer(status: int = 200, body: bytes = b"{}", headers: list[tuple[bytes, bytes]] | None = None) -> Answer:
    out = headers if headers is not None else [(b"content-type", b"application/json")]
    return Answer(status, out, body, from_upstream=True, upstream_headers=len(out))


def header(pairs: list[tuple[bytes, bytes]], name: str) -> str | None:
    wanted = name.encode()
    return next((v.decode("latin-1") for k, v in pairs if k == wanted), None)
