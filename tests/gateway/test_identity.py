"""The doors an attacker tried (issue 15), each shut, through real gateways in front of the stack's real tiers:
try-it tokens, tokens sent to a tier directly, revocation and rotation (restore included), demo secrets,
exports, and reloads that are audited with what they changed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import yaml

from gateway import config as gateway_config
from gateway.config import ConfigError
from gateway.issuer import hash_secret
from gateway.launcher import REPO_ROOT
from runtime.tokens import peek
from tests.support.gateway import GatewayProcess, admin_headers, base_config, free_port, unique
from tests.support.stack import DEMO_CONSULTANT, RunningStack

PROJECT = "/system/psa/v1/projects/prj_4001"
ASSIGNMENTS = "/experience/mobile-time/v1/me/assignments"
TRY_IT = "/catalog/try-it/token"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def client_token(gateway: GatewayProcess | RunningStack, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(gateway.url + "/oauth2/token", data={"grant_type": "client_credentials"},
                      auth=(client_id, secret), timeout=30)


@pytest.fixture(scope="module")
def gateway(module_gateways: Callable[..., GatewayProcess]) -> GatewayProcess:
    """A gateway of its own (its own admin state) in front of the session stack's real tiers."""
    return module_gateways(base_config())


@pytest.fixture
def admin(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url + "/admin/v1", headers=admin_headers(gateway), timeout=30) as client:
        yield client


# --- try-it ---------------------------------------------------------------------------------------------------

def test_try_it_is_off_on_the_default_stack(stack: RunningStack) -> None:
    for body in ({"client_id": "process-tier"}, {"client_id": "experience-tier"},
                 {"client_id": "mobile-app", "subject": DEMO_CONSULTANT}, {"client_id": "dashboard-web"}):
        refused = httpx.post(stack.url + TRY_IT, json=body)
        assert refused.status_code == 404, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    assert "demo-banner" not in httpx.get(stack.url + "/catalog/", timeout=60).text


def test_try_it_signed_in_serves_only_the_person_signed_in(module_gateways: Callable[..., GatewayProcess]) -> None:
    gateway = module_gateways(base_config(), env={"PSGW_TRY_IT_ENABLED": "true"}, name="signed-in")
    anonymous = httpx.post(gateway.url + TRY_IT, json={"client_id": "mobile-app"})
    assert anonymous.status_code == 401, anonymous.text
    person = bearer(gateway.token("dashboard-web", subject=DEMO_CONSULTANT))

    granted = httpx.post(gateway.url + TRY_IT, json={"client_id": "mobile-app"}, headers=person)
    assert granted.status_code == 200, granted.text
    token = granted.json()["access_token"]
    claims = peek(token)[1]
    assert (claims["sub"], claims["client_id"], claims["try_it"]) == (DEMO_CONSULTANT, "mobile-app", "signed_in")
    assert httpx.get(gateway.url + ASSIGNMENTS, headers=bearer(token), timeout=30).status_code == 200
    # Never a scope the sign-in token lacks: the dashboards token holds time:read, not mobile-app's time:write;
    # a consultant signed in to the time page gets no approvals scope through dashboard-web.
    assert claims["scope"] == "time:read"
    time_page = bearer(gateway.token("time-web", subject=DEMO_CONSULTANT))
    via_dashboards = httpx.post(gateway.url + TRY_IT, json={"client_id": "dashboard-web"}, headers=time_page)
    assert via_dashboards.status_code == 200, via_dashboards.text
    assert peek(via_dashboards.json()["access_token"])[1]["scope"] == "time:read"
    approvals_page = bearer(gateway.token("approvals-web", subject=DEMO_CONSULTANT))
    nothing_shared = httpx.post(gateway.url + TRY_IT, json={"client_id": "mobile-app"}, headers=approvals_page)
    assert nothing_shared.status_code == 403 and nothing_shared.json()["reason"] == "no_common_scope"

    someone_else = httpx.post(gateway.url + TRY_IT, json={"client_id": "mobile-app", "subject": "wrk_e1002"},
                              headers=person)
    assert someone_else.status_code == 403 and someone_else.json()["reason"] == "other_subject"
    for tier in ("process-tier", "experience-tier", "security-admin"):
        assert httpx.post(gateway.url + TRY_IT, json={"client_id": tier}, headers=person).status_code == 403
    # A client's own token is not a person signed in.
    machine = bearer(gateway.token("process-tier"))
    refused = httpx.post(gateway.url + TRY_IT, json={"client_id": "mobile-app"}, headers=machine)
    assert refused.status_code == 403 and refused.json()["reason"] == "not_a_person"


def test_try_it_demo_mode_says_so(module_gateways: Callable[..., GatewayProcess]) -> None:
    gateway = module_gateways(base_config(), env={"PSGW_TRY_IT_ENABLED": "true", "PSGW_TRY_IT_MODE": "demo"},
                              name="demo")
    assert 'id="demo-banner"' in httpx.get(gateway.url + "/catalog/", timeout=60).text
    granted = httpx.post(gateway.url + TRY_IT, json={"client_id": "mobile-app", "subject": DEMO_CONSULTANT})
    assert granted.status_code == 200, granted.text
    assert peek(granted.json()["access_token"])[1]["try_it"] == "demo"
    for tier in ("process-tier", "experience-tier", "security-admin"):
        assert httpx.post(gateway.url + TRY_IT, json={"client_id": tier}).status_code == 403


def test_tier_and_admin_clients_cannot_be_offered_for_try_it() -> None:
    config = base_config()
    next(c for c in config["clients"] if c["id"] == "process-tier")["try_it"] = True
    with pytest.raises(ConfigError, match="only app clients"):
        gateway_config.parse(yaml.safe_dump(config))


def test_psgw_up_serves_no_try_it_tokens_unless_asked() -> None:
    """The default `psgw up` stack is where the issue's attacker minted tokens without a credential: its demo
    mode (anyone gets tokens, for any person) is an explicit `--try-it-demo`, never the default."""
    from gateway.cli import up

    def try_it_env(*args: str) -> bool:
        return bool(up.make_context("up", list(args)).params["try_it_demo"])

    assert not try_it_env()
    assert try_it_env("--try-it-demo")


def test_psgw_up_repeats_this_starts_loud_warnings(tmp_path: Any) -> None:
    """The demo-secrets warning the gateway writes to its log at start reaches the console of `psgw up`; an
    earlier start's, already in the appended log, does not."""
    from gateway.cli import _loud_warnings

    log = tmp_path / "gateway.log"
    log.write_text("!! DEMO SECRETS IN USE: an earlier start\n")
    offset = log.stat().st_size
    with log.open("a") as appended:
        appended.write('{"level":"info","msg":"starting"}\n!! DEMO SECRETS IN USE: clients mobile-app\n')
    assert _loud_warnings(log, offset) == ["!! DEMO SECRETS IN USE: clients mobile-app"]
    assert _loud_warnings(tmp_path / "missing.log", 0) == []

# --- tokens sent to a tier directly ----------------------------------------------------------------------------

def test_a_tier_refuses_a_token_sent_to_it_directly(stack: RunningStack) -> None:
    """Tiers trust only the gateway's internal tokens: a token handed to a client (which the gateway would refuse
    once the client is revoked) never works at a tier, so the gateway's decisions cannot be bypassed."""
    system = stack.stack.url("system")
    token = stack.token("process-tier")
    assert httpx.get(stack.url + PROJECT, headers=bearer(token), timeout=30).status_code == 200
    direct = httpx.get(system + PROJECT, headers=bearer(token), timeout=30)
    assert direct.status_code == 401, direct.text
    assert direct.json()["reason"] == "wrong_audience"


# --- revocation, rotation, restore -------------------------------------------------------------------------

def test_restoring_a_revoked_client_does_not_revive_its_tokens(gateway: GatewayProcess, admin: httpx.Client) -> None:
    client_id = unique("revokee")
    created = admin.post("/clients", json={"id": client_id, "layer": "process", "scopes": ["psa:read"],
                                           "sla_tier": "gold"})
    assert created.status_code == 201, created.text
    secret = created.json()["credentials"]["client_secret"]
    old = client_token(gateway, client_id, secret).json()["access_token"]
    assert httpx.get(gateway.url + PROJECT, headers=bearer(old), timeout=30).status_code == 200

    assert admin.post(f"/clients/{client_id}/revoke").status_code == 200
    assert httpx.get(gateway.url + PROJECT, headers=bearer(old)).json()["reason"] == "revoked_client"
    restored = admin.post(f"/clients/{client_id}/restore")
    assert restored.status_code == 200 and restored.json()["status"] == "active"

    refused = httpx.get(gateway.url + PROJECT, headers=bearer(old))
    assert refused.status_code == 401 and refused.json()["reason"] == "revoked_token", refused.text
    fresh = client_token(gateway, client_id, secret)
    assert fresh.status_code == 200, fresh.text
    assert httpx.get(gateway.url + PROJECT, headers=bearer(fresh.json()["access_token"]),
                     timeout=30).status_code == 200
    actions = [c["action"] for c in admin.get("/audit/changes", params={"target_id": client_id}).json()["items"]]
    assert actions[:2] == ["client.restore", "client.revoke"]


def test_rotating_a_secret_ends_the_tokens_issued_with_it(gateway: GatewayProcess, admin: httpx.Client) -> None:
    client_id = unique("rotated")
    secret = admin.post("/clients", json={"id": client_id, "layer": "process", "scopes": ["psa:read"],
                                          "sla_tier": "gold"}).json()["credentials"]["client_secret"]
    old = client_token(gateway, client_id, secret).json()["access_token"]

    rotated = admin.post(f"/clients/{client_id}/secret")
    assert rotated.status_code == 200
    new_secret = rotated.json()["client_secret"]

    assert httpx.get(gateway.url + PROJECT, headers=bearer(old)).json()["reason"] == "revoked_token"
    assert client_token(gateway, client_id, secret).status_code == 401
    fresh = client_token(gateway, client_id, new_secret)  # at once: the issuer dates it from the rotation
    assert httpx.get(gateway.url + PROJECT, headers=bearer(fresh.json()["access_token"]),
                     timeout=30).status_code == 200
    # Stored salted: a scrypt hash, never the fast sha256 of the secret.
    assert admin.get(f"/clients/{client_id}").json()["secret_fingerprint"].startswith("scrypt$")


def test_cli_restores_a_client(gateway: GatewayProcess, admin: httpx.Client) -> None:
    client_id = unique("cli-restored")
    admin.post("/clients", json={"id": client_id, "layer": "app", "scopes": ["time:read"]})
    env = {"PSGW_GATEWAY_URL": gateway.url, "PSGW_ADMIN_TOKEN": gateway.token("security-admin"), "PATH": ""}

    def psgw(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gateway.cli", *args], env=env, cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=60)

    assert psgw("clients", "revoke", client_id).returncode == 0
    restored = psgw("clients", "restore", client_id)
    assert restored.returncode == 0, restored.stderr
    view = admin.get(f"/clients/{client_id}").json()
    assert view["status"] == "active" and view["not_before"] > 0


# --- secrets and exports ---------------------------------------------------------------------------------------

def test_export_leaves_credential_hashes_out_unless_asked(gateway: GatewayProcess, admin: httpx.Client) -> None:
    exported = admin.get("/policy/export")
    assert exported.status_code == 200
    assert "secret_hash" not in exported.text and "sha256:" not in exported.text
    reader = {"Authorization": "Bearer " + gateway.token("security-admin", scopes=["admin:read"])}
    asked = httpx.get(gateway.url + "/admin/v1/policy/export", params={"include_secrets": "true"}, headers=reader)
    assert asked.status_code == 403
    with_secrets = admin.get("/policy/export", params={"include_secrets": "true"})
    assert "secret_hash" in with_secrets.text


def test_demo_secrets_refuse_production(stack: RunningStack, tmp_path: Any) -> None:
    config = base_config()
    demo = GatewayProcess(stack, tmp_path / "demo", config, env={"PSGW_ENV": "production"})
    with pytest.raises(RuntimeError):
        demo.start()
    assert "refusing to start with PSGW_ENV=production" in demo.log.read_text()

    for client in config["clients"]:
        client["secret_hash"] = hash_secret(unique("real-secret"))
    real = GatewayProcess(stack, tmp_path / "real", config, env={"PSGW_ENV": "production"})
    try:
        real.start()
        assert httpx.get(real.url + "/healthz").status_code == 200
    finally:
        real.stop()


# --- reloads and plans -----------------------------------------------------------------------------------------

def test_plan_and_sighup_reload_cover_trusted_issuers(gateways: Callable[..., GatewayProcess]) -> None:
    config: dict[str, Any] = base_config()
    gateway = gateways(config)
    admin = httpx.Client(base_url=gateway.url + "/admin/v1", headers=admin_headers(gateway), timeout=30)
    idp = "http://127.0.0.1:9/idp"  # nothing listens: the reload's key refetch reports it, and goes on
    config["policies"]["authenticate"]["trusted_issuers"] = [{"issuer": idp, "audience": "psgateway"}]
    config["sla_tiers"]["bronze"]["burst"] = 41
    gateway.write_config(config)

    planned = {(c["kind"], c["id"], c["action"]) for c in admin.get("/policy/plan").json()["changes"]}
    assert ("trusted_issuer", idp, "add") in planned and ("sla_tier", "bronze", "change") in planned

    gateway.signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    reloads: list[dict[str, Any]] = []
    while not reloads and time.monotonic() < deadline:
        time.sleep(0.2)
        reloads = admin.get("/audit/changes", params={"target_kind": "gateway"}).json()["items"]
    assert reloads, "the SIGHUP reload was not audited"
    entry = reloads[0]
    assert (entry["action"], entry["actor_subject"]) == ("gateway.reload", "signal:SIGHUP")
    changed = {(c["kind"], c["id"]) for c in entry["after"]["changes"]}
    assert {("trusted_issuer", idp), ("sla_tier", "bronze")} <= changed
    assert admin.get("/policy/plan").json()["in_sync"]


def test_plan_names_a_change_in_every_section_of_gateway_yaml() -> None:
    """`psgw policy plan` once ignored trusted issuers: a change in any section (each top-level key, each policy)
    is a difference the plan names, so a security team reviewing it sees every change a reload would make."""
    from gateway.config import GatewayConfig
    from gateway.live import plan

    def changed(edit: Callable[[dict[str, Any]], None]) -> gateway_config.GatewayConfig:
        config = base_config()
        edit(config)
        return gateway_config.parse(yaml.safe_dump(config))

    def client(config: dict[str, Any], client_id: str) -> dict[str, Any]:
        return next(c for c in config["clients"] if c["id"] == client_id)

    edits: dict[str, Callable[[dict[str, Any]], None]] = {
        "listen": lambda c: c["listen"].update(port=18080),
        "admin_listen": lambda c: c["admin_listen"].update(port=18081),
        "issuer": lambda c: c["issuer"].update(token_ttl_seconds=901),
        "max_body_bytes": lambda c: c.update(max_body_bytes=1000),
        "upstreams": lambda c: c["upstreams"]["system"].update(timeout_seconds=11),
        "sla_tiers": lambda c: c["sla_tiers"]["bronze"].update(burst=41),
        "clients": lambda c: client(c, "mobile-app").update(scopes=["time:read"]),
        "apis": lambda c: c["apis"].pop(),
        "policy_modules": lambda c: c.update(policy_modules=["tests.gateway.sample_policy"]),
        "bindings": lambda c: c.update(bindings=[{"policy": "rate_limit", "api": "experience/dashboards",
                                                  "enabled": False}]),
        "database_url": lambda c: c.update(database_url="postgresql+psycopg://elsewhere/psgw"),
        "admin": lambda c: c.update(admin={"sync_interval_seconds": 3}),
        "catalog": lambda c: c["catalog"]["try_it"].update(enabled=True),
        "access_log": lambda c: c.update(access_log=False),
        "policies.authenticate.trusted_issuers": lambda c: c["policies"]["authenticate"].update(
            trusted_issuers=[{"issuer": "https://idp.example.com", "audience": "psgateway"}]),
        "policies.authenticate": lambda c: c["policies"]["authenticate"].update(jwks_max_cache_seconds=60),
        "policies.rate_limit.limits": lambda c: c["policies"]["rate_limit"].update(limits=[
            {"api": "experience/mobile-time", "requests_per_second": 5, "burst": 10}]),
        "policies.rate_limit": lambda c: c["policies"]["rate_limit"].update(failure_mode="closed"),
    }
    edits["policies.audit"] = lambda c: c["policies"]["audit"].update(enabled=False)
    edits["policies.response_cache"] = lambda c: c["policies"]["response_cache"].update(enabled=False)
    edits["policies.cors"] = lambda c: c["policies"]["cors"].update(allowed_origins=["https://pages.example.com"])
    edits["policies.ip_allow"] = lambda c: c["policies"]["ip_allow"].update(allow=["10.0.0.0/8"])
    edits["policies.limits"] = lambda c: c["policies"]["limits"].update(max_json_depth=32)
    edits["policies.validate"] = lambda c: c["policies"]["validate"].update(responses="strict")
    edits["policies.authorize"] = lambda c: c["policies"]["authorize"].update(scopes_from_contract=False)
    sections = set(GatewayConfig.__struct_fields__) - {"policies"}  # edited policy by policy
    assert sections <= set(edits), "a section of gateway.yaml this test does not edit"
    assert {f"policies.{name}" for name in base_config()["policies"]} <= set(edits)

    on_disk = changed(lambda c: None)
    assert plan(on_disk, on_disk) == []
    unseen = [section for section, edit in edits.items() if not plan(on_disk, changed(edit))]
    assert unseen == [], f"policy plan shows no difference for a change in {unseen}"

# --- the admin listener ----------------------------------------------------------------------------------------

def test_the_admin_api_has_a_listener_of_its_own(gateways: Callable[..., GatewayProcess]) -> None:
    admin_port = free_port()
    gateway = gateways(base_config(), env={"PSGW_ADMIN_PORT": str(admin_port)})
    admin_url = f"http://127.0.0.1:{admin_port}"

    on_api = httpx.get(gateway.url + "/admin/v1/clients", headers=admin_headers(gateway))
    assert on_api.status_code == 404 and on_api.headers["content-type"] == "application/problem+json"
    assert httpx.get(admin_url + "/admin/v1/clients", headers=admin_headers(gateway)).status_code == 200
    api_on_admin = httpx.get(admin_url + PROJECT, headers=bearer(gateway.token("process-tier")))
    assert api_on_admin.status_code == 404
    listed = subprocess.run([sys.executable, "-m", "gateway.cli", "clients", "list"], cwd=REPO_ROOT, env={
        "PSGW_GATEWAY_URL": admin_url, "PSGW_ADMIN_CLIENT_ID": "security-admin",
        "PSGW_ADMIN_CLIENT_SECRET": "demo-secret-security-admin", "PATH": ""}, capture_output=True, text=True,
        timeout=60)
    assert listed.returncode == 0 and "security-admin" in listed.stdout, listed.stderr

    # A public API listener without an admin port serves no admin API at all.
    public = gateways(base_config(), env={"PSGW_GATEWAY_HOST": "0.0.0.0"}, name="public")
    assert httpx.get(public.url + "/admin/v1/clients", headers=admin_headers(public)).status_code == 404
    assert httpx.get(public.url + PROJECT, headers=bearer(public.token("process-tier")),
                     timeout=30).status_code == 200


# --- the OAuth2 surface (authlib): token, introspection, revocation ------------------------------------------

def test_token_introspection_and_revocation(gateway: GatewayProcess, admin: httpx.Client) -> None:
    client_id = unique("oauth")
    secret = admin.post("/clients", json={"id": client_id, "layer": "process", "scopes": ["psa:read", "hr:read"],
                                          "sla_tier": "gold"}).json()["credentials"]["client_secret"]
    by_post = httpx.post(gateway.url + "/oauth2/token", data={"grant_type": "client_credentials", "scope": "psa:read",
                                                              "client_id": client_id, "client_secret": secret})
    assert by_post.status_code == 200 and by_post.json()["scope"] == "psa:read", by_post.text
    token = client_token(gateway, client_id, secret).json()["access_token"]

    for data, auth, status, error in (
            ({"grant_type": "client_credentials"}, (client_id, "wrong"), 401, "invalid_client"),
            ({"grant_type": "password"}, (client_id, secret), 400, "unsupported_grant_type"),
            ({"grant_type": "client_credentials", "scope": "psa:write"}, (client_id, secret), 400, "invalid_scope")):
        refused = httpx.post(gateway.url + "/oauth2/token", data=data, auth=auth)
        assert refused.status_code == status and refused.json()["error"] == error, refused.text
        assert refused.headers["content-type"] == "application/problem+json"

    def introspect(as_client: tuple[str, str]) -> dict[str, Any]:
        return dict(httpx.post(gateway.url + "/oauth2/introspect", data={"token": token}, auth=as_client).json())

    own = introspect((client_id, secret))
    assert own["active"] is True and own["client_id"] == client_id and own["scope"] == "hr:read psa:read"
    assert introspect(("security-admin", "demo-secret-security-admin"))["active"] is True
    assert introspect(("process-tier", "demo-secret-process-tier")) == {"active": False}  # not its token

    assert httpx.post(gateway.url + "/oauth2/revoke", data={"token": token}, auth=("process-tier",
                      "demo-secret-process-tier")).status_code == 400  # a client revokes only its own tokens
    assert httpx.get(gateway.url + PROJECT, headers=bearer(token), timeout=30).status_code == 200
    revoked = httpx.post(gateway.url + "/oauth2/revoke", data={"token": token}, auth=(client_id, secret))
    assert revoked.status_code == 200, revoked.text
    refused = httpx.get(gateway.url + PROJECT, headers=bearer(token))
    assert refused.status_code == 401 and refused.json()["reason"] == "revoked_token"
    assert introspect((client_id, secret)) == {"active": False}
    fresh = client_token(gateway, client_id, secret).json()["access_token"]
    assert httpx.get(gateway.url + PROJECT, headers=bearer(fresh), timeout=30).status_code == 200


def test_issuer_bindings_and_try_it_through_the_admin_api(gateway: GatewayProcess, admin: httpx.Client) -> None:
    untrusted = admin.post("/clients", json={"id": unique("bound"), "issuers": ["https://idp.attacker.example"]})
    assert untrusted.status_code == 422 and "trusted_issuers" in untrusted.json()["detail"], untrusted.text
    tier_on_try_it = admin.patch("/clients/process-tier", json={"try_it": True})
    assert tier_on_try_it.status_code == 422 and "only app clients" in tier_on_try_it.json()["detail"]
    client_id = unique("offered")
    created = admin.post("/clients", json={"id": client_id, "issuers": ["builtin"], "try_it": True})
    assert created.status_code == 201, created.text
    assert (created.json()["client"]["issuers"], created.json()["client"]["try_it"]) == (["builtin"], True)


def test_demo_secrets_are_announced_loudly(gateway: GatewayProcess) -> None:
    log = gateway.log.read_text()
    assert "DEMO SECRETS IN USE" in log and "security-admin" in log
