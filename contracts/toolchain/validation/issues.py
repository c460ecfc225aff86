"""What runtime validation reports: one issue per bad field, ready for a problem+json ``errors`` list."""

from __future__ import annotations

from typing import Literal

import msgspec

IssueLocation = Literal["path", "query", "header", "body", "status"]


class ValidationIssue(msgspec.Struct, frozen=True):
    """One way a request (or response) breaks the contract.

    ``location`` names the part of the message; ``pointer`` is an RFC 6901 pointer into that part: the
    parameter name for path/query/header (``/limit``, ``/status/1`` for an array item), the field for a
    JSON body (``/lines/0/hours``, ``""`` for the body as a whole). ``code`` is a stable machine-readable
    reason the gateway can map to a status (``unsupported_media_type`` -> 415, anything else -> 400/422).
    """

    location: IssueLocation
    pointer: str
    detail: str
    code: str = "schema"
