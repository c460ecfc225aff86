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

from contracts import CONTRACTS_DIR
from contracts.toolchain.validation import CompiledContract, ContractCompileError
from gateway.config import BUILTIN_ISSUER, ClientConfig, ConfigError, GatewayConfig
from gateway.upstreams import Upstream
from policies.authenticate import Authenticate, IdentityBinder
from policies.authorize import Authorize, Requirement, requirement_of
from policies.cors import Cors
from policies.exchange import ApiTarget, ClientIdentity, Policy
from policies.ip_allow import IpAllow
from policies.limits import Limits
from policies.rate_limit import RateLimit, RateLimitStore, TierLimits
from policies.response_cache import ResponseCache
from policies.response_cache.store import ResponseStore
from policies.token_exchange import InternalTokenSource, TokenExchange
from policies.validate import Validate
from runtime.tokens import TokenVerifier


@dataclass(frozen=True, slots=True)
class ApiRoute:
    """One published API version with everything a call to it needs, precompiled."""

    target: ApiTarget
    upstream: Upstream
    contract: CompiledContract | None
    chain: tuple[Policy, ...]
    validator: Validate | None
    policy_names: tuple[str, ...]
    # None unless the contract marks an operation cacheable: uncached APIs pay one attribute check.
    cache: ResponseCache | None = None


@dataclass(frozen=True, slots=True)
class CompiledState:
    config: GatewayConfig
    routes: dict[str, ApiRoute]  # "/experience/mobile-time/v1" -> route
    clients: dict[str, ClientConfig]
    identities: dict[str, ClientIdentity]
    api_keys: dict[str, ClientIdentity]  # sha256:<hex> of a key -> its client
    # Verified token -> the client and the granted scopes (the same rule for the API, admin and catalog).
    binder: IdentityBinder
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


def _requirements(contract: CompiledContract) -> dict[object, Requirement]:
    found: dict[object, Requirement] = {}
    for operation in contract.operations:
        requirement = requirement_of(operation.security)
        if requirement is not None:
            found[operation] = requirement
    return found


def compile_state(
    config: GatewayConfig,
    *,
    verifier: TokenVerifier,
    upstreams: Mapping[str, Upstream],
    rate_limit_store: RateLimitStore,
    contracts: ContractCache,
    internal_tokens: InternalTokenSource,
    version: int = 0,
    revoked_token_ids: frozenset[str] = frozenset(),
) -> CompiledState:
    """Build every structure the hot path reads; raises ConfigError when anything does not compile."""
    clients = {c.id: c for c in config.clients}
    identities = {c.id: identity_of(c, config.issuer.issuer) for c in config.clients}
    api_keys: dict[str, ClientIdentity] = {}
    for client in config.clients:
        for key in client.api_keys:
            if key.hash in api_keys:
                raise ConfigError(f"api key {key.id} of client {client.id} is also another client's key")
            api_keys[key.hash] = identities[client.id]
    policies = config.policies
    binder = IdentityBinder(config.issuer.issuer, policies.authenticate.trusted_issuers, identities,
                            policies.authenticate.verified_token_cache_size, revoked_token_ids)
    authenticate = Authenticate(policies.authenticate, verifier, binder, api_keys.get)
    token_exchange = TokenExchange(internal_tokens)
    tiers = {name: TierLimits(t.requests_per_second, t.burst, t.daily_quota, t.monthly_quota, t.per_subject)
             for name, t in config.sla_tiers.items()}
    cors = Cors(policies.cors)
    # One store for every API of this state: a reload starts empty (and takes new bounds).
    response_store = ResponseStore(policies.response_cache.max_entries, policies.response_cache.max_bytes)
    routes: dict[str, ApiRoute] = {}
    for api in config.apis:
        if api.lifecycle == "retired":
            continue
        target = ApiTarget(
            api_id=api.id,
            layer=api.layer,
            version=api.version,
            base_path=api.base_path,
            upstream=api.upstream,
            read_scopes=frozenset(api.scopes.read),
            write_scopes=frozenset(api.scopes.write),
        )
        contract = contracts.get(api.contract)
        if contract.base_path and contract.base_path != api.base_path:
            raise ConfigError(f"contract {api.contract} serves {contract.base_path}, gateway.yaml routes "
                              f"{api.base_path}")
        chain: list[Policy] = []
        if policies.cors.selects(target):
            chain.append(cors)
        if policies.ip_allow.selects(target):
            chain.append(IpAllow(policies.ip_allow, target))
        chain.append(authenticate)
        chain.append(Authorize(policies.authorize, target, _requirements(contract)))
        if policies.rate_limit.enabled:
            chain.append(RateLimit(policies.rate_limit, target, tiers, rate_limit_store))
        chain.append(Limits(policies.limits, target, config.max_body_bytes))
        validator = Validate(api.validate or policies.validate, contract)
        chain.append(validator)
        chain.append(token_exchange)  # last: only a call every policy accepted gets an internal token
        cache_ttls: dict[object, int] = {op: op.cache_ttl_seconds for op in contract.operations
                                         if op.cache_ttl_seconds is not None}
        cache = ResponseCache(policies.response_cache, target, response_store, cache_ttls) \
            if cache_ttls and policies.response_cache.enabled else None
        routes[api.base_path] = ApiRoute(
            target=target,
            upstream=upstreams[api.upstream],
            contract=contract,
            chain=tuple(chain),
            validator=validator,
            policy_names=tuple(p.name for p in chain) + ((cache.name,) if cache else ()),
            cache=cache,
        )
    return CompiledState(config=config, routes=routes, clients=clients, identities=identities,
                         api_keys=api_keys, binder=binder, version=version)
