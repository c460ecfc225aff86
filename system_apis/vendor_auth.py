"""Vendor authentication for the bundled connectors: OAuth 2.0 tokens fetched, cached and refreshed.

Two grants, one cache: :class:`ClientCredentialsToken` (RFC 6749 section 4.4: Workday, NetSuite, Dynamics 365,
SAP) and :class:`JwtBearerToken` (RFC 7523, Salesforce's "OAuth 2.0 JWT Bearer Flow": an RS256 assertion signed
with the connected app's private key, made with joserfc). A token is reused until ``expires_in`` (renewed a little
early) or until the vendor answers 401, when ``runtime.downstream`` invalidates it and sends the call once more.
Secrets come from the environment (``SystemSettings``: ``PSGW_<SYSTEM>_CLIENT_ID`` ...) or files, never from
gateway.yaml; ``psgw up`` generates them in the data dir at first start and gives the sandbox the same ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from runtime.downstream import CachedToken
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
    # NetSuite M2M: the id NetSuite gave the certificate whose private key is ``private_key_file``.
    certificate_id: str = ""
    # Dynamics 365 (Microsoft Entra ID): the directory (tenant) id, and the token endpoint when it is not on the
    # vendor's own host (``https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`` for a real tenant).
    tenant_id: str = ""
    token_url: str = ""


class VendorToken(CachedToken):
    """A vendor access token from the vendor's token endpoint (``_request``: the grant's form and client auth)."""

    default_lifetime = None  # Salesforce says no expires_in: the session lasts until the vendor answers 401

    def __init__(self, vendor: str, token_url: str, credentials: VendorCredentials, timeout_seconds: float) -> None:
        super().__init__(httpx.AsyncClient(timeout=httpx.Timeout(timeout_seconds)))
        self.vendor = vendor
        self.token_url = token_url
        self.credentials = credentials

    async def _fetch(self) -> dict[str, Any]:
        try:
            response = await self._http.post(self.token_url, **self._request())
        except httpx.HTTPError as exc:
            raise ProblemError(f"{self.vendor} token endpoint unreachable ({type(exc).__name__})", status=503,
                               slug="downstream-unavailable", downstream=self.vendor) from exc
        if response.status_code != 200:
            raise credentials_refused(self.vendor, response.status_code, response.text)
        body: dict[str, Any] = response.json()
        return body

    def _request(self) -> dict[str, Any]:
        raise NotImplementedError


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


class NetSuiteM2mToken(VendorToken):
    """NetSuite's OAuth 2.0 client credentials (M2M) grant ("POST Request to the Token Endpoint", "The Request Token
    Structure"): the client authenticates by a PS256 JWT signed with the private key of the certificate mapped to
    the integration (``kid``: its certificate id), with ``scope`` ``rest_webservices`` and ``aud`` the token URL."""

    def __init__(self, vendor: str, token_url: str, credentials: VendorCredentials, timeout_seconds: float) -> None:
        super().__init__(vendor, token_url, credentials, timeout_seconds)
        self._key = RSAKey.import_key(Path(credentials.private_key_file).read_text())

    def _request(self) -> dict[str, Any]:
        now = int(time.time())
        claims = {"iss": self.credentials.client_id, "scope": ["rest_webservices"], "aud": self.token_url,
                  "iat": now, "exp": now + 300}
        assertion = jwt.encode({"typ": "JWT", "alg": "PS256", "kid": self.credentials.certificate_id}, claims,
                               self._key, algorithms=["PS256"])
        return {"data": {"grant_type": "client_credentials",
                         "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                         "client_assertion": assertion}}


def token_source(
    kind: type[VendorToken], vendor: str, token_url: str, credentials: VendorCredentials | None, timeout_seconds: float
) -> VendorToken | None:
    """The connector's token source, or None when it has no credentials (its calls then go unauthenticated)."""
    if credentials is None or not credentials.client_id:
        return None
    return kind(vendor, token_url, credentials, timeout_seconds)
