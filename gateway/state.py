"""The gateway's live state, compiled from a GatewayConfig: route table, clients, per-API policy chains.

Compiled once per config version (contracts, scope requirements, limits, allow-lists, header values) and
swapped atomically on reload, so the hot path only does dict lookups. Calls in flight keep the state they
started with; a config that does not compile is refused whole and the old state keeps serving.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts import CONTRACTS_DIR
from contracts.toolchain.validation import CompiledContract, ContractCompileError
from gateway.config import BUILTIN_ISSUER, ClientConfig, ConfigError, GatewayConfig
from gateway.upstreams import Upstream
from policies import registry
from policies.authenticate import AuthenticateConfig, IdentityBinder
from policies.chain import EMPTY_CHAIN, ApiChains, Chain, ChainBuilder, ChainError, OpenStore, resolve_bindings
from policies.exchange import ApiTarget, ClientIdentity
from policies.registry import Services
from runtime.tokens import TokenVerifier


@dataclass(frozen=True, slots=True)
class ApiRoute:
    """One published API version with everything a call to it needs, precompiled."""

    target: ApiTarget
    upstream: Upstream
    contract: CompiledContract | None
    chain: Chain  # for calls no route binding singles out
    # Chains of the contract operations that route bindings name (empty for most APIs).
    chains: Mapping[object, Chain]

    @property
    def policy_names(self) -> tuple[str, ...]:
        return self.chain.names


@dataclass(frozen=True, slots=True)
class CompiledState:
    config: GatewayConfig
    routes: dict[str, ApiRoute]  # "/experience/mobile-time/v1" -> route
    clients: dict[str, ClientConfig]
    identities: dict[str, ClientIdentity]
    api_keys: dict[str, ClientIdentity]  # sha256:<hex> of a key -> its client
    # Verified token -> the client and the granted scopes (the same rule for the API, admin and catalog).
    binder: IdentityBinder
    # The response and log phases of calls no API version matched (the audit sink, when bound globally).
    unrouted: Chain = EMPTY_CHAIN
    version: int = 0
    compiled_at: float = field(default_factory=time.time)

    def match(self, path: str) -> ApiRoute | None:
        """The API version for ``path``, by its first three segments."""
        parts = path.split("/", 4)  # ["", layer, api, vN, rest]
        if len(parts) < 4:
            return None
        return self.routes.get("/".join(parts[:4]))


class ContractCache:
    """Compiled contracts by file and modification time: a reload recompiles only what changed."""

    def __init__(self, contracts_dir: Path = CONTRACTS_DIR) -> None:
        self.contracts_dir = contracts_dir
        self._compiled: dict[tuple[str, int], CompiledContract] = {}

    def get(self, relative: str) -> CompiledContract:
        path = (self.contracts_dir / relative).resolve()
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError as exc:
            raise ConfigError(f"contract {relative} cannot be read: {exc}") from exc
        key = (str(path), mtime)
        found = self._compiled.get(key)
        if found is None:
            try:
                found = CompiledContract.from_file(path)
            except (ContractCompileError, ValueError, OSError) as exc:
                raise ConfigError(f"contract {relative} does not compile: {exc}") from exc
            self._compiled = {k: v for k, v in self._compiled.items() if k[0] != key[0]}
            self._compiled[key] = found
        return found


def identity_of(client: ClientConfig, builtin_issuer: str) -> ClientIdentity:
    issuers = frozenset(builtin_issuer if i == BUILTIN_ISSUER else i for i in client.issuers or [BUILTIN_ISSUER])
    return ClientIdentity(
        id=client.id,
        layer=client.layer,
        scopes=frozenset(client.scopes),
        sla_tier=client.sla_tier,
        allowed_layers=frozenset(client.allowed_layers),
        active=client.status == "active",
        issuers=issuers,
        not_before=client.not_before,
    )


def compile_state(
    config: GatewayConfig,
    *,
    verifier: TokenVerifier,
    upstreams: Mapping[str, Upstream],
    contracts: ContractCache,
    open_store: OpenStore,
    services: Mapping[str, Any],
    version: int = 0,
    revoked_token_ids: frozenset[str] = frozenset(),
) -> CompiledState:
    """Build every structure the hot path reads; raises ConfigError when anything does not compile.

    ``open_store`` hands each policy its store (reused across compiles by the gateway); ``services`` are what
    the gateway lends every policy besides the verifier, the binder and the API keys (``internal_tokens``,
    ``audit``)."""
    clients = {c.id: c for c in config.clients}
    identities = {c.id: identity_of(c, config.issuer.issuer) for c in config.clients}
    api_keys: dict[str, ClientIdentity] = {}
    for client in config.clients:
        for key in client.api_keys:
            if key.hash in api_keys:
                raise ConfigError(f"api key {key.id} of client {client.id} is also another client's key")
            api_keys[key.hash] = identities[client.id]
    auth = config.policy(AuthenticateConfig)
    binder = IdentityBinder(config.issuer.issuer, auth.trusted_issuers, identities, auth.verified_token_cache_size,
                            revoked_token_ids)
    published = [api for api in config.apis if api.lifecycle != "retired"]
    targets = [ApiTarget(api_id=api.id, layer=api.layer, version=api.version, base_path=api.base_path,
                         upstream=api.upstream, read_scopes=frozenset(api.scopes.read),
                         write_scopes=frozenset(api.scopes.write)) for api in published]
    lent = Services(clients=identities, apis=targets, max_body_bytes=config.max_body_bytes,
                    sla_tiers=config.sla_tiers,
                    extra={**services, "verifier": verifier, "binder": binder, "api_keys": api_keys.get})
    try:
        bound = resolve_bindings(registry.available(config.policy_modules), config.policies,
                                 config.policy_bindings(), clients, [api.id for api in published])
        builder = ChainBuilder(bound, lent, open_store)
        routes: dict[str, ApiRoute] = {}
        for api, target in zip(published, targets, strict=True):
            contract = contracts.get(api.contract)
            if contract.base_path and contract.base_path != api.base_path:
                raise ConfigError(f"contract {api.contract} serves {contract.base_path}, gateway.yaml routes "
                                  f"{api.base_path}")

            chains: ApiChains = builder.for_api(target, contract)
            routes[api.base_path] = ApiRoute(target=target, upstream=upstreams[api.upstream], contract=contract,
                                             chain=chains.default, chains=chains.by_operation)
        unrouted = builder.for_unrouted()
    except (ChainError, registry.PolicyNotFound) as exc:
        raise ConfigError(str(exc)) from exc
    except ValueError as exc:  # a policy refusing its config for one API version (its build)
        raise ConfigError(f"a policy does not compile: {exc}") from exc
    return CompiledState(config=config, routes=routes, clients=clients, identities=identities,
                         api_keys=api_keys, binder=binder, unrouted=unrouted, version=version)
