"""What the security team can do to the live gateway; every change is validated by compiling the resulting
state before it is stored, then stored (durable, shared by every instance), swapped in, and audited with
who, what, before and after."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import secrets
import time
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from gateway import config as gateway_config
from gateway.config import ClientConfig, ConfigError, SlaTierConfig
from gateway.issuer import hash_secret
from gateway.live import CREDENTIAL_FIELDS, Change, effective_config, export_yaml, overrides_after_apply, plan
from gateway.store import Overrides
from policies.audit import ChangeEntry
from policies.authenticate import hash_api_key
from policies.exchange import CallerLayer, Layer
from policies.rate_limit import LimitConfig, RateLimitConfig
from runtime import correlation
from runtime.problems import Conflict, NotFound, ProblemError
from runtime.tokens import Principal

if TYPE_CHECKING:
    from gateway.app import Gateway


class NewClient(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: str
    name: str = ""
    layer: CallerLayer = "app"
    scopes: list[str] = []
    sla_tier: str = "bronze"
    allowed_layers: list[Layer] = []
    user_tokens: bool = False
    issuers: list[str] = []
    try_it: bool = False


class ClientChanges(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str | None = None
    scopes: list[str] | None = None
    sla_tier: str | None = None
    allowed_layers: list[Layer] | None = None
    user_tokens: bool | None = None
    status: Literal["active", "revoked"] | None = None
    issuers: list[str] | None = None
    try_it: bool | None = None


class ClientView(msgspec.Struct, kw_only=True):
    id: str
    name: str
    layer: str
    scopes: list[str]
    sla_tier: str
    allowed_layers: list[str]
    user_tokens: bool
    status: str
    has_secret: bool
    secret_fingerprint: str | None
    api_keys: list[str]
    source: str  # file | admin | file+admin
    issuers: list[str] = []
    try_it: bool = False
    not_before: int = 0  # tokens issued before this (epoch seconds) are refused


class Issued(msgspec.Struct, kw_only=True):
    """A credential, shown this once: only its hash is kept."""

    client_id: str
    client_secret: str | None = None
    api_key_id: str | None = None
    api_key: str | None = None


class AdminError(ProblemError):
    status = 422
    slug = "admin-change-refused"
    title = "Change refused"


def _fingerprint(secret_hash: str | None) -> str | None:
    # A prefix of the hash: enough to tell two secrets apart in an audit entry, useless to an attacker.
    return secret_hash[:19] if secret_hash else None


class AdminService:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    # --- views -------------------------------------------------------------------------------------------

    def view(self, client: ClientConfig) -> ClientView:
        in_file = any(c.id == client.id for c in self.gateway.file_config.clients)
        overridden = client.id in self.gateway.overrides.clients
        return ClientView(
            id=client.id, name=client.name, layer=client.layer, scopes=list(client.scopes),
            sla_tier=client.sla_tier, allowed_layers=list(client.allowed_layers), user_tokens=client.user_tokens,
            status=client.status, has_secret=bool(client.secret_hash),
            secret_fingerprint=_fingerprint(client.secret_hash), api_keys=[k.id for k in client.api_keys],
            source="file+admin" if in_file and overridden else "file" if in_file else "admin",
            issuers=list(client.issuers), try_it=client.try_it, not_before=client.not_before,
        )

    def clients(self) -> list[ClientView]:
        return [self.view(c) for c in self.gateway.state.config.clients]

    def client(self, client_id: str) -> ClientConfig:
        found = self.gateway.state.clients.get(client_id)
        if found is None:
            raise NotFound(f"no client {client_id!r}", reason="unknown_client")
        return found

    # --- changes -----------------------------------------------------------------------------------------

    async def _commit(self, actor: Principal, action: str, kind: str, target: str, before: Any, after: Any,
                      overrides: Overrides, store: list[tuple[str, str, Any]]) -> None:
        """Compile the state these overrides give (refused when it does not compile), store, swap, audit."""
        try:
            await self.gateway.preview(overrides)
        except ConfigError as exc:
            raise AdminError(str(exc), reason="invalid_state") from exc
        for store_kind, key, document in store:
            if document is None:
                await self.gateway.override_store.remove(store_kind, key)  # type: ignore[arg-type]
            else:
                await self.gateway.override_store.put(store_kind, key, document,  # type: ignore[arg-type]
                                                      _actor_name(actor))
        await self.gateway.rebuild(reread_file=False, reason=action)
        await self.record(actor, action, kind, target, before, after)

    async def record(self, actor: Principal, action: str, kind: str, target: str, before: Any, after: Any) -> None:
        await self.gateway.audit.record_change(ChangeEntry(
            at=dt.datetime.now(dt.UTC), actor_client=actor.client_id, actor_subject=actor.subject,
            action=action, target_kind=kind, target_id=target,
            before=msgspec.to_builtins(before), after=msgspec.to_builtins(after),
            correlation_id=correlation.current_correlation_id(),
        ))

    def _proposed(self) -> Overrides:
        return copy.deepcopy(self.gateway.overrides)

    async def _change_client(self, actor: Principal, action: str, client_id: str, fields: dict[str, Any]) -> None:
        before = self.view(self.client(client_id))
        overrides = self._proposed()
        merged = {**overrides.clients.get(client_id, {}), **fields}
        overrides.clients[client_id] = merged
        after_config = msgspec.convert({**msgspec.to_builtins(self.client(client_id)), **fields}, ClientConfig)
        await self._commit(actor, action, "client", client_id, before, self.view(after_config), overrides,
                           [("client", client_id, merged)])

    async def create_client(self, actor: Principal, new: NewClient) -> tuple[ClientView, Issued]:
        if new.id in self.gateway.state.clients:
            raise Conflict(f"client {new.id!r} exists", reason="client_exists")
        secret = secrets.token_urlsafe(32)
        secret_hash = await asyncio.to_thread(hash_secret, secret)
        record = {**msgspec.to_builtins(new), "secret_hash": secret_hash, "status": "active"}
        overrides = self._proposed()
        overrides.clients[new.id] = record
        view = self.view(msgspec.convert(record, ClientConfig))
        view.source = "admin"
        await self._commit(actor, "client.create", "client", new.id, None, view, overrides,
                           [("client", new.id, record)])
        return self.view(self.client(new.id)), Issued(client_id=new.id, client_secret=secret)

    async def update_client(self, actor: Principal, client_id: str, changes: ClientChanges) -> ClientView:
        fields = {k: v for k, v in msgspec.to_builtins(changes).items() if v is not None}
        if not fields:
            raise AdminError("nothing to change", reason="empty_change")
        if fields.get("status") == "revoked" and self.client(client_id).status != "revoked":
            fields["not_before"] = _not_before()  # a revocation by PATCH ends live tokens like /revoke does
        await self._change_client(actor, "client.update", client_id, fields)
        return self.view(self.client(client_id))

    async def rotate_secret(self, actor: Principal, client_id: str) -> Issued:
        client = self.client(client_id)
        if client.secret_hash is None and client.redirect_uris:
            # A page or a phone app cannot keep a secret: one would turn it confidential and end its sign-in.
            raise AdminError(f"client {client_id!r} is a public client (sign-in with PKCE); it has no secret to "
                             "rotate: revoke it to end its tokens", reason="public_client")
        secret = secrets.token_urlsafe(32)
        secret_hash = await asyncio.to_thread(hash_secret, secret)  # scrypt: CPU-heavy, off the event loop
        # Tokens issued with the old secret end with it.
        await self._change_client(actor, "client.rotate_secret", client_id,
                                  {"secret_hash": secret_hash, "not_before": _not_before()})
        return Issued(client_id=client_id, client_secret=secret)

    async def revoke(self, actor: Principal, client_id: str) -> ClientView:
        if self.client(client_id).status == "revoked":
            return self.view(self.client(client_id))
        await self._change_client(actor, "client.revoke", client_id,
                                  {"status": "revoked", "not_before": _not_before()})
        return self.view(self.client(client_id))

    async def restore(self, actor: Principal, client_id: str) -> ClientView:
        """Let a revoked client in again: new tokens only, since the revocation's not-before stays."""
        if self.client(client_id).status == "active":
            return self.view(self.client(client_id))
        await self._change_client(actor, "client.restore", client_id, {"status": "active"})
        return self.view(self.client(client_id))

    async def create_api_key(self, actor: Principal, client_id: str) -> Issued:
        client = self.client(client_id)
        key_id = "key_" + secrets.token_hex(4)
        api_key = f"psgw_{secrets.token_urlsafe(32)}"
        keys = [*msgspec.to_builtins(client.api_keys),
                {"id": key_id, "hash": hash_api_key(api_key), "created_at": dt.datetime.now(dt.UTC).isoformat()}]
        await self._change_client(actor, "client.create_api_key", client_id, {"api_keys": keys})
        return Issued(client_id=client_id, api_key_id=key_id, api_key=api_key)

    async def delete_api_key(self, actor: Principal, client_id: str, key_id: str) -> ClientView:
        client = self.client(client_id)
        keys = [k for k in msgspec.to_builtins(client.api_keys) if k["id"] != key_id]
        if len(keys) == len(client.api_keys):
            raise NotFound(f"client {client_id!r} has no API key {key_id!r}", reason="unknown_api_key")
        await self._change_client(actor, "client.delete_api_key", client_id, {"api_keys": keys})
        return self.view(self.client(client_id))

    async def put_sla_tier(self, actor: Principal, name: str, tier: SlaTierConfig) -> SlaTierConfig:
        before = self.gateway.state.config.sla_tiers.get(name)
        document = msgspec.to_builtins(tier)
        overrides = self._proposed()
        overrides.sla_tiers[name] = document
        await self._commit(actor, "sla_tier.put", "sla_tier", name, before, tier, overrides,
                           [("sla_tier", name, document)])
        return self.gateway.state.config.sla_tiers[name]

    async def put_rate_limits(self, actor: Principal, limits: list[LimitConfig]) -> list[LimitConfig]:
        before = self.gateway.state.config.policy(RateLimitConfig).limits
        document = msgspec.to_builtins(limits)
        overrides = self._proposed()
        overrides.rate_limits = document
        await self._commit(actor, "rate_limits.put", "rate_limits", "policies.rate_limit.limits", before, limits,
                           overrides, [("rate_limits", "limits", document)])
        return self.gateway.state.config.policy(RateLimitConfig).limits

    # --- declarative state -------------------------------------------------------------------------------

    def plan(self) -> list[Change]:
        return plan(self.gateway.file_config, self.gateway.state.config)

    async def plan_file(self) -> list[Change]:
        """What ``apply`` would change: gateway.yaml as it is on disk now against the live state."""
        file_config = self.gateway.file_config
        if self.gateway.config_file is not None:
            try:
                file_config = await asyncio.to_thread(gateway_config.load, self.gateway.config_file)
                # Compiled too: a binding naming no operation, or a policy refusing its config, shows here.
                await self.gateway.dry_run(effective_config(file_config, self.gateway.overrides))
            except ConfigError as exc:
                raise AdminError(f"gateway.yaml is refused: {exc}", reason="invalid_config") from exc
        return plan(file_config, self.gateway.state.config)

    async def apply(self, actor: Principal) -> list[Change]:
        """Make the live state what gateway.yaml says (re-read first), keeping credentials."""
        try:
            await self.gateway.rebuild(reread_file=True, reason="policy.apply (file)")
        except ConfigError as exc:
            raise AdminError(f"gateway.yaml is refused: {exc}", reason="invalid_config") from exc
        changes = self.plan()
        kept = overrides_after_apply(self.gateway.file_config, self.gateway.overrides)
        overrides = Overrides(clients=kept, revoked_tokens=self.gateway.overrides.revoked_tokens)
        store: list[tuple[str, str, Any]] = [("client", cid, None) for cid in self.gateway.overrides.clients
                                             if cid not in kept]
        store += [("client", cid, fields) for cid, fields in kept.items()]
        store += [("sla_tier", name, None) for name in self.gateway.overrides.sla_tiers]
        if self.gateway.overrides.rate_limits is not None:
            store.append(("rate_limits", "limits", None))
        applied = [c for c in changes if not c.kept_by_apply]
        await self._commit(actor, "policy.apply", "gateway", "gateway.yaml",
                           [msgspec.to_builtins(c) for c in applied], {"applied_changes": len(applied)},
                           overrides, store)
        return applied

    def export(self, *, with_secrets: bool = False) -> str:
        return export_yaml(self.gateway.state.config, with_secrets=with_secrets)

    async def reload(self, actor: Principal) -> int:
        try:
            state = await self.gateway.reload(actor_client=actor.client_id, actor_subject=actor.subject,
                                              reason="admin reload")
        except ConfigError as exc:
            raise AdminError(f"gateway.yaml is refused; the previous state keeps serving: {exc}",
                             reason="invalid_config") from exc
        return state.version

    async def refresh_issuer_keys(self, actor: Principal) -> dict[str, list[str]]:
        """Fetch every trusted issuer's JWKS now: a key an IdP withdrew stops validating at once."""
        assert self.gateway.verifier is not None
        keys = await self.gateway.verifier.refetch_keys()
        await self.record(actor, "issuers.refresh_keys", "issuers", "policies.authenticate.trusted_issuers",
                          None, keys)
        return keys

    async def rotate_issuer_key(self, actor: Principal) -> dict[str, Any]:
        before = {"kid": self.gateway.issuer.kid}
        result = self.gateway.issuer.rotate()
        if self.gateway.verifier is not None:
            self.gateway.verifier.set_static_keys(self.gateway.issuer.issuer, self.gateway.issuer.public_keys)
        await self.record(actor, "issuer.rotate_key", "issuer", self.gateway.issuer.issuer, before, result)
        return result


def _not_before() -> int:
    # The next second: every token issued up to now (iat is in whole seconds) is refused; the issuer dates new
    # tokens no earlier than this, so a client that fetches one straight after a rotation is not refused.
    return int(time.time()) + 1


def _actor_name(actor: Principal) -> str:
    return actor.client_id if actor.subject == actor.client_id else f"{actor.client_id}/{actor.subject}"


__all__ = ["CREDENTIAL_FIELDS", "AdminService", "ClientChanges", "ClientView", "Issued", "NewClient"]
