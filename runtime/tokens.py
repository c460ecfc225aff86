"""Bearer token verification, shared by the gateway's authenticate policy and every tier (defense in depth).

Accepts RS256/ES256 JWTs from trusted issuers only. Keys come from each issuer's JWKS, found through
OIDC discovery or configured directly, cached as long as the issuer's ``Cache-Control: max-age`` says but
never longer than ``cache_seconds`` (the ceiling), and refreshed when a token names an unknown ``kid`` (so key
rotation needs no restart) but at most once per ``min_refresh_seconds`` so garbage ``kid``s cannot hammer
the issuer. A verified token is served from cache only while its issuer's keys are fresh, so a key the issuer
withdrew stops validating within the ceiling. ``none`` and HMAC algorithms are never accepted: an HS256
token "signed" with a public key is refused before any key is looked up.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

log = logging.getLogger("runtime.tokens")

ALLOWED_ALGORITHMS: frozenset[str] = frozenset({"RS256", "ES256"})
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
_KEY_TYPE_FOR_ALG = {"RS256": "RSA", "ES256": "EC"}


class TokenError(Exception):
    """Why a token was refused; ``reason`` is a stable code used in metrics, audit and problem details."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    client_id: str
    scopes: frozenset[str]
    issuer: str
    expires_at: int
    claims: dict[str, Any]


class TrustedIssuer(msgspec.Struct, frozen=True, kw_only=True):
    issuer: str
    # Where to find keys: a JWKS URL, or discovery at ``<issuer>/.well-known/openid-configuration``.
    jwks_uri: str | None = None
    audience: str | None = None


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims without verifying: only to choose the issuer and key; never trusted as such."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("malformed", "the token is not a compact JWS (three dot-separated parts)")
    try:
        header = msgspec.json.decode(_b64decode(parts[0]))
        claims = msgspec.json.decode(_b64decode(parts[1]))
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise TokenError("malformed", "the token header or payload is not base64url JSON") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("malformed", "the token header and payload must be JSON objects")
    return header, claims


KeySource = Callable[[], KeySet]
"""Reloads the keys of an in-process issuer (the gateway's own), e.g. after a key rotation elsewhere."""


@dataclass
class _JwksCache:
    issuer: TrustedIssuer
    keys: KeySet | None = None
    fetched_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    source: KeySource | None = None
    # When a static source was last asked again (rate limit for unknown kids).
    reloaded_at: float = 0.0
    # How long the fetched keys stay fresh: the issuer's max-age, capped by the verifier's ceiling.
    ttl: float = 0.0


class TokenVerifier:
    """Verifies bearer tokens against a set of trusted issuers. Safe to share across requests."""

    def __init__(
        self,
        issuers: Iterable[TrustedIssuer],
        audience: str,
        *,
        leeway_seconds: int = 30,
        static_keys: dict[str, KeySet] | None = None,
        http: httpx.AsyncClient | None = None,
        cache_seconds: float = 300.0,
        min_refresh_seconds: float = 5.0,
        key_sources: dict[str, KeySource] | None = None,
        verified_cache_size: int = 10_000,
        algorithms: Iterable[str] | None = None,
    ) -> None:
        self.audience = audience
        # Narrowing only: never wider than RS256/ES256, whatever a config says.
        self.algorithms = ALLOWED_ALGORITHMS & frozenset(algorithms) if algorithms is not None else ALLOWED_ALGORITHMS
        self.leeway = leeway_seconds
        self.cache_seconds = cache_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self._http = http
        self._caches: dict[str, _JwksCache] = {}
        # Tokens whose signature already verified, by the whole compact token (a tampered payload is a
        # different key), so the RSA/EC check runs once per token; entries honour exp on every hit.
        self._verified: OrderedDict[str, Principal] = OrderedDict()
        self._verified_max = verified_cache_size
        for issuer in issuers:
            cache = _JwksCache(issuer)
            if static_keys and issuer.issuer in static_keys:
                cache.keys = static_keys[issuer.issuer]
                cache.fetched_at = float("inf")  # in-process keys never go stale
            if key_sources and issuer.issuer in key_sources:
                cache.source = key_sources[issuer.issuer]
            self._caches[issuer.issuer] = cache

    @property
    def issuers(self) -> list[str]:
        return list(self._caches)

    def set_static_keys(self, issuer: str, keys: KeySet) -> None:
        cache = self._caches.setdefault(issuer, _JwksCache(TrustedIssuer(issuer=issuer)))
        cache.keys = keys
        cache.fetched_at = float("inf")
        self.forget_verified()

    def forget_verified(self) -> None:
        """Drop every cached verification (after a key is withdrawn or the trusted issuers change)."""
        self._verified.clear()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        return self._http

    async def _fetch_keys(self, cache: _JwksCache) -> None:
        client = self._client()
        uri = cache.issuer.jwks_uri
        try:
            if uri is None:
                meta = await client.get(cache.issuer.issuer.rstrip("/") + "/.well-known/openid-configuration")
                meta.raise_for_status()
                uri = meta.json()["jwks_uri"]
            response = await client.get(uri)
            response.raise_for_status()
            keys = KeySet.import_key_set(response.json())
            withdrawn = {k.kid for k in cache.keys} - {k.kid for k in keys} if cache.keys is not None else set()
            cache.keys = keys
            cache.fetched_at = time.monotonic()
            cache.ttl = self._freshness(response.headers.get("cache-control"))
            if withdrawn:
                self.forget_verified()  # tokens signed by a withdrawn key must verify again (and fail)
        except (httpx.HTTPError, KeyError, TypeError, ValueError, JoseError) as exc:
            if cache.keys is not None:
                # Stale-if-error: keep verifying with the keys we have rather than refusing everyone.
                log.warning("jwks refresh failed; keeping cached keys",
                            extra={"issuer": cache.issuer.issuer, "error": type(exc).__name__})
                cache.fetched_at = time.monotonic()
                cache.ttl = self.min_refresh_seconds  # try again soon, not after a whole max-age
                return
            raise TokenError("jwks_unavailable", f"cannot load the signing keys of {cache.issuer.issuer}") from exc

    def _freshness(self, cache_control: str | None) -> float:
        """How long fetched keys stay fresh: the issuer's max-age (no-store/no-cache: at once), under the ceiling."""
        if cache_control is None:
            return self.cache_seconds
        if "no-store" in cache_control.lower() or "no-cache" in cache_control.lower():
            return 0.0
        found = _MAX_AGE.search(cache_control)
        return min(float(found.group(1)), self.cache_seconds) if found else self.cache_seconds

    def _keys_fresh(self, issuer: str) -> bool:
        cache = self._caches.get(issuer)
        return cache is not None and time.monotonic() - cache.fetched_at <= cache.ttl

    async def refetch_keys(self) -> dict[str, list[str]]:
        """Fetch every issuer's keys now (an operator's reload), forgetting cached verifications; kids by issuer.

        An issuer whose JWKS cannot be fetched keeps its keys and is reported with an empty list.
        """
        found: dict[str, list[str]] = {}
        for name, cache in self._caches.items():
            try:
                async with cache.lock:
                    if cache.fetched_at == float("inf"):
                        if cache.source is not None:
                            cache.keys = cache.source()
                            cache.reloaded_at = time.monotonic()
                    else:
                        await self._fetch_keys(cache)
            except TokenError:
                found[name] = []
                continue
            found[name] = sorted(str(k.kid) for k in cache.keys or ())
        self.forget_verified()
        return found

    async def _key_for(self, cache: _JwksCache, kid: str | None, alg: str) -> RSAKey | ECKey:
        now = time.monotonic()
        if cache.fetched_at == float("inf"):
            key = self._find(cache.keys, kid, alg)
            if key is None and cache.source is not None and now - cache.reloaded_at >= self.min_refresh_seconds:
                # The in-process issuer may have rotated (possibly in another gateway instance).
                cache.reloaded_at = now
                cache.keys = cache.source()
                key = self._find(cache.keys, kid, alg)
            if key is None:
                raise TokenError("unknown_kid", f"no signing key {kid!r} is published by {cache.issuer.issuer}")
            return key
        if cache.keys is None or now - cache.fetched_at > cache.ttl:
            async with cache.lock:
                if cache.keys is None or time.monotonic() - cache.fetched_at > cache.ttl:
                    await self._fetch_keys(cache)
        key = self._find(cache.keys, kid, alg)
        if key is None and now - cache.fetched_at >= self.min_refresh_seconds:
            # Unknown kid: the issuer may have rotated its keys; look again, once.
            async with cache.lock:
                if time.monotonic() - cache.fetched_at >= self.min_refresh_seconds:
                    await self._fetch_keys(cache)
            key = self._find(cache.keys, kid, alg)
        if key is None:
            raise TokenError("unknown_kid", f"no signing key {kid!r} is published by {cache.issuer.issuer}")
        return key

    @staticmethod
    def _find(keys: KeySet | None, kid: str | None, alg: str) -> RSAKey | ECKey | None:
        if keys is None:
            return None
        wanted = _KEY_TYPE_FOR_ALG[alg]
        for key in keys:
            if key.key_type != wanted or (kid is not None and key.kid != kid):
                continue
            declared = key.get("alg")
            if declared is not None and declared != alg:
                continue  # a key published for another algorithm is never used for this one
            return key  # type: ignore[return-value]
        return None

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token, or :class:`TokenError` naming why it is refused."""
        cached = self._verified.get(token)
        # Served from cache only while its issuer's keys are fresh: a withdrawn key stops validating.
        if cached is not None and self._keys_fresh(cached.issuer):
            if time.time() > cached.expires_at + self.leeway:
                self._verified.pop(token, None)
                raise TokenError("expired", "the token has expired")
            self._verified.move_to_end(token)
            return cached
        principal = await self._verify_uncached(token)
        self._verified[token] = principal
        if len(self._verified) > self._verified_max:
            self._verified.popitem(last=False)
        return principal

    async def _verify_uncached(self, token: str) -> Principal:
        header, unverified = peek(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise TokenError("alg_not_allowed",
                             f"algorithm {alg!r} is not accepted (allowed: {', '.join(sorted(self.algorithms))})")
        issuer = unverified.get("iss")
        cache = self._caches.get(issuer) if isinstance(issuer, str) else None
        if cache is None:
            raise TokenError("wrong_issuer", f"issuer {issuer!r} is not trusted")
        kid = header.get("kid")
        key = await self._key_for(cache, kid if isinstance(kid, str) else None, alg)
        try:
            claims = jwt.decode(token, key, algorithms=[alg]).claims
        except JoseError as exc:
            raise TokenError("bad_signature", "the token signature does not verify") from exc
        self._check_claims(claims, cache.issuer)
        return self._principal(claims)

    def _check_claims(self, claims: dict[str, Any], issuer: TrustedIssuer) -> None:
        now = int(time.time())
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            raise TokenError("malformed", "the token has no numeric exp claim")
        if now > exp + self.leeway:
            raise TokenError("expired", "the token has expired")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and now + self.leeway < nbf:
            raise TokenError("not_yet_valid", "the token is not valid yet (nbf)")
        iat = claims.get("iat")
        if isinstance(iat, int | float) and now + self.leeway < iat:
            raise TokenError("not_yet_valid", "the token was issued in the future (iat)")
        audience = issuer.audience or self.audience
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if audience not in audiences:
            raise TokenError("wrong_audience", f"the token is not meant for audience {audience!r}")

    @staticmethod
    def _principal(claims: dict[str, Any]) -> Principal:
        scope = claims.get("scope", "")
        # Some issuers send "scope" (or "scp") as a list rather than a space-separated string.
        scopes = frozenset(str(s) for s in scope) if isinstance(scope, list) else frozenset(str(scope).split())
        scp = claims.get("scp")
        if isinstance(scp, list):
            scopes |= frozenset(str(s) for s in scp)
        subject = str(claims.get("sub", ""))
        client_id = str(claims.get("client_id") or claims.get("azp") or subject)
        return Principal(
            subject=subject,
            client_id=client_id,
            scopes=scopes,
            issuer=str(claims.get("iss")),
            expires_at=int(claims["exp"]),
            claims=claims,
        )


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise TokenError("missing", "an Authorization: Bearer token is required")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise TokenError("malformed", "the Authorization header must be 'Bearer <token>'")
    return value.strip()
