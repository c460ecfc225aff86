"""The developer catalog: what a developer browsing /catalog sees, as pages and as JSON."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml

from contracts import CONTRACTS_DIR
from tests.support.gateway import GatewayProcess, base_config
from tests.support.stack import RunningStack


def test_catalog_json_lists_every_api_with_versions_scopes_and_limits(stack: RunningStack) -> None:
    body = httpx.get(f"{stack.url}/catalog/apis", timeout=60).json()  # may wait for the catalog to be built

    by_id = {api["api_id"]: api for api in body["items"]}
    on_disk = {f"{p.parent.parent.name}/{p.parent.name}" for p in CONTRACTS_DIR.glob("*/*/v*.yaml")}
    assert set(by_id) == on_disk
    psa = by_id["system/psa"]["versions"][0]
    assert psa["lifecycle"] == "active" and psa["owner_tier"] == "system" and psa["published"] is True
    assert "psa:read" in psa["scopes"]
    gold = next(t for t in psa["sla_tiers"] if t["name"] == "gold")
    assert gold["requests_per_second"] == 500 and gold["burst"] == 1000
    assert {"method": "GET", "path": "/system/psa/v1/assignments"}.items() <= next(
        op for op in psa["operations"] if op["operation_id"] == "listAssignments").items()


def test_catalog_search_filters(stack: RunningStack) -> None:
    found = httpx.get(f"{stack.url}/catalog/apis", params={"q": "who works where"}).json()["items"]
    assert [api["api_id"] for api in found] == ["process/staffing"]
    by_scope = httpx.get(f"{stack.url}/catalog/apis", params={"q": "erp:write"}).json()["items"]
    assert [api["api_id"] for api in by_scope] == ["system/erp"]
    assert httpx.get(f"{stack.url}/catalog/apis", params={"q": "no-such-thing-at-all"}).json()["items"] == []


def test_contract_documents_are_served_as_published(stack: RunningStack) -> None:
    served = httpx.get(f"{stack.url}/catalog/apis/system/psa/v1/openapi.yaml")
    assert served.status_code == 200
    assert yaml.safe_load(served.text) == yaml.safe_load((CONTRACTS_DIR / "system/psa/v1.yaml").read_text())
    as_json = httpx.get(f"{stack.url}/catalog/apis/system/psa/v1/openapi.json").json()
    assert as_json["info"]["x-api-id"] == "system/psa"


def test_backstage_export_has_one_api_entity_per_version(stack: RunningStack) -> None:
    items = httpx.get(f"{stack.url}/catalog/backstage.json").json()["items"]
    names = {e["metadata"]["name"] for e in items}
    assert "system-psa-v1" in names
    entity = next(e for e in items if e["metadata"]["name"] == "system-psa-v1")
    assert entity["kind"] == "API" and entity["spec"]["type"] == "openapi"
    assert yaml.safe_load(entity["spec"]["definition"])["servers"][0]["url"] == "/system/psa/v1"


def test_problem_types_resolve_to_documentation(stack: RunningStack, consultant: httpx.Client) -> None:
    problem = consultant.get("/system/psa/v1/assignments").json()  # an app may not call system APIs
    page = httpx.get(stack.url + problem["type"])
    assert page.status_code == 200
    assert "layer rule" in page.text


def test_unknown_catalog_entries_are_problems(stack: RunningStack) -> None:
    for path in ("/catalog/apis/system/nope", "/catalog/apis/system/psa/v9", "/catalog/problems/nope"):
        response = httpx.get(stack.url + path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json", path


def test_try_it_hands_out_tokens_only_for_offered_clients(stack: RunningStack, tmp_path: Path) -> None:
    # Off on the default stack (tests/gateway/test_identity.py); here a gateway in the embedded demo's mode.
    demo = GatewayProcess(stack, tmp_path, base_config(),
                          env={"PSGW_TRY_IT_ENABLED": "true", "PSGW_TRY_IT_MODE": "demo"}).start()
    try:
        for tier in ("security-admin", "process-tier", "experience-tier"):
            refused = httpx.post(f"{demo.url}/catalog/try-it/token", json={"client_id": tier})
            assert refused.status_code == 403, tier

        granted = httpx.post(f"{demo.url}/catalog/try-it/token",
                             json={"client_id": "mobile-app", "subject": "wrk_e1001"})
        assert granted.status_code == 200
        token = granted.json()["access_token"]
        call = httpx.get(f"{demo.url}/experience/mobile-time/v1/me/assignments",
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert call.status_code == 200 and call.json()["items"], call.text

        bad = httpx.post(f"{demo.url}/catalog/try-it/token", json={"client": "x"})
        assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
    finally:
        demo.stop()
