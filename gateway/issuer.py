"""The built-in OAuth2 issuer: client_credentials and people's tokens (RS256) for the embedded default, JWKS published.

Production deployments may point the gateway at any OIDC issuer instead (or as well); the tiers and the
authenticate policy trust whatever issuers are configured, this one included.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from gateway.config import ClientConfig, IssuerConfig

# scrypt's interactive-login cost (RFC 7914 section 2): about 16 MiB and tens of milliseconds per check, so a
# stolen gateway.yaml or database does not give secrets away at GPU speed. Checked off the event loop.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN = 2**14, 8, 1, 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_secret(secret: str) -> str:
    """``scrypt$N$r$p$salt$hash`` of a client secret, with a fresh random salt."""
    salt = os.urandom(16)
    derived = hashlib.scrypt(secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=_SCRYPT_LEN)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(derived)}"


def legacy_sha256(secret: str) -> str:
    """The unsalted form older releases stored: still accepted, replaced by the next rotation."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str | None) -> bool:
    if not stored_hash:
        return False
    if stored_hash.startswith("sha256:"):
        return hmac.compare_digest(legacy_sha256(secret), stored_hash)
    parts = stored_hash.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, expected = _unb64(parts[4]), _unb64(parts[5])
        if n > 2**20 or r > 32 or p > 16:  # a hostile stored hash must not make a check take minutes
            return False
        derived = hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, dklen=len(expected),
                                 maxmem=256 * 1024 * 1024)
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(derived, expected)


def demo_secret(client_id: str) -> str:
    """The embedded demo's secret of a client (gateway.yaml ships their hashes): public knowledge."""
    return f"demo-secret-{client_id}"


def has_demo_secret(client: ClientConfig) -> bool:
    return secret_matches(demo_secret(client.id), client.secret_hash)


log = logging.getLogger("gateway.issuer")


def _write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    # Write then rename: a process reading at the same moment never sees half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    tmp.replace(path)


def load_or_create_key(path: Path) -> RSAKey:
    if path.exists():
        return RSAKey.import_key(path.read_bytes())
    _write_atomically(path, RSAKey.generate_key(2048, private=True).as_pem(private=True))
    return RSAKey.import_key(path.read_bytes())


class Issuer:
    """Signs with the active key; publishes it and, after a rotation, the previous keys until their grace ends.

    Key files live under the data dir (shared by gateway instances on one host): the active key at
    ``signing_key_file``, retired ones in ``previous/<kid>.pem`` with ``<kid>.json`` saying until when they
    are published. :meth:`refresh` picks up a rotation another process made.
    """

    def __init__(self, config: IssuerConfig, data_dir: Path) -> None:
        self.config = config
        key_path = Path(config.signing_key_file)
        if not key_path.is_absolute():
            key_path = data_dir / key_path
        self.key_path = key_path
        self.previous_dir = key_path.parent / "previous"
        self._fingerprint: tuple[int, ...] = ()
        self.key = load_or_create_key(key_path)
        self._load()

    def _files_fingerprint(self) -> tuple[int, ...]:
        stamps = [self.key_path.stat().st_mtime_ns if self.key_path.exists() else 0]
        if self.previous_dir.is_dir():
            stamps.append(self.previous_dir.stat().st_mtime_ns)
        return tuple(stamps)

    def _load(self) -> None:
        self.key = load_or_create_key(self.key_path)
        self.key.ensure_kid()
        self.kid = self.key.kid
        keys: list[Any] = [RSAKey.import_key(self.key.as_dict(private=False))]
        self._retire_times: dict[str, float] = {}
        now = time.time()
        for meta_path in sorted(self.previous_dir.glob("*.json")) if self.previous_dir.is_dir() else []:
            try:
                meta = json.loads(meta_path.read_text())
                if float(meta["retire_after"]) <= now:
                    continue
                old = RSAKey.import_key(meta_path.with_suffix(".pem").read_bytes())
            except (OSError, ValueError, KeyError) as exc:
                log.warning("skipping unreadable previous signing key", extra={"file": str(meta_path),
                                                                               "error": str(exc)})
                continue
            old.ensure_kid()
            if old.kid != self.kid:
                keys.append(RSAKey.import_key(old.as_dict(private=False)))
                self._retire_times[str(old.kid)] = float(meta["retire_after"])
        self.public_keys = KeySet(keys)
        self._fingerprint = self._files_fingerprint()

    def refresh(self) -> bool:
        """Reload the keys when the files changed (a rotation elsewhere) or a previous key's grace ended."""
        grace_ended = any(t <= time.time() for t in self._retire_times.values())
        if grace_ended or self._files_fingerprint() != self._fingerprint:
            self._load()
            return True
        return False

    def key_set(self) -> KeySet:
        """The published keys, reloaded first when they changed (the verifier's source for this issuer)."""
        self.refresh()
        return self.public_keys

    def rotate(self) -> dict[str, Any]:
        """Start signing with a new key; the current one stays published for ``previous_key_grace_seconds``."""
        old = self.key
        retire_after = time.time() + self.config.previous_key_grace_seconds
        self.previous_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.previous_dir / f"{old.kid}.pem", old.as_pem(private=True))
        _write_atomically(self.previous_dir / f"{old.kid}.json",
                          json.dumps({"kid": old.kid, "retire_after": retire_after}).encode(), 0o644)
        _write_atomically(self.key_path, RSAKey.generate_key(2048, private=True).as_pem(private=True))
        self._load()
        log.warning("issuer signing key rotated", extra={"new_kid": self.kid, "previous_kid": old.kid})
        return {"kid": self.kid, "previous_kid": old.kid, "previous_published_until": int(retire_after),
                "published_kids": [k.kid for k in self.public_keys.keys]}

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
            "authorization_endpoint": base + "/authorize",
            "token_endpoint": base + "/oauth2/token",
            "introspection_endpoint": base + "/oauth2/introspect",
            "revocation_endpoint": base + "/oauth2/revoke",
            "jwks_uri": base + "/.well-known/jwks.json",
            "grant_types_supported": ["client_credentials", "authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
        }

    def mint(self, client: ClientConfig, scopes: list[str] | None = None, *, subject: str | None = None,
             ttl_seconds: int | None = None, extra_claims: dict[str, Any] | None = None) -> tuple[str, int]:
        """A signed access token for ``client`` (acting for ``subject`` when given) and its lifetime."""
        ttl = ttl_seconds or self.config.token_ttl_seconds
        now = int(time.time())
        # Never "issued" before the client's not-before (a rotation in this very second), or the token would be
        # refused as one of those the rotation ended.
        issued = max(now, client.not_before)
        claims = {
            "iss": self.config.issuer,
            "aud": self.config.audience,
            "sub": subject or client.id,
            "client_id": client.id,
            "scope": " ".join(scopes if scopes is not None else client.scopes),
            "iat": issued,
            "nbf": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            **(extra_claims or {}),
        }
        return self.sign(claims), ttl

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode({"alg": "RS256", "kid": self.kid, "typ": "JWT"}, claims, self.key, algorithms=["RS256"])
