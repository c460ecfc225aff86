"""Opaque list cursors, one style for every tier: what a list needs to resume (a keyset position, a vendor's
page number or token) as JSON, base64url without padding. Callers pass them back unread.

A cursor may be bound to the filters of the list that issued it: replaying it with other filters would
silently mix two lists. A cursor a caller tampered with, one another list gave out, or one bound to other
filters is one problem everywhere: 400 ``invalid-cursor`` on ``/cursor`` (query), never a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from runtime.problems import BadRequest, FieldError

P = TypeVar("P", bound=msgspec.Struct)

INVALID_CURSOR_SLUG = "invalid-cursor"
_BINDING = "_f"


def binding(filters: Mapping[str, Any]) -> str:
    """A short fingerprint of a list's filters (None values count as absent)."""
    present = {k: str(v) for k, v in sorted(filters.items()) if v is not None}
    return hashlib.sha256(msgspec.json.encode(present)).hexdigest()[:16]


def invalid(detail: str) -> BadRequest:
    return BadRequest(
        f"the cursor is not one this list returned: {detail}",
        slug=INVALID_CURSOR_SLUG,
        errors=[FieldError(pointer="/cursor", detail=detail, location="query")],
    )


def _pack(state: Any) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(state)).decode().rstrip("=")


def _unpack(cursor: str) -> Any:
    try:
        return msgspec.json.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise invalid("unknown cursor") from exc


def encode(state: Mapping[str, Any], bound_to: str | None = None) -> str:
    """A vendor's resume state (page, offset, token) as a cursor, optionally bound to the list's filters."""
    if bound_to is not None:
        state = {**state, _BINDING: bound_to}
    return _pack(state)


def decode(cursor: str | None, bound_to: str | None = None) -> dict[str, Any]:
    if not cursor:
        return {}
    state = _unpack(cursor)
    if not isinstance(state, dict):
        raise invalid("unknown cursor")
    if bound_to is not None and state.pop(_BINDING, None) != bound_to:
        raise invalid("the cursor belongs to a list with other filters")
    return state


def number(state: Mapping[str, Any], name: str, default: int, minimum: int = 0) -> int:
    """An integer from a decoded cursor, refusing anything a cursor of ours never held."""
    value = state.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise invalid(f"bad {name}")
    return value


def encode_position(position: msgspec.Struct) -> str:
    """A keyset position (a small struct) as a cursor."""
    return _pack(position)


def decode_position(cursor: str, position_type: type[P]) -> P:
    try:
        return msgspec.convert(_unpack(cursor), type=position_type)
    except msgspec.ValidationError as exc:
        raise invalid("unknown cursor") from exc
