"""PSG-205, PSG-504, PSG-505, PSG-003: what the ecosystem's linters (Spectral ``spectral:oas``, Redocly
``recommended``) ask of a contract beyond the house rules: descriptions, contact and license, declared tags,
no unused components. A contract clean here is clean for the tools integrators run themselves."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from contracts.toolchain.lint.context import LintContext
from contracts.toolchain.lint.model import Severity, Violation, rule
from contracts.toolchain.operations import as_list, as_mapping
from contracts.toolchain.pointer import join_pointer
from contracts.toolchain.references import iter_references

# Component kinds reached through $ref; security schemes are named by security requirements instead.
_REFERENCED_KINDS = (
    "schemas",
    "responses",
    "parameters",
    "examples",
    "requestBodies",
    "headers",
    "links",
    "callbacks",
    "pathItems",
)


def _has_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


@rule(
    "PSG-205",
    "operation-description",
    Severity.WARNING,
    "The description is what a generated client shows as the method's documentation and what the catalog "
    "explains beyond the one-line summary (Spectral operation-description).",
)
def operation_description(context: LintContext) -> Iterator[Violation]:
    for site in context.operations:
        if not _has_text(site.operation.get("description")):
            yield Violation(site.pointer, f"{site.label} has no description")


@rule(
    "PSG-504",
    "info-contact-license",
    Severity.WARNING,
    "Integrators need to know who answers for an API and under which terms they may use it "
    "(Spectral info-contact, Redocly info-license).",
)
def info_contact_license(context: LintContext) -> Iterator[Violation]:
    info = as_mapping(context.document.content.get("info"))
    if not info:
        return  # PSG-503 reports the missing info
    contact = info.get("contact")
    if not isinstance(contact, Mapping) or not any(_has_text(contact.get(k)) for k in ("name", "url", "email")):
        yield Violation("/info/contact" if "contact" in info else "/info", "info.contact needs a name, url or email")
    license_ = info.get("license")
    if not isinstance(license_, Mapping) or not _has_text(license_.get("name")):
        yield Violation("/info/license" if "license" in info else "/info", "info.license needs a name")
    elif not any(_has_text(license_.get(k)) for k in ("identifier", "url")):
        yield Violation("/info/license", "info.license needs an SPDX identifier or a url")


@rule(
    "PSG-505",
    "tags-declared-and-described",
    Severity.WARNING,
    "Tags group operations in the catalog and in generated clients; each one used is declared at the top "
    "with a description (Spectral operation-tag-defined, Redocly tag-description).",
)
def tags_declared_and_described(context: LintContext) -> Iterator[Violation]:
    declared: set[str] = set()
    for index, tag in enumerate(as_list(context.document.content.get("tags"))):
        tag = as_mapping(tag)
        declared.add(str(tag.get("name")))
        if not _has_text(tag.get("description")):
            yield Violation(join_pointer("/tags", index), f"tag {tag.get('name')!r} has no description")
    for site in context.operations:
        for index, name in enumerate(as_list(site.operation.get("tags"))):
            if name not in declared:
                yield Violation(
                    join_pointer(site.pointer, "tags", index),
                    f"tag {name!r} of {site.label} is not declared in the top-level tags",
                )


@rule(
    "PSG-003",
    "no-unused-components",
    Severity.WARNING,
    "A component nothing references is dead text: it drifts, and generators emit types no operation uses "
    "(Spectral oas3-unused-component, Redocly no-unused-components).",
)
def no_unused_components(context: LintContext) -> Iterator[Violation]:
    components = as_mapping(context.document.content.get("components"))
    referenced = {reference for _, reference in iter_references(context.document.content, "")}
    for kind in _REFERENCED_KINDS:
        for name in as_mapping(components.get(kind)):
            target = join_pointer("#/components", kind, name)
            if target not in referenced and not any(ref.startswith(target + "/") for ref in referenced):
                yield Violation(join_pointer("/components", kind, name), f"components.{kind}.{name} is never used")


RULES = (operation_description, info_contact_license, tags_declared_and_described, no_unused_components)
