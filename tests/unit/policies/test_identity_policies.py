"""authenticate, authorize and token_exchange in-process: who is calling, may they, and what the tiers then see."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config import ClientConfig, IssuerConfig
from gateway.issuer import Issuer
from gateway.state import identity_of
from policies import authenticate, authorize, token_exchange
from policies.authenticate import IdentityBinder, hash_api_key
from policies.exchange import ClientIdentity
from runtime.problems import ProblemError
from runtime.tokens import Principal, TokenVerifier, TrustedIssuer
from tests.unit.policies.harness import MOBILE, SYSTEM_API, build, exchange, services

ISSUER = "http://issuer.test"
MOBILE_CONFIG = ClientConfig(id="mobile-app", layer="app", scopes=["time:read", "time:write"], sla_tier="silver")


@pytest.fixture
def issuer(tmp_path: Path) -> Issuer:
    return Issuer(IssuerConfig(issuer=ISSUER), tmp_path)


def authenticating(
    issuer: Issuer, clients: list[ClientConfig], api_keys: dict[str, ClientIdentity] | None = None
) -> Any:
    identities = {c.id: identity_of(c, ISSUER) for c in clients}
    verifier = TokenVerifier(
        [TrustedIssuer(issuer=ISSUER)], audience="psgateway", static_keys={ISSUER: issuer.public_keys}
    )
    lent = services(verifier=verifier, binder=IdentityBinder(ISSUER, [], identities), api_keys=(api_keys or {}).get)
    return build(authenticate.POLICY, lent=lent)


async def test_authenticate_binds_a_token_to_its_client_and_grants_only_registered_scopes(issuer: Issuer) -> None:
    handler = authenticating(issuer, [MOBILE_CONFIG])
    token, _ = issuer.mint(MOBILE_CONFIG, ["time:read", "admin:write"], subject="w_1")
    call = exchange(headers={"authorization": f"Bearer {token}"})
    await handler.access(call)
    assert call.client is not None and call.client.id == "mobile-app"
    assert call.principal is not None and call.principal.subject == "w_1"
    assert call.principal.scopes == frozenset({"time:read"})  # admin:write was asked for, never registered


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing"),
        ({"authorization": "Bearer not.a.jwt"}, None),
        ({"authorization": "Basic dXNlcjpwdw=="}, None),
        ({"x-api-key": "wrong"}, "invalid_api_key"),
    ],
)
async def test_authenticate_refuses_with_401_and_a_challenge(
    issuer: Issuer, headers: dict[str, str], reason: str | None
) -> None:
    handler = authenticating(issuer, [MOBILE_CONFIG])
    call = exchange(headers=headers)
    with pytest.raises(ProblemError) as refused:
        await handler.access(call)
    assert refused.value.status == 401
    assert 'realm="psgateway"' in refused.value.headers["WWW-Authenticate"]
    if reason is not None:
        assert call.decisions["authenticate"] == reason


async def test_authenticate_refuses_a_revoked_client_and_a_token_from_before_its_rotation(issuer: Issuer) -> None:
    token, _ = issuer.mint(MOBILE_CONFIG)
    handler = authenticating(issuer, [ClientConfig(id="mobile-app", scopes=["time:read"], status="revoked")])
    with pytest.raises(ProblemError, match="revoked"):
        await handler.access(exchange(headers={"authorization": f"Bearer {token}"}))
    rotated = authenticating(issuer, [ClientConfig(id="mobile-app", scopes=["time:read"], not_before=2**33)])
    with pytest.raises(ProblemError, match="issued before"):
        await rotated.access(exchange(headers={"authorization": f"Bearer {token}"}))


async def test_authenticate_accepts_a_registered_api_key(issuer: Issuer) -> None:
    handler = authenticating(issuer, [MOBILE_CONFIG], {hash_api_key("k-123"): MOBILE})
    call = exchange(headers={"x-api-key": "k-123"})
    await handler.access(call)
    assert call.client is MOBILE and call.decisions["authenticate"] == "ok_api_key"


async def test_authorize_applies_the_layer_rule_then_the_scopes() -> None:
    handler = build(authorize.POLICY)
    await handler.access(exchange(client=MOBILE))
    with pytest.raises(ProblemError) as upward:
        await build(authorize.POLICY, api=SYSTEM_API).access(exchange(api=SYSTEM_API, client=MOBILE))
    assert upward.value.status == 403 and upward.value.slug == "layer-violation"
    reader = ClientIdentity(
        id="reader", layer="app", scopes=frozenset({"time:read"}), sla_tier="silver", allowed_layers=frozenset()
    )
    with pytest.raises(ProblemError) as scope:
        await handler.access(exchange("POST", path="/experience/mobile-time/v2/me/time-entries", client=reader))
    assert scope.value.slug == "insufficient-scope" and scope.value.extensions["missing_scopes"] == ["time:write"]


class _Tokens:
    def __init__(self) -> None:
        self.minted: list[Principal] = []

    def authorization_for(self, principal: Principal) -> bytes:
        self.minted.append(principal)
        return b"Bearer internal-" + principal.subject.encode()


async def test_token_exchange_sends_the_tiers_an_internal_token_never_the_callers() -> None:
    tokens = _Tokens()
    handler = build(token_exchange.POLICY, lent=services(internal_tokens=tokens))
    call = exchange(client=MOBILE, subject="w_1", headers={"authorization": "Bearer the-callers-own"})
    await handler.access(call)
    assert [v for k, v in call.headers if k == b"authorization"] == [b"Bearer internal-w_1"]
    assert tokens.minted[0].scopes == MOBILE.scopes
