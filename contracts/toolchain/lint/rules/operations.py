"""PSG-201..PSG-204: every operation is named, unique, summarised and tagged."""

from __future__ import annotations

import re
from collections.abc import Iterator

from contracts.toolchain.lint.context import LintContext
from contracts.toolchain.lint.model import Severity, Violation, rule
from contracts.toolchain.pointer import join_pointer

CAMEL_CASE = re.compile(r"^[a-z][a-zA-Z0-9]*$")


@rule(
    "PSG-201",
    "operation-id-unique",
    Severity.ERROR,
    "operationId names the operation in generated clients, the catalog, audit and metrics; it must exist "
    "and be unique.",
)
def operation_id_unique(context: LintContext) -> Iterator[Violation]:
    first_seen: dict[str, str] = {}
    for site in context.operations:
        operation_id = site.operation.get("operationId")
        if not isinstance(operation_id, str) or not operation_id.strip():
            yield Violation(site.pointer, f"{site.label} has no operationId")
        elif operation_id in first_seen:
            yield Violation(
                join_pointer(site.pointer, "operationId"),
                f"operationId {operation_id!r} of {site.label} is already used by {first_seen[operation_id]}",
            )
        else:
            first_seen[operation_id] = site.label


@rule(
    "PSG-202",
    "operation-id-camel-case",
    Severity.ERROR,
    "operationIds become method names in generated clients: lowerCamelCase (listAssignments).",
)
def operation_id_camel_case(context: LintContext) -> Iterator[Violation]:
    for site in context.operations:
        operation_id = site.operation.get("operationId")
        if isinstance(operation_id, str) and operation_id.strip() and not CAMEL_CASE.match(operation_id):
            yield Violation(join_pointer(site.pointer, "operationId"), f"operationId {operation_id!r} is not camelCase")


@rule(
    "PSG-203",
    "operation-summary",
    Severity.ERROR,
    "The summary is the one line the catalog, the changelog and the audit log show for an operation.",
)
def operation_summary(context: LintContext) -> Iterator[Violation]:
    for site in context.operations:
        summary = site.operation.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            yield Violation(site.pointer, f"{site.label} has no summary")


@rule(
    "PSG-204",
    "operation-tags",
    Severity.WARNING,
    "Tags group operations in the catalog; an untagged operation is hard to find.",
)
def operation_tags(context: LintContext) -> Iterator[Violation]:
    for site in context.operations:
        tags = site.operation.get("tags")
        if not isinstance(tags, list) or not tags:
            yield Violation(site.pointer, f"{site.label} has no tags")


RULES = (operation_id_unique, operation_id_camel_case, operation_summary, operation_tags)
