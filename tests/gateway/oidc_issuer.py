"""A tiny real OIDC issuer for tests (``python oidc_issuer.py PORT [JWKS_MAX_AGE]``): discovery, JWKS, key rotation.

``POST /rotate`` starts signing with a new key and publishes it beside the old ones; ``POST /remove`` with
``{"kid": ...}`` withdraws a key from the JWKS; ``POST /token`` with a JSON object of claims answers
``{"access_token": ..., "kid": ...}`` signed with the current key (``"sign_with": kid`` picks an older one);
``GET /stats`` counts JWKS fetches. The JWKS is served with ``Cache-Control: max-age=JWKS_MAX_AGE`` (default 3600).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

LOCK = threading.Lock()
KEYS: list[RSAKey] = []  # every key ever made (tokens may still be signed with a withdrawn one)
PUBLISHED: set[str] = set()
ISSUER = ""
MAX_AGE = 3600
STATS = {"jwks_fetches": 0}


def new_key() -> None:
    key = RSAKey.generate_key(2048, private=True)
    key.ensure_kid()
    KEYS.append(key)
    PUBLISHED.add(str(key.kid))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def _send(self, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._send({"status": "ok"})
        elif self.path == "/.well-known/openid-configuration":
            self._send({"issuer": ISSUER, "jwks_uri": ISSUER + "/jwks.json"})
        elif self.path == "/jwks.json":
            with LOCK:
                STATS["jwks_fetches"] += 1
                keys = KeySet([RSAKey.import_key(k.as_dict(private=False)) for k in KEYS
                               if k.kid in PUBLISHED]).as_dict(private=False)
            self._send(keys, {"Cache-Control": f"public, max-age={MAX_AGE}"})
        elif self.path == "/stats":
            with LOCK:
                self._send(dict(STATS))
        else:
            self.send_error(404)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        with LOCK:
            if self.path == "/rotate":
                new_key()
                self._send({"kid": KEYS[-1].kid})
                return
            if self.path == "/remove":
                PUBLISHED.discard(body["kid"])
                self._send({"published": sorted(PUBLISHED)})
                return
            wanted = body.pop("sign_with", None)
            key = next(k for k in KEYS if k.kid == wanted) if wanted else KEYS[-1]
        now = int(time.time())
        claims = {"iss": ISSUER, "iat": now, "nbf": now, "exp": now + 300, **body}
        token = jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=["RS256"])
        self._send({"access_token": token, "kid": key.kid})


if __name__ == "__main__":
    port = int(sys.argv[1])
    MAX_AGE = int(sys.argv[2]) if len(sys.argv) > 2 else 3600
    ISSUER = f"http://127.0.0.1:{port}"
    new_key()
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
