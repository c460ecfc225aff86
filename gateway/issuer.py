"""The built-in OAuth2 issuer: client_credentials tokens (RS256) for the embedded default, JWKS published.

Production deployments may point the gateway at any OIDC issuer instead (or as well); the tiers and the
authenticate policy trust whatever issuers are configured, this one included.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
import uuid
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from gateway.config import ClientConfig, IssuerConfig


def hash_secret(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str | None) -> bool:
    if not stored_hash or not stored_hash.startswith("sha256:"):
        return False
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def load_or_create_key(path: Path) -> RSAKey:
    if path.exists():
        return RSAKey.import_key(path.read_bytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = RSAKey.generate_key(2048, private=True)
    # Write then rename: two processes starting at once never read half a key.
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(key.as_pem(private=True))
    tmp.chmod(0o600)
    tmp.replace(path)
    return RSAKey.import_key(path.read_bytes())


class Issuer:
    def __init__(self, config: IssuerConfig, data_dir: Path) -> None:
        self.config = config
        key_path = Path(config.signing_key_file)
        if not key_path.is_absolute():
            key_path = data_dir / key_path
        self.key = load_or_create_key(key_path)
        self.key.ensure_kid()
        self.kid = self.key.kid
        self.public_keys = KeySet([RSAKey.import_key(self.key.as_dict(private=False))])

    @property
    def issuer(self) -> str:
        return self.config.issuer

    def jwks(self) -> dict[str, Any]:
        keys = self.public_keys.as_dict(private=False)
        for key in keys["keys"]:
            key.update({"use": "sig", "alg": "RS256"})
        return dict(keys)

    def discovery(self) -> dict[str, Any]:
        base = self.config.issuer.rstrip("/")
        return {
            "issuer": self.config.issuer,
            "token_endpoint": base + "/oauth2/token",
            "jwks_uri": base + "/.well-known/jwks.json",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
        }

    def mint(self, client: ClientConfig, scopes: list[str] | None = None, *, subject: str | None = None,
             ttl_seconds: int | None = None) -> tuple[str, int]:
        """A signed access token for ``client`` (acting for ``subject`` when given) and its lifetime."""
        ttl = ttl_seconds or self.config.token_ttl_seconds
        now = int(time.time())
        claims = {
            "iss": self.config.issuer,
            "aud": self.config.audience,
            "sub": subject or client.id,
            "client_id": client.id,
            "scope": " ".join(scopes if scopes is not None else client.scopes),
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode({"alg": "RS256", "kid": self.kid, "typ": "JWT"}, claims, self.key, algorithms=["RS256"])
        return token, ttl
