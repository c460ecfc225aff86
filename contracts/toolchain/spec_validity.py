"""Is the document a valid OpenAPI 3.1 description? (openapi-spec-validator, plus local-reference checks)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from openapi_spec_validator import OpenAPIV31SpecValidator

from contracts.toolchain.loader import ContractDocument
from contracts.toolchain.pointer import join_pointer, pointer_from_parts
from contracts.toolchain.references import SpecProblem, check_references

# Cross-cutting checks (unresolved path parameters, duplicate operationIds) carry no instance path, only
# the operation in their message; use it so the finding still lands on the operation's line.
_OPERATION_IN_MESSAGE = re.compile(r"for '(?P<method>[a-z]+)'(?: operation)? in '(?P<path>[^']+)'")


def check_openapi_version(document: ContractDocument) -> list[SpecProblem]:
    version = document.content.get("openapi")
    if isinstance(version, str) and version.startswith("3.1."):
        return []
    return [SpecProblem("/openapi", f"contracts are OpenAPI 3.1 documents (openapi: 3.1.x), got {version!r}")]


def check_schema_rules(document: ContractDocument) -> list[SpecProblem]:
    """What openapi-spec-validator finds; call only once the version and references are known to be good."""
    try:
        problems = []
        for error in OpenAPIV31SpecValidator(document.content).iter_errors():
            # Keep the first line: the rest is a dump of the offending value.
            message = error.message.split("\n", 1)[0]
            problems.append(SpecProblem(_pointer_of(error.absolute_path, message), message, type(error).__name__))
        return problems
    except Exception as error:  # the validator raises arbitrary errors on some malformed documents
        return [SpecProblem("", f"the OpenAPI validator could not check this document: {error}")]


def check_openapi(document: ContractDocument) -> list[SpecProblem]:
    """Problems that make the document an invalid OpenAPI 3.1 description; empty when it is valid."""
    problems = check_openapi_version(document) or check_references(document)
    # With a wrong version or a broken reference the validator would check the wrong thing, or fetch, or crash.
    return problems or check_schema_rules(document)


def _pointer_of(path: Iterable[str | int], message: str) -> str:
    pointer = pointer_from_parts(path)
    if pointer:
        return pointer
    mentioned = _OPERATION_IN_MESSAGE.search(message)
    return join_pointer("/paths", mentioned["path"], mentioned["method"]) if mentioned else ""
