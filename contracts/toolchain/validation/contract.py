"""A contract compiled for the hot path: a router plus, per operation, precompiled request and response checks.

Compile once when the gateway (or a test) loads the contract; every call then costs a dictionary lookup
or a few regular-expression matches to route, and one schema-engine call per request part that carries
something to check. A ``GET`` without query string or body makes no engine call at all.

Unknown query parameters are reported (code ``unknown_parameter``): the contract is the promise, and a
misspelt ``?limt=5`` silently ignored is a bug the client never hears about.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from contracts.toolchain.loader import ContractDocument, load_contract
from contracts.toolchain.operations import (
    OperationSite,
    as_list,
    as_mapping,
    effective_parameters,
    effective_security,
    iter_operations,
    iter_responses,
    request_body_of,
)
from contracts.toolchain.references import check_references
from contracts.toolchain.schemas import SchemaEngine, default_engine
from contracts.toolchain.validation.bodies import BodyValidator, compile_body
from contracts.toolchain.validation.errors import ContractCompileError
from contracts.toolchain.validation.issues import ValidationIssue
from contracts.toolchain.validation.parameters import QueryInput, compile_parameter_group
from contracts.toolchain.validation.router import Router

SecurityAlternatives = tuple[Mapping[str, tuple[str, ...]], ...]


class CompiledOperation:
    """One operation of a compiled contract: what the gateway checks a call and its response against."""

    __slots__ = (
        "_body",
        "_headers",
        "_path_params",
        "_query",
        "_response_default",
        "_response_ranges",
        "_responses",
        "cache_ttl_seconds",
        "full_path",
        "method",
        "operation_id",
        "path",
        "security",
    )

    def __init__(self, document: ContractDocument, site: OperationSite, base_path: str, engine: SchemaEngine):
        self.method = site.method.upper()
        self.path = site.path
        self.full_path = base_path + site.path
        operation_id = site.operation.get("operationId")
        self.operation_id: str | None = operation_id if isinstance(operation_id, str) else None
        self.security = _security_of(document, site)
        self.cache_ttl_seconds = _cache_ttl_of(site)
        parameters = effective_parameters(document, site)
        self._path_params = compile_parameter_group(document, "path", parameters, engine, site.pointer)
        self._query = compile_parameter_group(document, "query", parameters, engine, site.pointer)
        self._headers = compile_parameter_group(document, "header", parameters, engine, site.pointer)
        body, body_pointer = request_body_of(document, site) or ({}, site.pointer)
        self._body = compile_body(
            document, body.get("content"), body_pointer, engine, required=body.get("required") is True, part="request"
        )
        self._responses: dict[int, BodyValidator] = {}
        self._response_ranges: dict[str, BodyValidator] = {}
        self._response_default: BodyValidator | None = None
        for response in iter_responses(document, site):
            content = response.response.get("content")
            validator = compile_body(
                document, content, response.pointer, engine, required=bool(as_mapping(content)), part="response"
            )
            status = response.status.upper()
            if status == "DEFAULT":
                self._response_default = validator
            elif status.isdigit():
                self._responses[int(status)] = validator
            else:
                self._response_ranges[status[:1]] = validator  # "4XX"

    def __repr__(self) -> str:
        return f"CompiledOperation({self.method} {self.full_path}, operation_id={self.operation_id!r})"

    def validate_request(
        self,
        path_params: Mapping[str, str] | None = None,
        query: QueryInput = (),
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> list[ValidationIssue]:
        """Every way the request breaks the contract; empty when it conforms.

        ``path_params`` are the decoded values ``CompiledContract.match`` returned. ``query`` is the raw query
        string, ``(name, value)`` pairs, or a mapping of name -> value(s). ``headers`` only needs to hold
        the headers the operation declares (lookup is case-insensitive).
        """
        issues: list[ValidationIssue] = []
        if path_params:
            issues.extend(self._path_params.check_path(path_params))
        if query or not self._query.is_empty:
            issues.extend(self._query.check_query(query))
        if not self._headers.is_empty:
            issues.extend(self._headers.check_headers(headers))
        issues.extend(self._body.check(body, content_type))
        return issues

    def validate_response(self, status: int, content_type: str | None, body: bytes | None) -> list[ValidationIssue]:
        """Every way the response breaks the contract (undeclared status, media type, body schema)."""
        validator = self._responses.get(status) or self._response_ranges.get(str(status)[:1]) or self._response_default
        if validator is None:
            return [
                ValidationIssue(
                    "status", "", f"status {status} is not declared for this operation", "undeclared_status"
                )
            ]
        return validator.check(body, content_type)


class RouteMatch(NamedTuple):
    operation: CompiledOperation
    path_params: dict[str, str]


class CompiledContract:
    """A whole contract ready for routing and validation; build it with ``from_file`` or ``from_document``."""

    __slots__ = ("_router", "api_id", "base_path", "info", "operations", "source", "title", "version")

    def __init__(self, document: ContractDocument, engine: SchemaEngine | None = None) -> None:
        broken = check_references(document)
        if broken:
            raise ContractCompileError(f"{document.source}: {broken[0].message} (at {broken[0].pointer})")
        chosen = engine if engine is not None else default_engine()
        info = as_mapping(document.content.get("info"))
        self.source = document.source
        self.info = info  # with its x- metadata (lifecycle, sunset) for the gateway's policies
        self.api_id: str | None = info.get("x-api-id") if isinstance(info.get("x-api-id"), str) else None
        self.title = str(info.get("title", ""))
        self.version = str(info.get("version", ""))
        self.base_path = _base_path_of(document)
        self.operations = tuple(
            CompiledOperation(document, site, self.base_path, chosen) for site in iter_operations(document)
        )
        by_path: dict[str, dict[str, CompiledOperation]] = {}
        for operation in self.operations:
            by_path.setdefault(operation.full_path, {})[operation.method] = operation
        self._router: Router[CompiledOperation] = Router(by_path.items())

    @classmethod
    def from_file(cls, path: Path, engine: SchemaEngine | None = None) -> CompiledContract:
        return cls(load_contract(path), engine)

    @classmethod
    def from_document(
        cls, document: ContractDocument | Mapping[str, Any], engine: SchemaEngine | None = None
    ) -> CompiledContract:
        if not isinstance(document, ContractDocument):
            document = ContractDocument.from_mapping(document)
        return cls(document, engine)

    def match(self, method: str, path: str) -> RouteMatch | None:
        """The operation for ``method`` and the full request path (server URL included), or None."""
        found = self._router.match(method, path)
        return None if found is None else RouteMatch(*found)

    def allowed_methods(self, path: str) -> frozenset[str]:
        return self._router.allowed_methods(path)

    def operation_by_id(self, operation_id: str) -> CompiledOperation | None:
        return next((op for op in self.operations if op.operation_id == operation_id), None)


def _base_path_of(document: ContractDocument) -> str:
    servers = as_list(document.content.get("servers"))
    url = as_mapping(servers[0]).get("url") if servers else None
    if not isinstance(url, str):
        return ""
    return urlsplit(url).path.rstrip("/")


def _security_of(document: ContractDocument, site: OperationSite) -> SecurityAlternatives:
    found = effective_security(document, site)
    if found is None:
        return ()
    return tuple(
        {scheme: tuple(str(scope) for scope in as_list(scopes)) for scheme, scopes in as_mapping(requirement).items()}
        for requirement in found[0]
    )


# Longest TTL a contract may declare: the extension is for reference data, which may be stale this long at most.
MAX_CACHE_TTL_SECONDS = 3600


def _cache_ttl_of(site: OperationSite) -> int | None:
    """``x-psgw-cache: {ttl_seconds: N}`` on a GET: the gateway may serve this operation's 200s from its response
    cache for N seconds (per principal; see policies/response_cache). Anything else there is a compile error."""
    declared = site.operation.get("x-psgw-cache")
    if declared is None:
        return None
    where = f"{site.label} x-psgw-cache"
    if site.method.lower() != "get":
        raise ContractCompileError(f"{where}: only GET operations can be cacheable")
    ttl = as_mapping(declared).get("ttl_seconds")
    if not isinstance(declared, Mapping) or set(declared) != {"ttl_seconds"} or isinstance(ttl, bool) \
            or not isinstance(ttl, int) or not 1 <= ttl <= MAX_CACHE_TTL_SECONDS:
        raise ContractCompileError(f"{where}: expected {{ttl_seconds: 1..{MAX_CACHE_TTL_SECONDS}}}, got {declared!r}")
    return ttl
