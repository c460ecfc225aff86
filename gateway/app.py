"""The gateway process: an ASGI app whose hot path (/system, /process, /experience) bypasses the framework.

API calls go straight from the ASGI scope to the policy chain and the upstream pool; everything else (token
endpoint, JWKS, health, admin, catalog) is a regular Litestar app.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from gateway.config import GatewayConfig
from gateway.control import create_control_app
from gateway.issuer import Issuer
from gateway.proxy import Proxy
from gateway.state import CompiledState, compile_state
from gateway.upstreams import Upstream
from runtime.tokens import TokenVerifier, TrustedIssuer

API_PREFIXES = ("/system/", "/process/", "/experience/")


class Gateway:
    def __init__(self, config: GatewayConfig, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.issuer = Issuer(config.issuer, data_dir)
        auth = config.policies.authenticate
        self.verifier = TokenVerifier(
            [TrustedIssuer(issuer=self.issuer.issuer), *auth.trusted_issuers],
            audience=auth.audience,
            leeway_seconds=auth.leeway_seconds,
            static_keys={self.issuer.issuer: self.issuer.public_keys},
        )
        self.state: CompiledState = compile_state(config, self.verifier)
        self.upstreams = {name: Upstream(name, upstream) for name, upstream in config.upstreams.items()}
        self.proxy = Proxy(self.upstreams)
        self.control = create_control_app(self)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await asyncio.gather(*(u.aclose() for u in self.upstreams.values()))
        await self.verifier.aclose()

    async def check_upstreams(self) -> dict[str, str]:
        async def probe(upstream: Upstream) -> str:
            try:
                response = await upstream.client.get("/healthz", timeout=2.0)
            except httpx.HTTPError as exc:
                return f"unreachable: {type(exc).__name__}"
            return "ok" if response.status_code == 200 else f"status {response.status_code}"

        names = list(self.upstreams)
        results = await asyncio.gather(*(probe(self.upstreams[n]) for n in names))
        return dict(zip(names, results, strict=True))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PREFIXES):
            await self.proxy.handle(self.state, scope, receive, send)
            return
        await self.control(scope, receive, send)  # type: ignore[arg-type]
