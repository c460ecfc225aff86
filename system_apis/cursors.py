"""Opaque cursors: what a vendor needs to resume a list (page number, offset, token), hidden from callers.

A cursor may be bound to the filters of the list that issued it: replaying it with other filters would
silently mix two lists, so it is refused (400 ``invalid-cursor``) instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

import msgspec

from runtime.problems import BadRequest, FieldError

_BINDING = "_f"


def binding(filters: Mapping[str, Any]) -> str:
    """A short fingerprint of a list's filters (None values count as absent)."""
    present = {k: str(v) for k, v in sorted(filters.items()) if v is not None}
    return hashlib.sha256(msgspec.json.encode(present)).hexdigest()[:16]


def encode(state: dict[str, Any], bound_to: str | None = None) -> str:
    if bound_to is not None:
        state = {**state, _BINDING: bound_to}
    return base64.urlsafe_b64encode(msgspec.json.encode(state)).decode().rstrip("=")


def invalid(detail: str) -> BadRequest:
    return BadRequest(f"the cursor is not one this list returned: {detail}", slug="invalid-cursor",
                      errors=[FieldError(pointer="/cursor", detail=detail, location="query")])


def decode(cursor: str | None, bound_to: str | None = None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        state = msgspec.json.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        state = None
    if not isinstance(state, dict):
        raise invalid("unknown cursor")
    if bound_to is not None and state.pop(_BINDING, None) != bound_to:
        raise invalid("the cursor belongs to a list with other filters")
    return state


def number(state: dict[str, Any], name: str, default: int, minimum: int = 0) -> int:
    """An integer from a decoded cursor, refusing anything a cursor of ours never held."""
    value = state.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise invalid(f"bad {name}")
    return value
