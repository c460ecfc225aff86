"""The ``contracts`` command group: exit codes and output formats, with git-backed commands on a scratch repo."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from contracts.toolchain.cli import contracts

FIXTURES = Path(__file__).parent / "fixtures"
CONTRACTS = FIXTURES / "contracts"
MOBILE_TIME = CONTRACTS / "experience" / "mobile-time"
LINT = FIXTURES / "lint" / "experience"
LINT_LINE = re.compile(
    r"^(?P<file>\S+):(?P<line>\d+):(?P<column>\d+): "
    r"(?P<severity>ERROR|WARNING|INFO) (?P<rule>PSG-\d{3}) (?P<name>[a-z0-9-]+): .+$"
)


def run(*arguments: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(contracts, [str(argument) for argument in arguments])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


# lint


def test_lint_clean_contracts_exits_zero() -> None:
    code, out, err = run("--root", CONTRACTS, "lint")

    assert code == 0
    assert out == ""
    assert "0 error(s), 0 warning(s) in 2 file(s)" in err


def test_lint_prints_one_line_per_finding_and_fails_on_errors() -> None:
    code, out, _ = run("lint", LINT / "valid-examples" / "v1.yaml", LINT / "plural-collection-names" / "v1.yaml")

    lines = out.splitlines()
    assert code == 1
    parsed = [LINT_LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [(m["rule"], m["line"], m["severity"]) for m in parsed if m] == [
        ("PSG-601", "56", "ERROR"),
        ("PSG-103", "67", "WARNING"),
    ]
    assert lines[0].startswith("tests/contracts/fixtures/lint/experience/valid-examples/v1.yaml:56:15: ERROR ")


def test_lint_warnings_alone_pass() -> None:
    code, out, _ = run("lint", LINT / "examples-present" / "v1.yaml")

    assert code == 0
    assert " WARNING PSG-602 examples-present: " in out


def test_lint_json_output() -> None:
    code, out, _ = run("lint", "--format", "json", LINT / "date-time-instants" / "v1.yaml")

    assert code == 1
    [finding] = json.loads(out)
    assert finding["rule_id"] == "PSG-703"
    assert finding["severity"] == "error"
    assert finding["line"] == 135
    assert finding["pointer"] == "/components/schemas/TimeEntry/properties/submitted_at"


# validate and list


def test_validate_reports_positions_and_fails() -> None:
    code, out, _ = run("validate", LINT / "openapi-invalid" / "v1.yaml", MOBILE_TIME / "v1.yaml")

    assert code == 1
    assert re.search(r"openapi-invalid/v1\.yaml:81:9: \"description\" is a required property", out)
    assert "mobile-time/v1.yaml: valid OpenAPI 3.1" in out


def test_validate_everything_under_root() -> None:
    code, out, _ = run("--root", CONTRACTS, "validate")

    assert code == 0
    assert out.count("valid OpenAPI 3.1") == 2


def test_list_shows_the_catalog() -> None:
    code, out, _ = run("--root", CONTRACTS, "list")

    assert code == 0
    assert out.splitlines()[0].split() == ["API", "MAJOR", "VERSION", "LIFECYCLE", "SUNSET", "BASE", "PATH"]
    assert out.splitlines()[2].split() == [
        "experience/mobile-time",
        "v2",
        "2.0.0",
        "active",
        "-",
        "/experience/mobile-time/v2",
    ]


def test_list_json() -> None:
    code, out, _ = run("--root", CONTRACTS, "list", "--format", "json")

    assert code == 0
    assert [(entry["api_id"], entry["major"]) for entry in json.loads(out)] == [
        ("experience/mobile-time", 1),
        ("experience/mobile-time", 2),
    ]


# diff


def test_diff_breaking_exits_one_with_text_lines() -> None:
    code, out, err = run("diff", MOBILE_TIME / "v1.yaml", MOBILE_TIME / "v2.yaml")

    assert code == 1
    assert (
        "BREAKING BRK-004 server-url-changed: "
        "server url /experience/mobile-time/v1 -> /experience/mobile-time/v2 at /servers"
    ) in out.splitlines()
    assert "3 breaking, 0 non_breaking, 1 info" in err  # hours -> minutes: a rename per schema, not two changes


def test_diff_of_identical_files_exits_zero() -> None:
    code, out, _ = run("diff", MOBILE_TIME / "v1.yaml", MOBILE_TIME / "v1.yaml")

    assert (code, out) == (0, "")


def test_diff_json_and_markdown() -> None:
    code, out, _ = run("diff", "--format", "json", MOBILE_TIME / "v1.yaml", MOBILE_TIME / "v2.yaml")
    report = json.loads(out)
    assert code == 1
    assert report["breaking"] is True
    assert {"rule_id": "BRK-004", "severity": "breaking", "pointer": "/servers"}.items() <= report["changes"][1].items()

    code, out, _ = run("diff", "--format", "markdown", MOBILE_TIME / "v1.yaml", MOBILE_TIME / "v2.yaml")
    assert code == 1
    assert out.startswith("## Mobile time entry: 1.2.0 -> 2.0.0\n\n### Breaking changes\n")


def test_diff_of_a_missing_file_is_a_usage_failure() -> None:
    code, _, err = run("diff", MOBILE_TIME / "v9.yaml", MOBILE_TIME / "v1.yaml")

    assert code == 2
    assert "no such contract file" in err


# git-backed: diff git:<rev>:<path> and check-published


def git(repository: Path, *arguments: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *arguments],
        cwd=repository,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def retired(text: str) -> str:
    return text.replace("x-lifecycle: active", "x-lifecycle: retired\n  x-sunset: '2025-01-31'")


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A repository whose first commit publishes three contracts: two active, one retired."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "repo"
    published = root / "contracts" / "experience" / "mobile-time"
    published.mkdir(parents=True)
    shutil.copy(MOBILE_TIME / "v1.yaml", published / "v1.yaml")
    shutil.copy(MOBILE_TIME / "v2.yaml", published / "v2.yaml")
    legacy = root / "contracts" / "system" / "legacy-crm" / "v1.yaml"
    legacy.parent.mkdir(parents=True)
    legacy.write_text(retired((MOBILE_TIME / "v1.yaml").read_text()))
    (root / "README.md").write_text("scratch\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "publish")
    return root


def test_diff_reads_old_version_from_git(repository: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    contract = repository / "contracts" / "experience" / "mobile-time" / "v1.yaml"
    contract.write_text(contract.read_text().replace("  version: 1.2.0", "  version: 1.3.0"))
    monkeypatch.chdir(repository)

    code, out, _ = run(
        "diff", "git:HEAD:contracts/experience/mobile-time/v1.yaml", "contracts/experience/mobile-time/v1.yaml"
    )

    assert code == 0
    assert out == "INFO INF-001 contract-version-changed: contract version 1.2.0 -> 1.3.0 at /info/version\n"


def test_diff_with_unknown_revision_is_a_usage_failure(repository: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repository)

    code, _, err = run(
        "diff", "git:no-such-rev:contracts/experience/mobile-time/v1.yaml", "contracts/experience/mobile-time/v1.yaml"
    )

    assert code == 2
    assert "no-such-rev" in err


def test_check_published_accepts_additive_changes_and_retired_deletions(repository: Path) -> None:
    contracts_dir = repository / "contracts"
    v1 = contracts_dir / "experience" / "mobile-time" / "v1.yaml"
    v1.write_text(
        v1.read_text().replace(
            "        correlation_id:\n", "        instance:\n          type: string\n        correlation_id:\n"
        )
    )
    shutil.rmtree(contracts_dir / "system" / "legacy-crm")

    code, out, _ = run("--root", contracts_dir, "check-published", "--base", "HEAD")

    assert code == 0
    assert out.splitlines() == [
        "ok contracts/experience/mobile-time/v1.yaml: 1 additive change(s)",
        "ok contracts/experience/mobile-time/v2.yaml: unchanged",
        "ok contracts/system/legacy-crm/v1.yaml: deleted after it was retired",
    ]


def test_check_published_fails_on_a_breaking_change(repository: Path) -> None:
    contracts_dir = repository / "contracts"
    v2 = contracts_dir / "experience" / "mobile-time" / "v2.yaml"
    v2.write_text(v2.read_text().replace("      required: [type, title, status]", "      required: [type, title]"))

    code, out, _ = run("--root", contracts_dir, "check-published", "--base", "HEAD")

    assert code == 1
    assert "FAIL contracts/experience/mobile-time/v2.yaml: 1 breaking change(s)" in out
    assert "    BREAKING BRK-024 response-property-optional: schema Problem: property 'status' may now be absent" in out


def test_check_published_fails_when_an_active_version_is_deleted(repository: Path) -> None:
    contracts_dir = repository / "contracts"
    (contracts_dir / "experience" / "mobile-time" / "v1.yaml").unlink()

    code, out, _ = run("--root", contracts_dir, "check-published", "--base", "HEAD", "--format", "json")

    assert code == 1
    statuses = {entry["path"]: entry["status"] for entry in json.loads(out)}
    assert statuses == {
        "contracts/experience/mobile-time/v1.yaml": "deleted_without_retirement",
        "contracts/experience/mobile-time/v2.yaml": "unchanged",
        "contracts/system/legacy-crm/v1.yaml": "unchanged",
    }


def test_check_published_outside_a_repository_is_a_usage_failure(tmp_path: Path) -> None:
    code, _, err = run("--root", tmp_path, "check-published", "--base", "HEAD")

    assert code == 2
    assert "git" in err.lower() or "repository" in err.lower()
