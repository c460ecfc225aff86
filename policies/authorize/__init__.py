"""Authorization: may this client do this? The layer rule, then scopes.

Scopes come from the matched contract operation's ``security`` (the contract is the source of truth: any one
requirement of the list must be met in full); gateway.yaml's per-API read/write scopes are the fallback for a
call no operation matched or an operation that declares no security. Requirements are precomputed per
operation when the state is compiled, so a call costs one dict lookup and a set difference.

The layer rule: experience -> process -> system, never upward; writes to system APIs only from the process
tier. Apps (mobile, dashboards, internal tools) call experience APIs, plus the layers their registration allows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from policies.exchange import ApiTarget, CallerLayer, Exchange, Layer
from policies.registry import BuildContext, PolicySpec
from runtime.problems import ProblemError

# Which layers each kind of caller may call at all; ``allowed_layers`` on a client can only narrow
# what its layer permits, except for apps, whose registration names what they may reach.
LAYER_REACH: dict[CallerLayer, frozenset[Layer]] = {
    "app": frozenset({"experience"}),
    "experience": frozenset({"process", "system"}),
    "process": frozenset({"system"}),
    "system": frozenset(),
    "admin": frozenset(),
}


def reachable_layers(caller: CallerLayer, allowed_layers: Iterable[Layer]) -> frozenset[Layer]:
    """The layers a client of layer ``caller`` may call, given its registration's ``allowed_layers``."""
    allowed = frozenset(allowed_layers)
    if caller == "app":
        return allowed or LAYER_REACH[caller]
    return LAYER_REACH[caller] & allowed if allowed else LAYER_REACH[caller]


def may_write(caller: CallerLayer, target: Layer) -> bool:
    """Writes to system APIs are accepted only from the process tier."""
    return target != "system" or caller == "process"


Requirement = tuple[frozenset[str], ...]
"""Alternatives: the call is allowed when the token holds every scope of at least one of them."""


class AuthorizeConfig(msgspec.Struct, kw_only=True, frozen=True):
    enforce_layer_rule: bool = True
    # Take scopes from the contract operation's ``security``; off: gateway.yaml read/write scopes only.
    scopes_from_contract: bool = True


class Denied(ProblemError):
    status = 403
    title = "Forbidden"


def requirement_of(security: Iterable[Mapping[str, Iterable[str]]]) -> Requirement | None:
    """A contract operation's ``security`` as scope alternatives; None when it declares none."""
    alternatives = tuple(frozenset(scope for scopes in requirement.values() for scope in scopes)
                         for requirement in security)
    return alternatives or None


class Authorize:
    name = "authorize"

    def __init__(self, config: AuthorizeConfig, api: ApiTarget,
                 operation_requirements: Mapping[object, Requirement] | None = None) -> None:
        self.config = config
        self.read: Requirement = (api.read_scopes,)
        self.write: Requirement = (api.write_scopes,)
        self.by_operation = dict(operation_requirements or {}) if config.scopes_from_contract else {}

    async def access(self, exchange: Exchange) -> None:
        client, principal = exchange.client, exchange.principal
        assert client is not None and principal is not None  # authenticate runs first
        if self.config.enforce_layer_rule:
            self._check_layer(exchange)
        requirement = self.by_operation.get(exchange.operation) if exchange.operation is not None else None
        if requirement is None:
            requirement = self.read if exchange.is_read else self.write
        granted = principal.scopes
        best: list[str] | None = None
        for scopes in requirement:
            if scopes <= granted:
                exchange.decisions[self.name] = "ok"
                return
            missing = sorted(scopes - granted)
            if best is None or len(missing) < len(best):
                best = missing
        assert best is not None
        exchange.decisions[self.name] = "missing_scope"
        what = f"{exchange.method} {exchange.api.base_path}{exchange.route or ''}"
        raise Denied(f"the token lacks scope {best[0]!r} for {what}", slug="insufficient-scope",
                     reason="missing_scope", missing_scopes=best, required_scopes=sorted(requirement[0]))

    @staticmethod
    def _check_layer(exchange: Exchange) -> None:
        client, api = exchange.client, exchange.api
        assert client is not None
        if api.layer not in reachable_layers(client.layer, client.allowed_layers):
            exchange.decisions["authorize"] = "layer_violation"
            raise Denied(f"{client.layer!r} clients may not call {api.layer} APIs (layer rule)",
                         slug="layer-violation", reason="layer_violation", caller_layer=client.layer,
                         target_layer=api.layer)
        if not exchange.is_read and not may_write(client.layer, api.layer):
            exchange.decisions["authorize"] = "layer_violation"
            raise Denied("writes to system APIs are only accepted from the process tier (layer rule)",
                         slug="layer-violation", reason="layer_violation", caller_layer=client.layer,
                         target_layer=api.layer)


def operation_requirements(operations: Iterable[object]) -> dict[object, Requirement]:
    """Each contract operation's scope requirement (operations without ``security`` are left out)."""
    found: dict[object, Requirement] = {}
    for operation in operations:
        requirement = requirement_of(operation.security)  # type: ignore[attr-defined]
        if requirement is not None:
            found[operation] = requirement
    return found


def _build(config: AuthorizeConfig, ctx: BuildContext) -> Authorize:
    operations = ctx.contract.operations if ctx.contract is not None else ()
    return Authorize(config, ctx.api, operation_requirements(operations))


POLICY = PolicySpec(name="authorize", config=AuthorizeConfig, priority=1400, build=_build, enabled_by_default=True,
                    required=True, summary="the layer rule, then the scopes the contract operation requires")
