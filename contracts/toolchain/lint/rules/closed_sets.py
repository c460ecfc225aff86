"""PSG-704: a string whose name says it is a closed set (status, state, kind, ...) lists its values.

A client switches on ``status``; a free string there leaves it guessing which values exist, and generated
clients type it as ``str`` instead of an enum. The set may be open on purpose (it grows with a catalog,
it names another resource's states): then the contract says so, and why, with ``x-open-set: <reason>``,
or lists the values known today with ``x-extensible-enum`` (Zalando rule 112).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from contracts.toolchain.lint.context import LintContext
from contracts.toolchain.lint.model import Severity, Violation, rule
from contracts.toolchain.loader import UnresolvableReference
from contracts.toolchain.operations import as_list, effective_parameters
from contracts.toolchain.pointer import join_pointer
from contracts.toolchain.schema_sites import iter_properties, schema_types

# The words that name a closed set, alone or as the last word of a snake_case name (invoice_status,
# from_state, source_type), singular or plural (a filter taking several). Deliberately not here: reason,
# code, category, resolution (free text or a configured taxonomy) and currency (ISO 4217, a pattern).
CLOSED_SET_WORDS = (
    "status",
    "state",
    "kind",
    "type",
    "result",
    "decision",
    "outcome",
    "stage",
    "phase",
    "mode",
    "level",
    "severity",
    "priority",
    "disposition",
    "action",
    "trigger",
    "direction",
    "frequency",
    "method",
)
CLOSED_SET_NAME = re.compile(rf"(^|_)({'|'.join(CLOSED_SET_WORDS)})(s|es)?$")
OPEN_SET_KEY = "x-open-set"
EXTENSIBLE_ENUM_KEY = "x-extensible-enum"
# RFC 9457's `type` is a URI naming a problem type; the problem catalog grows, so it is open by definition.
_PROBLEM_TYPE_POINTER = "/components/schemas/Problem/properties/type"
_MAX_DEPTH = 16


@rule(
    "PSG-704",
    "closed-set-enums",
    Severity.ERROR,
    "A string named like a closed set (status, state, kind, type, result, decision, outcome, stage, phase, mode, "
    "level, severity, priority, disposition, action, trigger, direction, frequency, method, alone or as the "
    "last word: invoice_status) lists its values in an enum, so clients and generated code can rely on them; "
    "a set that is open on purpose says why with `x-open-set: <reason>` or lists today's values in "
    "`x-extensible-enum`.",
)
def closed_set_enums(context: LintContext) -> Iterator[Violation]:
    document = context.document
    for site in iter_properties(document):
        if CLOSED_SET_NAME.search(site.name) and site.pointer != _PROBLEM_TYPE_POINTER:
            problem = _missing_enum(context, site.schema, site.pointer)
            if problem:
                yield Violation(site.pointer, f"property {site.name!r} {problem}")
    seen: set[str] = set()
    for operation in context.operations:
        for parameter in effective_parameters(document, operation):
            if parameter.pointer in seen or not CLOSED_SET_NAME.search(parameter.name):
                continue
            seen.add(parameter.pointer)
            schema_pointer = join_pointer(parameter.pointer, "schema")
            problem = _missing_enum(context, parameter.parameter.get("schema"), schema_pointer)
            if problem:
                message = f"{parameter.location} parameter {parameter.name!r} {problem}"
                yield Violation(join_pointer(parameter.pointer, "name"), message)


def _missing_enum(context: LintContext, schema: Any, pointer: str) -> str | None:
    """Why the schema does not document its set of values, or None when it does (or is not a string)."""
    opt_out = _open_set_reason(context, schema)
    if opt_out is not None:
        return opt_out or None
    if _accepts_free_string(context, schema, pointer, 0):
        return (
            f"names a closed set but accepts any string: add an enum, or say why it is open with "
            f"'{OPEN_SET_KEY}: <reason>' (or list today's values in '{EXTENSIBLE_ENUM_KEY}')"
        )
    return None


def _open_set_reason(context: LintContext, schema: Any) -> str | None:
    """'' when the schema opts out with a reason, a complaint when the opt-out is malformed, else None."""
    for node in _ref_chain(context, schema):
        if OPEN_SET_KEY in node:
            reason = node[OPEN_SET_KEY]
            if isinstance(reason, str) and reason.strip():
                return ""
            return f"has '{OPEN_SET_KEY}' without a reason: write why the set is open, as a string"
        extensible = node.get(EXTENSIBLE_ENUM_KEY)
        if extensible is not None:
            if isinstance(extensible, list) and extensible:
                return ""
            return f"has an empty or malformed '{EXTENSIBLE_ENUM_KEY}': list the values known today"
    return None


def _ref_chain(context: LintContext, schema: Any) -> Iterator[Mapping[str, Any]]:
    """The schema as written, then each schema its ``$ref`` chain leads to (an opt-out may sit on either)."""
    node: Any = schema
    seen: set[str] = set()
    while isinstance(node, Mapping):
        yield node
        reference = node.get("$ref")
        if not isinstance(reference, str) or reference in seen:
            return
        seen.add(reference)
        try:
            node, _ = context.document.resolve_reference(reference)
        except UnresolvableReference:
            return  # PSG-002 reports it


def _accepts_free_string(context: LintContext, schema: Any, pointer: str, depth: int) -> bool:
    if depth > _MAX_DEPTH:
        return False
    resolved, pointer = context.document.try_dereference(schema, pointer)
    if not isinstance(resolved, Mapping):
        return False
    if "enum" in resolved or "const" in resolved or _open_set_reason(context, resolved) is not None:
        return False
    all_of = [member for member in as_list(resolved.get("allOf")) if isinstance(member, Mapping)]
    if all_of and any(not _accepts_free_string(context, member, pointer, depth + 1) for member in all_of):
        return False  # one conjunct pins the values down
    branches = [
        member
        for keyword in ("anyOf", "oneOf")
        for member in as_list(resolved.get(keyword))
        if isinstance(member, Mapping)
    ]
    if branches:
        return any(_accepts_free_string(context, member, pointer, depth + 1) for member in branches)
    types = schema_types(resolved)
    if "array" in types and isinstance(resolved.get("items"), Mapping):
        return _accepts_free_string(context, resolved["items"], join_pointer(pointer, "items"), depth + 1)
    # An untyped schema without composition accepts any value, strings included.
    return "string" in types or not types


RULES = (closed_set_enums,)
