"""PSG-401: list operations page with a cursor (Zalando rules 159, 160)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from contracts.toolchain.lint.context import LintContext
from contracts.toolchain.lint.model import Severity, Violation, rule
from contracts.toolchain.loader import ContractDocument
from contracts.toolchain.operations import OperationSite, as_list, as_mapping, effective_parameters, iter_responses
from contracts.toolchain.schema_sites import schema_types


def object_properties(document: ContractDocument, schema: Any) -> dict[str, Any]:
    """Properties of an object schema, its ``allOf`` members included, references followed."""
    resolved, _ = document.try_dereference(schema, "")
    resolved = as_mapping(resolved)
    properties = dict(as_mapping(resolved.get("properties")))
    for member in as_list(resolved.get("allOf")):
        properties.update(object_properties(document, member))
    return properties


def list_response_schema(context: LintContext, site: OperationSite) -> dict[str, Any] | None:
    """The properties of a GET's 200 JSON body when it is a page (an object with an ``items`` array)."""
    for response in iter_responses(context.document, site):
        if response.status != "200":
            continue
        media = as_mapping(as_mapping(response.response.get("content")).get("application/json"))
        properties = object_properties(context.document, media.get("schema"))
        items, _ = context.document.try_dereference(properties.get("items"), "")
        if "array" in schema_types(items):
            return properties
    return None


@rule(
    "PSG-401",
    "cursor-pagination",
    Severity.ERROR,
    "Cursors stay correct while data changes and cost the same on every page; offsets do neither.",
)
def cursor_pagination(context: LintContext) -> Iterator[Violation]:
    for site in context.operations:
        if site.method != "get" or site.path.endswith("}"):
            continue  # a GET of one resource by its id is not a list, whatever its body holds
        page = list_response_schema(context, site)
        if page is None:
            continue
        query = {p.name for p in effective_parameters(context.document, site) if p.location == "query"}
        missing = [f"query parameter {name!r}" for name in ("cursor", "limit") if name not in query]
        if "next_cursor" not in page:
            missing.append("response property 'next_cursor'")
        if missing:
            yield Violation(site.pointer, f"list operation {site.label} lacks {', '.join(missing)}")


RULES = (cursor_pagination,)
