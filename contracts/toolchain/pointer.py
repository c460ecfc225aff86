"""RFC 6901 JSON pointers: the one way every finding and issue names a place in a document."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def escape_token(token: str | int) -> str:
    """Escape one reference token (``~`` before ``/``, as the RFC requires)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def unescape_token(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def join_pointer(base: str, *tokens: str | int) -> str:
    """``join_pointer("/paths", "/items")`` -> ``"/paths/~1items"``."""
    return base + "".join("/" + escape_token(token) for token in tokens)


def pointer_from_parts(parts: Iterable[str | int]) -> str:
    return "".join("/" + escape_token(part) for part in parts)


def split_pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ValueError(f"not a JSON pointer: {pointer!r}")
    return [unescape_token(token) for token in pointer[1:].split("/")]


def parent_pointer(pointer: str) -> str:
    return pointer.rsplit("/", 1)[0] if pointer else ""


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value at ``pointer``; raises ``LookupError`` when there is none."""
    node = document
    for token in split_pointer(pointer):
        if isinstance(node, Mapping):
            if token not in node:
                raise LookupError(f"{pointer!r}: no member {token!r}")
            node = node[token]
        elif isinstance(node, Sequence) and not isinstance(node, str):
            if not token.isdigit() or int(token) >= len(node):
                raise LookupError(f"{pointer!r}: no item {token!r}")
            node = node[int(token)]
        else:
            raise LookupError(f"{pointer!r}: cannot descend into a scalar at {token!r}")
    return node
