"""Vendor authentication for the bundled connectors: OAuth 2.0 tokens fetched, cached and refreshed.

Two grants, one cache: :class:`ClientCredentialsToken` (RFC 6749 section 4.4: Workday, NetSuite, Dynamics 365,
SAP) and :class:`JwtBearerToken` (RFC 7523, Salesforce's "OAuth 2.0 JWT Bearer Flow": an RS256 assertion signed
with the connected app's private key, made with joserfc). A token is reused until ``expires_in`` (renewed a little
early) or until the vendor answers 401, when ``runtime.downstream`` invalidates it and sends the call once more.
Secrets come from the environment (``SystemSettings``: ``PSGW_<SYSTEM>_CLIENT_ID`` ...) or files, never from
gateway.yaml; ``psgw up`` generates them in the data dir at first start and gives the sandbox the same ones.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from runtime.problems import ProblemError
from system_apis.vendor_errors import credentials_refused

SALESFORCE_AUDIENCE = "https://login.salesforce.com"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True)
class VendorCredentials:
    """What one connector authenticates with; empty ``client_id``: send no credentials (the vendor will refuse)."""

    client_id: str = ""
    client_secret: str = ""
    username: str = ""
    private_key_file: str = ""


class VendorToken:
    """A vendor access token, cached, fetched once for concurrent callers, renewed on expiry or on a 401."""

    def __init__(self, vendor: str, token_url: str, credentials: VendorCredentials, timeout_seconds: float) -> None:
        self.vendor = vendor
        self.credentials = credentials
        self.token_url = token_url
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout_seconds))
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._token = None

    async def token(self) -> str:
        if self._token and time.monotonic() < self._expires_at:
            return self._token
        async with self._lock:
            if self._token and time.monotonic() < self._expires_at:
                return self._token
            try:
                response = await self._http.post(self.token_url, **self._request())
            except httpx.HTTPError as exc:
                raise ProblemError(
                    f"{self.vendor} token endpoint unreachable ({type(exc).__name__})",
                    status=503,
                    slug="downstream-unavailable",
                    downstream=self.vendor,
                ) from exc
            if response.status_code != 200:
                raise credentials_refused(self.vendor, response.status_code, response.text)
            body: dict[str, Any] = response.json()
            self._token = str(body["access_token"])
            lifetime = body.get("expires_in")
            # No expires_in (Salesforce): keep the session until the vendor refuses it with 401.
            self._expires_at = (
                time.monotonic() + max(float(lifetime) - 60.0, float(lifetime) / 2)
                if lifetime is not None
                else float("inf")
            )
            return self._token

    def _request(self) -> dict[str, Any]:
        raise NotImplementedError

    async def aclose(self) -> None:
        await self._http.aclose()


class ClientCredentialsToken(VendorToken):
    def _request(self) -> dict[str, Any]:
        return {
            "data": {"grant_type": "client_credentials"},
            "auth": (self.credentials.client_id, self.credentials.client_secret),
        }


class JwtBearerToken(VendorToken):
    def __init__(self, vendor: str, token_url: str, credentials: VendorCredentials, timeout_seconds: float) -> None:
        super().__init__(vendor, token_url, credentials, timeout_seconds)
        self._key = RSAKey.import_key(Path(credentials.private_key_file).read_text())

    def _request(self) -> dict[str, Any]:
        claims = {
            "iss": self.credentials.client_id,
            "sub": self.credentials.username,
            "aud": SALESFORCE_AUDIENCE,
            "exp": int(time.time()) + 180,
        }
        assertion = jwt.encode({"alg": "RS256"}, claims, self._key)
        return {"data": {"grant_type": JWT_BEARER, "assertion": assertion}}


def token_source(
    kind: type[VendorToken], vendor: str, token_url: str, credentials: VendorCredentials | None, timeout_seconds: float
) -> VendorToken | None:
    """The connector's token source, or None when it has no credentials (its calls then go unauthenticated)."""
    if credentials is None or not credentials.client_id:
        return None
    return kind(vendor, token_url, credentials, timeout_seconds)
