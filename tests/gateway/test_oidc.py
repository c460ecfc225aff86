"""An external OIDC issuer, end to end through the real stack: its tokens are bound to the clients registered for
it (by the claims its rule names, scopes mapped and capped), reach the tiers as the gateway's internal tokens,
and stop validating when the issuer withdraws the key, within the JWKS ceiling or at once on an operator's reload.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from joserfc import jwt
from joserfc.jwk import RSAKey

from gateway import config as gateway_config
from gateway.internal_tokens import InternalTokens
from gateway.issuer import Issuer
from gateway.launcher import REPO_ROOT
from runtime.tokens import Principal, TokenError, TokenVerifier, TrustedIssuer, peek
from tests.support.gateway import GatewayProcess, ServerProcess, admin_headers, base_config
from tests.support.stack import DEMO_CONSULTANT

ASSIGNMENTS = "/experience/mobile-time/v1/me/assignments"
TIME_ENTRIES = "/experience/mobile-time/v1/me/time-entries"
PROJECT = "/system/psa/v1/projects/prj_4001"
CEILING = 3  # seconds: the gateway's JWKS ceiling in these tests (the IdP itself asks for an hour)
MIN_REFRESH = 1  # an unknown kid refetches the JWKS at most this often


def idp_gateway(gateways: Callable[..., GatewayProcess], idp: ServerProcess, **authenticate: Any) -> GatewayProcess:
    """A gateway in front of the stack's real tiers that trusts ``idp`` for one client, ``idp-mobile``."""
    config: dict[str, Any] = base_config()
    config["policies"]["authenticate"].update({
        "trusted_issuers": [{"issuer": idp.url, "audience": "psgateway", "client_claim": "azp",
                             "scope_claims": ["roles"], "scope_map": {"consultant": ["time:read", "time:write"],
                                                                     "admin": ["admin:read", "admin:write"]}}],
        "jwks_max_cache_seconds": CEILING, "jwks_min_refresh_seconds": MIN_REFRESH, **authenticate})
    # Registered for time:read only, whatever the IdP grants.
    config["clients"].append({"id": "idp-mobile", "layer": "app", "scopes": ["time:read"], "sla_tier": "silver",
                              "issuers": [idp.url]})
    return gateways(config)


def idp_token(idp: ServerProcess, **claims: Any) -> str:
    body = {"aud": "psgateway", "sub": DEMO_CONSULTANT, "azp": "idp-mobile", "roles": ["consultant"], **claims}
    return str(httpx.post(idp.url + "/token", json=body).json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_external_user_token_reaches_the_tiers_with_capped_scopes(gateways: Callable[..., GatewayProcess],
                                                                      servers: Callable[..., ServerProcess]) -> None:
    idp = servers("oidc_issuer.py")
    gateway = idp_gateway(gateways, idp)
    token = idp_token(idp)

    # The experience tier (which trusts only the gateway's internal tokens) serves the IdP's user.
    read = httpx.get(gateway.url + ASSIGNMENTS, headers=bearer(token), timeout=30)
    assert read.status_code == 200, read.text
    # The IdP's role maps to time:write, but the client is registered for time:read only.
    write = httpx.post(gateway.url + TIME_ENTRIES, headers=bearer(token), json={}, timeout=30)
    assert write.status_code == 403 and write.json()["missing_scopes"] == ["time:write"], write.text
    # The IdP's token sent to the tier directly is refused there.
    tier = gateway.stack.stack.url("experience")
    direct = httpx.get(tier + ASSIGNMENTS, headers=bearer(token), timeout=30)
    assert direct.status_code == 401, direct.text

    audited = httpx.get(gateway.url + "/admin/v1/audit/calls", params={"client_id": "idp-mobile"},
                        headers=admin_headers(gateway)).json()["items"]
    assert {(e["issuer"], e["client_id"], e["subject"]) for e in audited} == {
        (idp.url, "idp-mobile", DEMO_CONSULTANT)}


def test_an_external_client_named_like_ours_is_not_ours(gateways: Callable[..., GatewayProcess],
                                                       servers: Callable[..., ServerProcess]) -> None:
    idp = servers("oidc_issuer.py")
    gateway = idp_gateway(gateways, idp)

    # A client called security-admin at the IdP, with admin roles: not the gateway's security-admin.
    admin = idp_token(idp, sub="security-admin", azp="security-admin", roles=["admin"])
    refused = httpx.get(gateway.url + "/admin/v1/clients", headers=bearer(admin))
    assert refused.status_code == 401 and refused.json()["reason"] == "issuer_not_allowed", refused.text
    # Nor does a token naming a tier's client reach the API.
    tier = idp_token(idp, sub="process-tier", azp="process-tier", scope="psa:read")
    assert httpx.get(gateway.url + PROJECT, headers=bearer(tier)).json()["reason"] == "issuer_not_allowed"
    # The client comes only from the claim the issuer's rule names (azp here), never from sub.
    no_client = idp_token(idp, sub="idp-mobile", azp=None)
    response = httpx.get(gateway.url + ASSIGNMENTS, headers=bearer(no_client))
    assert response.status_code == 401 and response.json()["reason"] == "unknown_client"


def test_a_withdrawn_key_stops_validating(gateways: Callable[..., GatewayProcess],
                                          servers: Callable[..., ServerProcess]) -> None:
    idp = servers("oidc_issuer.py", "3600")
    gateway = idp_gateway(gateways, idp)
    first = idp_token(idp)
    first_kid = _kid(first)
    assert httpx.get(gateway.url + ASSIGNMENTS, headers=bearer(first), timeout=30).status_code == 200

    # A key added at the IdP is picked up without a restart (an unknown kid refetches, rate limited).
    httpx.post(idp.url + "/rotate")
    second = idp_token(idp)
    time.sleep(MIN_REFRESH)
    assert httpx.get(gateway.url + ASSIGNMENTS, headers=bearer(second), timeout=30).status_code == 200

    # The first key is withdrawn: an operator's refresh makes the gateway refuse its tokens at once.
    httpx.post(idp.url + "/remove", json={"kid": first_kid})
    refreshed = httpx.post(gateway.url + "/admin/v1/issuers/refresh-keys", headers=admin_headers(gateway))
    assert refreshed.status_code == 200 and first_kid not in refreshed.json()[idp.url]
    gone = httpx.get(gateway.url + ASSIGNMENTS, headers=bearer(first))
    assert gone.status_code == 401 and gone.json()["reason"] == "unknown_kid", gone.text
    assert httpx.get(gateway.url + ASSIGNMENTS, headers=bearer(second), timeout=30).status_code == 200

    # Withdrawn without anyone telling the gateway: refused once the ceiling has passed (the IdP said an hour).
    httpx.post(idp.url + "/rotate")
    third = idp_token(idp)
    time.sleep(MIN_REFRESH)
    assert httpx.get(gateway.url + ASSIGNMENTS, headers=bearer(third), timeout=30).status_code == 200
    httpx.post(idp.url + "/remove", json={"kid": _kid(second)})
    time.sleep(CEILING + 1)
    late = httpx.get(gateway.url + ASSIGNMENTS, headers=bearer(second))
    assert late.status_code == 401 and late.json()["reason"] == "unknown_kid", late.text


def test_policy_reload_refetches_the_keys(gateways: Callable[..., GatewayProcess],
                                          servers: Callable[..., ServerProcess]) -> None:
    idp = servers("oidc_issuer.py", "3600")
    gateway = idp_gateway(gateways, idp, jwks_max_cache_seconds=300, jwks_min_refresh_seconds=5)
    first = idp_token(idp)
    assert httpx.get(gateway.url + ASSIGNMENTS, headers=bearer(first), timeout=30).status_code == 200
    httpx.post(idp.url + "/rotate")
    httpx.post(idp.url + "/remove", json={"kid": _kid(first)})

    reloaded = subprocess.run([sys.executable, "-m", "gateway.cli", "policy", "reload"], cwd=REPO_ROOT,
                              env={"PSGW_GATEWAY_URL": gateway.url, "PSGW_ADMIN_TOKEN": gateway.token("security-admin"),
                                   "PATH": ""}, capture_output=True, text=True, timeout=60)
    assert reloaded.returncode == 0, reloaded.stderr
    assert httpx.get(gateway.url + ASSIGNMENTS, headers=bearer(first)).json()["reason"] == "unknown_kid"


def test_garbage_kids_do_not_hammer_the_issuer(gateways: Callable[..., GatewayProcess],
                                               servers: Callable[..., ServerProcess]) -> None:
    idp = servers("oidc_issuer.py")
    gateway = idp_gateway(gateways, idp, jwks_max_cache_seconds=300, jwks_min_refresh_seconds=300)
    assert httpx.get(gateway.url + ASSIGNMENTS, headers=bearer(idp_token(idp)), timeout=30).status_code == 200
    before = httpx.get(idp.url + "/stats").json()["jwks_fetches"]
    attacker = RSAKey.generate_key(2048, private=True)
    now = int(time.time())
    with httpx.Client(base_url=gateway.url) as client:
        for _ in range(30):
            forged = jwt.encode({"alg": "RS256", "kid": uuid.uuid4().hex}, {
                "iss": idp.url, "aud": "psgateway", "azp": "idp-mobile", "sub": DEMO_CONSULTANT, "iat": now,
                "exp": now + 300, "roles": ["consultant"]}, attacker, algorithms=["RS256"])
            assert client.get(ASSIGNMENTS, headers=bearer(forged)).json()["reason"] == "unknown_kid"
    assert httpx.get(idp.url + "/stats").json()["jwks_fetches"] - before <= 1


def _kid(token: str) -> str:
    return str(peek(token)[0]["kid"])


async def test_a_tier_gets_a_short_token_of_the_gateway_for_the_verified_caller(tmp_path: Path) -> None:
    """Item 4 of issue 15: what the gateway sends a tier for an external IdP's user, checked as a tier checks it."""
    config = gateway_config.load(REPO_ROOT / "gateway.yaml").issuer
    issuer = Issuer(config, tmp_path)
    tier = TokenVerifier([TrustedIssuer(issuer=config.issuer)], audience=config.internal_audience,
                         static_keys={config.issuer: issuer.key_set()})
    idp = "https://login.example.com/realms/firm"
    now = int(time.time())
    caller = Principal(subject=DEMO_CONSULTANT, client_id="mobile-app", scopes=frozenset({"time:read"}), issuer=idp,
                       expires_at=now + 3600, claims={"iss": idp, "scope": "time:read time:write admin:write"})
    tokens = InternalTokens(issuer, config)

    header = tokens.authorization_for(caller)
    token = header.decode().removeprefix("Bearer ")
    seen = await tier.verify(token)
    claims = seen.claims
    assert (seen.subject, seen.client_id, seen.scopes) == (DEMO_CONSULTANT, "mobile-app", frozenset({"time:read"}))
    assert (claims["iss"], claims["aud"], claims["orig_iss"]) == (config.issuer, config.internal_audience, idp)
    assert claims["act"] == {"sub": config.issuer}  # the gateway acting for the caller (RFC 8693)
    assert claims["exp"] - claims["iat"] <= config.internal_token_ttl_seconds  # 120 s, not the caller's hour
    # Reused for the same caller until near expiry; a state change (a revocation) drops it: the next is fresh.
    assert tokens.authorization_for(caller) == header
    tokens.clear()
    assert tokens.authorization_for(caller) != header

    # Never beyond the caller's own token; and the caller's token itself is nothing a tier accepts.
    short = Principal(subject=DEMO_CONSULTANT, client_id="mobile-app", scopes=frozenset({"time:read"}), issuer=idp,
                      expires_at=now + 20, claims={})
    assert peek(tokens.authorization_for(short).decode().removeprefix("Bearer "))[1]["exp"] == now + 20
    callers_own = issuer.mint(gateway_config.load(REPO_ROOT / "gateway.yaml").clients[0])[0]
    with pytest.raises(TokenError) as refused:
        await tier.verify(callers_own)
    assert refused.value.reason == "wrong_audience"


def _readme_yaml(heading: str) -> dict[str, Any]:
    text = (REPO_ROOT / "README.md").read_text()
    text = text[text.index(heading):]
    text = text[text.index("```yaml") + len("```yaml"):]
    return yaml.safe_load(text[:text.index("```")])


def test_the_readmes_external_idp_example_binds_tokens_as_it_says() -> None:
    """The README's worked gateway.yaml for a security team's IdP (Keycloak realm roles) is what the gateway
    reads: laid over the shipped gateway.yaml it loads, a consultant's token for mobile-app is granted
    time:read time:write, a manager's only time:read (approvals and dashboards are not registered for
    mobile-app), a token of that IdP naming another client is refused, and so is the built-in issuer's token
    for mobile-app (its issuers name only the IdP)."""
    from gateway import config as gateway_config
    from gateway.state import identity_of
    from policies.authenticate import AuthenticateConfig, IdentityBinder
    from runtime.tokens import Principal, TokenError

    example = _readme_yaml("### Configuring an external identity provider")
    raw: dict[str, Any] = base_config()
    raw["policies"]["authenticate"].update(example["policies"]["authenticate"])
    for client in example["clients"]:
        index = next(i for i, c in enumerate(raw["clients"]) if c["id"] == client["id"])
        raw["clients"][index] = client
    config = gateway_config.parse(yaml.safe_dump(raw), env={})
    idp = example["policies"]["authenticate"]["trusted_issuers"][0]["issuer"]
    builtin = config.issuer.issuer
    binder = IdentityBinder(builtin, config.policy(AuthenticateConfig).trusted_issuers,
                            {c.id: identity_of(c, builtin) for c in config.clients})

    def bind(issuer: str, **claims: Any) -> Principal:
        now = int(time.time())
        return binder.bind(Principal(subject="", client_id="", scopes=frozenset(), issuer=issuer,
                                     expires_at=now + 300, claims={"iat": now, **claims}))[0]

    def refusal(issuer: str, **claims: Any) -> str:
        try:
            bind(issuer, **claims)
        except TokenError as exc:
            return exc.reason
        raise AssertionError(f"a token of {issuer} with {claims} was accepted")

    consultant = bind(idp, azp="mobile-app", sub=DEMO_CONSULTANT, realm_access={"roles": ["consultant"]})
    assert (consultant.client_id, consultant.subject) == ("mobile-app", DEMO_CONSULTANT)
    assert consultant.scopes == {"time:read", "time:write"}
    manager = bind(idp, azp="mobile-app", sub="wrk_e1002", realm_access={"roles": ["manager", "offline_access"]})
    assert manager.scopes == {"time:read"}
    assert refusal(idp, azp="dashboard-web", sub="wrk_e1002", realm_access={"roles": ["manager"]}) \
        == "issuer_not_allowed"
    assert refusal(idp, azp="security-admin", sub="security-admin") == "issuer_not_allowed"
    assert refusal(builtin, client_id="mobile-app", sub=DEMO_CONSULTANT, scope="time:read") == "issuer_not_allowed"
