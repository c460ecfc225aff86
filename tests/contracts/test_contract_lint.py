"""The house lint ruleset: each rule fires on its own violating fixture, at the marked line, and nowhere else."""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import pytest

from contracts.toolchain.catalog import locate_contract
from contracts.toolchain.lint import RULESET, Severity, has_errors, lint_document, lint_file, lint_paths
from contracts.toolchain.loader import ContractDocument, load_contract

FIXTURES = Path(__file__).parent / "fixtures"
LINT_FIXTURES = FIXTURES / "lint" / "experience"
CLEAN_LINT_FIXTURE = LINT_FIXTURES / "clean-contract" / "v1.yaml"
MOBILE_TIME_V1 = FIXTURES / "contracts" / "experience" / "mobile-time" / "v1.yaml"

# fixture directory -> the one rule it violates (the violating line carries "# expect: <rule id>")
LINT_CASES = [
    ("openapi-version", "PSG-001"),
    ("openapi-invalid", "PSG-001"),
    ("local-references", "PSG-002"),
    ("no-unused-components", "PSG-003"),
    ("snake-case-properties", "PSG-101"),
    ("kebab-case-paths", "PSG-102"),
    ("plural-collection-names", "PSG-103"),
    ("snake-case-parameters", "PSG-104"),
    ("operation-id-unique", "PSG-201"),
    ("operation-id-camel-case", "PSG-202"),
    ("operation-summary", "PSG-203"),
    ("operation-tags", "PSG-204"),
    ("operation-description", "PSG-205"),
    ("problem-json-errors", "PSG-301"),
    ("oauth2-undeclared-scope", "PSG-302"),
    ("oauth2-unsecured", "PSG-302"),
    ("cursor-pagination", "PSG-401"),
    ("server-url-matches-location", "PSG-501"),
    ("paths-relative-to-server", "PSG-502"),
    ("api-metadata", "PSG-503"),
    ("info-contact-license", "PSG-504"),
    ("tags-declared-and-described", "PSG-505"),
    ("valid-examples", "PSG-601"),
    ("examples-present", "PSG-602"),
    ("examples-declared-properties", "PSG-603"),
    ("money-as-decimal-string", "PSG-701"),
    ("money-decimal-pattern", "PSG-702"),
    ("date-time-instants", "PSG-703"),
    ("closed-set-enums", "PSG-704"),
]
RULES_BY_ID = {rule.id: rule for rule in RULESET}


def marked_line(path: Path, rule_id: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.rstrip().endswith(f"# expect: {rule_id}"):
            return number
    raise AssertionError(f"{path} has no '# expect: {rule_id}' marker")


@pytest.mark.parametrize(("case", "rule_id"), LINT_CASES, ids=[case for case, _ in LINT_CASES])
def test_rule_reports_only_its_violation_at_the_marked_line(case: str, rule_id: str) -> None:
    path = LINT_FIXTURES / case / "v1.yaml"

    findings = lint_file(path)

    assert [(finding.rule_id, finding.line) for finding in findings] == [(rule_id, marked_line(path, rule_id))]
    assert findings[0].severity is RULES_BY_ID[rule_id].severity
    assert findings[0].rule_name == RULES_BY_ID[rule_id].name


def test_every_rule_has_a_violating_fixture() -> None:
    assert {rule_id for _, rule_id in LINT_CASES} == set(RULES_BY_ID)


def test_rule_ids_are_unique_and_well_formed() -> None:
    ids = [rule.id for rule in RULESET]
    assert len(ids) == len(set(ids))
    for rule in RULESET:
        assert re.fullmatch(r"PSG-\d{3}", rule.id)
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name)
        assert rule.rationale


@pytest.mark.parametrize("path", [CLEAN_LINT_FIXTURE, MOBILE_TIME_V1], ids=["compact", "mobile-time"])
def test_clean_contract_has_no_findings(path: Path) -> None:
    assert lint_file(path) == []


def test_heuristic_rules_warn_without_failing() -> None:
    findings = lint_file(LINT_FIXTURES / "plural-collection-names" / "v1.yaml")

    assert [finding.severity for finding in findings] == [Severity.WARNING]
    assert not has_errors(findings)


def test_example_finding_points_at_the_offending_field() -> None:
    path = LINT_FIXTURES / "valid-examples" / "v1.yaml"

    [finding] = lint_file(path)

    assert finding.pointer == "/paths/~1time-entries/post/requestBody/content/application~1json/example/hours"
    assert finding.column == 15
    assert "25 is greater than the maximum of 24" in finding.message


def test_finding_prints_as_file_line_column_severity_rule() -> None:
    [finding] = lint_file(LINT_FIXTURES / "snake-case-properties" / "v1.yaml", "contracts/x/v1.yaml")

    assert finding.format_text() == (
        "contracts/x/v1.yaml:128:9: ERROR PSG-101 snake-case-properties: "
        "property 'noteText' is not snake_case (use 'note_text')"
    )


def test_file_outside_the_layout_cannot_prove_its_server_url(tmp_path: Path) -> None:
    stray = tmp_path / "mobile-time.yaml"
    shutil.copy(CLEAN_LINT_FIXTURE, stray)

    findings = lint_file(stray)

    # The whole document is at fault: the finding sits where its content starts, after the header comment.
    assert [(finding.rule_id, finding.line) for finding in findings] == [("PSG-501", 2)]


def test_api_id_and_owner_tier_must_match_the_file_location(tmp_path: Path) -> None:
    moved = tmp_path / "process" / "clean-contract" / "v1.yaml"
    moved.parent.mkdir(parents=True)
    shutil.copy(CLEAN_LINT_FIXTURE, moved)

    findings = lint_file(moved)

    assert [(finding.rule_id, finding.line) for finding in findings] == [
        ("PSG-503", 9),  # x-owner-tier: experience
        ("PSG-503", 12),  # x-api-id: experience/clean-contract
        ("PSG-501", 14),  # url /experience/... instead of /process/...
    ]


def test_yaml_syntax_error_is_reported_at_its_line(tmp_path: Path) -> None:
    broken = tmp_path / "experience" / "broken" / "v1.yaml"
    broken.parent.mkdir(parents=True)
    broken.write_text("openapi: 3.1.0\ninfo:\n  title: [unclosed\n")

    [finding] = lint_file(broken)

    assert finding.rule_id == "PSG-001"
    assert finding.line == 4
    assert "invalid YAML" in finding.message


def test_duplicate_keys_are_reported_at_the_second_one(tmp_path: Path) -> None:
    duplicated = tmp_path / "experience" / "dup" / "v1.yaml"
    duplicated.parent.mkdir(parents=True)
    duplicated.write_text("openapi: 3.1.0\ninfo:\n  title: a\n  title: b\n")

    [finding] = lint_file(duplicated)

    assert (finding.rule_id, finding.line, finding.column) == ("PSG-001", 4, 3)
    assert "duplicate key 'title'" in finding.message


def test_lint_paths_expands_directories_to_laid_out_contracts() -> None:
    findings = lint_paths([FIXTURES / "contracts"])

    assert findings == []
    assert {finding.source for finding in lint_paths([LINT_FIXTURES.parent])} >= {
        str(LINT_FIXTURES / case / "v1.yaml") for case, _ in LINT_CASES
    }


def test_document_level_security_is_reported_once() -> None:
    document = load_contract(CLEAN_LINT_FIXTURE)
    content = copy.deepcopy(document.content)
    for path_item in content["paths"].values():
        for operation in path_item.values():
            operation.pop("security")
    content["security"] = [{"oauth2": ["time.admin"]}]

    findings = lint_document(ContractDocument.from_mapping(content), locate_contract(CLEAN_LINT_FIXTURE))

    assert [(finding.rule_id, finding.pointer) for finding in findings] == [("PSG-302", "/security/0/oauth2/0")]
