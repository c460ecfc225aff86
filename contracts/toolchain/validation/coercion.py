"""Turn parameter strings into the JSON values their schemas describe, before schema validation.

Query strings, path segments and headers are text. ``?limit=20`` must reach the schema as the integer 20,
``?billable=true`` as a boolean. A value that does not parse is passed on unchanged, so the schema reports
it with its usual message (``'abc' is not of type 'integer'``) at the parameter's pointer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from contracts.toolchain.loader import ContractDocument

Coercer = Callable[[str], Any]

_INTEGER = re.compile(r"^-?(0|[1-9][0-9]*)$")
_NUMBER = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$")
_TYPE_ORDER = ("integer", "number", "boolean", "null")
_MAX_DEPTH = 16


def _as_integer(text: str) -> Any:
    return int(text) if _INTEGER.match(text) else text


def _as_number(text: str) -> Any:
    if _INTEGER.match(text):
        return int(text)
    return float(text) if _NUMBER.match(text) else text


def _as_boolean(text: str) -> Any:
    return {"true": True, "false": False}.get(text, text)


def _as_null(text: str) -> Any:
    return None if text in ("", "null") else text


def _unchanged(text: str) -> Any:
    return text


_PARSERS: dict[str, Coercer] = {
    "integer": _as_integer,
    "number": _as_number,
    "boolean": _as_boolean,
    "null": _as_null,
}


def declared_types(document: ContractDocument, schema: Any, depth: int = 0) -> list[str]:
    """The JSON types a schema admits, following ``$ref`` and ``allOf``/``anyOf``/``oneOf`` branches."""
    resolved, _ = document.try_dereference(schema, "")
    if not isinstance(resolved, Mapping) or depth > _MAX_DEPTH:
        return []
    declared = resolved.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [item for item in declared if isinstance(item, str)]
    if "const" in resolved or "enum" in resolved:
        values = [resolved["const"]] if "const" in resolved else list(resolved.get("enum") or [])
        return sorted({_json_type(value) for value in values})
    types: list[str] = []
    for keyword in ("allOf", "anyOf", "oneOf"):
        for branch in resolved.get(keyword) or []:
            types.extend(t for t in declared_types(document, branch, depth + 1) if t not in types)
    return types


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string" if isinstance(value, str) else "object"


def scalar_coercer(types: list[str]) -> Coercer:
    """A parser for one text value: tries the non-string types in a fixed order, else keeps the text."""
    # When a string is acceptable, an empty value is the empty string, not null.
    order = [name for name in _TYPE_ORDER if not (name == "null" and "string" in types)]
    parsers = [_PARSERS[name] for name in order if name in types]
    if not parsers:
        return _unchanged
    if len(parsers) == 1 and "string" not in types:
        return parsers[0]

    def coerce(text: str) -> Any:
        for parse in parsers:
            value = parse(text)
            if value is not text:
                return value
        return text

    return coerce
