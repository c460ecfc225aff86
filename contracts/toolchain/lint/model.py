"""What a lint rule is and what it reports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from contracts.toolchain.lint.context import LintContext


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Violation:
    """What a rule found, before it is placed in the file: where (a JSON pointer) and what."""

    pointer: str
    message: str


Check = Callable[["LintContext"], Iterator[Violation]]


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    name: str
    severity: Severity
    rationale: str
    check: Check


def rule(rule_id: str, name: str, severity: Severity, rationale: str) -> Callable[[Check], Rule]:
    """Turn a check function into a ``Rule`` carrying its stable id, name, severity and rationale."""

    def wrap(check: Check) -> Rule:
        return Rule(rule_id, name, severity, rationale, check)

    return wrap


class LintFinding(msgspec.Struct, frozen=True, kw_only=True):
    rule_id: str
    rule_name: str
    severity: Severity
    message: str
    source: str
    line: int
    column: int
    pointer: str

    def format_text(self) -> str:
        """``path/to/v1.yaml:12:9: ERROR PSG-101 snake-case-properties: message``."""
        return (
            f"{self.source}:{self.line}:{self.column}: "
            f"{self.severity.value.upper()} {self.rule_id} {self.rule_name}: {self.message}"
        )
