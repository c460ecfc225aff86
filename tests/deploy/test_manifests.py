"""The Kubernetes manifests in deploy/ are valid for the API server and match how the processes really start."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from gateway import config as gateway_config
from gateway.launcher import REPO_ROOT

K8S = REPO_ROOT / "deploy" / "k8s"
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


def manifests() -> list[tuple[Path, dict]]:  # type: ignore[type-arg]
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend((path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates_strictly(version: str) -> None:
    for path, doc in manifests():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path.name} {doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_kustomization_lists_every_manifest_and_the_config() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    files = kustomization["configMapGenerator"][0]["files"]
    assert all((K8S / f.split("=", 1)[1]).exists() for f in files)


def test_each_workload_is_probed_scaled_and_protected() -> None:
    by_kind: dict[str, dict[str, dict]] = {}  # type: ignore[type-arg]
    for _, doc in manifests():
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    deployments = by_kind["Deployment"]
    assert set(deployments) == {"gateway", "system-apis", "process-apis", "experience-apis"}
    for name, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        module = container["command"][-1]
        assert importlib.util.find_spec(f"{module}.__main__") is not None, f"{name} starts missing module {module}"
        assert name in by_kind["Service"] and name in by_kind["HorizontalPodAutoscaler"], name
        assert name in by_kind["PodDisruptionBudget"], name
        assert deployment["spec"]["replicas"] >= 2, f"{name} must run more than one replica"


def test_cluster_gateway_config_loads() -> None:
    env = {"PSGW_ISSUER_URL": "https://api.example.com", "PSGW_PROCESS_TIER_SECRET_HASH": "sha256:" + "0" * 64,
           "PSGW_EXPERIENCE_TIER_SECRET_HASH": "sha256:" + "1" * 64}
    config = gateway_config.load(K8S / "config" / "gateway.yaml", env)

    assert config.issuer.signing_key_file.startswith("/etc/psgateway-keys/")
    assert {u.url for u in config.upstreams.values()} == {
        "http://system-apis:8080", "http://process-apis:8080", "http://experience-apis:8080"}
