"""Weak ETags over the encoded body, so a mobile client on a slow link can revalidate instead of re-download."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from litestar import Request, Response

_encoder = msgspec.json.Encoder()


def respond_with_etag(request: Request[Any, Any, Any], payload: Any) -> Response[bytes]:
    body = _encoder.encode(payload)
    etag = 'W/"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    # Read off the raw header list: ``request.headers`` builds a multi-dict of every header for this one look-up.
    if_none_match = ", ".join(value.decode("latin-1") for name, value in request.scope["headers"]
                              if name == b"if-none-match")
    if etag in {tag.strip() for tag in if_none_match.split(",")} or if_none_match.strip() == "*":
        return Response(content=b"", status_code=304, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)
