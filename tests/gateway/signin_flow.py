"""A person signing in at the built-in issuer, as a page does it: PKCE S256, the sign-in form, the code redeemed."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from gateway.signin.people import demo_passwords
from tests.support.stack import RunningStack

# The demo people's usernames (gateway.yaml issuer.sign_in.people): a finance lead, a consultant, a manager.
FINANCE_LEAD_USER, CONSULTANT_USER, MANAGER_USER = "chloe", "ada", "ben"


def password_of(stack: RunningStack, username: str) -> str:
    """The demo person's password, as the gateway generated it into the stack's data dir."""
    return dict(demo_passwords(stack.stack.data_dir / "issuer"))[username]


def challenge_of(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclass
class SignIn:
    """One authorization request of a page: its parameters and the PKCE verifier it keeps to itself."""

    client_id: str
    redirect_uri: str
    verifier: str
    state: str

    @classmethod
    def of_page(cls, stack: RunningStack, client_id: str, page: str) -> SignIn:
        return cls(
            client_id, stack.stack.url("experience") + page, secrets.token_urlsafe(48), secrets.token_urlsafe(16)
        )

    def params(self, **changes: Any) -> dict[str, str]:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "state": self.state,
            "code_challenge": challenge_of(self.verifier),
            "code_challenge_method": "S256",
        }
        return {k: v for k, v in {**params, **changes}.items() if v is not None}


def submit(http: httpx.Client, params: dict[str, str], username: str, password: str) -> httpx.Response:
    return http.post("/authorize", data={**params, "username": username, "password": password})


def redirected(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """Where the person was sent back to, and the parameters it carried."""
    location = response.headers["location"]
    parts = urlsplit(location)
    target = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else f"{parts.scheme}:{parts.path}"
    return target, {k: v[0] for k, v in parse_qs(parts.query).items()}


def code_for(stack: RunningStack, http: httpx.Client, flow: SignIn, username: str, **changes: Any) -> str:
    response = submit(http, flow.params(**changes), username, password_of(stack, username))
    assert response.status_code == 303, response.text
    target, params = redirected(response)
    assert target == flow.redirect_uri and params["state"] == flow.state, params
    return params["code"]


def redeem(http: httpx.Client, flow: SignIn, code: str, **changes: Any) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": flow.redirect_uri,
        "client_id": flow.client_id,
        "code_verifier": flow.verifier,
        **changes,
    }
    return http.post("/oauth2/token", data={k: v for k, v in form.items() if v is not None})


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
