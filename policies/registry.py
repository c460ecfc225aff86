"""The policy registry: every policy the gateway can run, found by name (as Kong finds its plugins).

A policy is a package that defines ``POLICY``, a :class:`PolicySpec`: its name, its config schema (a msgspec
Struct), its priority, how to build its handler for one API version and, when it keeps one, its store. The
packages under ``policies/`` are found by themselves; any other importable module is added by naming it in
gateway.yaml's ``policy_modules``. Nothing in ``gateway/`` lists policies. ``policies/README.md`` shows how to
write one.

A handler's phases are the methods it defines (:mod:`policies.exchange`): ``access`` (async, before the
upstream), ``response`` (sync, on every answer before it is sent) and ``log`` (sync, after it is sent).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from policies.exchange import ApiTarget, ClientIdentity

C = TypeVar("C", bound=msgspec.Struct)


class PolicyStore(Protocol):
    """A resource a policy keeps across reloads (a Redis client, a connection pool)."""

    async def ping(self) -> str | None:
        """None when the store answers, else what is wrong (``/readyz`` shows it)."""

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StoreSpec(Generic[C]):
    """How a policy's store is opened: one per distinct ``key(config)``, reused across reloads while the key is
    unchanged, closed (after a grace period) once no compiled state uses it."""

    key: Callable[[C], Hashable]
    open: Callable[[C], PolicyStore]
    # True when calls cannot be served while the store is down (``/readyz`` then follows the store).
    required: Callable[[C], bool] = field(default=lambda _config: False)


@dataclass(frozen=True, slots=True)
class Services:
    """What the gateway lends every policy when it builds one (policies never import ``gateway``)."""

    clients: Mapping[str, ClientIdentity]
    apis: Sequence[ApiTarget]  # every published API version, for policies that look across versions
    max_body_bytes: int
    sla_tiers: Mapping[str, Any]  # name -> gateway.yaml's SLA tier (requests_per_second, burst, quotas)
    # Anything else the gateway offers by name: "verifier", "binder", "api_keys", "internal_tokens", "audit".
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class BuildContext:
    """One policy being built for one API version (and, for per-route or per-client bindings, one scope)."""

    api: ApiTarget
    contract: Any  # the API version's CompiledContract
    services: Services
    store: Any = None  # the policy's own store for this config, when its spec declares one
    # Shared by every build of one compiled state: a policy keeps here what all API versions share
    # (``ctx.shared.setdefault(key, value)``); a reload starts a new one.
    shared: dict[Hashable, Any] = field(default_factory=dict)

    def once(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """``make()`` once per compiled state for ``key``, the same object for every later build."""
        if key not in self.shared:
            self.shared[key] = make()
        return self.shared[key]


@dataclass(frozen=True, slots=True)
class PolicySpec(Generic[C]):
    name: str
    config: type[C]
    # Higher runs earlier in every phase (Kong's PRIORITY). The built-ins: cors 2000, ip_allow 1900,
    # authenticate 1500, authorize 1400, rate_limit 1300, limits 1200, validate 1100, response_cache 150,
    # token_exchange 100, lifecycle 50, audit 10.
    priority: int
    # The handler for one API version with this config, or None when the policy does not apply there.
    build: Callable[[C, BuildContext], object | None]
    # Bound globally with its default config when gateway.yaml does not name it (the built-ins).
    enabled_by_default: bool = False
    # No binding may turn it off (authenticate, authorize, token_exchange: the chain is unsafe without them).
    required: bool = False
    # It sets ``exchange.client``: per-client bindings apply to the policies after it.
    identifies: bool = False
    store: StoreSpec[C] | None = None
    # For the response and log phases of calls no API version matched (a 404 the audit log still records):
    # the handler without an API, or None when the policy has nothing to do for them.
    build_unrouted: Callable[[C, Services], object | None] | None = None
    summary: str = ""

    def parse(self, raw: Any) -> C:
        """The config as the policy's schema reads it (raises msgspec.ValidationError / ValueError)."""
        if isinstance(raw, self.config):
            return raw
        return msgspec.convert(raw, self.config, strict=False)


class PolicyNotFound(ValueError):
    pass


def _spec_of(module_name: str) -> PolicySpec[Any] | None:
    module = importlib.import_module(module_name)
    spec = getattr(module, "POLICY", None)
    return spec if isinstance(spec, PolicySpec) else None


_builtins: dict[str, PolicySpec[Any]] | None = None
_loaded: dict[str, PolicySpec[Any]] = {}


def builtin_policies() -> dict[str, PolicySpec[Any]]:
    """Every package under ``policies/`` that defines ``POLICY``, by name."""
    global _builtins
    if _builtins is None:
        import policies

        found: dict[str, PolicySpec[Any]] = {}
        for module in pkgutil.iter_modules(policies.__path__):
            if module.ispkg:
                spec = _spec_of(f"policies.{module.name}")
                if spec is not None:
                    found[spec.name] = spec
        _builtins = found
    return _builtins


def load_module(module_name: str) -> PolicySpec[Any]:
    """The policy a module named in ``policy_modules`` defines (imported once)."""
    spec = _loaded.get(module_name)
    if spec is None:
        try:
            spec = _spec_of(module_name)
        except ImportError as exc:
            raise PolicyNotFound(f"policy_modules: cannot import {module_name!r}: {exc}") from exc
        if spec is None:
            raise PolicyNotFound(f"policy_modules: {module_name!r} defines no POLICY (a policies.registry.PolicySpec)")
        _loaded[module_name] = spec
    return spec


def available(modules: Iterable[str] = ()) -> dict[str, PolicySpec[Any]]:
    """The built-in policies plus those of ``modules``; a module may not reuse a built-in's name."""
    found = dict(builtin_policies())
    for module_name in modules:
        spec = load_module(module_name)
        if spec.name in found and found[spec.name] is not spec:
            raise PolicyNotFound(f"policy_modules: {module_name!r} defines policy {spec.name!r}, a name already taken")
        found[spec.name] = spec
    return found


def lookup(registry: Mapping[str, PolicySpec[Any]], name: str, where: str) -> PolicySpec[Any]:
    spec = registry.get(name)
    if spec is None:
        raise PolicyNotFound(
            f"{where}: no policy is named {name!r} (known: {', '.join(sorted(registry))}; "
            "gateway.yaml's policy_modules adds more)"
        )
    return spec
