"""A published AsyncAPI event contract may only change additively (contracts/README.md, "Event contracts"):
``check-published`` compares it like an OpenAPI document, every message payload read as output."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts.toolchain.asyncapi import EVENTS_ASYNCAPI, load_asyncapi
from contracts.toolchain.diff import is_breaking
from contracts.toolchain.diff.asyncapi import diff_asyncapi
from contracts.toolchain.published import PublishedStatus, check_published

METHOD = ("components", "schemas", "RevenueRecognizedData", "properties", "method")


@pytest.fixture
def published() -> dict[str, Any]:
    return load_asyncapi()


def at(document: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    node: Any = document
    for part in path:
        node = node[part]
    return dict(node) if not isinstance(node, dict) else node


def rule_ids(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return sorted(change.rule_id for change in diff_asyncapi(old, new) if change.rule_id != "INF-001")


def test_the_same_document_has_no_change(published: dict[str, Any]) -> None:
    assert diff_asyncapi(published, copy.deepcopy(published)) == []


def test_a_new_value_in_a_closed_payload_enum_is_breaking(published: dict[str, Any]) -> None:
    """revenue.recognized gained ``percent_complete`` as a closed enum in 1.1.0: that is what this rule refuses."""
    before = copy.deepcopy(published)
    at(before, METHOD)["enum"].remove("percent_complete")
    (change,) = diff_asyncapi(before, published)
    assert (change.rule_id, change.severity) == ("BRK-022", "breaking")
    assert change.operations == ("event revenue.recognized",)
    assert "'percent_complete'" in change.message


def test_an_extensible_enum_may_grow_and_a_closed_one_may_not_be_opened(published: dict[str, Any]) -> None:
    open_before = copy.deepcopy(published)
    values = at(open_before, METHOD).pop("enum")
    at(open_before, METHOD)["x-extensible-enum"] = [v for v in values if v != "percent_complete"]
    open_after = copy.deepcopy(open_before)
    at(open_after, METHOD)["x-extensible-enum"].append("percent_complete")
    assert rule_ids(open_before, open_after) == []

    assert rule_ids(published, open_before) == ["BRK-022"], "opening a closed set widens what consumers receive"


def test_a_new_event_type_is_additive_and_a_removed_one_breaking(published: dict[str, Any]) -> None:
    without = copy.deepcopy(published)
    del without["components"]["messages"]["WorkerTerminated"]
    assert rule_ids(without, published) == ["ADD-012"]
    assert not is_breaking(diff_asyncapi(without, published))
    assert rule_ids(published, without) == ["BRK-033"]


def test_payload_fields_may_be_added_but_not_removed_retyped_or_made_optional(published: dict[str, Any]) -> None:
    data = ("components", "schemas", "RevenueWrittenOffData")
    added = copy.deepcopy(published)
    at(added, data)["properties"]["note"] = {"type": "string"}
    assert rule_ids(published, added) == ["ADD-005"]

    removed = copy.deepcopy(published)
    del at(removed, data)["properties"]["reason"]
    at(removed, data)["required"].remove("reason")
    assert "BRK-023" in rule_ids(published, removed)

    retyped = copy.deepcopy(published)
    at(retyped, data)["properties"]["recorded_by"] = {"type": "integer"}
    assert rule_ids(published, retyped) == ["BRK-020"]

    optional = copy.deepcopy(published)
    at(optional, data)["required"].remove("period")
    assert rule_ids(published, optional) == ["BRK-024"]


def git(repository: Path, *arguments: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *arguments],
        cwd=repository,
        check=True,
        capture_output=True,
        text=True,
    )


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A repository whose first commit publishes the events AsyncAPI document."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "repo"
    events = root / "contracts" / "process" / "events"
    events.mkdir(parents=True)
    shutil.copy(EVENTS_ASYNCAPI, events / "asyncapi.yaml")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "publish")
    return root


def test_check_published_fails_on_a_breaking_asyncapi_change(repository: Path) -> None:
    document = repository / "contracts" / "process" / "events" / "asyncapi.yaml"
    content = yaml.safe_load(document.read_text())
    at(content, METHOD)["enum"].append("as_invoiced")
    document.write_text(yaml.safe_dump(content, sort_keys=False))

    (check,) = check_published("HEAD", repository / "contracts")

    assert (check.path, check.status) == ("contracts/process/events/asyncapi.yaml", PublishedStatus.BREAKING)
    assert [change.rule_id for change in check.changes] == ["BRK-022"]


def test_check_published_accepts_a_new_event_type_and_refuses_a_deletion(repository: Path) -> None:
    document = repository / "contracts" / "process" / "events" / "asyncapi.yaml"
    content = yaml.safe_load(document.read_text())
    content["info"]["version"] = "1.3.0"
    added = copy.deepcopy(content["components"]["messages"]["WorkerTerminated"])
    added["name"] = added["title"] = "worker.rehired"
    content["components"]["messages"]["WorkerRehired"] = added
    document.write_text(yaml.safe_dump(content, sort_keys=False))

    (check,) = check_published("HEAD", repository / "contracts")
    assert check.status is PublishedStatus.ADDITIVE
    assert sorted(change.rule_id for change in check.changes) == ["ADD-012", "INF-001"]

    document.unlink()
    (check,) = check_published("HEAD", repository / "contracts")
    assert check.status is PublishedStatus.DELETED_WITHOUT_RETIREMENT
