"""contracts/README.md documents every rule with its current name and severity."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.toolchain.diff import DIFF_RULES
from contracts.toolchain.diff.rules import ASYNCAPI_RULES
from contracts.toolchain.lint import RULESET

README = Path(__file__).resolve().parents[2] / "contracts" / "README.md"

DOCUMENTED = [(rule.id, rule.name, rule.severity.value) for rule in RULESET] + [
    (rule.id, rule.name, rule.severity.value) for rule in (*DIFF_RULES, *ASYNCAPI_RULES)
]


@pytest.mark.parametrize(("rule_id", "name", "severity"), DOCUMENTED, ids=[entry[0] for entry in DOCUMENTED])
def test_readme_rule_table_row(rule_id: str, name: str, severity: str) -> None:
    assert f"| {rule_id} | `{name}` | {severity} |" in README.read_text()
