"""Every refusal of the policy chain, through the real gateway process: status, problem type and reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.support.gateway import admin_headers, unique
from tests.support.stack import DEMO_CONSULTANT, RunningStack

MY_ASSIGNMENTS = "/experience/mobile-time/v1/me/assignments"
PROJECT = "/system/psa/v1/projects/prj_4001"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_for(stack: RunningStack, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": stack.issuer.issuer, "aud": "psgateway", "sub": "process-tier", "client_id": "process-tier",
              "scope": "psa:read psa:write", "iat": now, "nbf": now, "exp": now + 300, "jti": uuid.uuid4().hex}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def signed(stack: RunningStack, claims: dict[str, Any], key: RSAKey | None = None, kid: str | None = None) -> str:
    key = key or stack.issuer.key
    return jwt.encode({"alg": "RS256", "kid": kid or key.kid, "typ": "JWT"}, claims, key, algorithms=["RS256"])


def call(stack: RunningStack, token: str | None, path: str = PROJECT, method: str = "GET",
         **kwargs: Any) -> httpx.Response:
    headers = dict(kwargs.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, stack.url + path, headers=headers, timeout=30, **kwargs)


def assert_problem(response: httpx.Response, status: int, slug: str, reason: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"/catalog/problems/{slug}", body
    assert body["reason"] == reason, body
    assert body["correlation_id"] == response.headers["x-correlation-id"]
    return body


def test_a_valid_token_passes(stack: RunningStack) -> None:
    assert call(stack, signed(stack, claims_for(stack))).status_code == 200


def test_no_token(stack: RunningStack) -> None:
    response = call(stack, None)
    assert_problem(response, 401, "invalid-token", "missing")
    assert response.headers["www-authenticate"].startswith("Bearer")


# Times are taken when the test runs, not when it is collected: the suite runs longer than any offset here.
@pytest.mark.parametrize(("claims", "reason"), [
    (lambda now: {"exp": now - 120}, "expired"),
    (lambda now: {"nbf": now + 600, "iat": now}, "not_yet_valid"),
    (lambda now: {"iss": "https://evil.example.com"}, "wrong_issuer"),
    (lambda now: {"aud": "someone-else"}, "wrong_audience"),
])
def test_bad_claims_are_refused(
    stack: RunningStack, claims: Callable[[int], dict[str, Any]], reason: str
) -> None:
    response = call(stack, signed(stack, claims_for(stack, **claims(int(time.time())))))
    assert_problem(response, 401, "invalid-token", reason)


def test_small_clock_skew_is_tolerated(stack: RunningStack) -> None:
    token = signed(stack, claims_for(stack, exp=int(time.time()) - 5))  # within the 30 s leeway
    assert call(stack, token).status_code == 200


def test_alg_none_is_refused(stack: RunningStack) -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims_for(stack)).encode())
    assert_problem(call(stack, f"{header}.{payload}."), 401, "invalid-token", "alg_not_allowed")


def test_hs256_signed_with_the_public_key_is_refused(stack: RunningStack) -> None:
    public_pem = stack.issuer.key.as_pem(private=False)
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": stack.issuer.key.kid}).encode())
    payload = b64(json.dumps(claims_for(stack)).encode())
    signature = b64(hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    assert_problem(call(stack, f"{header}.{payload}.{signature}"), 401, "invalid-token", "alg_not_allowed")


def test_unknown_kid_is_refused(stack: RunningStack) -> None:
    stranger = RSAKey.generate_key(2048, private=True)
    token = signed(stack, claims_for(stack), key=stranger, kid="not-a-published-kid")
    assert_problem(call(stack, token), 401, "invalid-token", "unknown_kid")


def test_tampered_payload_is_refused(stack: RunningStack) -> None:
    token = signed(stack, claims_for(stack, scope="psa:read"))
    assert call(stack, token).status_code == 200  # and now it sits in the verified-token cache
    header, _payload, signature = token.split(".")
    greedy = b64(json.dumps(claims_for(stack, scope="psa:read psa:write admin:write")).encode())
    assert_problem(call(stack, f"{header}.{greedy}.{signature}"), 401, "invalid-token", "bad_signature")


def test_missing_scope_names_the_scope(stack: RunningStack) -> None:
    token = stack.token("mobile-app", subject=DEMO_CONSULTANT, scopes=["time:write"])
    body = assert_problem(call(stack, token, MY_ASSIGNMENTS), 403, "insufficient-scope", "missing_scope")
    assert body["missing_scopes"] == ["time:read"]
    assert "time:read" in body["detail"]


def test_scopes_come_from_the_contract_operation(stack: RunningStack) -> None:
    # gateway.yaml grants psa:read for reads; the contract's getProject asks for psa:read too: with only
    # psa:write the operation is refused, naming the contract's scope.
    token = signed(stack, claims_for(stack, scope="psa:write"))
    body = assert_problem(call(stack, token), 403, "insufficient-scope", "missing_scope")
    assert body["missing_scopes"] == ["psa:read"]


def test_layer_violation(stack: RunningStack) -> None:
    token = stack.token("mobile-app", subject=DEMO_CONSULTANT)
    response = call(stack, token, f"/process/staffing/v1/workers/{DEMO_CONSULTANT}/assignments")
    body = assert_problem(response, 403, "layer-violation", "layer_violation")
    assert body["caller_layer"] == "app" and body["target_layer"] == "process"


def test_revoked_client_is_refused_at_once(stack: RunningStack) -> None:
    admin = httpx.Client(base_url=stack.url, headers=admin_headers(stack), timeout=30)
    client_id = unique("revokee")
    created = admin.post("/admin/v1/clients", json={"id": client_id, "layer": "process", "scopes": ["psa:read"],
                                                     "sla_tier": "gold"})
    assert created.status_code == 201, created.text
    secret = created.json()["credentials"]["client_secret"]
    issued = httpx.post(stack.url + "/oauth2/token", data={"grant_type": "client_credentials"},
                        auth=(client_id, secret))
    token = issued.json()["access_token"]
    assert call(stack, token).status_code == 200

    assert admin.post(f"/admin/v1/clients/{client_id}/revoke").status_code == 200

    assert_problem(call(stack, token), 401, "invalid-token", "revoked_client")
    again = httpx.post(stack.url + "/oauth2/token", data={"grant_type": "client_credentials"},
                       auth=(client_id, secret))
    assert again.status_code == 401


def test_over_the_limit_gets_429_with_retry_after(stack: RunningStack) -> None:
    admin = httpx.Client(base_url=stack.url, headers=admin_headers(stack), timeout=30)
    tier, client_id = unique("probe-tier"), unique("limited")
    assert admin.put(f"/admin/v1/sla-tiers/{tier}",
                     json={"requests_per_second": 0.001, "burst": 3}).status_code == 200
    created = admin.post("/admin/v1/clients", json={"id": client_id, "layer": "process", "scopes": ["psa:read"],
                                                     "sla_tier": tier})
    secret = created.json()["credentials"]["client_secret"]
    token = httpx.post(stack.url + "/oauth2/token", data={"grant_type": "client_credentials"},
                       auth=(client_id, secret)).json()["access_token"]

    answers = [call(stack, token) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["ratelimit-policy"].startswith('"tier";q=3;w=')
    assert answers[0].headers["ratelimit"].startswith('"tier";r=2;')
    body = assert_problem(answers[3], 429, "rate-limited", "rate_limited")
    assert body["limit"] == "tier"
    assert int(answers[3].headers["retry-after"]) >= 1


def test_oversized_body(stack: RunningStack) -> None:
    token = stack.token("mobile-app", subject=DEMO_CONSULTANT)
    response = call(stack, token, MY_ASSIGNMENTS, "POST", content=b"{" + b" " * 300_000 + b"}",
                    headers={"Content-Type": "application/json"})
    body = assert_problem(response, 413, "payload-too-large", "body_too_large")
    assert body["limit_bytes"] == 262144


def test_wrong_content_type(stack: RunningStack) -> None:
    token = stack.token("mobile-app", subject=DEMO_CONSULTANT)
    response = call(stack, token, MY_ASSIGNMENTS, "POST", content=b"hours=8",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_problem(response, 415, "unsupported-media-type", "content_type_not_allowed")


def test_invalid_request_gets_400_with_pointers(stack: RunningStack) -> None:
    with stack.client("process-tier") as process:
        response = process.get("/system/psa/v1/assignments", params={"limit": "lots", "status": "maybe"})
    body = assert_problem(response, 400, "validation-error", "invalid_request")
    errors = {(e["location"], e["pointer"]) for e in body["errors"]}
    assert ("query", "/limit") in errors and ("query", "/status") in errors
    assert all(e["detail"] for e in body["errors"])


def test_operations_the_contract_does_not_publish(stack: RunningStack) -> None:
    with stack.client("process-tier") as process:
        missing = process.get("/system/psa/v1/no-such-things")
        wrong_method = process.delete(PROJECT)
    assert_problem(missing, 404, "no-such-operation", "no_operation")
    assert_problem(wrong_method, 405, "method-not-allowed", "method_not_allowed")
    assert "GET" in wrong_method.headers["allow"]


def test_api_key_instead_of_a_token(stack: RunningStack) -> None:
    admin = httpx.Client(base_url=stack.url, headers=admin_headers(stack), timeout=30)
    client_id = unique("keyed")
    admin.post("/admin/v1/clients", json={"id": client_id, "layer": "process", "scopes": ["psa:read"],
                                          "sla_tier": "gold"}).raise_for_status()
    issued = admin.post(f"/admin/v1/clients/{client_id}/api-keys")
    assert issued.status_code == 201
    api_key = issued.json()["api_key"]

    assert httpx.get(stack.url + PROJECT, headers={"X-API-Key": api_key}).status_code == 200
    wrong = httpx.get(stack.url + PROJECT, headers={"X-API-Key": api_key + "x"})
    assert_problem(wrong, 401, "invalid-token", "invalid_api_key")
    listed = admin.get(f"/admin/v1/clients/{client_id}").json()
    assert listed["api_keys"] == [issued.json()["api_key_id"]] and api_key not in json.dumps(listed)


def test_cors_preflight_for_experience_apis(stack: RunningStack) -> None:
    # The default config allows no origin: a browser preflight is refused, with the reason.
    response = httpx.options(stack.url + MY_ASSIGNMENTS, headers={
        "Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"})
    assert_problem(response, 403, "cors-rejected", "origin_not_allowed")
