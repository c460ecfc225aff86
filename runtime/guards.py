"""Scope guards derived from the contracts: what an operation's OpenAPI ``security`` says is what the tier demands.

The gateway checks scopes first; a tier checks again before acting (defense in depth). Nobody writes the scopes a
second time in a handler: at start-up every route of a tier is matched to its contract operation (same method and
path under the contract's server URL, same ``operation_id``), and the app refuses to start when a route has none.
A request whose token lacks the scopes gets 403 ``insufficient-scope`` before any parameter is read.

The check runs as the innermost app middleware (after routing, before the handler's parameters), not as a Litestar
guard: Litestar runs a plain-function guard in a worker thread and hands every guard a copy of the route handler
(``copy(handler)``, about 0.1 ms on its own), on every call of every tier (py-spy under bench/layers.py).
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
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Receive, Scope, Send

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
        # Operations by (method, the router's template as it puts it in the scope): one dict lookup per call.
        self._by_template: dict[tuple[str, str], Operation] = {}

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
                        self._by_template[(method.upper(), route.path_format)] = operation
        if unmatched:
            raise RuntimeError(
                "routes without a contract operation (method, path and operationId must match one "
                f"in {self._contracts_dir}): " + ", ".join(sorted(unmatched))
            )

    def check(self, scope: Scope) -> None:
        """401 without a caller, 403 ``insufficient-scope`` without the scopes of the routed operation."""
        operation = self._by_template.get((scope["method"], scope.get("path_template", "")))  # type: ignore[typeddict-item]
        if operation is None or not operation.alternatives:
            return  # not a contract route (health), or an operation open to every caller
        principal: Principal | None = scope.get("state", {}).get("principal")
        if principal is None:
            raise Unauthorized("an authenticated caller is required")
        held = principal.scopes
        for scopes in operation.alternatives:
            if scopes <= held:
                return  # one alternative held in full (a subset test in C; the refusal below names what lacks)
        closest = min(operation.alternatives, key=lambda scopes: len(scopes - held))
        require_scopes(principal, *sorted(closest))

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """The check as a route middleware (Litestar builds it once per route handler, after routing)."""

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                self.check(scope)
            await app(scope, receive, send)

        return guarded
