"""Live state = gateway.yaml + admin overrides; the plan (what ``apply`` would change) and the export.

Admin changes are stored field by field per client (a rotation stores only the new ``secret_hash``), so an
edit of gateway.yaml still reaches the fields the admin API never touched. Credentials (secret hash, API
keys, revocation) are managed only through the admin API/CLI: ``apply`` keeps them, everything else it
brings back to what the file says (decK-style sync), including removing clients only the admin API created.
"""

from __future__ import annotations

from typing import Any

import msgspec
import yaml

from gateway.config import ConfigError, GatewayConfig
from gateway.store import Overrides
from policies.authenticate import AuthenticateConfig
from policies.rate_limit import RateLimitConfig

CREDENTIAL_FIELDS = frozenset({"secret_hash", "api_keys", "status", "not_before"})
# Sections the plan compares item by item (keyed by id); every other section is compared field by field.
_ITEMISED = ("clients", "sla_tiers", "apis", "upstreams")


class Change(msgspec.Struct, kw_only=True):
    """One difference between gateway.yaml and the live state."""

    kind: str  # client | sla_tier | rate_limits | api | upstream | trusted_issuer | section
    id: str
    action: str  # add | change | remove (what ``apply`` would do to the live state)
    fields: dict[str, dict[str, Any]] = {}  # field -> {"file": ..., "live": ...}
    kept_by_apply: bool = False  # credential-only differences survive ``apply``


def effective_config(file_config: GatewayConfig, overrides: Overrides) -> GatewayConfig:
    """The file with the overrides laid on top, validated like the file itself (ConfigError when it is not)."""
    raw = msgspec.to_builtins(file_config)
    clients = {c["id"]: c for c in raw.get("clients", [])}
    for client_id, fields in overrides.clients.items():
        clients[client_id] = {**clients.get(client_id, {}), **fields, "id": client_id}
    raw["clients"] = list(clients.values())
    raw["sla_tiers"] = {**raw.get("sla_tiers", {}), **overrides.sla_tiers}
    if overrides.rate_limits is not None:
        raw.setdefault("policies", {}).setdefault("rate_limit", {})["limits"] = overrides.rate_limits
    try:
        return msgspec.convert(raw, GatewayConfig)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ConfigError(f"live state: {exc}") from exc


def _redact(field: str, value: Any) -> Any:
    if field == "secret_hash" and isinstance(value, str):
        return value[:15] + "..."
    if field == "api_keys" and isinstance(value, list):
        return [k.get("id") for k in value if isinstance(k, dict)]
    return value


def plan(file_config: GatewayConfig, live: GatewayConfig) -> list[Change]:
    """What differs between the file and the live state, as the changes ``apply`` would make to the live state."""
    changes: list[Change] = []
    file_clients = {c.id: msgspec.to_builtins(c) for c in file_config.clients}
    live_clients = {c.id: msgspec.to_builtins(c) for c in live.clients}
    for client_id in sorted(file_clients.keys() | live_clients.keys()):
        in_file, in_live = file_clients.get(client_id), live_clients.get(client_id)
        if in_file is None:
            changes.append(Change(kind="client", id=client_id, action="remove"))
        elif in_live is None:
            changes.append(Change(kind="client", id=client_id, action="add"))
        else:
            fields = {k: {"file": _redact(k, in_file.get(k)), "live": _redact(k, in_live.get(k))}
                      for k in sorted(in_file.keys() | in_live.keys()) if in_file.get(k) != in_live.get(k)}
            if fields:
                changes.append(Change(kind="client", id=client_id, action="change", fields=fields,
                                      kept_by_apply=set(fields) <= CREDENTIAL_FIELDS))
    file_tiers = {k: msgspec.to_builtins(v) for k, v in file_config.sla_tiers.items()}
    live_tiers = {k: msgspec.to_builtins(v) for k, v in live.sla_tiers.items()}
    for name in sorted(file_tiers.keys() | live_tiers.keys()):
        in_file, in_live = file_tiers.get(name), live_tiers.get(name)
        if in_file == in_live:
            continue
        if in_file is None:
            changes.append(Change(kind="sla_tier", id=name, action="remove"))
        elif in_live is None:
            changes.append(Change(kind="sla_tier", id=name, action="add"))
        else:
            changes.append(Change(kind="sla_tier", id=name, action="change", fields={
                k: {"file": in_file.get(k), "live": in_live.get(k)}
                for k in sorted(in_file.keys() | in_live.keys()) if in_file.get(k) != in_live.get(k)}))
    file_limits = msgspec.to_builtins(file_config.policy(RateLimitConfig).limits)
    live_limits = msgspec.to_builtins(live.policy(RateLimitConfig).limits)
    if file_limits != live_limits:
        changes.append(Change(kind="rate_limits", id="policies.rate_limit.limits", action="change",
                              fields={"limits": {"file": file_limits, "live": live_limits}}))
    changes += _itemised("api", {a.base_path: msgspec.to_builtins(a) for a in file_config.apis},
                         {a.base_path: msgspec.to_builtins(a) for a in live.apis})
    changes += _itemised("upstream", msgspec.to_builtins(file_config.upstreams), msgspec.to_builtins(live.upstreams))
    file_auth, live_auth = file_config.policy(AuthenticateConfig), live.policy(AuthenticateConfig)
    changes += _itemised("trusted_issuer", {i.issuer: msgspec.to_builtins(i) for i in file_auth.trusted_issuers},
                         {i.issuer: msgspec.to_builtins(i) for i in live_auth.trusted_issuers})
    file_raw, live_raw = msgspec.to_builtins(file_config), msgspec.to_builtins(live)
    for section in sorted(file_raw.keys() | live_raw.keys()):
        if section in _ITEMISED:
            continue
        if section == "policies":
            for name in sorted(file_raw[section].keys() | live_raw[section].keys()):
                skip = {"rate_limit": "limits", "authenticate": "trusted_issuers"}.get(name)
                changes += _section(f"policies.{name}", file_raw[section].get(name), live_raw[section].get(name),
                                    skip)
        else:
            changes += _section(section, file_raw.get(section), live_raw.get(section), None)
    return changes


def _itemised(kind: str, in_file: dict[str, Any], in_live: dict[str, Any]) -> list[Change]:
    changes = []
    for key in sorted(in_file.keys() | in_live.keys()):
        file_item, live_item = in_file.get(key), in_live.get(key)
        if file_item == live_item:
            continue
        if file_item is None:
            changes.append(Change(kind=kind, id=key, action="remove"))
        elif live_item is None:
            changes.append(Change(kind=kind, id=key, action="add"))
        else:
            changes.append(Change(kind=kind, id=key, action="change", fields={
                k: {"file": file_item.get(k), "live": live_item.get(k)}
                for k in sorted(file_item.keys() | live_item.keys()) if file_item.get(k) != live_item.get(k)}))
    return changes


def _section(name: str, in_file: Any, in_live: Any, skip: str | None) -> list[Change]:
    if not isinstance(in_file, dict) or not isinstance(in_live, dict):
        if in_file == in_live:
            return []
        return [Change(kind="section", id=name, action="change", fields={"value": {"file": in_file, "live": in_live}})]
    fields = {k: {"file": in_file.get(k), "live": in_live.get(k)}
              for k in sorted(in_file.keys() | in_live.keys()) if k != skip and in_file.get(k) != in_live.get(k)}
    return [Change(kind="section", id=name, action="change", fields=fields)] if fields else []


def overrides_after_apply(file_config: GatewayConfig, overrides: Overrides) -> dict[str, dict[str, Any]]:
    """The client overrides ``apply`` keeps: the credential fields of clients the file declares."""
    declared = {c.id for c in file_config.clients}
    kept: dict[str, dict[str, Any]] = {}
    for client_id, fields in overrides.clients.items():
        if client_id not in declared:
            continue
        credentials = {k: v for k, v in fields.items() if k in CREDENTIAL_FIELDS}
        if credentials:
            kept[client_id] = credentials
    return kept


def export_yaml(live: GatewayConfig, *, with_secrets: bool = False) -> str:
    """The live state as a gateway.yaml document (environment references are resolved).

    Secret and API-key hashes are left out unless asked for: an export is reviewed, diffed and pasted around,
    and even a salted hash is something to guess secrets against."""
    document = msgspec.to_builtins(live)
    if not with_secrets:
        for client in document.get("clients", []):
            client.pop("secret_hash", None)
            for key in client.get("api_keys", []):
                key.pop("hash", None)
    header = "# psgateway live state, exported by `psgw policy export` (review, then commit as gateway.yaml)\n"
    return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
