"""Load a contract from YAML, remembering where every value came from, and resolve local ``$ref``s.

Findings must point at ``file:line:col``, so the loader builds the JSON value itself from PyYAML's node
tree and records the position of every JSON pointer (the key's position for mapping members, the item's
for sequence items). Values follow JSON semantics: dates stay strings and keys are strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from contracts.toolchain.pointer import escape_token, parent_pointer, resolve_pointer

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _JsonCompatibleLoader(yaml.SafeLoader):
    """SafeLoader without the timestamp resolver: ``2025-01-06`` in an example is a JSON string."""


_JsonCompatibleLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class ContractLoadError(Exception):
    """The file cannot be read as a contract (YAML syntax, duplicate keys, not a mapping)."""

    def __init__(self, source: str, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(f"{source}:{line}:{column}: {message}")
        self.source = source
        self.message = message
        self.line = line
        self.column = column


class UnresolvableReference(LookupError):
    """A ``$ref`` that is not local (``#/...``) or points nowhere."""

    def __init__(self, reference: str, reason: str) -> None:
        super().__init__(f"cannot resolve $ref {reference!r}: {reason}")
        self.reference = reference
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SourcePosition:
    line: int
    column: int


_START = SourcePosition(1, 1)


@dataclass(frozen=True, slots=True)
class SourceMap:
    positions: Mapping[str, SourcePosition] = field(default_factory=dict)

    def position_of(self, pointer: str) -> SourcePosition:
        """Position of ``pointer``, or of its nearest ancestor that was in the file."""
        while True:
            position = self.positions.get(pointer)
            if position is not None:
                return position
            if not pointer:
                return _START
            pointer = parent_pointer(pointer)


@dataclass(frozen=True, slots=True)
class ContractDocument:
    """A loaded OpenAPI document: its content, where it came from, and the position of every value."""

    source: str
    content: dict[str, Any]
    source_map: SourceMap = field(default_factory=SourceMap)

    @classmethod
    def from_mapping(cls, content: Mapping[str, Any], source: str = "<memory>") -> ContractDocument:
        return cls(source=source, content=dict(content))

    def position_of(self, pointer: str) -> SourcePosition:
        return self.source_map.position_of(pointer)

    def lookup(self, pointer: str) -> Any:
        return resolve_pointer(self.content, pointer)

    def resolve_reference(self, reference: str) -> tuple[Any, str]:
        """Target value and pointer of a local ``$ref`` such as ``#/components/schemas/Problem``."""
        if not reference.startswith("#"):
            raise UnresolvableReference(reference, "only local references (#/...) are allowed in contracts")
        pointer = reference[1:]
        try:
            return self.lookup(pointer), pointer
        except (LookupError, ValueError) as error:
            raise UnresolvableReference(reference, "target does not exist") from error

    def dereference(self, node: Any, pointer: str) -> tuple[Any, str]:
        """Follow a chain of ``$ref``s from ``node``; returns the target and its pointer.

        Sibling keywords next to a ``$ref`` (allowed in OpenAPI 3.1) are layered over the target, which
        is what a reader of the contract sees. Raises ``UnresolvableReference`` on a dangling or cyclic chain.
        """
        seen: set[str] = set()
        siblings: dict[str, Any] = {}
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
            reference = node["$ref"]
            if reference in seen:
                raise UnresolvableReference(reference, "reference chain loops on itself")
            seen.add(reference)
            siblings = {**{k: v for k, v in node.items() if k != "$ref"}, **siblings}
            node, pointer = self.resolve_reference(reference)
        if siblings and isinstance(node, Mapping):
            node = {**node, **siblings}
        return node, pointer

    def try_dereference(self, node: Any, pointer: str) -> tuple[Any, str]:
        """Like ``dereference`` but yields ``(None, pointer)`` for a broken reference.

        Rules use this so that one dangling ``$ref`` is reported once (by its own rule) instead of
        crashing every check that walks past it.
        """
        try:
            return self.dereference(node, pointer)
        except UnresolvableReference:
            return None, pointer


def load_contract(path: Path, source: str | None = None) -> ContractDocument:
    """Load the contract at ``path``; ``source`` is the name findings print (defaults to the path)."""
    name = source if source is not None else str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ContractLoadError(name, f"cannot read file: {error.strerror or error}") from error
    return load_contract_text(text, name)


def load_contract_text(text: str, source: str) -> ContractDocument:
    """Load a contract from YAML (or JSON) text; ``source`` names it in findings."""
    loader = _JsonCompatibleLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise ContractLoadError(source, "the document is empty")
        positions: dict[str, SourcePosition] = {"": _position(root)}
        content = _NodeReader(loader, source, positions).read(root, "")
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise ContractLoadError(source, f"invalid YAML: {error.problem or error}", line, column) from error
    except yaml.YAMLError as error:
        raise ContractLoadError(source, f"invalid YAML: {error}") from error
    finally:
        loader.dispose()
    if not isinstance(content, dict):
        raise ContractLoadError(source, "a contract must be a mapping at the top level")
    return ContractDocument(source=source, content=content, source_map=SourceMap(positions))


def _position(node: Node) -> SourcePosition:
    return SourcePosition(node.start_mark.line + 1, node.start_mark.column + 1)


class _NodeReader:
    """Turns a PyYAML node tree into JSON values while filling the pointer -> position map."""

    def __init__(self, loader: _JsonCompatibleLoader, source: str, positions: dict[str, SourcePosition]):
        self._loader = loader
        self._source = source
        self._positions = positions
        self._in_progress: set[int] = set()

    def read(self, node: Node, pointer: str) -> Any:
        if isinstance(node, ScalarNode):
            return self._loader.construct_object(node, deep=True)
        if id(node) in self._in_progress:
            position = _position(node)
            raise ContractLoadError(self._source, "recursive YAML alias", position.line, position.column)
        self._in_progress.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._read_mapping(node, pointer)
            if isinstance(node, SequenceNode):
                return self._read_sequence(node, pointer)
        finally:
            self._in_progress.discard(id(node))
        raise ContractLoadError(self._source, f"unsupported YAML node {type(node).__name__}")

    def _read_mapping(self, node: MappingNode, pointer: str) -> dict[str, Any]:
        self._loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._read_key(key_node)
            position = _position(key_node)
            if key in result:
                raise ContractLoadError(self._source, f"duplicate key {key!r}", position.line, position.column)
            child = pointer + "/" + escape_token(key)
            self._positions[child] = position
            result[key] = self.read(value_node, child)
        return result

    def _read_sequence(self, node: SequenceNode, pointer: str) -> list[Any]:
        items: list[Any] = []
        for index, item_node in enumerate(node.value):
            child = f"{pointer}/{index}"
            self._positions[child] = _position(item_node)
            items.append(self.read(item_node, child))
        return items

    def _read_key(self, node: Node) -> str:
        key = self._loader.construct_object(node, deep=True) if isinstance(node, ScalarNode) else None
        # Unquoted status codes (200:) load as ints; JSON keys are strings.
        if isinstance(key, int) and not isinstance(key, bool):
            return str(key)
        if isinstance(key, str):
            return key
        position = _position(node)
        raise ContractLoadError(
            self._source, "mapping keys must be strings or integers", position.line, position.column
        )
