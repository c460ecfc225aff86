"""A schema normalised for comparison: references followed, ``allOf`` merged, keywords sorted by role."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from contracts.toolchain.loader import ContractDocument
from contracts.toolchain.operations import as_list, as_mapping
from contracts.toolchain.pointer import join_pointer

# Bounds where a smaller value accepts less, and where a larger value does.
UPPER_BOUNDS = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")
LOWER_BOUNDS = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")
_MAX_ALL_OF_DEPTH = 16


@dataclass(frozen=True, slots=True)
class SchemaAt:
    """A raw schema and where it is written."""

    schema: Any
    pointer: str


@dataclass(slots=True)
class SchemaView:
    pointer: str
    types: frozenset[str] | None = None  # None: any type
    enum: dict[str, Any] | None = None  # canonical JSON -> value
    format: str | None = None
    properties: dict[str, SchemaAt] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)
    items: SchemaAt | None = None
    additional_properties: Any = None
    bounds: dict[str, Any] = field(default_factory=dict)
    variants: dict[str, dict[str, SchemaAt]] = field(default_factory=dict)  # oneOf/anyOf -> key -> variant
    read_only: bool = False
    write_only: bool = False


def canonical_json(value: Any) -> str:
    return msgspec.json.encode(value, order="sorted").decode()


def view_of(document: ContractDocument, schema: Any, pointer: str) -> SchemaView:
    resolved, resolved_pointer = document.try_dereference(schema, pointer)
    view = SchemaView(pointer=resolved_pointer)
    _merge(document, view, as_mapping(resolved), resolved_pointer, 0)
    return view


def _merge(document: ContractDocument, view: SchemaView, schema: Mapping[str, Any], pointer: str, depth: int) -> None:
    for index, member in enumerate(as_list(schema.get("allOf"))):
        if depth < _MAX_ALL_OF_DEPTH:
            resolved, member_pointer = document.try_dereference(member, join_pointer(pointer, "allOf", index))
            _merge(document, view, as_mapping(resolved), member_pointer, depth + 1)
    types = _types_of(schema)
    if types is not None:
        view.types = types if view.types is None else view.types & types
    if "enum" in schema or "const" in schema:
        values = [schema["const"]] if "const" in schema else as_list(schema.get("enum"))
        view.enum = {canonical_json(value): value for value in values}
    if isinstance(schema.get("format"), str):
        view.format = schema["format"]
    for name, value in as_mapping(schema.get("properties")).items():
        view.properties[name] = SchemaAt(value, join_pointer(pointer, "properties", name))
    view.required.update(name for name in as_list(schema.get("required")) if isinstance(name, str))
    if "items" in schema:
        view.items = SchemaAt(schema["items"], join_pointer(pointer, "items"))
    if "additionalProperties" in schema:
        view.additional_properties = schema["additionalProperties"]
    for keyword in (*UPPER_BOUNDS, *LOWER_BOUNDS, "pattern", "multipleOf", "uniqueItems"):
        if keyword in schema:
            view.bounds[keyword] = schema[keyword]
    for keyword in ("oneOf", "anyOf"):
        if keyword in schema:
            view.variants[keyword] = {
                _variant_key(member, index): SchemaAt(member, join_pointer(pointer, keyword, index))
                for index, member in enumerate(as_list(schema[keyword]))
            }
    view.read_only = view.read_only or schema.get("readOnly") is True
    view.write_only = view.write_only or schema.get("writeOnly") is True


def _types_of(schema: Mapping[str, Any]) -> frozenset[str] | None:
    declared = schema.get("type")
    if isinstance(declared, str):
        return frozenset({declared})
    if isinstance(declared, list):
        return frozenset(item for item in declared if isinstance(item, str))
    return None


def _variant_key(member: Any, index: int) -> str:
    """Variants that reference a component match by its name across versions; inline ones by position."""
    reference = as_mapping(member).get("$ref")
    return reference.rsplit("/", 1)[-1] if isinstance(reference, str) else f"#{index}"
