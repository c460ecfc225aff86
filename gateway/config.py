"""gateway.yaml: the whole declared state of the gateway, as typed, validated Structs.

Values may use ``${VAR}`` or ``${VAR:-default}`` so one file serves a laptop, CI and a cluster.
A bad file stops the gateway at start (or is refused by a live reload) with a message naming the field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec
import yaml

from policies.authenticate import AuthenticateConfig
from policies.authorize import AuthorizeConfig
from policies.exchange import CallerLayer, Layer

_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    pass


class Listen(msgspec.Struct, kw_only=True, frozen=True):
    host: str = "127.0.0.1"
    port: int = 8080


class IssuerConfig(msgspec.Struct, kw_only=True, frozen=True):
    """The built-in OAuth2 issuer (client_credentials) for the embedded default."""

    enabled: bool = True
    issuer: str = "http://127.0.0.1:8080"
    audience: str = "psgateway"
    token_ttl_seconds: int = 900
    # Relative paths are under the data dir; the key is generated on first start.
    signing_key_file: str = "issuer/signing-key.pem"


class UpstreamConfig(msgspec.Struct, kw_only=True, frozen=True):
    url: str
    timeout_seconds: float = 10.0
    connect_timeout_seconds: float = 2.0
    max_connections: int = 200


class ClientConfig(msgspec.Struct, kw_only=True, frozen=True):
    id: str
    name: str = ""
    layer: CallerLayer = "app"
    # ``sha256:<hex>`` of the client secret; secrets are long random strings, so a fast hash is enough.
    secret_hash: str | None = None
    scopes: list[str] = []
    sla_tier: str = "bronze"
    allowed_layers: list[Layer] = []
    # May ask the built-in issuer for tokens on behalf of a person (demo logins, the catalog's try-it).
    user_tokens: bool = False
    status: Literal["active", "revoked"] = "active"


class SlaTierConfig(msgspec.Struct, kw_only=True, frozen=True):
    requests_per_second: float
    burst: int
    daily_quota: int | None = None
    monthly_quota: int | None = None


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

    @property
    def layer(self) -> Layer:
        return self.id.split("/", 1)[0]  # type: ignore[return-value]

    @property
    def base_path(self) -> str:
        return f"/{self.id}/v{self.version}"


class PoliciesConfig(msgspec.Struct, kw_only=True, frozen=True):
    authenticate: AuthenticateConfig = AuthenticateConfig()
    authorize: AuthorizeConfig = AuthorizeConfig()


class GatewayConfig(msgspec.Struct, kw_only=True, frozen=True):
    listen: Listen = Listen()
    issuer: IssuerConfig = IssuerConfig()
    max_body_bytes: int = 1_048_576
    upstreams: dict[str, UpstreamConfig]
    sla_tiers: dict[str, SlaTierConfig] = {}
    clients: list[ClientConfig] = []
    apis: list[ApiConfig] = []
    policies: PoliciesConfig = PoliciesConfig()

    def __post_init__(self) -> None:
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
        for client in self.clients:
            if self.sla_tiers and client.sla_tier not in self.sla_tiers:
                raise ValueError(f"client {client.id} names unknown SLA tier {client.sla_tier!r}")


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
