"""The catalog's events page: each event type of the AsyncAPI contract (contracts/process/events/asyncapi.yaml)
with its subject and data fields, its full payload schema and an example."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from contracts.toolchain.asyncapi import load_asyncapi


class EventField(msgspec.Struct, frozen=True):
    name: str
    type: str
    required: bool


class EventTypeView(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    anchor: str
    summary: str
    description: str
    subject: list[EventField]
    data: list[EventField]
    schema_json: str
    example_json: str


def event_types(asyncapi_file: Path) -> list[EventTypeView]:
    """The document's messages, in the order it lists them, with every ``$ref`` resolved."""
    document = load_asyncapi(asyncapi_file)
    views = []
    for message in document["components"]["messages"].values():
        payload = _resolved(message["payload"], document)
        properties = payload.get("properties", {})
        example = (message.get("examples") or [{}])[0].get("payload")
        views.append(EventTypeView(
            type=message["name"], anchor=message["name"].replace(".", "-"), summary=message.get("summary", ""),
            description=message.get("description", ""), subject=_fields(properties.get("subject", {})),
            data=_fields(properties.get("data", {})), schema_json=json.dumps(payload, indent=2),
            example_json=json.dumps(example, indent=2) if example is not None else ""))
    return views


def _fields(schema: dict[str, Any]) -> list[EventField]:
    required = set(schema.get("required", []))
    fields = [EventField(name, _type_of(prop), name in required) for name, prop in schema.get("properties", {}).items()]
    if isinstance(schema.get("additionalProperties"), dict):  # a mapping, e.g. the exceptions' <source>_id
        value_type = _type_of(schema["additionalProperties"])
        fields += [EventField(name, value_type, True) for name in schema.get("required", [])
                   if name not in schema.get("properties", {})]
        fields.append(EventField("<source>_id", value_type, False))
    return fields


def _type_of(schema: dict[str, Any]) -> str:
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    kinds = schema.get("type", "any")
    text = " | ".join(kinds) if isinstance(kinds, list) else str(kinds)
    if schema.get("format"):
        text += f" ({schema['format']})"
    elif schema.get("pattern") == r"^-?\d+(\.\d+)?$":
        text += " (decimal)"
    if kinds == "array" and isinstance(schema.get("items"), dict):
        text = f"array of {_type_of(schema['items'])}"
    return text


def _resolved(node: Any, document: dict[str, Any]) -> Any:
    """``node`` with local ``$ref`` replaced by what they point at (the event schemas have no cycles)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = document
            for part in ref[2:].split("/"):
                target = target[part]
            return _resolved(target, document)
        return {key: _resolved(value, document) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolved(value, document) for value in node]
    return node
