"""What a breaking-change rule is and what a diff reports."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum

import msgspec


class ChangeSeverity(StrEnum):
    BREAKING = "breaking"
    NON_BREAKING = "non_breaking"
    INFO = "info"


class Direction(Enum):
    """Which way data flows through a schema: what may change safely depends on it."""

    REQUEST = "request"
    RESPONSE = "response"


@dataclass(frozen=True, slots=True)
class DiffRule:
    id: str
    name: str
    severity: ChangeSeverity
    description: str


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """One difference between two versions of a contract.

    ``pointer`` is an RFC 6901 pointer into the new document, or into the old one for something removed.
    ``operations`` are the operations it affects (a shared schema can affect several); empty for changes
    to the API as a whole.
    """

    rule_id: str
    rule_name: str
    severity: ChangeSeverity
    pointer: str
    message: str
    operations: tuple[str, ...] = ()
    migration: str | None = None  # the newer contract's x-migration note at this place (set by the changelog)

    def format_text(self) -> str:
        """``BREAKING BRK-023 response-property-removed: message (GET /x) at /components/...``."""
        where = f" ({', '.join(self.operations)})" if self.operations else ""
        heading = f"{self.severity.value.upper()} {self.rule_id} {self.rule_name}"
        return f"{heading}: {self.message}{where} at {self.pointer or '/'}"
