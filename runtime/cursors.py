"""Opaque list cursors for keyset pagination: a small position struct, JSON, base64url without padding.

A cursor a caller tampered with, or one another list gave out, is a 400 problem on ``/cursor``, never a 500.
(The system tier's cursors in ``system_apis/cursors.py`` also bind the list's filters; these carry only a position.)
"""

from __future__ import annotations

import base64
from typing import TypeVar

import msgspec

from runtime.problems import BadRequest, FieldError

P = TypeVar("P", bound=msgspec.Struct)


def encode_position(position: msgspec.Struct) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(position)).decode().rstrip("=")


def decode_position(cursor: str, position_type: type[P]) -> P:
    try:
        return msgspec.json.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)), type=position_type)
    except (ValueError, msgspec.DecodeError) as exc:  # binascii.Error is a ValueError
        raise BadRequest("the cursor is not one this API gave out", slug="validation-error",
                         errors=[FieldError(pointer="/cursor", detail="unknown cursor", location="query")]) from exc
