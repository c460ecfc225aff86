"""The issuer's endpoints (tokens, sign-in, keys, health) are a contract like every other API: each route is in
gateway/oauth_openapi.yaml, and what the running gateway answers is what the contract says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from gateway import config as gateway_config
from gateway.app import Gateway
from gateway.control import ISSUER_CONTRACT, create_control_app
from gateway.launcher import REPO_ROOT
from tests.support.stack import RunningStack

CONTRACT: dict[str, Any] = yaml.safe_load(ISSUER_CONTRACT.read_text())
# A confidential client of the embedded demo (its public demo secret, gateway.yaml); the apps and pages are public.
CLIENT, SECRET = "experience-tier", "demo-secret-experience-tier"


def resolved(node: Any) -> Any:
    """``node`` with every local ``$ref`` replaced by what it points at."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = CONTRACT
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolved(target)
        return {k: resolved(v) for k, v in node.items()}
    if isinstance(node, list):
        return [resolved(v) for v in node]
    return node


def answer_matches(response: httpx.Response, path: str, method: str) -> None:
    """The response's status is declared for the operation, and its JSON body fits that status' schema."""
    declared = resolved(CONTRACT["paths"][path][method]["responses"])
    status = str(response.status_code)
    assert status in declared, f"{method.upper()} {path} answered {status}, not declared: {response.text[:300]}"
    content = declared[status].get("content", {})
    media_type = response.headers.get("content-type", "").split(";")[0]
    if not content:
        return
    assert media_type in content, f"{method.upper()} {path} {status}: {media_type} not in {sorted(content)}"
    if media_type.endswith("json"):
        errors = sorted(Draft202012Validator(content[media_type]["schema"]).iter_errors(response.json()), key=str)
        assert not errors, f"{method.upper()} {path} {status}: {[e.message for e in errors]}"


def test_the_contract_is_valid_openapi_with_a_description_and_example_everywhere() -> None:
    validate(CONTRACT)
    for path, item in CONTRACT["paths"].items():
        for method, operation in item.items():
            assert operation.get("description"), f"{method.upper()} {path} has no description"
            body = operation.get("requestBody", {}).get("content", {})
            for media, spec in body.items():
                assert spec.get("examples") or spec.get("example"), f"{method.upper()} {path} {media}: no example"


def test_every_issuer_route_is_in_the_contract_and_nothing_else_is(tmp_path: Path) -> None:
    app = create_control_app(Gateway(gateway_config.load(REPO_ROOT / "gateway.yaml"), tmp_path))
    served = {(method.lower(), route.path) for route in app.routes for method in route.methods
              if method not in ("HEAD", "OPTIONS") and not route.path.startswith(("/admin/", "/catalog"))}
    declared = {(method, path) for path, item in CONTRACT["paths"].items() for method in item}
    assert served == declared


@pytest.fixture
def http(stack: RunningStack) -> httpx.Client:
    return httpx.Client(base_url=stack.url, timeout=30.0)


def test_tokens_introspection_and_revocation_answer_as_the_contract_says(http: httpx.Client) -> None:
    issued = http.post("/oauth2/token", data={"grant_type": "client_credentials", "scope": "staffing:read"},
                       auth=(CLIENT, SECRET))
    answer_matches(issued, "/oauth2/token", "post")
    assert issued.status_code == 200 and issued.headers["cache-control"] == "no-store"
    token = issued.json()["access_token"]

    active = http.post("/oauth2/introspect", data={"token": token}, auth=(CLIENT, SECRET))
    answer_matches(active, "/oauth2/introspect", "post")
    assert active.json()["active"] is True and active.json()["client_id"] == CLIENT

    revoked = http.post("/oauth2/revoke", data={"token": token, "token_type_hint": "access_token"},
                        auth=(CLIENT, SECRET))
    answer_matches(revoked, "/oauth2/revoke", "post")
    assert revoked.status_code == 200
    after = http.post("/oauth2/introspect", data={"token": token}, auth=(CLIENT, SECRET))
    answer_matches(after, "/oauth2/introspect", "post")
    assert after.json() == {"active": False}


@pytest.mark.parametrize(("form", "auth", "status", "error"), [
    ({"grant_type": "password", "username": "ada", "password": "x"}, (CLIENT, SECRET), 400, "unsupported_grant_type"),
    ({"grant_type": "client_credentials"}, (CLIENT, "not-the-secret"), 401, "invalid_client"),
    ({"grant_type": "client_credentials", "scope": "admin:write"}, (CLIENT, SECRET), 400, "invalid_scope"),
    ({"grant_type": "client_credentials"}, ("nobody\r\nx", SECRET), 401, "invalid_client"),
])
def test_token_errors_are_the_contracts_problems(
    http: httpx.Client, form: dict[str, str], auth: tuple[str, str], status: int, error: str,
) -> None:
    response = http.post("/oauth2/token", data=form, auth=auth)
    answer_matches(response, "/oauth2/token", "post")
    assert response.status_code == status and response.json()["error"] == error, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("path", ["/.well-known/jwks.json", "/.well-known/openid-configuration", "/healthz",
                                  "/readyz", "/metrics"])
def test_keys_discovery_and_health_answer_as_the_contract_says(http: httpx.Client, path: str) -> None:
    answer_matches(http.get(path), path, "get")


def test_the_gateway_serves_its_issuer_contract(http: httpx.Client) -> None:
    served = http.get("/oauth2/openapi.yaml")
    assert served.status_code == 200 and yaml.safe_load(served.text) == CONTRACT
