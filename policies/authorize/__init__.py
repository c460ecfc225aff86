"""Authorization: may this client do this? Scopes, then the layer rule.

The layer rule: experience -> process -> system, never upward; writes to system APIs only from the process
tier. Apps (mobile, dashboards, internal tools) call experience APIs, plus the layers their registration allows.
"""

from __future__ import annotations

import msgspec

from policies.exchange import CallerLayer, Exchange, Layer
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


class AuthorizeConfig(msgspec.Struct, kw_only=True, frozen=True):
    enforce_layer_rule: bool = True


class Denied(ProblemError):
    status = 403
    title = "Forbidden"


class Authorize:
    name = "authorize"

    def __init__(self, config: AuthorizeConfig) -> None:
        self.config = config

    async def on_request(self, exchange: Exchange) -> None:
        client, principal, api = exchange.client, exchange.principal, exchange.api
        assert client is not None and principal is not None  # authenticate runs first
        if self.config.enforce_layer_rule:
            self._check_layer(exchange)
        required = api.read_scopes if exchange.is_read else api.write_scopes
        missing = sorted(required - principal.scopes)
        if missing:
            exchange.decisions[self.name] = "missing_scope"
            raise Denied(f"the token lacks scope {missing[0]!r} for {exchange.method} {api.base_path}",
                         slug="insufficient-scope", missing_scopes=missing)
        exchange.decisions[self.name] = "ok"

    @staticmethod
    def _check_layer(exchange: Exchange) -> None:
        client, api = exchange.client, exchange.api
        assert client is not None
        reach = LAYER_REACH[client.layer]
        if client.layer == "app":
            reach = client.allowed_layers or reach
        elif client.allowed_layers:
            reach = reach & client.allowed_layers
        if api.layer not in reach:
            exchange.decisions["authorize"] = "layer_violation"
            raise Denied(f"{client.layer!r} clients may not call {api.layer} APIs (layer rule)",
                         slug="layer-violation", caller_layer=client.layer, target_layer=api.layer)
        if api.layer == "system" and not exchange.is_read and client.layer != "process":
            exchange.decisions["authorize"] = "layer_violation"
            raise Denied("writes to system APIs are only accepted from the process tier (layer rule)",
                         slug="layer-violation", caller_layer=client.layer, target_layer=api.layer)
