"""The admin API and CLI for security teams: clients and credentials, live limits, plan/apply/export,
issuer key rotation, and the audit log of calls and of changes (who, what, before, after)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import yaml

from gateway.launcher import REPO_ROOT
from tests.support.gateway import GatewayProcess, ServerProcess, admin_headers, base_config

PROJECT = "/system/psa/v1/projects/prj_4001"
ADMIN_SECRET = "demo-secret-security-admin"


@pytest.fixture(scope="module")
def gateway(module_gateways: Callable[..., GatewayProcess], tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[GatewayProcess]:
    """A gateway with its own issuer and SQLite state, in front of an upstream that does not check tokens."""
    upstream = ServerProcess(REPO_ROOT / "tests" / "gateway" / "flaky_upstream.py", tmp_path_factory.mktemp("up"))
    config: dict[str, Any] = base_config()
    config["upstreams"]["system"]["url"] = upstream.url
    yield module_gateways(config, own_issuer=True)
    upstream.stop()


@pytest.fixture
def admin(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url + "/admin/v1", headers=admin_headers(gateway), timeout=30) as client:
        yield client


def token_for(gateway: GatewayProcess, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(gateway.url + "/oauth2/token", data={"grant_type": "client_credentials"},
                      auth=(client_id, secret))


def test_only_admin_clients_with_the_right_scope_get_in(gateway: GatewayProcess) -> None:
    assert httpx.get(gateway.url + "/admin/v1/clients").status_code == 401
    with gateway.client("process-tier") as process:
        refused = process.get("/admin/v1/clients")
    assert refused.status_code == 403 and refused.json()["reason"] == "not_admin_client"
    reader = {"Authorization": "Bearer " + gateway.token("security-admin", scopes=["admin:read"])}
    assert httpx.get(gateway.url + "/admin/v1/clients", headers=reader).status_code == 200
    write = httpx.post(gateway.url + "/admin/v1/clients/mobile-app/revoke", headers=reader)
    assert write.status_code == 403 and write.json()["missing_scopes"] == ["admin:write"]


def test_client_lifecycle_is_audited_with_before_and_after(gateway: GatewayProcess, admin: httpx.Client) -> None:
    created = admin.post("/clients", json={"id": "partner-portal", "layer": "process", "scopes": ["psa:read"],
                                           "sla_tier": "silver"})
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    first_secret = created.json()["credentials"]["client_secret"]
    assert created.json()["client"]["source"] == "admin"
    token = token_for(gateway, "partner-portal", first_secret).json()["access_token"]
    assert httpx.get(gateway.url + PROJECT, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert admin.post("/clients", json={"id": "partner-portal"}).status_code == 409
    invalid = admin.post("/clients", json={"id": "x", "layer": "galaxy"})
    assert invalid.status_code == 400 and invalid.json()["errors"][0]["pointer"] == "/layer"

    rotated = admin.post("/clients/partner-portal/secret").json()["client_secret"]
    assert token_for(gateway, "partner-portal", first_secret).status_code == 401
    assert token_for(gateway, "partner-portal", rotated).status_code == 200

    assert admin.post("/clients/partner-portal/revoke").json()["status"] == "revoked"
    refused = httpx.get(gateway.url + PROJECT, headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401 and refused.json()["reason"] == "revoked_client"

    changes = admin.get("/audit/changes", params={"target_id": "partner-portal"}).json()["items"]
    assert [c["action"] for c in changes] == ["client.revoke", "client.rotate_secret", "client.create"]
    revoke, rotate, create = changes
    assert revoke["before"]["status"] == "active" and revoke["after"]["status"] == "revoked"
    assert rotate["before"]["secret_fingerprint"] != rotate["after"]["secret_fingerprint"]
    assert create["before"] is None and create["after"]["scopes"] == ["psa:read"]
    assert {c["actor_client"] for c in changes} == {"security-admin"}
    assert rotated not in str(changes) and first_secret not in str(changes)


def test_every_call_is_audited_with_each_policy_outcome(gateway: GatewayProcess, admin: httpx.Client) -> None:
    with gateway.client("process-tier") as process:
        process.get(PROJECT, headers={"X-Correlation-ID": "audit-probe-1"})
        process.get("/system/psa/v1/assignments?limit=0", headers={"X-Correlation-ID": "audit-probe-2"})

    ok = admin.get("/audit/calls", params={"correlation_id": "audit-probe-1"}).json()["items"]
    assert len(ok) == 1
    entry = ok[0]
    assert entry["status"] == 200 and entry["client_id"] == "process-tier" and entry["subject"] == "process-tier"
    assert (entry["api"], entry["version"], entry["route"], entry["method"]) == (
        "system/psa", 1, "/projects/{project_id}", "GET")
    assert entry["outcome"] == {"ip_allow": "ok", "authenticate": "ok", "authorize": "ok", "rate_limit": "ok",
                                "limits": "ok", "validate": "ok", "token_exchange": "ok"}
    assert entry["issuer"] == gateway.issuer_url  # who vouched for the caller
    assert entry["trace_id"] and entry["latency_ms"] > 0 and entry["upstream"] == "system"
    refused = admin.get("/audit/calls", params={"correlation_id": "audit-probe-2"}).json()["items"][0]
    assert refused["status"] == 400 and refused["outcome"]["validate"] == "invalid_request"
    assert admin.get("/audit/calls", params={"limit": 0}).status_code == 400


def test_live_limits_plan_apply_and_export(gateway: GatewayProcess, admin: httpx.Client) -> None:
    assert admin.put("/sla-tiers/bronze", json={"requests_per_second": 5, "burst": 10}).status_code == 200
    bad = admin.put("/rate-limits", json=[{"api": "system/nowhere", "requests_per_second": 1, "burst": 1}])
    assert bad.status_code == 422 and "unknown api" in bad.json()["detail"]
    assert admin.post("/clients", json={"id": "temp-tool", "layer": "app"}).status_code == 201

    plan = admin.get("/policy/plan").json()
    assert not plan["in_sync"]
    planned = {(c["kind"], c["id"], c["action"]) for c in plan["changes"]}
    assert ("sla_tier", "bronze", "change") in planned and ("client", "temp-tool", "remove") in planned
    exported = yaml.safe_load(admin.get("/policy/export").text)
    assert exported["sla_tiers"]["bronze"]["burst"] == 10

    applied = admin.post("/policy/apply")
    assert applied.status_code == 200
    after = admin.get("/policy/plan").json()
    assert all(c["kept_by_apply"] for c in after["changes"])  # only credentials (e.g. the revoked client) stay
    assert admin.get("/sla-tiers").json()["bronze"]["burst"] == 40
    assert admin.get("/clients/temp-tool").status_code == 404
    assert admin.get("/audit/changes", params={"target_kind": "gateway"}).json()["items"][0]["action"] == \
        "policy.apply"


def test_issuer_key_rotation_keeps_old_tokens_valid(gateway: GatewayProcess, admin: httpx.Client) -> None:
    old_token = gateway.token("process-tier")
    rotated = admin.post("/issuer/rotate-key").json()
    jwks = httpx.get(gateway.url + "/.well-known/jwks.json").json()
    assert {k["kid"] for k in jwks["keys"]} >= {rotated["kid"], rotated["previous_kid"]}
    new_token = token_for(gateway, "security-admin", ADMIN_SECRET).json()["access_token"]
    assert _kid(new_token) == rotated["kid"]
    assert httpx.get(gateway.url + "/admin/v1/clients", headers={"Authorization": f"Bearer {new_token}"}
                     ).status_code == 200
    assert httpx.get(gateway.url + PROJECT, headers={"Authorization": f"Bearer {old_token}"}).status_code == 200


def _kid(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def test_cli_for_security_teams(gateway: GatewayProcess) -> None:
    env = {"PSGW_GATEWAY_URL": gateway.url, "PSGW_ADMIN_CLIENT_ID": "security-admin",
           "PSGW_ADMIN_CLIENT_SECRET": ADMIN_SECRET, "PATH": ""}

    def psgw(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gateway.cli", *args], env=env, cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=60)

    listed = psgw("clients", "list")
    assert listed.returncode == 0, listed.stderr
    assert "mobile-app" in listed.stdout and "security-admin" in listed.stdout
    created = psgw("clients", "create", "cli-made", "--layer", "process", "--scope", "psa:read")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert token_for(gateway, "cli-made", secret).status_code == 200
    assert psgw("clients", "revoke", "cli-made").returncode == 0
    assert token_for(gateway, "cli-made", secret).status_code == 401
    plan = psgw("policy", "plan")
    assert plan.returncode == 1 and "client cli-made" in plan.stdout  # 1: differences (2: could not run)
    exported = psgw("policy", "export")
    assert exported.returncode == 0 and "clients:" in exported.stdout
    refused = subprocess.run([sys.executable, "-m", "gateway.cli", "clients", "list"], cwd=REPO_ROOT,
                             env={**env, "PSGW_ADMIN_CLIENT_SECRET": "wrong"}, capture_output=True, text=True)
    assert refused.returncode != 0 and "token request refused" in refused.stderr


def test_a_public_clients_secret_cannot_be_rotated_into_existence(gateway: GatewayProcess,
                                                                   admin: httpx.Client) -> None:
    """mobile-app signs people in with PKCE and no secret (a phone cannot keep one): a secret would turn it
    confidential and end every phone's sign-in, so the security team is told to revoke it instead."""
    refused = admin.post("/clients/mobile-app/secret")
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["reason"] == "public_client" and "revoke" in refused.json()["detail"]
    assert admin.get("/clients/mobile-app").json()["has_secret"] is False
