"""Breaking-change detection between two versions of a contract, and the changelog built from it."""

from contracts.toolchain.diff.changelog import (
    Changelog,
    ChangelogEntry,
    ChangelogSection,
    build_changelog,
    group_changes,
    render_markdown,
    render_text,
)
from contracts.toolchain.diff.document import diff_documents, diff_files, is_breaking
from contracts.toolchain.diff.model import Change, ChangeSeverity, DiffRule, Direction
from contracts.toolchain.diff.rules import DIFF_RULES

__all__ = [
    "DIFF_RULES",
    "Change",
    "ChangeSeverity",
    "Changelog",
    "ChangelogEntry",
    "ChangelogSection",
    "DiffRule",
    "Direction",
    "build_changelog",
    "diff_documents",
    "diff_files",
    "group_changes",
    "is_breaking",
    "render_markdown",
    "render_text",
]
