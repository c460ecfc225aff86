"""Collects changes while two contracts are compared, merging one change seen from several operations."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.toolchain.diff.model import Change, DiffRule
from contracts.toolchain.loader import ContractDocument


class ChangeRecorder:
    def __init__(self) -> None:
        self._operations: dict[tuple[DiffRule, str, str], list[str]] = {}
        self._groups: dict[tuple[DiffRule, str], tuple[str, str]] = {}

    def record(self, rule: DiffRule, pointer: str, message: str, operation: str | None = None) -> None:
        operations = self._operations.setdefault((rule, pointer, message), [])
        if operation is not None and operation not in operations:
            operations.append(operation)

    def record_grouped(self, rule: DiffRule, group: str, pointer: str, message: str, operation: str) -> None:
        """One change for every occurrence of ``group`` (e.g. one header in many responses): the first
        occurrence's pointer and message stand for all, with every operation it affects."""
        pointer, message = self._groups.setdefault((rule, group), (pointer, message))
        self.record(rule, pointer, message, operation)

    def changes(self) -> list[Change]:
        return [
            Change(
                rule_id=rule.id,
                rule_name=rule.name,
                severity=rule.severity,
                pointer=pointer,
                message=message,
                operations=tuple(operations),
            )
            for (rule, pointer, message), operations in self._operations.items()
        ]


@dataclass(frozen=True, slots=True)
class DiffContext:
    old: ContractDocument
    new: ContractDocument
    recorder: ChangeRecorder
