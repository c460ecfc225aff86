"""Every schema written in a document, where it is written, without following ``$ref``s.

Rules about how schemas are *written* (names, types, examples) walk definitions in place: a component is
visited once where it is defined, so a violation is reported once, at its own line.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from contracts.toolchain.loader import ContractDocument
from contracts.toolchain.pointer import join_pointer

_SINGLE_SCHEMA_KEYWORDS = (
    "items",
    "additionalProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
    "contentSchema",
)
_SCHEMA_LIST_KEYWORDS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_MAP_KEYWORDS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
# Values under these keys are data or vendor extensions, never schemas to lint.
_DATA_KEYS = frozenset({"example", "examples", "default", "enum", "const"})


@dataclass(frozen=True, slots=True)
class SchemaSite:
    schema: Mapping[str, Any]
    pointer: str


@dataclass(frozen=True, slots=True)
class PropertySite:
    name: str
    schema: Any
    pointer: str
    owner: Mapping[str, Any]


def iter_schema_holders(document: ContractDocument) -> Iterator[tuple[Mapping[str, Any], str]]:
    """Parameter, header and media type objects: whatever carries a ``schema`` (and maybe examples)."""
    yield from _holders_in(document.content, "")


def iter_schema_roots(document: ContractDocument) -> Iterator[SchemaSite]:
    """Schemas that start somewhere in the OpenAPI structure (``schema:`` members, components)."""
    for name, schema in _component_schemas(document):
        yield SchemaSite(schema, join_pointer("/components/schemas", name))
    for holder, pointer in iter_schema_holders(document):
        if isinstance(holder["schema"], Mapping):
            yield SchemaSite(holder["schema"], join_pointer(pointer, "schema"))


def _component_schemas(document: ContractDocument) -> Iterator[tuple[str, Mapping[str, Any]]]:
    components = document.content.get("components")
    schemas = components.get("schemas") if isinstance(components, Mapping) else None
    if isinstance(schemas, Mapping):
        for name, schema in schemas.items():
            if isinstance(schema, Mapping):
                yield name, schema


def _holders_in(node: Any, pointer: str) -> Iterator[tuple[Mapping[str, Any], str]]:
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _holders_in(item, f"{pointer}/{index}")
        return
    if not isinstance(node, Mapping) or pointer == "/components/schemas":
        return
    if "schema" in node:
        yield node, pointer
    for key, value in node.items():
        if key not in _DATA_KEYS and key != "schema" and not key.startswith("x-"):
            yield from _holders_in(value, join_pointer(pointer, key))


def iter_subschemas(schema: Mapping[str, Any], pointer: str) -> Iterator[SchemaSite]:
    """``schema`` and every schema nested in it, depth first."""
    yield SchemaSite(schema, pointer)
    for keyword in _SINGLE_SCHEMA_KEYWORDS:
        value = schema.get(keyword)
        if isinstance(value, Mapping):
            yield from iter_subschemas(value, join_pointer(pointer, keyword))
    for keyword in _SCHEMA_LIST_KEYWORDS:
        value = schema.get(keyword)
        if isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    yield from iter_subschemas(item, join_pointer(pointer, keyword, index))
    for keyword in _SCHEMA_MAP_KEYWORDS:
        value = schema.get(keyword)
        if isinstance(value, Mapping):
            for name, item in value.items():
                if isinstance(item, Mapping):
                    yield from iter_subschemas(item, join_pointer(pointer, keyword, name))


def iter_schemas(document: ContractDocument) -> Iterator[SchemaSite]:
    for root in iter_schema_roots(document):
        yield from iter_subschemas(root.schema, root.pointer)


def iter_properties(document: ContractDocument) -> Iterator[PropertySite]:
    """Every ``properties`` member of every schema, with the pointer of its name."""
    for site in iter_schemas(document):
        properties = site.schema.get("properties")
        if isinstance(properties, Mapping):
            for name, schema in properties.items():
                yield PropertySite(name, schema, join_pointer(site.pointer, "properties", name), site.schema)


def schema_types(schema: Any) -> frozenset[str]:
    """The declared JSON types of a schema (``type`` as a string or a list); empty when undeclared."""
    if not isinstance(schema, Mapping):
        return frozenset()
    declared = schema.get("type")
    if isinstance(declared, str):
        return frozenset({declared})
    if isinstance(declared, list):
        return frozenset(item for item in declared if isinstance(item, str))
    return frozenset()
