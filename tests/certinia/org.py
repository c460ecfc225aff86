"""The Certinia org as the integration user sees it, for tests that check Certinia's side directly: a session from
the OAuth 2.0 JWT bearer flow with the stack's generated connected-app key."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from gateway.launcher import vendor_credentials
from tests.support.stack import RunningStack

API = "/services/data/v60.0"


def certinia_session(stack: RunningStack) -> httpx.Client:
    """A client on the org's REST API root, authenticated as the PSA connector is (close it after use)."""
    base = stack.stack.url("sandbox-psa")
    _, env = vendor_credentials(stack.stack.data_dir)
    key = RSAKey.import_key(Path(env["PSGW_PSA_PRIVATE_KEY_FILE"]).read_text())
    claims = {
        "iss": env["PSGW_PSA_CLIENT_ID"],
        "sub": env["PSGW_PSA_USERNAME"],
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 120,
    }
    answer = httpx.post(
        base + "/services/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": jwt.encode({"alg": "RS256"}, claims, key),
        },
    )
    assert answer.status_code == 200, answer.text
    return httpx.Client(
        base_url=base + API, timeout=30.0, headers={"Authorization": "Bearer " + answer.json()["access_token"]}
    )
