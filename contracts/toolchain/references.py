"""Every ``$ref`` in a contract is local and resolves. Kept apart from ``spec_validity`` so that runtime
validation can check references without importing the OpenAPI validator."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from contracts.toolchain.loader import ContractDocument, UnresolvableReference
from contracts.toolchain.pointer import join_pointer


@dataclass(frozen=True, slots=True)
class SpecProblem:
    """Why a document is not a valid contract, and where (a JSON pointer)."""

    pointer: str
    message: str
    # The validator's error class, so callers can leave a kind of problem to a more precise rule.
    kind: str = "OpenAPIValidationError"


def check_references(document: ContractDocument) -> list[SpecProblem]:
    """Every ``$ref`` must be local and resolve: contracts are self-contained and never fetch the network."""
    problems: list[SpecProblem] = []
    for pointer, reference in iter_references(document.content, ""):
        try:
            document.dereference({"$ref": reference}, pointer)
        except UnresolvableReference as error:
            problems.append(SpecProblem(join_pointer(pointer, "$ref"), str(error)))
    return problems


def iter_references(node: Any, pointer: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from iter_references(item, f"{pointer}/{index}")
    elif isinstance(node, Mapping):
        reference = node.get("$ref")
        if isinstance(reference, str):
            yield pointer, reference
        for key, value in node.items():
            # Example and extension values are data: a "$ref" member there is not a reference.
            if key not in ("example", "examples", "default", "const", "enum") and not key.startswith("x-"):
                yield from iter_references(value, join_pointer(pointer, key))
