"""The gateway's live state, compiled from a GatewayConfig: route table, clients, policy chain, upstreams.

Compiled once per config version and swapped atomically on reload, so the hot path only does dict lookups.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import ClientConfig, GatewayConfig
from policies.authenticate import Authenticate
from policies.authorize import Authorize
from policies.exchange import ApiTarget, ClientIdentity, Policy
from runtime.tokens import TokenVerifier


@dataclass(frozen=True, slots=True)
class CompiledState:
    config: GatewayConfig
    routes: dict[str, ApiTarget]  # "/experience/mobile-time/v1" -> target
    clients: dict[str, ClientConfig]
    identities: dict[str, ClientIdentity]
    chain: tuple[Policy, ...]

    def match(self, path: str) -> tuple[ApiTarget | None, str]:
        """The API version for ``path`` and the remainder, by its first three segments."""
        parts = path.split("/", 4)  # ["", layer, api, vN, rest]
        if len(parts) < 4:
            return None, ""
        base = "/".join(parts[:4])
        return self.routes.get(base), ("/" + parts[4]) if len(parts) == 5 else ""


def _identity(client: ClientConfig) -> ClientIdentity:
    return ClientIdentity(
        id=client.id,
        layer=client.layer,
        scopes=frozenset(client.scopes),
        sla_tier=client.sla_tier,
        allowed_layers=frozenset(client.allowed_layers),
        active=client.status == "active",
    )


def compile_state(config: GatewayConfig, verifier: TokenVerifier) -> CompiledState:
    routes = {
        api.base_path: ApiTarget(
            api_id=api.id,
            layer=api.layer,
            version=api.version,
            base_path=api.base_path,
            upstream=api.upstream,
            read_scopes=frozenset(api.scopes.read),
            write_scopes=frozenset(api.scopes.write),
        )
        for api in config.apis
        if api.lifecycle != "retired"
    }
    clients = {c.id: c for c in config.clients}
    identities = {c.id: _identity(c) for c in config.clients}
    chain: tuple[Policy, ...] = (
        Authenticate(verifier, identities.get),
        Authorize(config.policies.authorize),
    )
    return CompiledState(config=config, routes=routes, clients=clients, identities=identities, chain=chain)
