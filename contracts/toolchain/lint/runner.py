"""Run the ruleset over documents and files and place each violation at ``file:line:col``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from contracts.toolchain.catalog import ContractLocation, contract_files, locate_contract
from contracts.toolchain.lint.context import LintContext
from contracts.toolchain.lint.model import LintFinding, Rule, Severity
from contracts.toolchain.lint.rules import RULESET
from contracts.toolchain.loader import ContractDocument, ContractLoadError, load_contract

_LOAD_RULE = next(rule for rule in RULESET if rule.id == "PSG-001")


def lint_document(
    document: ContractDocument,
    location: ContractLocation | None,
    rules: Sequence[Rule] = RULESET,
) -> list[LintFinding]:
    """Findings for one loaded contract, in file order. ``location`` is where the file sits in the layout."""
    context = LintContext(document, location)
    findings = []
    for rule in rules:
        for violation in rule.check(context):
            position = document.position_of(violation.pointer)
            findings.append(
                LintFinding(
                    rule_id=rule.id,
                    rule_name=rule.name,
                    severity=rule.severity,
                    message=violation.message,
                    source=document.source,
                    line=position.line,
                    column=position.column,
                    pointer=violation.pointer,
                )
            )
    return sorted(findings, key=lambda finding: (finding.line, finding.column, finding.rule_id))


def lint_file(path: Path, source: str | None = None, rules: Sequence[Rule] = RULESET) -> list[LintFinding]:
    """Lint the contract at ``path``; a file that does not load is one PSG-001 finding at the bad line."""
    try:
        document = load_contract(path, source)
    except ContractLoadError as error:
        return [
            LintFinding(
                rule_id=_LOAD_RULE.id,
                rule_name=_LOAD_RULE.name,
                severity=_LOAD_RULE.severity,
                message=error.message,
                source=error.source,
                line=error.line,
                column=error.column,
                pointer="",
            )
        ]
    return lint_document(document, locate_contract(path.resolve()), rules)


def expand_contract_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given; directories replaced by the contracts laid out under them."""
    expanded: list[Path] = []
    for path in paths:
        if path.is_dir():
            expanded.extend(found for found, _ in contract_files(path))
        else:
            expanded.append(path)
    return expanded


def lint_paths(paths: Iterable[Path], rules: Sequence[Rule] = RULESET) -> list[LintFinding]:
    return [finding for path in expand_contract_paths(paths) for finding in lint_file(path, rules=rules)]


def has_errors(findings: Iterable[LintFinding]) -> bool:
    return any(finding.severity is Severity.ERROR for finding in findings)
