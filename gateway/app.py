"""The gateway process: an ASGI app whose hot path (/system, /process, /experience) bypasses the framework.

API calls go straight from the ASGI scope to the policy chain and the upstream pool; everything else (token
endpoint, JWKS, health, metrics, admin) is a regular Litestar app.

Reloads (SIGHUP, ``POST /admin/v1/reload``, an admin change, a change another instance made) compile a whole
new state first and then swap one reference; calls in flight finish on the state they started with, and
resources the new state no longer uses (upstream pools, a Redis client) are closed only after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Hashable
from pathlib import Path
from typing import Any

import msgspec

from gateway import config as gateway_config
from gateway.admin_listener import AdminListener, admin_on_api_listener, not_found
from gateway.config import ConfigError, GatewayConfig
from gateway.control import create_control_app
from gateway.internal_tokens import InternalTokens
from gateway.issuer import Issuer, has_demo_secret
from gateway.live import Change, effective_config, plan
from gateway.proxy import Proxy
from gateway.settings import GatewaySettings
from gateway.state import CompiledState, ContractCache, compile_state
from gateway.store import Overrides, OverrideStore, create_engine, database_url
from gateway.telemetry import Telemetry
from gateway.upstreams import Upstream
from policies.audit import AuditConfig, AuditLog, ChangeEntry, SqlAuditStore
from policies.authenticate import API_KEY_ISSUER, AuthenticateConfig
from policies.registry import PolicySpec, PolicyStore
from runtime import correlation
from runtime.heap import freeze_startup_heap
from runtime.tokens import Principal, TokenVerifier, TrustedIssuer

log = logging.getLogger("gateway.app")


def changed_between(old: GatewayConfig, new: GatewayConfig) -> list[Change]:
    """What a reload changed: the plan from the old state to the new one, every section included."""
    return plan(new, old)

API_PREFIXES = ("/system/", "/process/", "/experience/")


class Gateway:
    def __init__(self, config: GatewayConfig, data_dir: Path, *, config_file: Path | None = None,
                 settings: GatewaySettings | None = None) -> None:
        settings = settings or GatewaySettings()
        self.settings = settings
        self.data_dir = data_dir
        self.config_file = config_file
        self.instance = f"{socket.gethostname()}:{os.getpid()}"
        self.file_config = config
        self.overrides = Overrides()
        self.issuer = Issuer(config.issuer, data_dir)
        self.internal_tokens = InternalTokens(self.issuer, config.issuer)
        self.engine = create_engine(database_url(settings.database_url or config.database_url, data_dir))
        self.override_store = OverrideStore(self.engine)
        self.audit = AuditLog(SqlAuditStore(self.engine), config.policy(AuditConfig))
        self.telemetry = Telemetry()
        self.contracts = ContractCache()
        self.upstreams: dict[str, Upstream] = {}
        self._verifier_key: tuple[Any, ...] | None = None
        self.verifier: TokenVerifier | None = None
        # Policies' stores by (policy, store key), reused across compiles while their key is unchanged; the names
        # of those whose policy cannot serve without them (``/readyz`` follows those).
        self.policy_stores: dict[tuple[str, Hashable], PolicyStore] = {}
        self.required_stores: dict[str, PolicyStore] = {}
        self._retired: list[Callable[[], Awaitable[None]]] = []
        self._reload_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self.state: CompiledState = self._compile(config, version=0)
        self.proxy = Proxy(self.telemetry, self.instance, self.token_for_api_key)
        self.control = create_control_app(self)
        # Read at start (a reload cannot move a listening socket).
        self.admin_on_api = admin_on_api_listener(config.admin_listen, settings.host or config.listen.host)
        self.admin_listener = (AdminListener(self.control, config.admin_listen, reuse_port=settings.reuse_port)
                               if config.admin_listen.port is not None else None)

    def token_for_api_key(self, client_id: str) -> str:
        """The internal token the tiers get for a client that authenticated by API key (as for bearer calls)."""
        client = self.state.identities[client_id]
        # API keys do not expire by themselves (revocation and rotation end them): a fixed, far exp.
        principal = Principal(subject=client_id, client_id=client_id, scopes=client.scopes,
                              issuer=API_KEY_ISSUER, expires_at=2**62, claims={})
        return self.internal_tokens.authorization_for(principal).decode().removeprefix("Bearer ")

    # --- compiling and swapping state -------------------------------------------------------------------

    def _compile(self, config: GatewayConfig, version: int,
                 revoked_token_ids: frozenset[str] = frozenset()) -> CompiledState:
        """A new state; shared resources are reused when their config is unchanged. Swaps nothing itself."""
        auth = config.policy(AuthenticateConfig)
        verifier_key = (config.issuer.issuer, msgspec.json.encode(auth))
        verifier = self.verifier
        new_verifier = None
        if verifier is None or verifier_key != self._verifier_key:
            verifier = new_verifier = TokenVerifier(
                [TrustedIssuer(issuer=self.issuer.issuer), *auth.trusted_issuers],
                audience=auth.audience,
                leeway_seconds=auth.leeway_seconds,
                static_keys={self.issuer.issuer: self.issuer.public_keys},
                key_sources={self.issuer.issuer: self.issuer.key_set},
                cache_seconds=auth.jwks_max_cache_seconds,
                min_refresh_seconds=auth.jwks_min_refresh_seconds,
                verified_cache_size=auth.verified_token_cache_size,
                algorithms=auth.algorithms,
            )
        upstreams: dict[str, Upstream] = {}
        created: list[Upstream] = []
        for name, upstream_config in config.upstreams.items():
            existing = self.upstreams.get(name)
            if existing is not None and existing.config == upstream_config:
                upstreams[name] = existing
            else:
                upstreams[name] = Upstream(name, upstream_config)
                created.append(upstreams[name])
        stores: dict[tuple[str, Hashable], PolicyStore] = {}
        required: dict[str, PolicyStore] = {}
        opened: list[PolicyStore] = []

        def open_store(spec: PolicySpec[Any], policy_config: Any) -> PolicyStore:
            assert spec.store is not None
            key = (spec.name, spec.store.key(policy_config))
            store = stores.get(key) or self.policy_stores.get(key)
            if store is None:
                store = spec.store.open(policy_config)
                opened.append(store)
            stores[key] = store
            if spec.store.required(policy_config):
                required.setdefault(spec.name, store)
            return store

        try:
            state = compile_state(config, verifier=verifier, upstreams=upstreams, contracts=self.contracts,
                                  open_store=open_store, services=self._services(), version=version,
                                  revoked_token_ids=revoked_token_ids)
        except BaseException:
            for upstream in created:
                self._retired.append(upstream.aclose)
            self._retired.extend(store.aclose for store in opened)
            if new_verifier is not None:
                self._retired.append(new_verifier.aclose)
            raise
        # Committed: retire what the new state no longer uses.
        for name, old in self.upstreams.items():
            if upstreams.get(name) is not old:
                self._retired.append(old.aclose)
        self._retired.extend(old.aclose for key, old in self.policy_stores.items() if stores.get(key) is not old)
        if new_verifier is not None and self.verifier is not None:
            self._retired.append(self.verifier.aclose)
        self.upstreams, self.policy_stores, self.required_stores = upstreams, stores, required
        self.verifier, self._verifier_key = verifier, verifier_key
        # Internal tokens minted under the old state may carry what the new one refuses (a revoked client).
        self.internal_tokens.config = config.issuer
        self.internal_tokens.clear()
        return state

    def _services(self) -> dict[str, Any]:
        """What the gateway lends policies besides the verifier, binder and API keys (policies/registry.py)."""
        return {"internal_tokens": self.internal_tokens, "audit": self.audit}

    def _dry_run_store(self, spec: PolicySpec[Any], policy_config: Any) -> PolicyStore | None:
        assert spec.store is not None
        return self.policy_stores.get((spec.name, spec.store.key(policy_config)))

    async def revoke_access_token(self, jti: str, expires_at: int, client_id: str) -> None:
        """Refuse one access token from now on, on every instance (RFC 7009); forgotten once it has expired."""
        await self.override_store.put("revoked_token", jti, {"exp": expires_at, "client_id": client_id}, client_id)
        now = time.time()
        for old_jti, document in self.overrides.revoked_tokens.items():
            if float(document.get("exp", 0)) <= now:
                await self.override_store.remove("revoked_token", old_jti)
        await self.rebuild(reread_file=False, reason="token revoked")

    async def _warm_contracts(self, config: GatewayConfig) -> None:
        # Reading and compiling contract files is blocking work: do it off the event loop.
        for api in config.apis:
            if api.lifecycle != "retired":
                await asyncio.to_thread(self.contracts.get, api.contract)

    async def rebuild(self, *, reread_file: bool, reason: str) -> CompiledState:
        """Compile the live state (file + overrides) and swap it in; raises ConfigError and keeps the old one."""
        async with self._reload_lock:
            file_config = self.file_config
            if reread_file and self.config_file is not None:
                file_config = await asyncio.to_thread(gateway_config.load, self.config_file)
            overrides = await self.override_store.load()
            config = effective_config(file_config, overrides)
            await self._warm_contracts(config)
            state = self._compile(config, version=self.state.version + 1,
                                  revoked_token_ids=overrides.live_revoked_token_ids(time.time()))
            self.state = state  # the swap: one reference, atomically
            self.file_config, self.overrides = file_config, overrides
            self._schedule_retirement()
            log.info("gateway state swapped", extra={"version": state.version, "reason": reason,
                                                      "revision": overrides.revision})
            return state

    def _schedule_retirement(self) -> None:
        if not self._retired:
            return
        retired, self._retired = self._retired, []
        grace = max((u.config.timeout_seconds for u in self.upstreams.values()), default=30.0) + 5.0

        async def close_later() -> None:
            await asyncio.sleep(grace)  # calls in flight on the old state finish first
            for close in retired:
                with contextlib.suppress(Exception):
                    await close()

        self._tasks.append(asyncio.create_task(close_later()))

    async def preview(self, overrides: Overrides) -> GatewayConfig:
        """The live config these overrides would give, compiled fully but not swapped in (refuses bad ones)."""
        config = effective_config(self.file_config, overrides)
        await self.dry_run(config)
        return config

    async def dry_run(self, config: GatewayConfig) -> None:
        """Compile ``config`` fully (contracts, every policy chain) without swapping it in: ConfigError when it
        would be refused."""
        await self._warm_contracts(config)
        assert self.verifier is not None  # set by the first compile
        # Overrides never touch upstreams or policy stores, so the live ones serve for the dry run.
        compile_state(config, verifier=self.verifier, upstreams=self.upstreams, contracts=self.contracts,
                      open_store=self._dry_run_store, services=self._services())

    # --- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.override_store.create_schema()
        await self.audit.start()
        await self.telemetry.start()
        try:
            await self.rebuild(reread_file=False, reason="start")
        except ConfigError:
            log.exception("stored admin overrides do not compile with gateway.yaml; serving the file alone")
        self._check_demo_secrets()
        if self.admin_listener is not None:
            await self.admin_listener.start()
        elif not self.admin_on_api:
            log.warning("the admin API is not served: the API listener is not loopback and admin_listen.port is "
                        "not set")
        self._tasks.append(asyncio.create_task(self._sync_loop(), name="gateway-sync"))
        freeze_startup_heap()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, lambda: self._tasks.append(
                asyncio.create_task(self.reload_from_signal())))

    def _check_demo_secrets(self) -> None:
        """The demo's secrets are in the repository: loud while any is live, fatal in production."""
        demo = [c.id for c in self.state.config.clients if has_demo_secret(c)]
        if not demo:
            return
        message = (f"clients {', '.join(demo)} use the embedded demo's public secrets (demo-secret-<client id>): "
                   "anyone can obtain their tokens. Rotate them (`psgw clients rotate <id>`) before real use.")
        if self.settings.env == "production":
            log.critical("refusing to start with PSGW_ENV=production: " + message)
            raise SystemExit(f"psgateway: refusing to start with PSGW_ENV=production: {message}")
        log.warning("DEMO SECRETS IN USE: " + message)
        sys.stderr.write(f"\n{'!' * 100}\n!! DEMO SECRETS IN USE: {message}\n{'!' * 100}\n\n")

    async def reload_from_signal(self) -> None:
        try:
            await self.reload(actor_client="gateway", actor_subject="signal:SIGHUP", reason="SIGHUP")
        except ConfigError as exc:
            log.error("reload refused; the previous state keeps serving", extra={"error": str(exc)})
            await self._audit_reload("gateway", "signal:SIGHUP", "gateway.reload_refused",
                                     {"version": self.state.version}, {"error": str(exc)})

    async def reload(self, *, actor_client: str, actor_subject: str, reason: str) -> CompiledState:
        """Re-read gateway.yaml, swap it in, fetch every issuer's keys again, and audit what changed.

        Raises ConfigError (the old state keeps serving) when the file is refused."""
        before = self.state
        state = await self.rebuild(reread_file=True, reason=reason)
        assert self.verifier is not None
        keys = await self.verifier.refetch_keys()  # an operator's reload also withdraws stale keys at once
        changes = [msgspec.to_builtins(c) for c in changed_between(before.config, state.config)]
        await self._audit_reload(actor_client, actor_subject, "gateway.reload", {"version": before.version},
                                 {"version": state.version, "changes": changes, "issuer_keys": keys})
        return state

    async def _audit_reload(self, actor_client: str, actor_subject: str, action: str, before: Any,
                            after: Any) -> None:
        await self.audit.record_change(ChangeEntry(
            at=dt.datetime.now(dt.UTC), actor_client=actor_client, actor_subject=actor_subject, action=action,
            target_kind="gateway", target_id="gateway.yaml", before=before, after=after,
            correlation_id=correlation.current_correlation_id()))

    async def _sync_loop(self) -> None:
        """Pick up admin changes other instances made (shared SQL) and issuer key rotations."""
        interval = self.state.config.admin.sync_interval_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                if await self.override_store.revision() != self.overrides.revision:
                    await self.rebuild(reread_file=False, reason="sync")
                if self.issuer.refresh() and self.verifier is not None:
                    self.verifier.set_static_keys(self.issuer.issuer, self.issuer.public_keys)
            except ConfigError as exc:
                log.error("stored admin overrides do not compile; keeping the current state",
                          extra={"error": str(exc)})
            except Exception:
                log.exception("state sync failed")

    async def stop(self) -> None:
        if self.admin_listener is not None:
            await self.admin_listener.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.telemetry.stop()
        await self.audit.stop()
        closers: list[Awaitable[None]] = [u.aclose() for u in self.upstreams.values()]
        if self.verifier is not None:
            closers.append(self.verifier.aclose())
        closers.extend(store.aclose() for store in self.policy_stores.values())
        closers.extend(close() for close in self._retired)
        await asyncio.gather(*closers, return_exceptions=True)
        await self.engine.dispose()

    async def check_upstreams(self) -> dict[str, str]:
        names = list(self.upstreams)
        results = await asyncio.gather(*(self.upstreams[n].health() for n in names))
        return dict(zip(names, results, strict=True))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PREFIXES):
            await self.proxy.handle(self.state, scope, receive, send)
            return
        if not self.admin_on_api and scope["type"] == "http" and scope["path"].startswith("/admin"):
            await not_found(scope, send, "the admin API is not served on this listener (see admin_listen)")
            return
        await self.control(scope, receive, send)  # type: ignore[arg-type]

