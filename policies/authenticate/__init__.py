"""Authentication: who is calling. Bearer JWTs from the built-in issuer or any trusted OIDC issuer, or an API key.

Tokens are verified by :class:`runtime.tokens.TokenVerifier` (alg allow-list, JWKS cached within a ceiling and
refreshed on an unknown ``kid``, iss/aud/exp/nbf with leeway, verified tokens cached so the signature check runs
once per token). A verified token is then *bound* (:class:`IdentityBinder`): the issuer's own rule says which
claim names the client and which the person, and how its scopes or roles map to gateway scopes; the client must
be registered, bound to that issuer, active, and not have been revoked or rotated since the token was issued;
the granted scopes are the token's (mapped) scopes that the client is registered for, never more.
API keys (``X-API-Key``) are an option per client: only their SHA-256 is stored, looked up in one dict access.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, NoReturn

import msgspec
from prometheus_client import Counter

from policies.exchange import ClientIdentity, Exchange
from policies.registry import BuildContext, PolicySpec
from runtime.problems import ProblemError
from runtime.tokens import Principal, TokenError, TokenVerifier, TrustedIssuer, bearer_token

__all__ = ["API_KEY_ISSUER", "POLICY", "Authenticate", "AuthenticateConfig", "IdentityBinder",
           "TrustedIssuerConfig", "hash_api_key"]

AUTH_FAILURES = Counter("psgw_auth_failures_total", "Refused authentications, by reason", ["reason"])

API_KEY_ISSUER = "urn:psgateway:api-key"
# API keys never expire by themselves (rotation and revocation end them); this is their principal's exp.
_NO_EXPIRY = 2**62


class TrustedIssuerConfig(TrustedIssuer, kw_only=True, frozen=True):
    """An external OIDC issuer and how its tokens name clients, people and permissions."""

    # The claim naming the client (RFC 9068: client_id; Keycloak/Auth0/Entra: azp). Dotted paths reach into
    # objects. Only this claim is read: a token whose ``sub`` happens to name a client is not that client.
    client_claim: str = "client_id"
    # The claim naming the person (or the client itself for a client_credentials token).
    subject_claim: str = "sub"
    # Where the token's scopes or roles are: space-separated strings or lists (e.g. realm_access.roles).
    scope_claims: list[str] = msgspec.field(default_factory=lambda: ["scope", "scp"])
    # Issuer scope or role -> gateway scopes. Empty: the issuer's scope names are gateway scope names.
    scope_map: dict[str, list[str]] = {}


class AuthenticateConfig(msgspec.Struct, kw_only=True, frozen=True):
    audience: str = "psgateway"
    leeway_seconds: int = 30
    # Issuers besides the gateway's own (any OIDC provider: discovery + JWKS). A client trusts one only when
    # its registration names it in ``issuers``.
    trusted_issuers: list[TrustedIssuerConfig] = []
    # Narrows the verifier's allow-list; ``none`` and HMAC algorithms can never be listed.
    algorithms: list[Literal["RS256", "ES256"]] = msgspec.field(default_factory=lambda: ["RS256", "ES256"])
    # The ceiling on how long an issuer's JWKS is cached (its Cache-Control max-age is honoured below it):
    # a key the issuer withdraws stops validating within this time.
    jwks_max_cache_seconds: float = 300.0
    # An unknown ``kid`` refetches the issuer's JWKS at most this often (garbage kids cannot hammer it).
    jwks_min_refresh_seconds: float = 5.0
    verified_token_cache_size: int = 10_000
    api_key_header: str = "x-api-key"

    def __post_init__(self) -> None:
        if not 0 < self.jwks_max_cache_seconds <= 86_400:
            raise ValueError("policies.authenticate.jwks_max_cache_seconds must be in (0, 86400]")
        if self.jwks_min_refresh_seconds > self.jwks_max_cache_seconds:
            raise ValueError("jwks_min_refresh_seconds must not exceed jwks_max_cache_seconds")


def hash_api_key(key: str) -> str:
    """How API keys are stored: long random strings, so a fast hash is enough (as for client secrets)."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class AuthenticationFailed(ProblemError):
    status = 401
    slug = "invalid-token"
    title = "Authentication failed"


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _words(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return ()


class IdentityBinder:
    """Turns a verified token into the caller the gateway authorizes: one rule per issuer, one place for it.

    Used by the API hot path, the admin API and the catalog alike, so no door reads identities differently.
    Results are cached per verified principal (the verifier hands out the same object for the same token);
    a new binder is built with each compiled state, so a revocation or a registration change applies at once.
    """

    def __init__(self, builtin_issuer: str, trusted: Iterable[TrustedIssuerConfig],
                 clients: Mapping[str, ClientIdentity], cache_size: int = 10_000,
                 revoked_token_ids: frozenset[str] = frozenset()) -> None:
        self.rules: dict[str, TrustedIssuerConfig] = {
            builtin_issuer: TrustedIssuerConfig(issuer=builtin_issuer, client_claim="client_id",
                                                scope_claims=["scope"]),
        }
        for issuer in trusted:
            self.rules.setdefault(issuer.issuer, issuer)
        self.clients = clients
        # ``jti`` of access tokens revoked one by one (RFC 7009), until they expire.
        self.revoked_token_ids = revoked_token_ids
        self._bound: dict[int, tuple[Principal, Principal, ClientIdentity]] = {}
        self._cache_size = cache_size

    def bind(self, verified: Principal) -> tuple[Principal, ClientIdentity]:
        """The bound principal (granted scopes only) and its client, or :class:`TokenError` saying why not."""
        hit = self._bound.get(id(verified))
        if hit is not None and hit[0] is verified:
            return hit[1], hit[2]
        principal, client = self._bind(verified)
        if len(self._bound) >= self._cache_size:
            self._bound.clear()
        self._bound[id(verified)] = (verified, principal, client)
        return principal, client

    def _bind(self, verified: Principal) -> tuple[Principal, ClientIdentity]:
        rule = self.rules.get(verified.issuer)
        if rule is None:
            raise TokenError("wrong_issuer", f"issuer {verified.issuer!r} is not trusted")
        claims = verified.claims
        client_id = _claim(claims, rule.client_claim)
        if not isinstance(client_id, str) or not client_id:
            raise TokenError("unknown_client", f"the token names no client in its {rule.client_claim!r} claim")
        client = self.clients.get(client_id)
        if client is None:
            raise TokenError("unknown_client", f"client {client_id!r} is not registered")
        if verified.issuer not in client.issuers:
            raise TokenError("issuer_not_allowed",
                             f"client {client_id!r} is not registered to come from issuer {verified.issuer!r}")
        if not client.active:
            raise TokenError("revoked_client", f"client {client_id!r} is revoked")
        if client.not_before:
            issued_at = claims.get("iat")
            if not isinstance(issued_at, int | float) or issued_at < client.not_before:
                raise TokenError("revoked_token", f"the token was issued before client {client_id!r} was "
                                                  "revoked or its secret rotated")
        if self.revoked_token_ids and claims.get("jti") in self.revoked_token_ids:
            raise TokenError("revoked_token", "the token was revoked")
        subject = _claim(claims, rule.subject_claim)
        offered = {word for name in rule.scope_claims for word in _words(_claim(claims, name))}
        if rule.scope_map:
            offered = {scope for word in offered for scope in rule.scope_map.get(word, ())}
        principal = Principal(subject=subject if isinstance(subject, str) and subject else client_id,
                              client_id=client_id, scopes=client.scopes.intersection(offered),
                              issuer=verified.issuer, expires_at=verified.expires_at, claims=claims)
        return principal, client


class Authenticate:
    name = "authenticate"

    def __init__(self, config: AuthenticateConfig, verifier: TokenVerifier, binder: IdentityBinder,
                 lookup_api_key: Callable[[str], ClientIdentity | None]) -> None:
        self.verifier = verifier
        self.binder = binder
        self.lookup_api_key = lookup_api_key
        self.api_key_header = config.api_key_header.lower().encode()

    async def access(self, exchange: Exchange) -> None:
        authorization = exchange.header(b"authorization")
        api_key = exchange.header(self.api_key_header) if authorization is None else None
        if api_key is not None:
            self._by_api_key(exchange, api_key)
            return
        try:
            principal, client = self.binder.bind(await self.verifier.verify(bearer_token(authorization)))
        except TokenError as exc:
            self._refuse(exchange, exc.reason, exc.detail)
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
        AUTH_FAILURES.labels(reason).inc()
        challenge = f'{scheme} realm="psgateway"'
        if scheme == "Bearer" and reason != "missing":
            challenge += f', error="invalid_token", error_description="{reason}"'
        raise AuthenticationFailed(detail, reason=reason, headers={"WWW-Authenticate": challenge})



def _build(config: AuthenticateConfig, ctx: BuildContext) -> Authenticate:
    # The verifier (JWKS caches) and the binder are the gateway's: its admin API and catalog use them too.
    extra = ctx.services.extra
    return ctx.once(("authenticate", id(config)), lambda: Authenticate(
        config, extra["verifier"], extra["binder"], extra["api_keys"]))


POLICY = PolicySpec(name="authenticate", config=AuthenticateConfig, priority=1500, build=_build,
                    enabled_by_default=True, required=True, identifies=True,
                    summary="bearer tokens (built-in or trusted OIDC issuers) or API keys; binds them to a client")
