"""Authentication: who is calling. Bearer JWTs from the built-in issuer or any trusted OIDC issuer."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from policies.exchange import ClientIdentity, Exchange
from runtime.problems import ProblemError
from runtime.tokens import TokenError, TokenVerifier, TrustedIssuer, bearer_token


class AuthenticateConfig(msgspec.Struct, kw_only=True, frozen=True):
    audience: str = "psgateway"
    leeway_seconds: int = 30
    # Issuers besides the gateway's own (any OIDC provider: discovery + JWKS).
    trusted_issuers: list[TrustedIssuer] = []


class AuthenticationFailed(ProblemError):
    status = 401
    slug = "invalid-token"
    title = "Authentication failed"


class Authenticate:
    name = "authenticate"

    def __init__(self, verifier: TokenVerifier, lookup_client: Callable[[str], ClientIdentity | None]) -> None:
        self.verifier = verifier
        self.lookup_client = lookup_client

    async def on_request(self, exchange: Exchange) -> None:
        try:
            principal = await self.verifier.verify(bearer_token(exchange.header(b"authorization")))
        except TokenError as exc:
            exchange.decisions[self.name] = exc.reason
            raise AuthenticationFailed(
                exc.detail, reason=exc.reason,
                headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{exc.reason}"'},
            ) from exc
        client = self.lookup_client(principal.client_id)
        if client is None or not client.active:
            exchange.decisions[self.name] = "unknown_client" if client is None else "revoked_client"
            raise AuthenticationFailed(
                f"client {principal.client_id!r} is {'not registered' if client is None else 'revoked'}",
                reason=exchange.decisions[self.name],
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        exchange.principal = principal
        exchange.client = client
        exchange.decisions[self.name] = "ok"
