"""The catalog's data: contracts on disk joined with what the gateway publishes (gateway.yaml).

Built once per gateway config version (contracts do not change under a running gateway), so a page view is
only template rendering.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from contracts.toolchain.catalog import ApiVersion, api_version_of, contract_files, group_by_api
from contracts.toolchain.loader import ContractDocument, load_contract
from contracts.toolchain.operations import (
    ParameterSite,
    effective_parameters,
    effective_security,
    iter_operations,
    iter_responses,
    request_body_of,
)
from gateway.catalog.samples import Samples, build_samples, parameter_example
from gateway.catalog.schema_rows import SchemaRow, schema_rows
from gateway.config import ClientConfig, GatewayConfig
from policies.authorize import LAYER_REACH, may_write, reachable_layers, requirement_of


class SlaTierView(msgspec.Struct, frozen=True):
    name: str
    requests_per_second: float | None = None
    burst: int | None = None
    daily_quota: int | None = None
    monthly_quota: int | None = None


class ParameterView(msgspec.Struct, frozen=True):
    name: str
    location: str
    required: bool
    type: str
    description: str
    example: str | None = None
    enum: tuple[str, ...] = ()
    limits: tuple[str, ...] = ()


class ResponseView(msgspec.Struct, frozen=True):
    status: str
    description: str
    media_type: str | None
    example: str | None
    schema: list[SchemaRow] = []
    headers: list[str] = []


class CallerView(msgspec.Struct, frozen=True):
    """A client of gateway.yaml that the layer rule and its scopes let call some operations of a version."""

    client_id: str
    name: str
    layer: str
    sla_tier: str
    scopes: list[str]  # the scopes it holds that this version's operations ask for
    operations: list[str]  # the operationIds it may call (all of them when it may call every one)
    user_tokens: bool
    try_it: bool


class OperationView(msgspec.Struct, frozen=True):
    method: str
    template: str
    path: str
    operation_id: str
    summary: str
    description: str
    scopes: list[str]
    parameters: list[ParameterView]
    request_example: str | None
    responses: list[ResponseView]
    request_schema: list[SchemaRow]
    request_media_type: str | None
    request_required: bool
    samples: Samples
    # Scope alternatives (any one set in full); empty when the operation names none.
    requirement: list[list[str]]

    @property
    def is_read(self) -> bool:
        return self.method in ("GET", "HEAD", "OPTIONS")

    @property
    def anchor(self) -> str:
        return self.operation_id or f"{self.method}-{self.template}"


class VersionView(msgspec.Struct, frozen=True):
    major: int
    base_path: str
    title: str
    description: str
    contract_version: str
    lifecycle: str
    sunset: str | None
    owner_tier: str | None
    sla_tiers: list[SlaTierView]
    scopes: list[str]
    published: bool
    operations: list[OperationView]
    contract_file: str
    layer: str
    callers: list[CallerView]
    # The caller layers the layer rule lets call this version's layer at all.
    caller_layers: list[str]


class ApiView(msgspec.Struct, frozen=True):
    api_id: str
    layer: str
    name: str
    title: str
    description: str
    versions: list[VersionView]

    @property
    def latest(self) -> VersionView:
        live = [v for v in self.versions if v.lifecycle != "retired"] or self.versions
        return live[-1]

    def version(self, major: int) -> VersionView | None:
        return next((v for v in self.versions if v.major == major), None)

    def matches(self, query: str) -> bool:
        """Search over ids, titles, descriptions, scopes and operation summaries."""
        words = query.lower().split()
        haystack = " ".join([self.api_id, self.title, self.description] + [
            " ".join([op.summary, op.operation_id, op.template, *op.scopes])
            for version in self.versions for op in version.operations
        ]).lower()
        return all(word in haystack for word in words)


def _example_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _media_example(document: ContractDocument, content: Mapping[str, Any]) -> tuple[str | None, Any, bool]:
    """The first media type of ``content``, its first example and whether it has one."""
    for media_type, media in content.items():
        if not isinstance(media, Mapping):
            continue
        if "example" in media:
            return media_type, media["example"], True
        examples = media.get("examples")
        if isinstance(examples, Mapping) and examples:
            first = next(iter(examples.values()))
            first, _ = document.try_dereference(first, "")
            if isinstance(first, Mapping) and "value" in first:
                return media_type, first["value"], True
        return media_type, None, False
    return None, None, False


def _media_schema(document: ContractDocument, content: Mapping[str, Any], pointer: str) -> list[SchemaRow]:
    for media_type, media in content.items():
        if isinstance(media, Mapping) and "schema" in media:
            return schema_rows(document, media["schema"], f"{pointer}/content/{media_type}/schema")
    return []


def _schema_type(document: ContractDocument, schema: Any) -> str:
    schema, _ = document.try_dereference(schema, "")
    if not isinstance(schema, Mapping):
        return "any"
    kind = schema.get("type", "object" if "properties" in schema else "any")
    if isinstance(kind, list):
        kind = " | ".join(str(k) for k in kind)
    if schema.get("format"):
        return f"{kind} ({schema['format']})"
    return str(kind)


def _parameter_view(document: ContractDocument, parameter: ParameterSite) -> ParameterView:
    rows = schema_rows(document, parameter.parameter.get("schema", {}), parameter.pointer + "/schema")
    row = rows[0] if rows else None
    return ParameterView(
        name=parameter.name, location=parameter.location, required=parameter.required,
        type=_schema_type(document, parameter.parameter.get("schema")),
        description=str(parameter.parameter.get("description", "")), example=parameter_example(document, parameter),
        enum=row.enum if row else (), limits=row.limits if row else (),
    )


def _operations(document: ContractDocument, base_path: str, gateway_url: str) -> list[OperationView]:
    views = []
    for site in iter_operations(document):
        operation = site.operation
        security = effective_security(document, site)
        requirement = requirement_of([r for r in (security[0] if security else []) if isinstance(r, Mapping)])
        scopes = sorted({scope for alternative in requirement or () for scope in alternative})
        parameter_sites = effective_parameters(document, site)
        body = request_body_of(document, site)
        request_example = request_media = None
        request_rows: list[SchemaRow] = []
        has_example = False
        if body is not None and isinstance(content := body[0].get("content"), Mapping):
            request_media, request_example, has_example = _media_example(document, content)
            request_rows = _media_schema(document, content, body[1])
        responses = []
        for response in iter_responses(document, site):
            content = response.response.get("content")
            media_type, example, found = (_media_example(document, content) if isinstance(content, Mapping)
                                          else (None, None, False))
            responses.append(ResponseView(
                status=response.status, description=str(response.response.get("description", "")),
                media_type=media_type, example=_example_text(example) if found else None,
                schema=_media_schema(document, content, response.pointer) if isinstance(content, Mapping) else [],
                headers=list(response.response.get("headers") or {})))
        views.append(OperationView(
            method=site.method.upper(), template=site.path, path=base_path + site.path,
            operation_id=str(operation.get("operationId", "")), summary=str(operation.get("summary", "")),
            description=str(operation.get("description", "")), scopes=scopes,
            parameters=[_parameter_view(document, p) for p in parameter_sites],
            request_example=_example_text(request_example) if has_example else None, responses=responses,
            request_schema=request_rows, request_media_type=request_media,
            request_required=body is not None and body[0].get("required") is True,
            samples=build_samples(gateway_url, site.method.upper(), base_path, site.path, parameter_sites, document,
                                  request_example if has_example else None),
            requirement=[sorted(alternative) for alternative in requirement or ()],
        ))
    return views


def may_call(client: ClientConfig, layer: str, operation: OperationView) -> bool:
    """What the gateway's authorize policy decides for this client and operation (layer rule, then scopes)."""
    if client.status != "active" or layer not in reachable_layers(client.layer, client.allowed_layers):
        return False
    if not operation.is_read and not may_write(client.layer, layer):
        return False
    return not operation.requirement or any(set(needed) <= set(client.scopes) for needed in operation.requirement)


def _callers(config: GatewayConfig, layer: str, operations: list[OperationView]) -> list[CallerView]:
    wanted = {scope for op in operations for scope in op.scopes}
    callers = []
    for client in config.clients:
        allowed = [op.operation_id or op.anchor for op in operations if may_call(client, layer, op)]
        if allowed:
            callers.append(CallerView(
                client_id=client.id, name=client.name, layer=client.layer, sla_tier=client.sla_tier,
                scopes=sorted(wanted & set(client.scopes)), operations=allowed, user_tokens=client.user_tokens,
                try_it=client.try_it))
    return callers


def _version_view(version: ApiVersion, document: ContractDocument, config: GatewayConfig,
                  contracts_dir: Path) -> VersionView:
    operations = _operations(document, version.base_path, config.issuer.issuer)
    tiers = [
        SlaTierView(name, t.requests_per_second, t.burst, t.daily_quota, t.monthly_quota)
        if (t := config.sla_tiers.get(name)) else SlaTierView(name)
        for name in version.sla_tiers
    ]
    published = any(api.base_path == version.base_path and api.lifecycle != "retired" for api in config.apis)
    return VersionView(
        major=version.major, base_path=version.base_path, title=version.title, description=version.description,
        contract_version=version.contract_version, lifecycle=version.lifecycle, sunset=version.sunset,
        owner_tier=version.owner_tier, sla_tiers=tiers,
        scopes=sorted({scope for op in operations for scope in op.scopes}), published=published,
        operations=operations, contract_file=str(Path(version.path).relative_to(contracts_dir)),
        layer=version.layer, callers=_callers(config, version.layer, operations),
        caller_layers=[caller for caller in LAYER_REACH if version.layer in LAYER_REACH[caller]],
    )


class Catalog:
    def __init__(self, apis: list[ApiView], contracts_dir: Path) -> None:
        self.apis = apis
        self.contracts_dir = contracts_dir
        self._by_id = {api.api_id: api for api in apis}

    @classmethod
    def build(cls, contracts_dir: Path, config: GatewayConfig) -> Catalog:
        apis = []
        # Each contract is parsed once (parsing is most of the build's time).
        files = contract_files(contracts_dir)
        documents = {path: load_contract(path) for path, _ in files}
        discovered = [api_version_of(location, documents[path], path) for path, location in files]
        for api_id, versions in group_by_api(discovered).items():
            views = [_version_view(v, documents[Path(v.path)], config, contracts_dir) for v in versions]
            latest = views[-1]
            layer, name = api_id.split("/", 1)
            apis.append(ApiView(api_id=api_id, layer=layer, name=name, title=latest.title,
                                description=latest.description, versions=views))
        return cls(apis, contracts_dir)

    def get(self, api_id: str) -> ApiView | None:
        return self._by_id.get(api_id)

    def search(self, query: str = "", layer: str | None = None) -> list[ApiView]:
        return [api for api in self.apis if (not layer or api.layer == layer) and (not query or api.matches(query))]

    def by_layer(self, apis: list[ApiView]) -> dict[str, list[ApiView]]:
        grouped: dict[str, list[ApiView]] = {"experience": [], "process": [], "system": []}
        for api in apis:
            grouped.setdefault(api.layer, []).append(api)
        return grouped
