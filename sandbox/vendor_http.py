"""What every sandbox vendor shares on the wire: raising an error in its own dialect, reading a JSON body."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from litestar import Request
from litestar.response import Response


class VendorError(Exception):
    """An error answered in the vendor's own shape (``body`` is already in its dialect)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


def vendor_error_response(_request: Any, exc: VendorError) -> Response[Any]:
    return Response(exc.body, status_code=exc.status)


async def json_object(request: Request[Any, Any, Any], invalid: Any) -> dict[str, Any]:
    """The request body as a JSON object; ``invalid(message)`` builds the vendor's error for anything else."""
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise invalid(f"malformed JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object")
    return body


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_date(value: Any) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None
