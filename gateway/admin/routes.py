"""The admin API, ``/admin/v1`` (contract: gateway/admin/openapi.yaml). Thin: auth, then AdminService.

Only clients of layer ``admin`` get in: ``admin:read`` to look, ``admin:write`` to change anything.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, Response, delete, get, patch, post, put
from litestar.params import FromQuery, RequestBody
from litestar.types import ControllerRouterHandler

from gateway.admin.service import AdminService, ClientChanges, ClientView, Issued, NewClient
from gateway.config import SlaTierConfig
from gateway.live import Change
from policies.audit.store import CallEntry, CallQuery, ChangeEntry, ChangeQuery
from policies.rate_limit import LimitConfig, RateLimitConfig
from policies.validate import ValidateConfig
from runtime.problems import BadRequest, Forbidden, ProblemError
from runtime.tokens import Principal, TokenError, bearer_token

if TYPE_CHECKING:
    from gateway.app import Gateway

OPENAPI_FILE = Path(__file__).with_name("openapi.yaml")
PREFIX = "/admin/v1"
MAX_PAGE = 500


class Page(msgspec.Struct, kw_only=True):
    items: list[Any]
    next_cursor: str | None = None


class PlanView(msgspec.Struct, kw_only=True):
    in_sync: bool
    changes: list[Change]


class ReloadView(msgspec.Struct, kw_only=True):
    version: int


class ApiBinding(msgspec.Struct, kw_only=True):
    api: str
    version: int
    base_path: str
    upstream: str
    policies: list[str]
    read_scopes: list[str]
    write_scopes: list[str]
    request_validation: bool
    response_validation: str
    operations: list[dict[str, Any]]
    rate_limits: list[LimitConfig]


def admin_handlers(gateway: Gateway) -> list[ControllerRouterHandler]:
    service = AdminService(gateway)

    async def authorize(request: Request[Any, Any, Any], scope: str) -> Principal:
        assert gateway.verifier is not None
        try:
            # The same binding as the API: an external IdP's client that happens to be named like an admin
            # client is not that client unless its registration names that issuer.
            verified = await gateway.verifier.verify(bearer_token(request.headers.get("authorization")))
            principal, client = gateway.state.binder.bind(verified)
        except TokenError as exc:
            raise ProblemError(exc.detail, status=401, slug="invalid-token", reason=exc.reason,
                               headers={"WWW-Authenticate": 'Bearer realm="psgateway-admin"'}) from exc
        if client.layer != "admin":
            raise Forbidden("the admin API is for clients of layer 'admin'", slug="layer-violation",
                            reason="not_admin_client")
        if scope not in principal.scopes:
            raise Forbidden(f"the token lacks scope {scope!r}", slug="insufficient-scope", reason="missing_scope",
                            missing_scopes=[scope])
        return principal

    @get(PREFIX + "/openapi.yaml", media_type="application/yaml")
    async def openapi() -> bytes:
        return OPENAPI_FILE.read_bytes()

    @get(PREFIX + "/clients")
    async def list_clients(request: Request[Any, Any, Any]) -> Page:
        await authorize(request, "admin:read")
        return Page(items=service.clients())

    @get(PREFIX + "/clients/{client_id:str}")
    async def get_client(request: Request[Any, Any, Any], client_id: FromQuery[str]) -> ClientView:
        await authorize(request, "admin:read")
        return service.view(service.client(client_id))

    @post(PREFIX + "/clients", status_code=201)
    async def create_client(request: Request[Any, Any, Any], data: RequestBody[NewClient]) -> Response[dict[str, Any]]:
        actor = await authorize(request, "admin:write")
        view, issued = await service.create_client(actor, data)
        return Response({"client": msgspec.to_builtins(view), "credentials": msgspec.to_builtins(issued)},
                         status_code=201, headers={"Cache-Control": "no-store",
                                                   "Location": f"{PREFIX}/clients/{view.id}"})

    @patch(PREFIX + "/clients/{client_id:str}")
    async def update_client(request: Request[Any, Any, Any], client_id: FromQuery[str],
                            data: RequestBody[ClientChanges]) -> ClientView:
        actor = await authorize(request, "admin:write")
        return await service.update_client(actor, client_id, data)

    @post(PREFIX + "/clients/{client_id:str}/secret", status_code=200)
    async def rotate_secret(request: Request[Any, Any, Any], client_id: FromQuery[str]) -> Response[Issued]:
        actor = await authorize(request, "admin:write")
        return Response(await service.rotate_secret(actor, client_id), headers={"Cache-Control": "no-store"})

    @post(PREFIX + "/clients/{client_id:str}/revoke", status_code=200)
    async def revoke_client(request: Request[Any, Any, Any], client_id: FromQuery[str]) -> ClientView:
        actor = await authorize(request, "admin:write")
        return await service.revoke(actor, client_id)

    @post(PREFIX + "/clients/{client_id:str}/restore", status_code=200)
    async def restore_client(request: Request[Any, Any, Any], client_id: FromQuery[str]) -> ClientView:
        actor = await authorize(request, "admin:write")
        return await service.restore(actor, client_id)

    @post(PREFIX + "/clients/{client_id:str}/api-keys", status_code=201)
    async def create_api_key(request: Request[Any, Any, Any], client_id: FromQuery[str]) -> Response[Issued]:
        actor = await authorize(request, "admin:write")
        return Response(await service.create_api_key(actor, client_id), status_code=201,
                        headers={"Cache-Control": "no-store"})

    @delete(PREFIX + "/clients/{client_id:str}/api-keys/{key_id:str}", status_code=200)
    async def delete_api_key(request: Request[Any, Any, Any], client_id: FromQuery[str],
                             key_id: FromQuery[str]) -> ClientView:
        actor = await authorize(request, "admin:write")
        return await service.delete_api_key(actor, client_id, key_id)

    @get(PREFIX + "/sla-tiers")
    async def list_tiers(request: Request[Any, Any, Any]) -> dict[str, SlaTierConfig]:
        await authorize(request, "admin:read")
        return dict(gateway.state.config.sla_tiers)

    @put(PREFIX + "/sla-tiers/{name:str}")
    async def put_tier(request: Request[Any, Any, Any], name: FromQuery[str],
                       data: RequestBody[SlaTierConfig]) -> SlaTierConfig:
        actor = await authorize(request, "admin:write")
        return await service.put_sla_tier(actor, name, data)

    @get(PREFIX + "/rate-limits")
    async def get_limits(request: Request[Any, Any, Any]) -> list[LimitConfig]:
        await authorize(request, "admin:read")
        return gateway.state.config.policy(RateLimitConfig).limits

    @put(PREFIX + "/rate-limits")
    async def put_limits(request: Request[Any, Any, Any], data: RequestBody[list[LimitConfig]]) -> list[LimitConfig]:
        actor = await authorize(request, "admin:write")
        return await service.put_rate_limits(actor, data)

    @get(PREFIX + "/apis")
    async def list_apis(request: Request[Any, Any, Any]) -> Page:
        await authorize(request, "admin:read")
        config = gateway.state.config
        items = []
        for route in gateway.state.routes.values():
            api = route.target
            api_config = next(a for a in config.apis if a.base_path == api.base_path)
            validate = api_config.validate or config.policy(ValidateConfig)
            operations = [{"method": op.method, "path": op.path, "operation_id": op.operation_id,
                           "security": [dict(alt) for alt in op.security]}
                          for op in (route.contract.operations if route.contract else ())]
            items.append(ApiBinding(
                api=api.api_id, version=api.version, base_path=api.base_path, upstream=api.upstream,
                policies=list(route.policy_names), read_scopes=sorted(api.read_scopes),
                write_scopes=sorted(api.write_scopes), request_validation=validate.requests,
                response_validation=validate.responses, operations=operations,
                rate_limits=[lim for lim in config.policy(RateLimitConfig).limits if lim.api == api.api_id
                             and (lim.version is None or lim.version == api.version)],
            ))
        return Page(items=items)

    @get(PREFIX + "/upstreams")
    async def list_upstreams(request: Request[Any, Any, Any]) -> Page:
        await authorize(request, "admin:read")
        return Page(items=[{"name": name, "url": u.config.url, "timeout_seconds": u.config.timeout_seconds,
                            "breaker": u.breaker.snapshot()} for name, u in gateway.upstreams.items()])

    @get(PREFIX + "/policy/plan")
    async def policy_plan(request: Request[Any, Any, Any]) -> PlanView:
        await authorize(request, "admin:read")
        changes = await service.plan_file()
        return PlanView(in_sync=not changes, changes=changes)

    @post(PREFIX + "/policy/apply", status_code=200)
    async def policy_apply(request: Request[Any, Any, Any]) -> PlanView:
        actor = await authorize(request, "admin:write")
        applied = await service.apply(actor)
        return PlanView(in_sync=not service.plan() or all(c.kept_by_apply for c in service.plan()),
                        changes=applied)

    @get(PREFIX + "/policy/export", media_type="application/yaml")
    async def policy_export(request: Request[Any, Any, Any], include_secrets: FromQuery[bool] = False) -> Response[str]:
        # Hashes only for those who may change credentials anyway.
        await authorize(request, "admin:write" if include_secrets else "admin:read")
        return Response(service.export(with_secrets=include_secrets), media_type="application/yaml",
                        headers={"Cache-Control": "no-store"})

    @post(PREFIX + "/issuers/refresh-keys", status_code=200)
    async def refresh_issuer_keys(request: Request[Any, Any, Any]) -> dict[str, list[str]]:
        actor = await authorize(request, "admin:write")
        return await service.refresh_issuer_keys(actor)

    @post(PREFIX + "/reload", status_code=200)
    async def reload(request: Request[Any, Any, Any]) -> ReloadView:
        actor = await authorize(request, "admin:write")
        return ReloadView(version=await service.reload(actor))

    @post(PREFIX + "/issuer/rotate-key", status_code=200)
    async def rotate_issuer_key(request: Request[Any, Any, Any]) -> dict[str, Any]:
        actor = await authorize(request, "admin:write")
        return await service.rotate_issuer_key(actor)

    @get(PREFIX + "/audit/calls")
    async def audit_calls(request: Request[Any, Any, Any], client_id: FromQuery[str | None] = None,
                          api: FromQuery[str | None] = None,
                          status: FromQuery[int | None] = None, correlation_id: FromQuery[str | None] = None,
                          since: FromQuery[dt.datetime | None] = None, until: FromQuery[dt.datetime | None] = None,
                          cursor: FromQuery[str | None] = None, limit: FromQuery[int] = 100) -> Page:
        await authorize(request, "admin:read")
        await gateway.audit.flush()  # what this instance has queued is visible at once
        query = CallQuery(client_id=client_id, api=api, status=status, correlation_id=correlation_id,
                          since=since, until=until, before_id=_cursor(cursor), limit=_limit(limit))
        entries: list[CallEntry] = await gateway.audit.store.calls(query)
        return Page(items=entries, next_cursor=str(entries[-1].id) if len(entries) == query.limit else None)

    @get(PREFIX + "/audit/changes")
    async def audit_changes(request: Request[Any, Any, Any], target_kind: FromQuery[str | None] = None,
                            target_id: FromQuery[str | None] = None, actor_client: FromQuery[str | None] = None,
                            since: FromQuery[dt.datetime | None] = None, cursor: FromQuery[str | None] = None,
                            limit: FromQuery[int] = 100) -> Page:
        await authorize(request, "admin:read")
        query = ChangeQuery(target_kind=target_kind, target_id=target_id, actor_client=actor_client, since=since,
                            before_id=_cursor(cursor), limit=_limit(limit))
        entries: list[ChangeEntry] = await gateway.audit.store.changes(query)
        return Page(items=entries, next_cursor=str(entries[-1].id) if len(entries) == query.limit else None)

    return [openapi, list_clients, get_client, create_client, update_client, rotate_secret, revoke_client,
            restore_client, refresh_issuer_keys, create_api_key, delete_api_key, list_tiers, put_tier, get_limits,
            put_limits, list_apis, list_upstreams, policy_plan, policy_apply, policy_export, reload,
            rotate_issuer_key, audit_calls, audit_changes]


def _cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit():
        raise BadRequest("cursor is not one this API returned", reason="invalid_cursor")
    return int(cursor)


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit must be between 1 and {MAX_PAGE}", reason="invalid_limit")
    return limit
