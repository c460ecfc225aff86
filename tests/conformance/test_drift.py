"""Each tier serves exactly the operations its contracts publish: no undocumented route, no missing one."""

from __future__ import annotations

import re

import pytest
import yaml
from litestar import Litestar
from openapi_spec_validator import validate

from contracts import CONTRACTS_DIR
from experience_apis.app import create_app as create_experience
from experience_apis.settings import ExperienceSettings
from gateway import config as gateway_config
from gateway.launcher import REPO_ROOT
from process_apis.app import create_app as create_process
from process_apis.settings import ProcessSettings
from system_apis.app import create_app as create_system
from system_apis.settings import SystemSettings

TIER_APPS = {
    "system": lambda: create_system(SystemSettings()),
    "process": lambda: create_process(ProcessSettings()),
    "experience": lambda: create_experience(ExperienceSettings()),
}
OPERATIONAL = {"/healthz", "/readyz", "/metrics"}
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def served_operations(app: Litestar) -> set[tuple[str, str]]:
    operations = set()
    for route in app.routes:
        if route.path in OPERATIONAL:
            continue
        path = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route.path)
        operations.update((method, path) for method in getattr(route, "methods", set()) & HTTP_METHODS)
    return operations


def published_operations(layer: str) -> set[tuple[str, str]]:
    config = gateway_config.load(REPO_ROOT / "gateway.yaml", {})
    operations = set()
    for api in config.apis:
        if api.layer != layer or api.lifecycle == "retired":
            continue
        document = yaml.safe_load((CONTRACTS_DIR / api.contract).read_text())
        base = document["servers"][0]["url"]
        assert base == api.base_path, f"{api.contract} serves {base}, gateway.yaml routes {api.base_path}"
        for path, item in document["paths"].items():
            operations.update((method.upper(), base + path) for method in item if method.upper() in HTTP_METHODS)
    return operations


@pytest.mark.parametrize("layer", sorted(TIER_APPS))
def test_tier_serves_exactly_its_contracts(layer: str) -> None:
    served = served_operations(TIER_APPS[layer]())
    published = published_operations(layer)

    assert served - published == set(), "served but not in any contract"
    assert published - served == set(), "in a contract but not served"


def test_every_contract_is_valid_openapi_31() -> None:
    files = sorted(CONTRACTS_DIR.glob("*/*/v*.yaml"))
    assert files
    for path in files:
        document = yaml.safe_load(path.read_text())
        assert document["openapi"].startswith("3.1"), path
        validate(document)
