"""The policy chain: which policies run for a call, with which config, in which order, built once per config.

gateway.yaml binds policies at five levels (as Kong binds plugins globally, to a service, a route, a consumer):

- ``policies: {name: config}``: global, every API version (the built-ins are bound globally by default);
- ``bindings:`` entries, each naming a ``policy`` and narrowing where it applies with ``layer``, ``api``
  (+ ``version``), ``route`` ("GET /me/assignments", within ``api``) and/or ``client``; ``config`` fields are laid
  over the global config of that policy, ``enabled: false`` turns it off there.

For each call and each policy the most specific binding wins: one naming a client beats one that does not, then
route > API version > API > layer > global. Two bindings of one policy equally specific for the same call are
refused. Chains are compiled per API version, per contract operation that a route binding names, and per client
that a client binding names, when the state is compiled: the hot path picks one with a dict lookup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from policies.exchange import Answer, ApiTarget, Exchange, Layer
from policies.registry import BuildContext, PolicySpec, PolicyStore, Services, lookup

AccessStep = Callable[[Exchange], Awaitable[None]]
ResponseStep = Callable[[Exchange, Answer], None]
LogStep = Callable[[Exchange | None, Any], None]


class BindingConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One policy bound to a scope (all given selectors must match; none: global)."""

    policy: str
    layer: Layer | None = None
    api: str | None = None  # "experience/mobile-time"
    version: int | None = None  # with ``api``: that version only
    route: str | None = None  # with ``api``: "<METHOD> <path template>" of its contract, e.g. "GET /me/assignments"
    client: str | None = None
    enabled: bool = True
    config: dict[str, Any] = {}

    def __post_init__(self) -> None:
        if (self.version is not None or self.route is not None) and self.api is None:
            raise ValueError(f"binding of {self.policy}: version and route need an api")
        if self.route is not None:
            method, _, path = self.route.partition(" ")
            if not path.startswith("/") or not method.isalpha():
                raise ValueError(f"binding of {self.policy}: route {self.route!r} must read '<METHOD> /path'")

    @property
    def level(self) -> int:
        if self.route is not None:
            return 4
        if self.version is not None:
            return 3
        if self.api is not None:
            return 2
        return 1 if self.layer is not None else 0

    @property
    def rank(self) -> tuple[bool, int]:
        return (self.client is not None, self.level)

    def where(self) -> str:
        parts = [
            f"{k}={v}"
            for k, v in (
                ("layer", self.layer),
                ("api", self.api),
                ("version", self.version),
                ("route", self.route),
                ("client", self.client),
            )
            if v is not None
        ]
        return f"{self.policy} ({', '.join(parts) or 'global'})"

    def selects_api(self, api: ApiTarget) -> bool:
        return (
            (self.layer is None or self.layer == api.layer)
            and (self.api is None or self.api == api.api_id)
            and (self.version is None or self.version == api.version)
        )


class ChainError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Bound:
    """A binding resolved: the policy, its effective config, where it came from."""

    spec: PolicySpec[Any]
    config: Any
    binding: BindingConfig


def resolve_bindings(
    registry: Mapping[str, PolicySpec[Any]],
    policies: Mapping[str, Any],
    bindings: Sequence[BindingConfig],
    clients: Iterable[str] = (),
    api_ids: Iterable[str] | None = None,
) -> list[Bound]:
    """Every binding with its config parsed by its policy's schema; a ChainError names the first bad one."""
    known_clients = frozenset(clients)
    known_apis = None if api_ids is None else frozenset(api_ids)
    bound: list[Bound] = []
    for name, config in policies.items():
        spec = lookup(registry, name, f"policies.{name}")
        bound.append(Bound(spec, config, BindingConfig(policy=name)))
    for index, binding in enumerate(bindings):
        where = f"bindings[{index}]"
        spec = lookup(registry, binding.policy, where)
        if binding.client is not None:
            if binding.client not in known_clients:
                raise ChainError(f"{where}: client {binding.client!r} is not registered")
            identifier = next((s for s in registry.values() if s.identifies), None)
            if identifier is not None and spec.priority >= identifier.priority:
                raise ChainError(
                    f"{where}: {spec.name} runs before {identifier.name} knows the client, so it "
                    "cannot be bound per client"
                )
        if known_apis is not None and binding.api is not None and binding.api not in known_apis:
            raise ChainError(f"{where}: api {binding.api!r} is not published in apis")
        if not binding.enabled and spec.required:
            raise ChainError(f"{where}: {spec.name} cannot be turned off (the chain is unsafe without it)")
        base = policies.get(binding.policy)
        merged = {**(msgspec.to_builtins(base) if base is not None else {}), **binding.config}
        try:
            config = spec.parse(merged)
        except (msgspec.ValidationError, ValueError) as exc:
            raise ChainError(f"{where} ({binding.policy}): {exc}") from exc
        bound.append(Bound(spec, config, binding))
    return bound


@dataclass(frozen=True, slots=True)
class Chain:
    """The compiled chain for one scope: each phase a tuple of bound methods in priority order."""

    names: tuple[str, ...]
    # ``access`` of the policies up to the one that identifies the client, then of the rest.
    before_identity: tuple[AccessStep, ...]
    after_identity: tuple[AccessStep, ...]
    response: tuple[ResponseStep, ...]
    log: tuple[LogStep, ...]
    handlers: tuple[object, ...]
    # The chains of clients that have bindings of their own here (empty for most APIs: one attribute check).
    by_client: Mapping[str, Chain] = field(default_factory=dict)

    def handler(self, name: str) -> Any:
        """The handler of policy ``name`` in this chain, or None (admin views, tests)."""
        for policy, handler in zip(self.names, self.handlers, strict=True):
            if policy == name:
                return handler
        return None


EMPTY_CHAIN = Chain((), (), (), (), (), ())


def _chain_of(handlers: Sequence[tuple[PolicySpec[Any], object]]) -> Chain:
    ordered = sorted(handlers, key=lambda item: (-item[0].priority, item[0].name))
    before: list[AccessStep] = []
    after: list[AccessStep] = []
    identified = not any(spec.identifies for spec, _ in ordered)
    for spec, handler in ordered:
        access = getattr(handler, "access", None)
        if access is not None:
            (after if identified else before).append(access)
        if spec.identifies:
            identified = True
    return Chain(
        names=tuple(spec.name for spec, _ in ordered),
        before_identity=tuple(before),
        after_identity=tuple(after),
        response=tuple(h.response for _, h in ordered if getattr(h, "response", None) is not None),  # type: ignore[attr-defined]
        log=tuple(h.log for _, h in ordered if getattr(h, "log", None) is not None),  # type: ignore[attr-defined]
        handlers=tuple(h for _, h in ordered),
    )


@dataclass(frozen=True, slots=True)
class ApiChains:
    """The chains of one API version: the default, and one per contract operation a route binding names."""

    default: Chain
    by_operation: Mapping[object, Chain]


OpenStore = Callable[[PolicySpec[Any], Any], PolicyStore | None]


class ChainBuilder:
    """Builds every API version's chains from the resolved bindings; handlers are built once per
    (binding, API version) and shared by every chain that uses them."""

    def __init__(self, bound: Sequence[Bound], services: Services, open_store: OpenStore) -> None:
        self.bound = bound
        self.services = services
        self.open_store = open_store
        self.shared: dict[Hashable, Any] = {}
        self._built: dict[tuple[int, str], object | None] = {}

    def _handler(self, item: Bound, api: ApiTarget, contract: Any) -> object | None:
        key = (id(item), api.base_path)
        if key not in self._built:
            store = self.open_store(item.spec, item.config) if item.spec.store is not None else None
            context = BuildContext(api=api, contract=contract, services=self.services, store=store, shared=self.shared)
            self._built[key] = item.spec.build(item.config, context)
        return self._built[key]

    def _select(
        self, candidates: Sequence[Bound], operation: object | None, client: str | None, routes: Mapping[int, object]
    ) -> list[Bound]:
        best: dict[str, Bound] = {}
        for item in candidates:
            binding = item.binding
            if binding.client is not None and binding.client != client:
                continue
            if binding.route is not None and routes[id(item)] is not operation:
                continue
            current = best.get(item.spec.name)
            if current is None or binding.rank > current.binding.rank:
                best[item.spec.name] = item
            elif binding.rank == current.binding.rank:
                raise ChainError(
                    f"bindings {current.binding.where()} and {binding.where()} are equally specific "
                    "for the same calls: keep one"
                )
        return [item for item in best.values() if item.binding.enabled]

    def _compile(self, chosen: Sequence[Bound], api: ApiTarget, contract: Any) -> Chain:
        handlers = [(item.spec, h) for item in chosen if (h := self._handler(item, api, contract)) is not None]
        return _chain_of(handlers)

    def for_api(self, api: ApiTarget, contract: Any) -> ApiChains:
        candidates = [item for item in self.bound if item.binding.selects_api(api)]
        routes: dict[int, object] = {}
        operations = {(op.method, op.path): op for op in (contract.operations if contract is not None else ())}
        for item in candidates:
            route = item.binding.route
            if route is not None:
                method, _, path = route.partition(" ")
                operation = operations.get((method.upper(), path.strip()))
                if operation is None:
                    raise ChainError(
                        f"binding {item.binding.where()}: {route!r} is not an operation of the "
                        f"{api.api_id} v{api.version} contract"
                    )
                routes[id(item)] = operation
        clients = sorted({item.binding.client for item in candidates if item.binding.client is not None})
        compiled: dict[object, Chain] = {}
        for operation in [None, *dict.fromkeys(routes.values())]:
            chain = self._compile(self._select(candidates, operation, None, routes), api, contract)
            by_client = {
                client: self._compile(self._select(candidates, operation, client, routes), api, contract)
                for client in clients
            }
            if by_client:
                chain = Chain(
                    chain.names,
                    chain.before_identity,
                    chain.after_identity,
                    chain.response,
                    chain.log,
                    chain.handlers,
                    by_client,
                )
            compiled[operation] = chain
        default = compiled.pop(None)
        return ApiChains(default=default, by_operation=compiled)

    def for_unrouted(self) -> Chain:
        """The response and log phases for calls no API version matched: the global bindings only."""
        chosen: dict[str, Bound] = {}
        for item in self.bound:
            if item.binding.level == 0 and item.binding.client is None:
                chosen[item.spec.name] = item
        handlers = [
            (item.spec, h)
            for item in chosen.values()
            if item.binding.enabled
            and item.spec.build_unrouted is not None
            and (h := item.spec.build_unrouted(item.config, self.services)) is not None
        ]
        return _chain_of(handlers)
