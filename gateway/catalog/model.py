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

from contracts.toolchain.catalog import ApiVersion, discover_contracts, group_by_api
from contracts.toolchain.loader import ContractDocument, load_contract
from contracts.toolchain.operations import (
    effective_parameters,
    effective_security,
    iter_operations,
    iter_responses,
    request_body_of,
)
from gateway.config import GatewayConfig


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


class ResponseView(msgspec.Struct, frozen=True):
    status: str
    description: str
    media_type: str | None
    example: str | None


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


def _media_example(document: ContractDocument, content: Mapping[str, Any]) -> tuple[str | None, str | None]:
    for media_type, media in content.items():
        if not isinstance(media, Mapping):
            continue
        if "example" in media:
            return media_type, _example_text(media["example"])
        examples = media.get("examples")
        if isinstance(examples, Mapping) and examples:
            first = next(iter(examples.values()))
            first, _ = document.try_dereference(first, "")
            if isinstance(first, Mapping) and "value" in first:
                return media_type, _example_text(first["value"])
        return media_type, None
    return None, None


def _schema_type(document: ContractDocument, schema: Any) -> str:
    schema, _ = document.try_dereference(schema, "")
    if not isinstance(schema, Mapping):
        return "any"
    kind = schema.get("type", "object" if "properties" in schema else "any")
    if isinstance(kind, list):
        kind = " | ".join(str(k) for k in kind)
    if "enum" in schema:
        return f"{kind}: " + ", ".join(str(v) for v in schema["enum"])
    if schema.get("format"):
        return f"{kind} ({schema['format']})"
    return str(kind)


def _operations(document: ContractDocument, base_path: str) -> list[OperationView]:
    views = []
    for site in iter_operations(document):
        operation = site.operation
        security = effective_security(document, site)
        scopes = sorted({scope for requirement in (security[0] if security else []) if isinstance(requirement, dict)
                         for values in requirement.values() for scope in values})
        parameters = [
            ParameterView(
                name=p.name, location=p.location, required=p.required,
                type=_schema_type(document, p.parameter.get("schema")),
                description=str(p.parameter.get("description", "")),
            )
            for p in effective_parameters(document, site)
        ]
        body = request_body_of(document, site)
        request_example = None
        if body is not None:
            content = body[0].get("content")
            if isinstance(content, Mapping):
                request_example = _media_example(document, content)[1]
        responses = []
        for response in iter_responses(document, site):
            content = response.response.get("content")
            media_type, example = _media_example(document, content) if isinstance(content, Mapping) else (None, None)
            responses.append(ResponseView(status=response.status,
                                          description=str(response.response.get("description", "")),
                                          media_type=media_type, example=example))
        views.append(OperationView(
            method=site.method.upper(), template=site.path, path=base_path + site.path,
            operation_id=str(operation.get("operationId", "")), summary=str(operation.get("summary", "")),
            description=str(operation.get("description", "")), scopes=scopes, parameters=parameters,
            request_example=request_example, responses=responses,
        ))
    return views


def _version_view(version: ApiVersion, config: GatewayConfig, contracts_dir: Path) -> VersionView:
    document = load_contract(Path(version.path))
    operations = _operations(document, version.base_path)
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
    )


class Catalog:
    def __init__(self, apis: list[ApiView], contracts_dir: Path) -> None:
        self.apis = apis
        self.contracts_dir = contracts_dir
        self._by_id = {api.api_id: api for api in apis}

    @classmethod
    def build(cls, contracts_dir: Path, config: GatewayConfig) -> Catalog:
        apis = []
        for api_id, versions in group_by_api(discover_contracts(contracts_dir)).items():
            views = [_version_view(v, config, contracts_dir) for v in versions]
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
