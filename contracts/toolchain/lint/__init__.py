"""The house contract ruleset (in the spirit of the Zalando RESTful API Guidelines) and its runner."""

from contracts.toolchain.lint.model import LintFinding, Rule, Severity
from contracts.toolchain.lint.rules import RULESET
from contracts.toolchain.lint.runner import expand_contract_paths, has_errors, lint_document, lint_file, lint_paths

__all__ = [
    "RULESET",
    "LintFinding",
    "Rule",
    "Severity",
    "expand_contract_paths",
    "has_errors",
    "lint_document",
    "lint_file",
    "lint_paths",
]
