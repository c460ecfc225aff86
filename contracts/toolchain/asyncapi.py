"""AsyncAPI 3.0 event contracts (``contracts/<layer>/<api>/asyncapi.yaml``): load, check, validate events.

The checks are the ones this project relies on, not a full AsyncAPI validator: the document is AsyncAPI 3.0,
every local ``$ref`` resolves, every schema is a valid JSON Schema (2020-12), every message has a name and a
payload and its examples match it, and the channels and operations list every message. :class:`EventSchemas`
validates an event (the JSON a producer published) against its type's message payload, and
:func:`emitted_event_types` finds the event types a package's code records, for the lint that each is documented.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

from contracts import CONTRACTS_DIR
from contracts.toolchain.pointer import pointer_from_parts
from contracts.toolchain.references import SpecProblem

EVENTS_ASYNCAPI = CONTRACTS_DIR / "process" / "events" / "asyncapi.yaml"
# The calls that write an event to the outbox, and the position of their event type argument.
RECORDING_CALLS = {"record_event": 1, "record_events": 1}


class AsyncApiLoadError(ValueError):
    pass


def load_asyncapi(path: Path = EVENTS_ASYNCAPI) -> dict[str, Any]:
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise AsyncApiLoadError(f"{path}: {error}") from error
    if not isinstance(content, dict):
        raise AsyncApiLoadError(f"{path}: not a YAML mapping")
    return content


def message_names(document: dict[str, Any]) -> dict[str, str]:
    """Event type (the message ``name``) -> its key under ``components/messages``."""
    messages = document.get("components", {}).get("messages", {}) or {}
    return {message["name"]: key for key, message in messages.items()
            if isinstance(message, dict) and isinstance(message.get("name"), str)}


def check_asyncapi(document: dict[str, Any]) -> list[SpecProblem]:
    """Why ``document`` is not a usable AsyncAPI 3.0 event contract; empty when it is."""
    problems: list[SpecProblem] = []
    version = document.get("asyncapi")
    if not (isinstance(version, str) and version.startswith("3.0.")):
        return [SpecProblem("/asyncapi", f"event contracts are AsyncAPI 3.0 documents, got {version!r}", "AsyncAPI")]
    for pointer, target in _local_refs(document, ()):
        if _resolve(document, target) is None:
            problems.append(SpecProblem(pointer, f"$ref {target!r} does not resolve", "AsyncAPI"))
    if problems:
        return problems
    components = document.get("components", {})
    for name, schema in (components.get("schemas") or {}).items():
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as error:
            problems.append(SpecProblem(pointer_from_parts(("components", "schemas", name, *error.path)),
                                        f"not a valid JSON Schema: {error.message}", "AsyncAPI"))
    messages = components.get("messages") or {}
    names: dict[str, str] = {}
    for key, message in messages.items():
        where = pointer_from_parts(("components", "messages", key))
        if not isinstance(message.get("name"), str) or "payload" not in message:
            problems.append(SpecProblem(where, "a message needs a name (the event type) and a payload", "AsyncAPI"))
            continue
        if message["name"] in names:
            problems.append(SpecProblem(where, f"event type {message['name']!r} is documented twice", "AsyncAPI"))
        names[message["name"]] = key
        if problems:
            continue
        validator = _validator(document, message["payload"])
        for index, example in enumerate(message.get("examples") or []):
            for mismatch in validator.iter_errors(example.get("payload")):
                problems.append(SpecProblem(f"{where}/examples/{index}/payload{pointer_from_parts(mismatch.path)}",
                                            f"the example does not match the payload: {mismatch.message}",
                                            "AsyncAPI"))
    listed = {ref["$ref"].rsplit("/", 1)[-1] for channel in (document.get("channels") or {}).values()
              for ref in (channel.get("messages") or {}).values() if isinstance(ref, dict) and "$ref" in ref}
    for key in sorted(set(messages) - listed):
        problems.append(SpecProblem(pointer_from_parts(("components", "messages", key)),
                                    "the message is on no channel", "AsyncAPI"))
    return problems


class EventSchemas:
    """Validates published events (as JSON) against the payload schema of their type's message."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self._validators = {name: _validator(document, document["components"]["messages"][key]["payload"])
                            for name, key in message_names(document).items()}

    @property
    def types(self) -> frozenset[str]:
        return frozenset(self._validators)

    def errors(self, event: Any) -> list[str]:
        """``"<pointer>: <message>"`` for each way ``event`` breaks its schema; empty when it conforms."""
        event_type = event.get("type") if isinstance(event, dict) else None
        validator = self._validators.get(event_type) if isinstance(event_type, str) else None
        if validator is None:
            return [f"/type: {event_type!r} is not a documented event type"]
        return [f"{pointer_from_parts(error.path) or '/'}: {error.message}"
                for error in sorted(validator.iter_errors(event), key=lambda e: list(map(str, e.path)))]


def emitted_event_types(package: Path) -> dict[str, list[str]]:
    """Event types recorded by the code under ``package`` (string literals passed to ``record_event(s)``),
    each with where (``file:line``)."""
    found: dict[str, list[str]] = {}
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            index = RECORDING_CALLS.get(name or "")
            if index is None or len(node.args) <= index:
                continue
            for literal in _string_literals(node.args[index]):
                found.setdefault(literal, []).append(f"{path}:{node.lineno}")
    return found


def _string_literals(node: ast.expr) -> Iterator[str]:
    """The string constants an argument can be (``"a"``, or ``"a" if cond else "b"``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.IfExp):
        yield from _string_literals(node.body)
        yield from _string_literals(node.orelse)


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    # Local refs ("#/components/...") resolve against the whole document.
    root = {**schema, "components": document.get("components", {})}
    return Draft202012Validator(root, format_checker=FormatChecker())


def _local_refs(node: Any, path: tuple[str | int, ...]) -> Iterable[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield pointer_from_parts(path), value
            else:
                yield from _local_refs(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _local_refs(value, (*path, index))


def _resolve(document: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        return None  # only local references: a contract stands on its own
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
