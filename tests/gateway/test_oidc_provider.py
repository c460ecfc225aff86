"""The gateway against a real OIDC server this project did not write: panva/oidc-provider (npm), run by node.

Discovery and JWKS as that server publishes them, its RFC 9068 JWT access tokens bound to the one client
registered for it, scopes capped by the registration, the call reaching the real system tier as the gateway's
internal token, a key added and a key withdrawn (the server restarted with new keys, as an IdP rotates); and a
person who signs in at that server (authorization code + PKCE, its own sign-in pages) reaching the tiers as
themselves. Node is required, not optional: without it these tests fail rather than skip, so CI never passes
with the external-IdP test left out (`.ci/run` installs node where it is missing).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey

from runtime.tokens import peek
from tests.support.gateway import GATEWAY_TESTS, GatewayProcess, admin_headers, base_config, free_port, wait_healthy
from tests.support.stack import DEMO_CONSULTANT

SERVER_DIR = GATEWAY_TESTS / "oidc_provider"
PROJECT = "/system/psa/v1/projects/prj_4001"
SECRET = "partner-secret-0123456789abcdef"  # the test IdP's client secret
APP, APP_CALLBACK = "idp-time", "com.psgateway.time:/oauth2/callback"  # a phone app registered at the IdP
RESOURCE = "urn:psgateway"  # the resource its access tokens are for (audience psgateway)
ASSIGNMENTS = "/experience/mobile-time/v1/me/assignments"
TIME_ENTRIES = "/experience/mobile-time/v1/me/time-entries"
MIN_REFRESH = 1


def new_key() -> dict[str, Any]:
    key = RSAKey.generate_key(2048, private=True)
    key.ensure_kid()
    return {**key.as_dict(private=True), "use": "sig", "alg": "RS256"}


class OidcProvider:
    """oidc-provider on a fixed port; ``restart(keys)`` brings it back with other signing keys."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = work / "oidc-provider.log"
        (work / "clients.json").write_text(json.dumps([
            *({"client_id": client_id, "client_secret": SECRET, "grant_types": ["client_credentials"],
               "redirect_uris": [], "response_types": [], "scope": scope}
              for client_id, scope in (("partner-sync", "psa:read psa:write"),
                                       ("security-admin", "admin:read admin:write"))),
            # A phone app registered at the IdP: public, PKCE, its code back at its own URI scheme (RFC 8252).
            {"client_id": APP, "application_type": "native", "token_endpoint_auth_method": "none",
             "grant_types": ["authorization_code"], "response_types": ["code"], "redirect_uris": [APP_CALLBACK],
             "scope": "openid time:read time:write"}]))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, keys: list[dict[str, Any]]) -> None:
        (self.work / "keys.json").write_text(json.dumps(keys))
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                ["node", "server.js", str(self.port), str(self.work / "keys.json"), str(self.work / "clients.json")],
                cwd=SERVER_DIR, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_healthy(self.url, self.process, self.log)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def restart(self, keys: list[dict[str, Any]]) -> None:
        self.stop()
        self.start(keys)

    def sign_in(self, login: str, scope: str) -> str:
        """A person's access token, as an app gets it: authorization code + PKCE S256 through the server's pages."""
        verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        with httpx.Client(base_url=self.url, timeout=30) as browser:  # keeps the server's interaction cookies
            step = browser.get("/auth", params={
                "client_id": APP, "response_type": "code", "redirect_uri": APP_CALLBACK, "scope": scope,
                "resource": RESOURCE, "state": state, "code_challenge": challenge, "code_challenge_method": "S256"})
            for prompt in ("login", "consent"):
                assert step.status_code in (302, 303), step.text
                interaction = step.headers["location"]
                assert "/interaction/" in interaction, interaction
                step = browser.post(interaction, data={"prompt": prompt, "login": login, "password": "any"})
                while step.status_code in (302, 303) and step.headers["location"].startswith(("/", self.url)):
                    if "/interaction/" in step.headers["location"]:
                        break
                    step = browser.get(step.headers["location"])
            callback = urlsplit(step.headers["location"])
            assert f"{callback.scheme}:{callback.path}" == APP_CALLBACK, step.headers["location"]
            answer = dict(parse_qsl(callback.query))
            assert answer["state"] == state, answer
            issued = browser.post("/token", data={
                "grant_type": "authorization_code", "code": answer["code"], "redirect_uri": APP_CALLBACK,
                "client_id": APP, "code_verifier": verifier, "resource": RESOURCE})
        assert issued.status_code == 200, issued.text
        return str(issued.json()["access_token"])

    def token(self, client_id: str, scope: str) -> str:
        issued = httpx.post(self.url + "/token", auth=(client_id, SECRET), data={
            "grant_type": "client_credentials", "scope": scope, "resource": "urn:psgateway"})
        assert issued.status_code == 200, issued.text
        return str(issued.json()["access_token"])


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[OidcProvider]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed to run the external-IdP test (Node 20: apt-get install nodejs npm)")
    if not (SERVER_DIR / "node_modules" / "oidc-provider").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=SERVER_DIR, check=True, timeout=300,
                       capture_output=True)
    started = OidcProvider(tmp_path)
    yield started
    started.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_real_oidc_server_end_to_end(provider: OidcProvider, gateways: Callable[..., GatewayProcess]) -> None:
    first_key = new_key()
    provider.start([first_key])
    config: dict[str, Any] = base_config()
    config["policies"]["authenticate"].update({
        "trusted_issuers": [{"issuer": provider.url, "audience": "psgateway", "client_claim": "client_id"}],
        "jwks_min_refresh_seconds": MIN_REFRESH})
    config["clients"].append({"id": "partner-sync", "layer": "process", "scopes": ["psa:read"],
                              "sla_tier": "gold", "issuers": [provider.url]})
    gateway = gateways(config)

    # Its token (scope psa:read psa:write) reaches the real system tier, with psa:read only.
    token = provider.token("partner-sync", "psa:read psa:write")
    assert peek(token)[1]["scope"] == "psa:read psa:write"
    read = httpx.get(gateway.url + PROJECT, headers=bearer(token), timeout=30)
    assert read.status_code == 200 and read.json()["id"] == "prj_4001", read.text
    write = httpx.post(gateway.url + "/system/psa/v1/projects", headers=bearer(token), json={}, timeout=30)
    assert write.status_code == 403 and write.json()["missing_scopes"] == ["psa:write"], write.text

    # Its client called security-admin is not ours.
    admin = provider.token("security-admin", "admin:read admin:write")
    refused = httpx.get(gateway.url + "/admin/v1/clients", headers=bearer(admin))
    assert refused.status_code == 401 and refused.json()["reason"] == "issuer_not_allowed", refused.text

    # A key added: the server now signs with it; the gateway picks it up (unknown kid -> refetch).
    second_key = new_key()
    provider.restart([second_key, first_key])
    second = provider.token("partner-sync", "psa:read")
    assert peek(second)[0]["kid"] == second_key["kid"]
    time.sleep(MIN_REFRESH)
    assert httpx.get(gateway.url + PROJECT, headers=bearer(second), timeout=30).status_code == 200

    # The first key withdrawn: refused once the gateway refetches (an operator's refresh here, else the ceiling).
    provider.restart([second_key])
    refreshed = httpx.post(gateway.url + "/admin/v1/issuers/refresh-keys", headers=admin_headers(gateway))
    assert refreshed.json()[provider.url] == [second_key["kid"]]
    gone = httpx.get(gateway.url + PROJECT, headers=bearer(token))
    assert gone.status_code == 401 and gone.json()["reason"] == "unknown_kid", gone.text
    assert httpx.get(gateway.url + PROJECT, headers=bearer(second), timeout=30).status_code == 200


def test_a_person_signed_in_at_the_real_server_reaches_the_tiers_as_themselves(
        provider: OidcProvider, gateways: Callable[..., GatewayProcess]) -> None:
    provider.start([new_key()])
    config: dict[str, Any] = base_config()
    config["policies"]["authenticate"].update({
        "trusted_issuers": [{"issuer": provider.url, "audience": "psgateway", "client_claim": "client_id",
                             "subject_claim": "sub", "scope_claims": ["scope"]}]})
    # The app's registration here: time:read only, whatever the IdP lets it ask for.
    config["clients"].append({"id": APP, "layer": "app", "scopes": ["time:read"], "sla_tier": "silver",
                              "user_tokens": True, "issuers": [provider.url]})
    gateway = gateways(config)

    token = provider.sign_in(DEMO_CONSULTANT, "openid time:read time:write")
    claims = peek(token)[1]
    assert (claims["iss"], claims["sub"], claims["client_id"]) == (provider.url, DEMO_CONSULTANT, APP)
    assert set(claims["scope"].split()) == {"time:read", "time:write"}

    # The experience tier (trusting only the gateway's internal token) answers for that consultant.
    mine = httpx.get(gateway.url + ASSIGNMENTS, headers=bearer(token), timeout=30)
    assert mine.status_code == 200 and '"project_id":"prj_4001"' in mine.text, mine.text
    # The IdP granted time:write; the gateway caps it to the app's registration.
    write = httpx.post(gateway.url + TIME_ENTRIES, headers=bearer(token), json={}, timeout=30)
    assert write.status_code == 403 and write.json()["missing_scopes"] == ["time:write"], write.text
    # The IdP's token straight to the tier: refused there (tiers trust the gateway only).
    direct = httpx.get(gateway.stack.stack.url("experience") + ASSIGNMENTS, headers=bearer(token), timeout=30)
    assert direct.status_code == 401, direct.text
    audited = httpx.get(gateway.url + "/admin/v1/audit/calls", params={"client_id": APP},
                        headers=admin_headers(gateway)).json()["items"]
    assert {(e["issuer"], e["client_id"], e["subject"]) for e in audited} == {(provider.url, APP, DEMO_CONSULTANT)}

    # The security team revokes the app at the gateway: the IdP's still-valid token reaches no tier any more.
    revoked = httpx.post(gateway.url + f"/admin/v1/clients/{APP}/revoke", headers=admin_headers(gateway))
    assert revoked.status_code == 200, revoked.text
    refused = httpx.get(gateway.url + ASSIGNMENTS, headers=bearer(token), timeout=30)
    assert refused.status_code == 401 and refused.json()["reason"] == "revoked_client", refused.text
