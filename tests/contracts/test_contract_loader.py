"""Loading keeps the position of every value and JSON semantics; local references resolve."""

from __future__ import annotations

import pytest

from contracts.toolchain.loader import (
    ContractDocument,
    ContractLoadError,
    SourcePosition,
    UnresolvableReference,
    load_contract_text,
)
from contracts.toolchain.pointer import join_pointer, split_pointer

TEXT = """\
openapi: 3.1.0
info:
  title: Demo
paths:
  /time-entries/{id}:
    get:
      responses:
        200:
          description: ok
          content:
            application/json:
              example: {work_date: 2025-01-06, hours: 8}
components:
  schemas:
    Alias: {$ref: '#/components/schemas/Entry'}
    Entry: {type: object, description: original}
"""


def test_every_pointer_has_the_position_of_its_key() -> None:
    document = load_contract_text(TEXT, "demo.yaml")

    assert document.position_of("/paths/~1time-entries~1{id}") == SourcePosition(5, 3)
    assert document.position_of("/paths/~1time-entries~1{id}/get/responses/200") == SourcePosition(8, 9)
    example = "/paths/~1time-entries~1{id}/get/responses/200/content/application~1json/example"
    assert document.position_of(example + "/hours") == SourcePosition(12, 48)


def test_unknown_pointer_falls_back_to_its_nearest_ancestor() -> None:
    document = load_contract_text(TEXT, "demo.yaml")

    assert document.position_of("/info/title/missing/deeper") == SourcePosition(3, 3)
    assert document.position_of("/nowhere") == SourcePosition(1, 1)


def test_values_follow_json_semantics() -> None:
    document = load_contract_text(TEXT, "demo.yaml")
    responses = document.content["paths"]["/time-entries/{id}"]["get"]["responses"]

    assert list(responses) == ["200"]  # unquoted status codes become string keys
    example = responses["200"]["content"]["application/json"]["example"]
    assert example == {"work_date": "2025-01-06", "hours": 8}  # dates stay strings


def test_dereference_follows_chains_and_layers_siblings() -> None:
    document = load_contract_text(TEXT, "demo.yaml")

    target, pointer = document.dereference(
        {"$ref": "#/components/schemas/Alias", "description": "override"}, "/somewhere"
    )

    assert pointer == "/components/schemas/Entry"
    assert target == {"type": "object", "description": "override"}


@pytest.mark.parametrize(
    ("reference", "reason"),
    [("#/components/schemas/Missing", "target does not exist"), ("other.yaml#/X", "only local references")],
)
def test_broken_references_are_refused(reference: str, reason: str) -> None:
    document = load_contract_text(TEXT, "demo.yaml")

    with pytest.raises(UnresolvableReference, match=reason):
        document.dereference({"$ref": reference}, "")
    assert document.try_dereference({"$ref": reference}, "/x") == (None, "/x")


def test_reference_loops_are_refused() -> None:
    document = ContractDocument.from_mapping({"a": {"$ref": "#/b"}, "b": {"$ref": "#/a"}})

    with pytest.raises(UnresolvableReference, match="loops"):
        document.dereference({"$ref": "#/a"}, "")


def test_a_document_must_be_a_mapping() -> None:
    with pytest.raises(ContractLoadError, match="mapping at the top level"):
        load_contract_text("- a\n- b\n", "list.yaml")


def test_pointer_tokens_are_escaped() -> None:
    pointer = join_pointer("/paths", "/a~b/{id}", "get")

    assert pointer == "/paths/~1a~0b~1{id}/get"
    assert split_pointer(pointer) == ["paths", "/a~b/{id}", "get"]
