"""Authentication: who is calling. Bearer JWTs from the built-in issuer or any trusted OIDC issuer, or an API key.

Tokens are verified by :class:`runtime.tokens.TokenVerifier` (alg allow-list, JWKS cached and refreshed on an
unknown ``kid``, iss/aud/exp/nbf with leeway, verified tokens cached so the signature check runs once per token).
API keys (``X-API-Key``) are an option per client: only their SHA-256 is stored, looked up in one dict access.
Either way the client must be registered and active *now*: revoking a client refuses its live tokens at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Literal, NoReturn

import msgspec

from policies.exchange import ClientIdentity, Exchange
from runtime.problems import ProblemError
from runtime.tokens import Principal, TokenError, TokenVerifier, TrustedIssuer, bearer_token

API_KEY_ISSUER = "urn:psgateway:api-key"
# API keys never expire by themselves (rotation and revocation end them); this is their principal's exp.
_NO_EXPIRY = 2**62


class AuthenticateConfig(msgspec.Struct, kw_only=True, frozen=True):
    audience: str = "psgateway"
    leeway_seconds: int = 30
    # Issuers besides the gateway's own (any OIDC provider: discovery + JWKS).
    trusted_issuers: list[TrustedIssuer] = []
    # Narrows the verifier's allow-list; ``none`` and HMAC algorithms can never be listed.
    algorithms: list[Literal["RS256", "ES256"]] = msgspec.field(default_factory=lambda: ["RS256", "ES256"])
    jwks_cache_seconds: float = 3600.0
    # An unknown ``kid`` refetches the issuer's JWKS at most this often (garbage kids cannot hammer it).
    jwks_min_refresh_seconds: float = 5.0
    verified_token_cache_size: int = 10_000
    api_key_header: str = "x-api-key"


def hash_api_key(key: str) -> str:
    """How API keys are stored: long random strings, so a fast hash is enough (as for client secrets)."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class AuthenticationFailed(ProblemError):
    status = 401
    slug = "invalid-token"
    title = "Authentication failed"


class Authenticate:
    name = "authenticate"

    def __init__(self, config: AuthenticateConfig, verifier: TokenVerifier,
                 lookup_client: Callable[[str], ClientIdentity | None],
                 lookup_api_key: Callable[[str], ClientIdentity | None]) -> None:
        self.verifier = verifier
        self.lookup_client = lookup_client
        self.lookup_api_key = lookup_api_key
        self.api_key_header = config.api_key_header.lower().encode()

    async def on_request(self, exchange: Exchange) -> None:
        authorization = exchange.header(b"authorization")
        api_key = exchange.header(self.api_key_header) if authorization is None else None
        if api_key is not None:
            self._by_api_key(exchange, api_key)
            return
        try:
            principal = await self.verifier.verify(bearer_token(authorization))
        except TokenError as exc:
            self._refuse(exchange, exc.reason, exc.detail)
        client = self.lookup_client(principal.client_id)
        if client is None:
            self._refuse(exchange, "unknown_client", f"client {principal.client_id!r} is not registered")
        if not client.active:
            self._refuse(exchange, "revoked_client", f"client {principal.client_id!r} is revoked")
        exchange.principal = principal
        exchange.client = client
        exchange.decisions[self.name] = "ok"

    def _by_api_key(self, exchange: Exchange, api_key: str) -> None:
        client = self.lookup_api_key(hash_api_key(api_key.strip()))
        if client is None:
            self._refuse(exchange, "invalid_api_key", "the API key is not valid", scheme="ApiKey")
        if not client.active:
            self._refuse(exchange, "revoked_client", f"client {client.id!r} is revoked", scheme="ApiKey")
        exchange.client = client
        exchange.principal = Principal(subject=client.id, client_id=client.id, scopes=client.scopes,
                                       issuer=API_KEY_ISSUER, expires_at=_NO_EXPIRY, claims={})
        exchange.decisions[self.name] = "ok_api_key"

    def _refuse(self, exchange: Exchange, reason: str, detail: str, scheme: str = "Bearer") -> NoReturn:
        exchange.decisions[self.name] = reason
        challenge = f'{scheme} realm="psgateway"'
        if scheme == "Bearer" and reason != "missing":
            challenge += f', error="invalid_token", error_description="{reason}"'
        raise AuthenticationFailed(detail, reason=reason, headers={"WWW-Authenticate": challenge})

