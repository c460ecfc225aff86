"""gateway.yaml: the whole declared state of the gateway, as typed, validated Structs.

Values may use ``${VAR}`` or ``${VAR:-default}`` so one file serves a laptop, CI and a cluster.
A bad file stops the gateway at start (or is refused by a live reload) with a message naming the field.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import msgspec
import yaml

from gateway.signin.config import SignInConfig
from policies import registry
from policies.authenticate import AuthenticateConfig
from policies.chain import BindingConfig, ChainError, resolve_bindings
from policies.exchange import CallerLayer, Layer
from policies.rate_limit import RateLimitConfig, SubjectLimits
from policies.validate import ValidateConfig

C = TypeVar("C", bound=msgspec.Struct)
_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    pass


# In a client's ``issuers``: the gateway's own issuer, whatever its URL is in this environment.
BUILTIN_ISSUER = "builtin"


class Listen(msgspec.Struct, kw_only=True, frozen=True):
    host: str = "127.0.0.1"
    port: int = 8080


class AdminListen(msgspec.Struct, kw_only=True, frozen=True):
    """Where the admin API listens (read at start). No port: on the API listener, and only if that is loopback."""

    host: str = "127.0.0.1"
    port: int | None = None


class IssuerConfig(msgspec.Struct, kw_only=True, frozen=True):
    """The built-in OAuth2 issuer (client_credentials) for the embedded default."""

    enabled: bool = True
    issuer: str = "http://127.0.0.1:8080"
    audience: str = "psgateway"
    token_ttl_seconds: int = 900
    # Relative paths are under the data dir; the key is generated on first start.
    signing_key_file: str = "issuer/signing-key.pem"
    # After a rotation the previous key stays in the JWKS this long, so tokens it signed keep verifying
    # until they expire (the longest token the CLI mints lives 8 hours).
    previous_key_grace_seconds: int = 8 * 3600
    # The tiers trust only the short internal tokens the gateway mints for each verified caller (RFC 8693-style
    # exchange): this audience, this lifetime at most. A revocation reaches the tiers within that lifetime.
    internal_audience: str = "psgateway-internal"
    internal_token_ttl_seconds: int = 120
    # People who sign in at the built-in issuer (authorization code + PKCE, for the pages).
    sign_in: SignInConfig = SignInConfig()

    def __post_init__(self) -> None:
        if self.internal_audience == self.audience:
            raise ValueError("issuer.internal_audience must differ from issuer.audience: tiers would accept "
                             "tokens handed to clients")
        if not 10 <= self.internal_token_ttl_seconds <= 900:
            raise ValueError("issuer.internal_token_ttl_seconds must be between 10 and 900")


class RetryConfig(msgspec.Struct, kw_only=True, frozen=True):
    """Retries of idempotent calls (GET/HEAD/OPTIONS/PUT/DELETE; POST only with an Idempotency-Key)."""

    max_retries: int = 2
    backoff_base_seconds: float = 0.05
    backoff_max_seconds: float = 1.0
    # A retry budget (as in Finagle/Envoy): retries may add at most this share of the calls, plus a floor,
    # so a struggling upstream is not buried under retries.
    budget_ratio: float = 0.2
    budget_min_per_second: float = 5.0
    # Besides connection failures (the upstream never saw the call), retry on these statuses.
    on_statuses: list[int] = []


class BreakerConfig(msgspec.Struct, kw_only=True, frozen=True):
    """A circuit breaker per upstream: closed -> open after consecutive failures -> half-open trial calls."""

    enabled: bool = True
    failure_threshold: int = 5
    open_seconds: float = 5.0
    half_open_max_calls: int = 1
    # Besides connection failures and timeouts, these upstream statuses count as failures.
    failure_statuses: list[int] = []


class UpstreamConfig(msgspec.Struct, kw_only=True, frozen=True):
    url: str
    timeout_seconds: float = 10.0
    connect_timeout_seconds: float = 2.0
    max_connections: int = 200
    retries: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()


class ApiKeyRecord(msgspec.Struct, kw_only=True, frozen=True):
    """An API key of a client: only its hash is stored (the key itself is shown once, when created)."""

    id: str
    hash: str  # sha256:<hex>
    created_at: str = ""


class ClientConfig(msgspec.Struct, kw_only=True, frozen=True):
    id: str
    name: str = ""
    layer: CallerLayer = "app"
    # ``scrypt$...`` (salted KDF) of the client secret; an older ``sha256:<hex>`` is accepted until the next rotation.
    secret_hash: str | None = None
    scopes: list[str] = []
    sla_tier: str = "bronze"
    allowed_layers: list[Layer] = []
    # May ask the built-in issuer for tokens on behalf of a person (demo logins, the catalog's try-it).
    user_tokens: bool = False
    # The catalog's try-it console may hand out tokens of this client (app clients only; see catalog.try_it).
    try_it: bool = False
    # Which issuers may vouch for this client: trusted issuer URLs, or "builtin" for the gateway's own.
    # Empty: the built-in issuer only. A token from any other issuer naming this client is refused.
    issuers: list[str] = []
    status: Literal["active", "revoked"] = "active"
    # Tokens issued before this (epoch seconds) are refused, whatever their exp: set by a revocation or a
    # secret rotation and kept by a restore, so restoring a client never revives its old tokens.
    not_before: int = 0
    # Optional: the client may call with ``X-API-Key`` instead of a bearer token.
    api_keys: list[ApiKeyRecord] = []
    # Where the built-in issuer may send a person back with an authorization code (exact match). A client with
    # these and no secret is a public client (a page, an app): authorization code with PKCE S256 only.
    redirect_uris: list[str] = []

    def __post_init__(self) -> None:
        for uri in self.redirect_uris:
            refused = redirect_uri_refusal(uri)
            if refused:
                raise ValueError(f"client {self.id!r}: redirect URI {uri!r} {refused}")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redirect_uri_refusal(uri: str) -> str | None:
    """Why a registered redirect URI is unsafe, or None: RFC 6749 3.1.2 (absolute, no fragment) and RFC 8252
    (https; http only to a loopback address; an app's private-use scheme in reverse-domain form, with a dot)."""
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
    except ValueError:
        return "is not a URI"
    if parts.fragment or "#" in uri:
        return "has a fragment (RFC 6749 section 3.1.2)"
    if "*" in uri or any(c.isspace() or ord(c) < 0x20 for c in uri):
        return "has a wildcard, a space or a control character"
    if parts.scheme == "https":
        return None if host else "has no host"
    if parts.scheme == "http":
        return None if is_loopback(host) else "is plain http to a host that is not loopback (RFC 8252 section 8.3)"
    if not parts.scheme:
        return "is not absolute"
    if "." not in parts.scheme or parts.netloc:
        return "is not https, loopback http nor an app's reverse-domain scheme (RFC 8252 section 7.1)"
    return None


class SlaTierConfig(msgspec.Struct, kw_only=True, frozen=True):
    requests_per_second: float
    burst: int
    daily_quota: int | None = None
    monthly_quota: int | None = None
    # For user tokens: what each person (token subject) may spend of the client's budget.
    per_subject: SubjectLimits | None = None

    def __post_init__(self) -> None:
        if self.requests_per_second <= 0 or self.burst < 1:
            raise ValueError("an SLA tier needs requests_per_second > 0 and burst >= 1")
        if (self.daily_quota is not None and self.daily_quota < 1) or (
                self.monthly_quota is not None and self.monthly_quota < 1):
            raise ValueError("SLA tier quotas must be >= 1 when set")


class ScopesConfig(msgspec.Struct, kw_only=True, frozen=True):
    read: list[str] = []
    write: list[str] = []


class ApiConfig(msgspec.Struct, kw_only=True, frozen=True):
    id: str  # "<layer>/<api>", e.g. "experience/mobile-time"
    version: int
    upstream: str
    contract: str  # path relative to the repository's contracts dir, e.g. experience/mobile-time/v1.yaml
    scopes: ScopesConfig = ScopesConfig()
    lifecycle: Literal["active", "deprecated", "retired"] = "active"
    # Overrides ``policies.validate`` for this API version (e.g. strict response validation).
    validate: ValidateConfig | None = None

    @property
    def layer(self) -> Layer:
        return self.id.split("/", 1)[0]  # type: ignore[return-value]

    @property
    def base_path(self) -> str:
        return f"/{self.id}/v{self.version}"


class AdminConfig(msgspec.Struct, kw_only=True, frozen=True):
    # How often an instance looks for changes another instance made through the admin API (shared SQL).
    sync_interval_seconds: float = 2.0


class TryItConfig(msgspec.Struct, kw_only=True, frozen=True):
    """The catalog's try-it console: short tokens of clients marked ``try_it: true``. Off unless turned on.

    ``signed_in``: only a caller presenting a valid user token gets one, for themselves (its subject).
    ``demo``: anyone gets one, for any person (an embedded demo); every catalog page shows a banner saying so.
    """

    enabled: bool = False
    mode: Literal["signed_in", "demo"] = "signed_in"
    ttl_seconds: int = 300


class CatalogConfig(msgspec.Struct, kw_only=True, frozen=True):
    """The developer catalog at /catalog."""

    enabled: bool = True
    try_it: TryItConfig = TryItConfig()


class GatewayConfig(msgspec.Struct, kw_only=True, frozen=True):
    listen: Listen = Listen()
    admin_listen: AdminListen = AdminListen()
    issuer: IssuerConfig = IssuerConfig()
    max_body_bytes: int = 1_048_576
    upstreams: dict[str, UpstreamConfig]
    sla_tiers: dict[str, SlaTierConfig] = {}
    clients: list[ClientConfig] = []
    apis: list[ApiConfig] = []
    # Modules that define more policies (each a ``POLICY``; policies/README.md). The packages under policies/
    # are always available.
    policy_modules: list[str] = []
    # Policy name -> its global config, read by that policy's schema. Built-in policies not named here are bound
    # globally with their defaults.
    policies: dict[str, Any] = {}
    # Policies bound to a layer, an API (version), a route or a client (policies/chain.py).
    bindings: list[BindingConfig] = []
    # Durable gateway state (audit log, admin changes to clients and limits). Empty: SQLite in the data dir.
    database_url: str | None = None
    admin: AdminConfig = AdminConfig()
    catalog: CatalogConfig = CatalogConfig()
    # One JSON line per call on stderr, written as the call ends (metrics and audit are batched regardless).
    access_log: bool = True

    def __post_init__(self) -> None:
        self._resolve_policies()
        seen: set[str] = set()
        for api in self.apis:
            if api.upstream not in self.upstreams:
                raise ValueError(f"api {api.id} v{api.version} names unknown upstream {api.upstream!r}")
            if api.layer not in ("system", "process", "experience"):
                raise ValueError(f"api id {api.id!r} must start with system/, process/ or experience/")
            if api.base_path in seen:
                raise ValueError(f"api {api.base_path} is declared twice")
            seen.add(api.base_path)
        ids = [c.id for c in self.clients]
        if len(ids) != len(set(ids)):
            raise ValueError("client ids must be unique")
        trusted = {i.issuer for i in self.policy(AuthenticateConfig).trusted_issuers}
        for client in self.clients:
            if self.sla_tiers and client.sla_tier not in self.sla_tiers:
                raise ValueError(f"client {client.id} names unknown SLA tier {client.sla_tier!r}")
            for issuer in client.issuers:
                if issuer != BUILTIN_ISSUER and issuer != self.issuer.issuer and issuer not in trusted:
                    raise ValueError(f"client {client.id} names issuer {issuer!r}, which is not in "
                                     "policies.authenticate.trusted_issuers")
            if client.try_it and client.layer != "app":
                # Tier and admin identities (process, experience, system, admin) are never handed out.
                raise ValueError(f"client {client.id} is of layer {client.layer!r}: only app clients may be "
                                 "offered for try-it")
        api_ids = {api.id for api in self.apis}
        for limit in self.policy(RateLimitConfig).limits:
            if limit.api not in api_ids:
                raise ValueError(f"policies.rate_limit.limits names unknown api {limit.api!r}")


    def _resolve_policies(self) -> None:
        """Each policy's config read by its own schema (in place: the dict is this config's own)."""
        available = registry.available(self.policy_modules)
        for name, raw in list(self.policies.items()):
            spec = registry.lookup(available, name, f"policies.{name}")
            try:
                self.policies[name] = spec.parse({} if raw is None else raw)
            except (msgspec.ValidationError, ValueError) as exc:
                raise ValueError(f"policies.{name}: {exc}") from exc
        for spec in available.values():
            if spec.enabled_by_default and spec.name not in self.policies:
                self.policies[spec.name] = spec.config()
        try:
            resolve_bindings(available, self.policies, self.bindings, [c.id for c in self.clients],
                             [a.id for a in self.apis])
        except ChainError as exc:
            raise ValueError(str(exc)) from exc

    def policy(self, kind: type[C]) -> C:
        """The global config of the policy whose schema is ``kind`` (its defaults when it is not bound)."""
        for config in self.policies.values():
            if type(config) is kind:
                return config
        return kind()

    def policy_bindings(self) -> list[BindingConfig]:
        """``bindings`` plus what ``apis`` says per version (its own ``validate``)."""
        implicit = [BindingConfig(policy="validate", api=api.id, version=api.version,
                                  config=msgspec.to_builtins(api.validate))
                    for api in self.apis if api.validate is not None]
        return [*self.bindings, *implicit]


def interpolate(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"gateway config needs ${{{name}}}, which is not set")

    return _VAR.sub(replace, text)


def parse(text: str, env: Mapping[str, str] | None = None, source: str = "gateway.yaml") -> GatewayConfig:
    try:
        raw = yaml.safe_load(interpolate(text, os.environ if env is None else env))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    try:
        return msgspec.convert(raw, GatewayConfig, strict=False)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def load(path: str | Path, env: Mapping[str, str] | None = None) -> GatewayConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    return parse(text, env, str(path))
