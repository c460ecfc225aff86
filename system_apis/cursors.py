"""Opaque cursors: what a vendor needs to resume a list (page number, offset, token), hidden from callers."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec

from runtime.problems import BadRequest, FieldError


def encode(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(state)).decode().rstrip("=")


def decode(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        state = msgspec.json.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        state = None
    if not isinstance(state, dict):
        raise BadRequest("the cursor is not one this API returned", slug="invalid-cursor",
                         errors=[FieldError(pointer="/cursor", detail="unknown cursor", location="query")])
    return state
