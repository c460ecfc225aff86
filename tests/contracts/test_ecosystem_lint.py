"""The contracts are clean for the linters integrators run themselves (Spectral ``spectral:oas``, Redocly
``recommended``), and the house lint reports the same defects on its own.

The tools come from npm at pinned versions, installed once into ``.cache/node-tools``; every contract found
under contracts/ is checked, so a new one is covered without touching this test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts import CONTRACTS_DIR
from contracts.toolchain.catalog import contract_files
from contracts.toolchain.ecosystem.lint import EcosystemFinding, ecosystem_findings
from contracts.toolchain.ecosystem.node_tools import ensure_node_tools
from contracts.toolchain.lint import lint_file

LINT_FIXTURES = Path(__file__).parent / "fixtures" / "lint" / "experience"

# fixture -> the house rule it violates, and what Spectral and Redocly call the same defect
SHARED_DEFECTS = {
    "operation-description": ("PSG-205", {"spectral operation-description"}),
    "info-contact-license": ("PSG-504", {"spectral info-contact"}),
    "tags-declared-and-described": ("PSG-505", {"redocly tag-description"}),
    "no-unused-components": ("PSG-003", {"spectral oas3-unused-component", "redocly no-unused-components"}),
    "examples-declared-properties": ("PSG-603", {"redocly no-invalid-media-type-examples"}),
}
REPOSITORY_CONTRACTS = [path for path, _ in contract_files(CONTRACTS_DIR)]


def _fixture(name: str) -> Path:
    return LINT_FIXTURES / name / "v1.yaml"


@pytest.fixture(scope="module")
def findings_by_file() -> dict[Path, list[EcosystemFinding]]:
    """One Spectral and one Redocly run over every contract and the defect fixtures."""
    files = REPOSITORY_CONTRACTS + [_fixture(name) for name in (*SHARED_DEFECTS, "clean-contract")]
    by_file: dict[Path, list[EcosystemFinding]] = {path.resolve(): [] for path in files}
    for finding in ecosystem_findings(ensure_node_tools(), files):
        by_file[Path(finding.source).resolve()].append(finding)
    return by_file


def test_every_contract_has_no_spectral_or_redocly_error_or_warning(
    findings_by_file: dict[Path, list[EcosystemFinding]],
) -> None:
    assert REPOSITORY_CONTRACTS
    found = [f.format_text() for path in REPOSITORY_CONTRACTS for f in findings_by_file[path.resolve()]]
    assert found == []


def test_the_house_clean_fixture_is_clean_for_the_ecosystem_too(
    findings_by_file: dict[Path, list[EcosystemFinding]],
) -> None:
    assert [f.format_text() for f in findings_by_file[_fixture("clean-contract").resolve()]] == []


@pytest.mark.parametrize("case", list(SHARED_DEFECTS))
def test_house_lint_catches_what_the_ecosystem_linters_catch(
    case: str, findings_by_file: dict[Path, list[EcosystemFinding]]
) -> None:
    house_rule, ecosystem_rules = SHARED_DEFECTS[case]

    ecosystem = {f"{f.tool} {f.rule}" for f in findings_by_file[_fixture(case).resolve()]}
    house = {finding.rule_id for finding in lint_file(_fixture(case))}

    assert ecosystem_rules <= ecosystem
    assert house == {house_rule}
