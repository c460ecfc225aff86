"""A human changelog between two versions of a contract: changes grouped by severity, then by operation.

Migration notes come from the newer contract: ``x-migration`` on ``info`` (the whole move), on an operation
(what its callers change) and on a schema or property (next to the change at that place).
The gateway catalog renders it between majors (v1 -> v2) and between commits of one major.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from contracts.toolchain.diff.document import diff_documents
from contracts.toolchain.diff.model import Change, ChangeSeverity
from contracts.toolchain.loader import ContractDocument
from contracts.toolchain.operations import as_mapping, iter_operations

SECTION_TITLES: dict[ChangeSeverity, str] = {
    ChangeSeverity.BREAKING: "Breaking changes",
    ChangeSeverity.NON_BREAKING: "Additions and relaxations",
    ChangeSeverity.INFO: "Notes",
}
API_SCOPE = "API"


class ChangelogEntry(msgspec.Struct, frozen=True):
    scope: str  # "GET /time-entries", several joined by ", ", or "API"
    changes: tuple[Change, ...]
    migration: tuple[str, ...] = ()  # "POST /x: <its x-migration note>" for the operations in scope


class ChangelogSection(msgspec.Struct, frozen=True):
    severity: ChangeSeverity
    title: str
    entries: tuple[ChangelogEntry, ...]


class Changelog(msgspec.Struct, frozen=True, kw_only=True):
    api_id: str | None
    title: str
    old_source: str
    new_source: str
    old_version: str | None
    new_version: str | None
    sections: tuple[ChangelogSection, ...]
    migration: str | None = None  # info.x-migration of the newer contract

    @property
    def is_breaking(self) -> bool:
        return any(section.severity is ChangeSeverity.BREAKING for section in self.sections)


def group_changes(changes: Iterable[Change], new: ContractDocument | None = None) -> tuple[ChangelogSection, ...]:
    """Sections in severity order (breaking first); empty sections are left out. With ``new``, each entry
    carries the migration notes that contract writes for its operations and changes."""
    changes = list(changes)
    operation_notes = _operation_migration_notes(new) if new is not None else {}
    sections = []
    for severity, title in SECTION_TITLES.items():
        by_scope: dict[str, list[Change]] = {}
        for change in changes:
            if change.severity is severity:
                by_scope.setdefault(", ".join(change.operations) or API_SCOPE, []).append(change)
        if by_scope:
            ordered = sorted(by_scope.items(), key=lambda item: (item[0] != API_SCOPE, item[0]))
            entries = tuple(
                ChangelogEntry(
                    scope,
                    tuple(msgspec.structs.replace(change, migration=_note_at(new, change.pointer)) for change in items),
                    migration=_first_mention(items, operation_notes),
                )
                for scope, items in ordered
            )
            sections.append(ChangelogSection(severity, title, entries))
    return tuple(sections)


def build_changelog(old: ContractDocument, new: ContractDocument, changes: list[Change] | None = None) -> Changelog:
    """The changelog from ``old`` to ``new`` (diffs them unless ``changes`` is given)."""
    old_info, new_info = as_mapping(old.content.get("info")), as_mapping(new.content.get("info"))
    api_id = new_info.get("x-api-id") or old_info.get("x-api-id")
    return Changelog(
        api_id=api_id if isinstance(api_id, str) else None,
        title=str(new_info.get("title") or old_info.get("title") or ""),
        old_source=old.source,
        new_source=new.source,
        old_version=_text_or_none(old_info.get("version")),
        new_version=_text_or_none(new_info.get("version")),
        sections=group_changes(diff_documents(old, new) if changes is None else changes, new),
        migration=_text_or_none(new_info.get("x-migration")),
    )


def _first_mention(changes: list[Change], operation_notes: dict[str, str]) -> tuple[str, ...]:
    """``"POST /x: note"`` for the operations of ``changes`` whose note no earlier entry carried (each note is
    read once, under the most severe change to its operation); pops what it returns."""
    operations = dict.fromkeys(operation for change in changes for operation in change.operations)
    return tuple(
        f"{operation}: {operation_notes.pop(operation)}" for operation in operations if operation in operation_notes
    )


def _operation_migration_notes(document: ContractDocument) -> dict[str, str]:
    """``"POST /me/time-entries"`` -> its operation's x-migration note."""
    return {site.label: str(note) for site in iter_operations(document) if (note := site.operation.get("x-migration"))}


def _note_at(document: ContractDocument | None, pointer: str) -> str | None:
    """The x-migration note of the schema or property a change points at, in the newer contract."""
    if document is None or not pointer:
        return None
    try:
        node = document.lookup(pointer)
    except (LookupError, ValueError):
        return None  # the change points into the older contract (something removed)
    note = as_mapping(node).get("x-migration")
    return None if note is None else str(note)


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def render_markdown(changelog: Changelog) -> str:
    name = changelog.title or changelog.api_id or changelog.new_source
    lines = [f"## {name}: {changelog.old_version or '?'} -> {changelog.new_version or '?'}", ""]
    if changelog.migration:
        lines += [f"**Migrating:** {changelog.migration.strip()}", ""]
    if not changelog.sections:
        lines.append("No changes to the interface.")
    for section in changelog.sections:
        lines += [f"### {section.title}", ""]
        for entry in section.entries:
            for change in entry.changes:
                lines.append(f"- **{entry.scope}**: {change.message} (`{change.rule_id} {change.rule_name}`)")
                if change.migration:
                    lines.append(f"  - Migrating: {change.migration.strip()}")
            lines += [f"  - Migrating {note.strip()}" for note in entry.migration]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_text(changes: Iterable[Change]) -> str:
    return "".join(change.format_text() + "\n" for change in changes)
