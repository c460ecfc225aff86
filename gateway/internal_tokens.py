"""The internal tokens the gateway mints for the tiers: one per verified principal, reused until near expiry.

Signed by the built-in issuer's key for ``issuer.internal_audience`` only, valid for at most
``issuer.internal_token_ttl_seconds`` and never beyond the caller's own token. Claims: ``sub``, ``client_id``,
``scope`` (what the gateway granted), ``orig_iss`` (who vouched for the caller), ``act`` (the gateway acting for
it, RFC 8693) and, for the catalog's try-it tokens, ``try_it``. The cache is emptied whenever the gateway's state
is swapped (a revocation, a rotation, a reload), so a refused client gets no fresh internal token.
"""

from __future__ import annotations

import time
import uuid

from gateway.config import IssuerConfig
from gateway.issuer import Issuer
from runtime.tokens import Principal

# The caller's exp is part of the key: an internal token never outlives the token it stands for.
_Key = tuple[str, str, str, frozenset[str], int, object]


class InternalTokens:
    def __init__(self, issuer: Issuer, config: IssuerConfig, max_entries: int = 10_000) -> None:
        self.issuer = issuer
        self.config = config
        self.max_entries = max_entries
        # principal -> (the Authorization header value, when to mint a new one)
        self._cache: dict[_Key, tuple[bytes, float]] = {}

    def clear(self) -> None:
        self._cache.clear()

    def authorization_for(self, principal: Principal) -> bytes:
        try_it = principal.claims.get("try_it")
        key = (principal.issuer, principal.client_id, principal.subject, principal.scopes, principal.expires_at,
               try_it)
        now = time.time()
        cached = self._cache.get(key)
        if cached is not None and now < cached[1]:
            return cached[0]
        token, expires_at = self.mint(principal, now)
        header = b"Bearer " + token.encode()
        if len(self._cache) >= self.max_entries:
            self._cache.clear()
        # Renewed a quarter of its life (at most 30 s) early, so no tier receives a token about to expire.
        self._cache[key] = (header, expires_at - min(30.0, (expires_at - now) / 4))
        return header

    def mint(self, principal: Principal, now: float | None = None) -> tuple[str, int]:
        issued = int(now if now is not None else time.time())
        expires_at = min(issued + self.config.internal_token_ttl_seconds, principal.expires_at)
        claims = {
            "iss": self.config.issuer,
            "aud": self.config.internal_audience,
            "sub": principal.subject,
            "client_id": principal.client_id,
            "scope": " ".join(sorted(principal.scopes)),
            "orig_iss": principal.issuer,
            "act": {"sub": self.config.issuer},
            "iat": issued,
            "nbf": issued,
            "exp": expires_at,
            "jti": uuid.uuid4().hex,
        }
        try_it = principal.claims.get("try_it")
        if try_it is not None:
            claims["try_it"] = try_it
        return self.issuer.sign(claims), expires_at
