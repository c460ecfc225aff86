"""Settings: one Struct per process, read once at start from a file and the environment, then passed down.

Every field ``foo_bar`` of a settings Struct is read from ``PSGW_FOO_BAR`` (environment wins) or from the
key ``foo_bar`` of the YAML file named by ``PSGW_SETTINGS_FILE``. Values are converted and validated by
msgspec, so a bad value stops the process at start with a clear message instead of failing later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec
import yaml

from runtime.untrusted import DEFAULT_MAX_JSON_DEPTH, MAX_JSON_DEPTH_CEILING

ENV_PREFIX = "PSGW_"

S = TypeVar("S", bound=msgspec.Struct)


class SettingsError(ValueError):
    pass


class TierSettings(msgspec.Struct, kw_only=True):
    """What every tier process needs."""

    host: str = "127.0.0.1"
    port: int = 8100
    log_level: str = "INFO"
    data_dir: str = ".data"
    # The gateway every outbound tier-to-tier call goes through, and which issues this tier's token.
    gateway_url: str = "http://127.0.0.1:8080"
    client_id: str = ""
    client_secret: str = ""
    # Back-pressure on each outbound pool (runtime.downstream): calls in flight, calls waiting (0: default, 4 per
    # connection) and the longest wait for a connection before a fast 503 downstream-saturated.
    outbound_max_connections: Annotated[int, msgspec.Meta(ge=1)] = 100
    outbound_max_waiting: Annotated[int, msgspec.Meta(ge=0)] = 0
    outbound_max_wait_seconds: Annotated[float, msgspec.Meta(gt=0)] = 2.0
    # Tokens this tier accepts: only the gateway's internal tokens (gateway.yaml issuer.internal_audience), which it
    # mints for each caller it verified; a token handed to a client, sent here directly, is refused.
    token_issuer: str = "http://127.0.0.1:8080"  # noqa: S105 - an issuer URL, not a secret
    token_audience: str = "psgateway-internal"  # noqa: S105 - an audience name, not a secret
    jwks_url: str = ""
    outbound_timeout_seconds: float = 10.0
    # JSON bodies nested deeper get 400 at the edge, before the framework's parser recurses into them.
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH

    def __post_init__(self) -> None:
        if not 1 <= self.max_json_depth <= MAX_JSON_DEPTH_CEILING:
            raise ValueError(f"max_json_depth must be between 1 and {MAX_JSON_DEPTH_CEILING}")

    @property
    def effective_jwks_url(self) -> str:
        return self.jwks_url or self.gateway_url.rstrip("/") + "/.well-known/jwks.json"


def _coerce_env(value: str, annotation: Any) -> Any:
    # Lists and dicts come from the environment as JSON; scalars as plain text.
    if value[:1] in "[{":
        try:
            return msgspec.json.decode(value)
        except msgspec.DecodeError:
            return value
    return value


def load_settings(
    cls: type[S],
    env: Mapping[str, str] | None = None,
    file: str | Path | None = None,
    **overrides: Any,
) -> S:
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    file = file or env.get(ENV_PREFIX + "SETTINGS_FILE")
    if file:
        try:
            loaded = yaml.safe_load(Path(file).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise SettingsError(f"cannot read settings file {file}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise SettingsError(f"settings file {file} must hold a mapping")
        raw.update(loaded)
    annotations = {f.name: f.type for f in msgspec.structs.fields(cls)}
    for name, annotation in annotations.items():
        key = ENV_PREFIX + name.upper()
        if key in env:
            raw[name] = _coerce_env(env[key], annotation)
    raw.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(raw) - set(annotations)
    for name in unknown:
        raw.pop(name)
    try:
        return msgspec.convert(raw, cls, strict=False)
    except (msgspec.ValidationError, ValueError) as exc:
        raise SettingsError(f"invalid settings for {cls.__name__}: {exc}") from exc
