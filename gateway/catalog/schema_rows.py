"""A contract schema as the rows of a reference table: one row per field, nested fields indented under their
parent, every ``$ref`` followed and ``allOf`` merged (the same normalised view the contract diff compares)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgspec

from contracts.toolchain.diff.schema_view import LOWER_BOUNDS, UPPER_BOUNDS, SchemaView, view_of
from contracts.toolchain.loader import ContractDocument
from contracts.toolchain.operations import as_mapping

# The pattern the contracts give decimal strings (money, hours): shown as what it means, not as a regex.
DECIMAL_PATTERN = r"^-?\d+(\.\d+)?$"
_MAX_DEPTH = 8
_LIMIT_LABELS = {
    "minLength": "min length",
    "maxLength": "max length",
    "minimum": "≥",
    "maximum": "≤",
    "exclusiveMinimum": ">",
    "exclusiveMaximum": "<",
    "minItems": "min items",
    "maxItems": "max items",
    "minProperties": "min properties",
    "maxProperties": "max properties",
    "multipleOf": "multiple of",
    "uniqueItems": "unique items",
}


class SchemaRow(msgspec.Struct, frozen=True, kw_only=True):
    depth: int  # 0: a field of the top-level object; 1: a field inside it, ...
    name: str
    type: str
    required: bool
    nullable: bool = False
    enum: tuple[str, ...] = ()
    limits: tuple[str, ...] = ()
    pattern: str | None = None
    default: str | None = None
    description: str = ""
    example: str | None = None


def schema_rows(document: ContractDocument, schema: Any, pointer: str = "") -> list[SchemaRow]:
    """The rows of ``schema``: its properties (or, for an array or a scalar, one row for the value itself)."""
    rows: list[SchemaRow] = []
    view = _view(document, schema, pointer)[0]
    if view.properties:
        _properties(document, view, 0, rows, frozenset({view.pointer}))
    else:
        _field(document, "(body)", schema, pointer, True, 0, rows, frozenset())
    return rows


def _view(document: ContractDocument, schema: Any, pointer: str) -> tuple[SchemaView, Mapping[str, Any]]:
    resolved, _ = document.try_dereference(schema, pointer)
    return view_of(document, schema, pointer), as_mapping(resolved)


def _properties(
    document: ContractDocument, view: SchemaView, depth: int, rows: list[SchemaRow], seen: frozenset[str]
) -> None:
    for name, at in view.properties.items():
        _field(document, name, at.schema, at.pointer, name in view.required, depth, rows, seen)


def _field(
    document: ContractDocument,
    name: str,
    schema: Any,
    pointer: str,
    required: bool,
    depth: int,
    rows: list[SchemaRow],
    seen: frozenset[str],
) -> None:
    view, raw = _view(document, schema, pointer)
    item_view = _view(document, view.items.schema, view.items.pointer)[0] if view.items is not None else None
    rows.append(
        SchemaRow(
            depth=depth,
            name=name,
            type=type_text(view, raw, item_view),
            required=required,
            nullable=view.types is not None and "null" in view.types,
            enum=tuple(_value_text(value) for value in (view.enum or {}).values() if value is not None),
            limits=_limits(view),
            pattern=_pattern(view),
            default=_optional_text(raw, "default"),
            description=str(raw.get("description") or "").strip(),
            example=_example(raw),
        )
    )
    if depth >= _MAX_DEPTH or view.pointer in seen:
        return  # a recursive schema is shown once, at its first level
    nested = seen | {view.pointer}
    if view.properties:
        _properties(document, view, depth + 1, rows, nested)
    elif item_view is not None and item_view.properties and item_view.pointer not in seen:
        _properties(document, item_view, depth + 1, rows, nested | {item_view.pointer})
    for keyword, variants in view.variants.items():
        for key, variant in variants.items():
            label = f"{'one' if keyword == 'oneOf' else 'any'} of: {key.lstrip('#') if key.startswith('#') else key}"
            variant_view, variant_raw = _view(document, variant.schema, variant.pointer)
            if variant_view.types == frozenset({"null"}):
                continue  # shown as "nullable" on the field itself
            rows.append(
                SchemaRow(
                    depth=depth + 1,
                    name=label,
                    type=type_text(variant_view, variant_raw, None),
                    required=False,
                    description=str(variant_raw.get("description") or "").strip(),
                )
            )
            if variant_view.properties and variant_view.pointer not in seen:
                _properties(document, variant_view, depth + 2, rows, nested | {variant_view.pointer})


def type_text(view: SchemaView, raw: Mapping[str, Any], items: SchemaView | None) -> str:
    """``string (date)``, ``decimal string``, ``array of object``, ``integer``; ``null`` is shown apart."""
    if view.types is None:
        kinds = ["object"] if view.properties else (["one of"] if view.variants else ["any"])
    else:
        kinds = sorted(kind for kind in view.types if kind != "null") or ["null"]
    text = " | ".join(kinds)
    if view.format:
        text += f" ({view.format})"
    elif view.bounds.get("pattern") == DECIMAL_PATTERN:
        text = "decimal string"
    if "array" in kinds and items is not None:
        text = f"array of {type_text(items, {}, None)}"
    if "const" in raw:
        text += f" = {_value_text(raw['const'])}"
    return text


def _limits(view: SchemaView) -> tuple[str, ...]:
    found = []
    for keyword in (*LOWER_BOUNDS, *UPPER_BOUNDS, "multipleOf", "uniqueItems"):
        if keyword in view.bounds and view.bounds[keyword] is not False:
            value = view.bounds[keyword]
            found.append(_LIMIT_LABELS[keyword] if value is True else f"{_LIMIT_LABELS[keyword]} {value}")
    return tuple(found)


def _pattern(view: SchemaView) -> str | None:
    pattern = view.bounds.get("pattern")
    return str(pattern) if pattern is not None and pattern != DECIMAL_PATTERN else None


def _example(raw: Mapping[str, Any]) -> str | None:
    if "example" in raw:
        return _value_text(raw["example"])
    examples = raw.get("examples")
    return _value_text(examples[0]) if isinstance(examples, list) and examples else None


def _optional_text(raw: Mapping[str, Any], key: str) -> str | None:
    return _value_text(raw[key]) if key in raw else None


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
