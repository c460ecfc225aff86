"""PSG-301: every error response is RFC 9457 problem+json (Zalando rule 176)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from contracts.toolchain.lint.context import LintContext
from contracts.toolchain.lint.model import Severity, Violation, rule
from contracts.toolchain.operations import as_list, as_mapping, is_error_status, iter_responses

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"


def _is_problem_schema(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return False
    if schema.get("$ref") == PROBLEM_SCHEMA_REF:
        return True
    return any(_is_problem_schema(member) for member in as_list(schema.get("allOf")))


@rule(
    "PSG-301",
    "problem-json-errors",
    Severity.ERROR,
    "Clients, the gateway and the tiers handle one error shape: application/problem+json with the Problem "
    "schema, including the JSON pointer of each bad field.",
)
def problem_json_errors(context: LintContext) -> Iterator[Violation]:
    checked: set[str] = set()
    for site in context.operations:
        for response in iter_responses(context.document, site):
            # A shared response component is reported once, where it is defined.
            if not (is_error_status(response.status) or response.status == "default") or response.pointer in checked:
                continue
            checked.add(response.pointer)
            content = as_mapping(response.response.get("content"))
            if PROBLEM_MEDIA_TYPE not in content:
                yield Violation(response.pointer, f"{response.status} response has no {PROBLEM_MEDIA_TYPE} content")
            elif not _is_problem_schema(as_mapping(content[PROBLEM_MEDIA_TYPE]).get("schema")):
                yield Violation(
                    response.pointer, f"{response.status} {PROBLEM_MEDIA_TYPE} schema must be {PROBLEM_SCHEMA_REF}"
                )


RULES = (problem_json_errors,)
