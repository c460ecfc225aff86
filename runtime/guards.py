"""Scope guards derived from the contracts: what an operation's OpenAPI ``security`` says is what the tier demands.

The gateway checks scopes first; a tier checks again before acting (defense in depth). Nobody writes the scopes a
second time in a handler: at start-up every route of a tier is matched to its contract operation (same method and
path under the contract's server URL, same ``operation_id``), and the app refuses to start when a route has none.
A request whose token lacks the scopes gets 403 ``insufficient-scope`` before any parameter is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.routes import HTTPRoute

from contracts import CONTRACTS_DIR
from runtime.problems import Forbidden, Unauthorized
from runtime.tokens import Principal

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_PATH_PARAMETER = re.compile(r"\{[^}]*\}")


@dataclass(frozen=True, slots=True)
class Operation:
    """A contract operation: its id and the scope sets that each suffice (OpenAPI security alternatives)."""

    operation_id: str
    alternatives: tuple[frozenset[str], ...]
    source: str


def route_key(method: str, path: str) -> tuple[str, str]:
    """A route and a contract path compared without parameter names or types: ``/a/{id:str}`` is ``/a/{}``."""
    return method.upper(), _PATH_PARAMETER.sub("{}", path.rstrip("/") or "/")


@cache
def contract_operations(contracts_dir: Path = CONTRACTS_DIR) -> Mapping[tuple[str, str], Operation]:
    """Every OpenAPI operation under ``contracts_dir`` by (method, full path)."""
    operations: dict[tuple[str, str], Operation] = {}
    for path in sorted(contracts_dir.rglob("*.yaml")):
        if "toolchain" in path.parts:
            continue
        document = yaml.safe_load(path.read_text())
        if not isinstance(document, dict) or "openapi" not in document:
            continue
        base = str((document.get("servers") or [{}])[0].get("url", "")).rstrip("/")
        default_security = document.get("security", [])
        for route, item in (document.get("paths") or {}).items():
            for method in HTTP_METHODS:
                operation = (item or {}).get(method)
                if not isinstance(operation, dict):
                    continue
                security = operation.get("security", default_security) or []
                alternatives = tuple(frozenset(_scopes(requirement)) for requirement in security)
                operations[route_key(method, base + route)] = Operation(
                    str(operation.get("operationId", "")), alternatives, str(path.relative_to(contracts_dir))
                )
    return operations


def _scopes(requirement: Mapping[str, Any]) -> Iterable[str]:
    for scopes in requirement.values():
        yield from scopes or ()


def require_scopes(principal: Principal, *scopes: str) -> None:
    """403 ``insufficient-scope`` unless the token carries every one of ``scopes``."""
    missing = [s for s in scopes if s not in principal.scopes]
    if missing:
        raise Forbidden(f"the token lacks scope {missing[0]!r}", slug="insufficient-scope", missing_scopes=missing)


class ContractScopes:
    """The app-level guard: each route's scopes from its contract operation (:meth:`bind` once the app exists)."""

    def __init__(self, contracts_dir: Path = CONTRACTS_DIR) -> None:
        self._contracts_dir = contracts_dir
        self._operations: dict[tuple[str, str], Operation] = {}

    def bind(self, app: Litestar) -> None:
        """Match every contract route of ``app`` to its operation; refuse a route the contracts lack."""
        operations = contract_operations(self._contracts_dir)
        unmatched: list[str] = []
        for route in app.routes:
            if not isinstance(route, HTTPRoute):
                continue
            for handler in route.route_handlers:
                if not handler.include_in_schema:
                    continue  # health, readiness, metrics: no token, no contract
                for method in handler.http_methods:
                    operation = operations.get(route_key(method, route.path))
                    if operation is None or operation.operation_id != handler.operation_id:
                        unmatched.append(f"{method} {route.path} ({handler.operation_id or handler.handler_name})")
                    else:
                        self._operations[route_key(method, route.path)] = operation
        if unmatched:
            raise RuntimeError(
                "routes without a contract operation (method, path and operationId must match one "
                f"in {self._contracts_dir}): " + ", ".join(sorted(unmatched))
            )

    # async although it never waits: Litestar runs a synchronous guard in a worker thread, a thread hand-off on
    # every request of every tier.
    async def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        operation = self._operations.get(
            route_key(
                connection.scope["method"],  # type: ignore[typeddict-item]
                connection.scope.get("path_template", ""),
            )
        )
        if operation is None or not operation.alternatives:
            return  # not a contract route (health), or an operation open to every caller
        principal: Principal | None = connection.scope.get("state", {}).get("principal")
        if principal is None:
            raise Unauthorized("an authenticated caller is required")
        closest = min(operation.alternatives, key=lambda scopes: len(scopes - principal.scopes))
        require_scopes(principal, *sorted(closest))
