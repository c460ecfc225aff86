"""Request parameters every tier declares the same way (Litestar's explicit style): declared once, here.

Cursors are declared with the cursor rule (runtime/cursors.py).
"""

from __future__ import annotations

from typing import Annotated

from litestar.params import HeaderParameter, QueryParameter

from runtime.idempotency import KEY_PATTERN

IdempotencyKey = Annotated[
    str | None, HeaderParameter(name="Idempotency-Key", required=False, pattern=KEY_PATTERN.pattern)
]
"""The header a write route takes: ``idempotency_key: IdempotencyKey = None``; 1..200 visible ASCII characters,
else a 400 validation problem pointing at the header."""

RequiredIdempotencyKey = Annotated[
    str, HeaderParameter(name="Idempotency-Key", required=True, pattern=KEY_PATTERN.pattern)
]
"""The same header where a write without it is refused (400): money that must never move twice."""

Limit = Annotated[int, QueryParameter(ge=1, le=200)]
"""A page size: ``limit: Limit = 50``."""
