"""What every process does with caller input before it reaches a response header or a JSON parser.

Headers: a decoded path or query value may hold CR, LF, NUL or text beyond Latin-1. Written into a header it
either splits the response or (with uvicorn) makes the server drop the connection, which the gateway would see
as a failing upstream. Every header value built from input goes through :func:`uri_path` (a URI such as a
``Link`` or ``Location`` target) or :func:`header_value` (anything else).

JSON depth: schema validators and parsers recurse, so a body nested a few hundred levels deep (a few hundred
bytes) ends in a RecursionError. :func:`json_depth_exceeds` finds such a body in one pass over its bytes, before
anything parses it; most bodies are cleared by counting brackets alone.
"""

from __future__ import annotations

import re
from array import array
from itertools import accumulate
from urllib.parse import quote

# RFC 3986 pchar plus "/": what stays unescaped when a decoded path is written back as a URI.
PATH_SAFE = "/:@!$&'()*+,;=~"

DEFAULT_MAX_JSON_DEPTH = 64
# The request validator (jsonschema-rs) refuses documents nested about 255 levels deep with a ValueError,
# and msgspec raises RecursionError near 1,000: a configured limit must stay below both.
MAX_JSON_DEPTH_CEILING = 200

# Anything but visible ASCII and space: controls (CR, LF, NUL, DEL ...) and every non-ASCII character.
_UNSAFE_IN_HEADER = re.compile(r"[^\x20-\x7e]")
_UNSAFE_HEADER_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# Kept for the depth check: quotes and brackets, with "{" and "}" read as "[" and "]"; the rest is deleted.
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_QUOTES_OR_BRACKETS = bytes(b for b in range(256) if b not in b'"[]{}')
# "[" as +1 and "]" as -1 (0xff read as a signed byte), for a running sum.
_AS_STEPS = bytes.maketrans(b"[]", b"\x01\xff")
_PEEL_UP_TO = 4096


def uri_path(decoded_path: str) -> str:
    """A decoded path as a URI path: percent-encoded, so it holds nothing a header (or ``<...>``) cannot."""
    return quote(decoded_path, safe=PATH_SAFE)


def header_value(text: str) -> bytes:
    """``text`` as a header value that cannot end or split a header: controls and non-ASCII are percent-encoded."""
    return _UNSAFE_IN_HEADER.sub(lambda m: quote(m.group(0), safe=""), text).encode("ascii")


def unsafe_header_value(value: bytes) -> bool:
    """True when ``value`` holds a byte no HTTP/1.1 header value may carry (CR, LF, NUL, other controls)."""
    return _UNSAFE_HEADER_BYTES.search(value) is not None


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """True when the JSON text ``body`` nests arrays and objects more than ``limit`` levels deep.

    Every step is a C-speed bytes operation (no parse, no loop per byte in Python): a body with at most ``limit``
    brackets cannot be deeper (the common case ends there); otherwise escapes and strings are dropped so only
    structural brackets remain, and each pass of ``replace("[]", "")`` peels one level off every innermost
    container. Malformed text is not judged here: the parser that runs next refuses it.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    if b"\\" in body:  # drop escaped backslashes, then escaped quotes: no quote left is escaped
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Two adjacent quotes hold no bracket between them; dropping them keeps every bracket's side of its string.
    kept = body.translate(_AS_SQUARE, _NOT_QUOTES_OR_BRACKETS).replace(b'""', b"")
    if b'"' in kept:  # some strings hold brackets: keep what lies outside strings
        kept = b"".join(kept.split(b'"')[::2])
    too_deep = b"[" * (limit + 1)
    if len(kept) > _PEEL_UP_TO:  # peeling costs a pass per level: sum the depth once instead (linear, in C)
        return too_deep in kept or max(accumulate(array("b", kept.translate(_AS_STEPS)))) > limit
    peeled = 0
    while kept:
        if peeled == limit or too_deep in kept:
            return True
        shorter = kept.replace(b"[]", b"")
        if len(shorter) == len(kept):  # unbalanced (malformed): what is left opens without closing
            return peeled + kept.count(b"[") > limit
        kept, peeled = shorter, peeled + 1
    return False
