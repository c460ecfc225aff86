"""Vendor refusals in canonical terms: a vendor's 4xx never reaches a caller with the vendor's field names.

Each connector knows its dialect's error shape and passes (vendor field, message) pairs plus its map from
vendor fields to canonical JSON pointers; this turns them into the one problem a caller expects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from runtime.problems import Conflict, FieldError, NotFound, ProblemError, Unprocessable


def canonical_text(text: str, field_map: Mapping[str, str]) -> str:
    """Replace vendor field names in a vendor message with the canonical field they map to."""
    for vendor_field, pointer in sorted(field_map.items(), key=lambda item: -len(item[0])):
        if pointer:
            text = re.sub(rf"\b{re.escape(vendor_field)}\b", pointer.rsplit("/", 1)[-1], text)
    return text


def validation_problem(vendor: str, fields: Iterable[tuple[str | None, str]],
                       field_map: Mapping[str, str]) -> Unprocessable:
    errors = [FieldError(pointer=field_map.get(field or "", ""), detail=canonical_text(message, field_map))
              for field, message in fields]
    return Unprocessable(
        f"{vendor} refused the request: " + "; ".join(
            f"{e.pointer or '(body)'} {e.detail}" for e in errors) if errors else f"{vendor} refused the request",
        slug="validation-failed", errors=errors or None, downstream=vendor,
    )


def vendor_problem(vendor: str, status: int, message: str, fields: Iterable[tuple[str | None, str]],
                   field_map: Mapping[str, str], *, what: str = "record") -> ProblemError:
    """The canonical problem for a vendor 4xx (5xx, timeouts and outages are mapped by ``runtime.downstream``; a
    vendor's limits, 429 included, by ``system_apis.vendor_calls``)."""
    if status == 404:
        return NotFound(f"no such {what}", slug="unknown-id", downstream=vendor)
    if status == 409:
        return Conflict(f"{vendor} refused the change: {canonical_text(message, field_map)}", downstream=vendor)
    if status in (400, 422):
        return validation_problem(vendor, fields, field_map)
    if status == 401:
        return credentials_refused(vendor, status, message)
    # 403/405 from a vendor mean our connector or its credentials are wrong: the vendor failed us.
    return ProblemError(f"{vendor} failed: it answered {status}", status=502, slug="downstream-error",
                        downstream=vendor)


def credentials_refused(vendor: str, status: int, message: str) -> ProblemError:
    """The vendor refused the connector's credentials (none, wrong, or a token it no longer accepts)."""
    return ProblemError(f"{vendor} refused this system tier's credentials ({status}: {message[:200]}); check the "
                        "connector's client id and secret or key", status=502, slug="downstream-error",
                        downstream=vendor)
