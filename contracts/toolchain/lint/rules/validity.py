"""PSG-001, PSG-002: the document is valid OpenAPI 3.1 and every reference resolves locally."""

from __future__ import annotations

from collections.abc import Iterator

from contracts.toolchain.lint.context import LintContext
from contracts.toolchain.lint.model import Severity, Violation, rule
from contracts.toolchain.references import check_references
from contracts.toolchain.spec_validity import check_openapi_version, check_schema_rules


@rule(
    "PSG-001",
    "openapi-valid",
    Severity.ERROR,
    "Every tool downstream (gateway validation, catalog, client generators) assumes a valid OpenAPI 3.1 document.",
)
def openapi_valid(context: LintContext) -> Iterator[Violation]:
    version_problems = check_openapi_version(context.document)
    if version_problems or check_references(context.document):
        # A wrong version is the finding; broken references are PSG-002's and would derail the validator.
        yield from (Violation(problem.pointer, problem.message) for problem in version_problems)
        return
    for problem in check_schema_rules(context.document):
        if problem.kind != "DuplicateOperationIDError":  # PSG-201 reports it at the duplicate itself
            yield Violation(problem.pointer, problem.message)


@rule(
    "PSG-002",
    "local-references",
    Severity.ERROR,
    "A contract is self-contained: references are local (#/components/...) and resolve, so nothing is fetched.",
)
def local_references(context: LintContext) -> Iterator[Violation]:
    for problem in check_references(context.document):
        yield Violation(problem.pointer, problem.message)


RULES = (openapi_valid, local_references)
