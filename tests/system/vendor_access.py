"""Calling a sandbox vendor directly, as an integration would: with the stack's generated vendor credentials."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from gateway.launcher import vendor_credentials
from tests.support.stack import RunningStack

TOKEN_PATHS = {
    "psa": "/oauth2/token",
    "erp": "/services/rest/auth/oauth2/v1/token",
    "hr": "/ccx/oauth2/northwind/token",
    "crm": "/services/oauth2/token",
}


def vendor_token(stack: RunningStack, system: str) -> str:
    _, env = vendor_credentials(stack.stack.data_dir)
    url = stack.stack.url(f"sandbox-{system}") + TOKEN_PATHS[system]
    if system == "crm":
        key = RSAKey.import_key(Path(env["PSGW_CRM_PRIVATE_KEY_FILE"]).read_text())
        claims = {
            "iss": env["PSGW_CRM_CLIENT_ID"],
            "sub": env["PSGW_CRM_USERNAME"],
            "aud": "https://login.salesforce.com",
            "exp": int(time.time()) + 120,
        }
        form = {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": jwt.encode({"alg": "RS256"}, claims, key),
        }
        answer = httpx.post(url, data=form)
    else:
        prefix = f"PSGW_{system.upper()}_"
        answer = httpx.post(
            url,
            data={"grant_type": "client_credentials"},
            auth=(env[prefix + "CLIENT_ID"], env[prefix + "CLIENT_SECRET"]),
        )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def vendor_client(stack: RunningStack, system: str) -> httpx.Client:
    return httpx.Client(
        base_url=stack.stack.url(f"sandbox-{system}"),
        headers={"Authorization": "Bearer " + vendor_token(stack, system)},
    )


class SandboxCredentials(httpx.Auth):
    """httpx auth for direct calls to any sandbox vendor of the stack: each gets its own vendor's token."""

    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack
        self.tokens: dict[str, str] = {}

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        system = next((s for s in TOKEN_PATHS if request.url.port == self.stack.stack.ports.sandboxes[s]), None)
        if system is not None:
            if system not in self.tokens:
                self.tokens[system] = vendor_token(self.stack, system)
            request.headers["Authorization"] = "Bearer " + self.tokens[system]
        yield request
