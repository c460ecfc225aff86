"""PSG-101..PSG-104: snake_case fields and parameters, kebab-case plural paths (Zalando rules 118, 129, 134)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from contracts.toolchain.lint.context import LintContext
from contracts.toolchain.lint.model import Severity, Violation, rule
from contracts.toolchain.lint.rules.pagination import list_response_schema
from contracts.toolchain.operations import as_mapping, effective_parameters
from contracts.toolchain.pointer import join_pointer
from contracts.toolchain.schema_sites import iter_properties

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
KEBAB_CASE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_PLACEHOLDER = re.compile(r"^\{([^{}]+)\}$")
_IRREGULAR_PLURALS = frozenset({"people", "children", "data", "media", "criteria", "staff", "metadata", "series"})


def snake_case_of(name: str) -> str:
    spaced = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    return re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")


def is_plural(segment: str) -> bool:
    word = segment.rsplit("-", 1)[-1]
    return word in _IRREGULAR_PLURALS or (word.endswith("s") and not word.endswith("ss"))


@rule(
    "PSG-101",
    "snake-case-properties",
    Severity.ERROR,
    "One naming style for every field in every tier; snake_case reads the same in JSON, Python and SQL.",
)
def snake_case_properties(context: LintContext) -> Iterator[Violation]:
    for site in iter_properties(context.document):
        if not SNAKE_CASE.match(site.name):
            yield Violation(
                site.pointer, f"property {site.name!r} is not snake_case (use {snake_case_of(site.name)!r})"
            )


@rule(
    "PSG-102",
    "kebab-case-paths",
    Severity.ERROR,
    "URLs are case-insensitive in practice and read by people: lowercase words joined by hyphens.",
)
def kebab_case_paths(context: LintContext) -> Iterator[Violation]:
    for path in as_mapping(context.document.content.get("paths")):
        pointer = join_pointer("/paths", path)
        if path != "/" and path.endswith("/"):
            yield Violation(pointer, f"path {path!r} ends with a slash")
        for segment in path.strip("/").split("/"):
            if segment and "{" not in segment and not KEBAB_CASE.match(segment):
                yield Violation(pointer, f"path segment {segment!r} in {path!r} is not kebab-case")


@rule(
    "PSG-103",
    "plural-collection-names",
    Severity.WARNING,
    "A collection is named for what it holds (/time-entries/{id}); a heuristic, so a warning.",
)
def plural_collection_names(context: LintContext) -> Iterator[Violation]:
    lists_by_path = {
        site.path for site in context.operations if site.method == "get" and list_response_schema(context, site)
    }
    for path in as_mapping(context.document.content.get("paths")):
        segments = path.strip("/").split("/")
        for index, segment in enumerate(segments):
            if not segment or "{" in segment:
                continue
            followed_by_id = index + 1 < len(segments) and _PLACEHOLDER.match(segments[index + 1]) is not None
            lists_here = index == len(segments) - 1 and path in lists_by_path
            if (followed_by_id or lists_here) and not is_plural(segment):
                yield Violation(
                    join_pointer("/paths", path), f"collection {segment!r} in {path!r} should be a plural noun"
                )


@rule(
    "PSG-104",
    "snake-case-parameters",
    Severity.ERROR,
    "Path and query parameter names follow the field naming style (?next_cursor=, {time_entry_id}).",
)
def snake_case_parameters(context: LintContext) -> Iterator[Violation]:
    reported: set[str] = set()
    for path in as_mapping(context.document.content.get("paths")):
        for segment in path.strip("/").split("/"):
            for name in re.findall(r"\{([^{}]+)\}", segment):
                if not SNAKE_CASE.match(name):
                    yield Violation(join_pointer("/paths", path), f"path parameter {{{name}}} is not snake_case")
    # Path parameters are checked through the template above (their names must match it anyway).
    for site in context.operations:
        for parameter in effective_parameters(context.document, site):
            pointer = join_pointer(parameter.pointer, "name")
            if parameter.location != "query" or pointer in reported:
                continue
            reported.add(pointer)
            if not SNAKE_CASE.match(parameter.name):
                yield Violation(pointer, f"{parameter.location} parameter {parameter.name!r} is not snake_case")


RULES = (snake_case_properties, kebab_case_paths, plural_collection_names, snake_case_parameters)
