"""Compare one operation across two versions: its id, security, parameters, request body and responses."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from contracts.toolchain.diff import rules
from contracts.toolchain.diff.model import Direction
from contracts.toolchain.diff.recorder import DiffContext
from contracts.toolchain.diff.schema_view import SchemaAt
from contracts.toolchain.diff.schemas import SchemaComparison
from contracts.toolchain.loader import ContractDocument
from contracts.toolchain.operations import (
    OperationSite,
    ParameterSite,
    as_list,
    as_mapping,
    effective_parameters,
    effective_security,
    is_success_status,
    iter_responses,
    request_body_of,
)
from contracts.toolchain.pointer import join_pointer

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")

Requirement = dict[str, frozenset[str]]

# What a deprecated version sends with every answer (RFC 9745, RFC 8594, and a Link to its successor).
LIFECYCLE_HEADERS = frozenset({"deprecation", "sunset", "link"})


def compare_operation(context: DiffContext, old: OperationSite, new: OperationSite) -> None:
    label = new.label
    _operation_id(context, old, new, label)
    if new.operation.get("deprecated") is True and old.operation.get("deprecated") is not True:
        context.recorder.record(rules.OPERATION_DEPRECATED, new.pointer, f"{label} is deprecated", label)
    _security(context, old, new, label)
    _parameters(context, old, new, label)
    _request_body(context, old, new, label)
    _responses(context, old, new, label)


def _operation_id(context: DiffContext, old: OperationSite, new: OperationSite, label: str) -> None:
    before, after = old.operation.get("operationId"), new.operation.get("operationId")
    if before is not None and before != after:
        pointer = join_pointer(new.pointer, "operationId") if after is not None else new.pointer
        message = f"operationId {before!r} " + (f"renamed to {after!r}" if after is not None else "removed")
        context.recorder.record(rules.OPERATION_ID_CHANGED, pointer, message, label)


def _requirements(document: ContractDocument, site: OperationSite) -> list[Requirement]:
    found = effective_security(document, site)
    if found is None:
        return []
    return [
        {scheme: frozenset(str(scope) for scope in as_list(scopes)) for scheme, scopes in as_mapping(entry).items()}
        for entry in found[0]
    ]


def _satisfies(granted: Requirement, needed: Requirement) -> bool:
    """A client that met ``granted`` also meets ``needed``."""
    return all(scheme in granted and scopes <= granted[scheme] for scheme, scopes in needed.items())


def _security(context: DiffContext, old: OperationSite, new: OperationSite, label: str) -> None:
    before, after = _requirements(context.old, old), _requirements(context.new, new)
    if before == after:
        return
    # An empty requirement ({}) or no requirements at all means anonymous access.
    before_open = not before or {} in before
    after_open = not after or {} in after
    pointer = join_pointer(new.pointer, "security") if "security" in new.operation else "/security"
    if after_open:
        if not before_open:
            context.recorder.record(rules.SECURITY_RELAXED, pointer, f"{label} no longer requires authorization", label)
        return
    stranded = [granted for granted in before if not any(_satisfies(granted, needed) for needed in after)]
    if before_open or stranded:
        context.recorder.record(rules.SECURITY_TIGHTENED, pointer, _tightening_message(label, stranded, after), label)
    else:
        context.recorder.record(rules.SECURITY_RELAXED, pointer, f"{label} requires fewer scopes", label)


def _tightening_message(label: str, stranded: list[Requirement], after: list[Requirement]) -> str:
    if not stranded:
        return f"{label} now requires authorization"
    granted = stranded[0]
    for needed in after:
        if set(needed) <= set(granted):
            added = sorted(scope for scheme, scopes in needed.items() for scope in scopes - granted[scheme])
            return f"{label} now requires scope(s) {', '.join(added)}"
    return f"{label} now requires different security schemes ({', '.join(sorted({s for n in after for s in n}))})"


def _parameter_key(site: OperationSite, parameter: ParameterSite) -> tuple[str, str]:
    # Path parameters are matched by position in the template, so a rename is not a removal.
    if parameter.location == "path":
        names = _PLACEHOLDER.findall(site.path)
        if parameter.name in names:
            return ("path", str(names.index(parameter.name)))
    return (parameter.location, parameter.name)


def _parameter_schema(parameter: ParameterSite) -> SchemaAt:
    if "schema" in parameter.parameter:
        return SchemaAt(parameter.parameter["schema"], join_pointer(parameter.pointer, "schema"))
    for media_type, media in as_mapping(parameter.parameter.get("content")).items():
        pointer = join_pointer(parameter.pointer, "content", media_type, "schema")
        return SchemaAt(as_mapping(media).get("schema", {}), pointer)
    return SchemaAt({}, parameter.pointer)


def _parameters(context: DiffContext, old: OperationSite, new: OperationSite, label: str) -> None:
    record = context.recorder.record
    before = {_parameter_key(old, p): p for p in effective_parameters(context.old, old)}
    after = {_parameter_key(new, p): p for p in effective_parameters(context.new, new)}
    comparison = SchemaComparison(context, label, Direction.REQUEST)
    for key, parameter in before.items():
        described = f"{parameter.location} parameter '{parameter.name}'"
        current = after.get(key)
        if current is None:
            if parameter.location == "query":
                record(rules.PARAMETER_REMOVED, parameter.pointer, f"{described} removed", label)
            elif parameter.location != "path":
                record(rules.HEADER_PARAMETER_REMOVED, parameter.pointer, f"{described} removed", label)
            continue
        if current.name != parameter.name:
            message = f"path parameter '{parameter.name}' renamed to '{current.name}'"
            record(rules.PATH_PARAMETER_RENAMED, current.pointer, message, label)
        if current.required and not parameter.required:
            record(rules.PARAMETER_MADE_REQUIRED, current.pointer, f"{described} is now required", label)
        elif parameter.required and not current.required:
            record(rules.REQUEST_RELAXED, current.pointer, f"{described} is no longer required", label)
        comparison.compare(_parameter_schema(parameter), _parameter_schema(current), described)
    for key, parameter in after.items():
        if key in before:
            continue
        described = f"{parameter.location} parameter '{parameter.name}'"
        if parameter.required:
            record(rules.PARAMETER_REQUIRED_ADDED, parameter.pointer, f"new required {described}", label)
        else:
            record(rules.OPTIONAL_PARAMETER_ADDED, parameter.pointer, f"new optional {described}", label)


def _request_body(context: DiffContext, old: OperationSite, new: OperationSite, label: str) -> None:
    record = context.recorder.record
    before, after = request_body_of(context.old, old), request_body_of(context.new, new)
    if after is None:
        if before is not None:
            record(rules.REQUEST_BODY_REMOVED, before[1], f"{label} no longer takes a request body", label)
        return
    body, pointer = after
    required_now = body.get("required") is True
    required_before = before is not None and before[0].get("required") is True
    if required_now and not required_before:
        message = "request body is now required" if before is not None else "new required request body"
        record(rules.REQUEST_BODY_REQUIRED, pointer, message, label)
    elif required_before and not required_now:
        record(rules.REQUEST_RELAXED, pointer, "request body is no longer required", label)
    if before is None:
        if not required_now:
            record(rules.REQUEST_RELAXED, pointer, "new optional request body", label)
        return
    _content(context, before, after, label, Direction.REQUEST, "request body")


def _content(
    context: DiffContext,
    before: tuple[Mapping[str, Any], str],
    after: tuple[Mapping[str, Any], str],
    label: str,
    direction: Direction,
    subject: str,
) -> None:
    record = context.recorder.record
    old_content = as_mapping(before[0].get("content"))
    new_content = as_mapping(after[0].get("content"))
    old_pointer, new_pointer = join_pointer(before[1], "content"), join_pointer(after[1], "content")
    comparison = SchemaComparison(context, label, direction)
    for media_type, media in old_content.items():
        if media_type not in new_content:
            message = f"{subject}: media type {media_type} removed" + (
                f" (now {', '.join(new_content)})" if new_content else ""
            )
            record(rules.MEDIA_TYPE_CHANGED, join_pointer(old_pointer, media_type), message, label)
            continue
        old_schema = as_mapping(media).get("schema")
        new_schema = as_mapping(new_content[media_type]).get("schema")
        if old_schema is not None and new_schema is not None:
            comparison.compare(
                SchemaAt(old_schema, join_pointer(old_pointer, media_type, "schema")),
                SchemaAt(new_schema, join_pointer(new_pointer, media_type, "schema")),
                f"{subject} ({media_type})",
            )
    for media_type in new_content:
        if media_type not in old_content:
            message = f"{subject}: media type {media_type} added"
            record(rules.MEDIA_TYPE_ADDED, join_pointer(new_pointer, media_type), message, label)


def _responses(context: DiffContext, old: OperationSite, new: OperationSite, label: str) -> None:
    record = context.recorder.record
    before = {response.status: response for response in iter_responses(context.old, old)}
    after = {response.status: response for response in iter_responses(context.new, new)}
    for status, response in before.items():
        current = after.get(status)
        if current is None:
            rule = rules.SUCCESS_STATUS_REMOVED if is_success_status(status) else rules.ERROR_STATUS_REMOVED
            record(rule, response.usage_pointer, f"{label} no longer returns {status}", label)
            continue
        subject = f"{status} response"
        _content(
            context,
            (response.response, response.pointer),
            (current.response, current.pointer),
            label,
            Direction.RESPONSE,
            subject,
        )
        _response_headers(context, response.response, response.pointer, current.response, current.pointer, label)
    for status, response in after.items():
        if status not in before:
            record(rules.RESPONSE_STATUS_ADDED, response.usage_pointer, f"{label} may return {status}", label)


def _response_headers(
    context: DiffContext,
    old: Mapping[str, Any],
    old_pointer: str,
    new: Mapping[str, Any],
    new_pointer: str,
    label: str,
) -> None:
    """Header changes are grouped by header across responses: a header dropped from nine responses is one change."""
    old_headers = {name.lower(): name for name in as_mapping(old.get("headers"))}
    new_headers = {name.lower(): name for name in as_mapping(new.get("headers"))}
    recorder = context.recorder
    no_longer_deprecated = as_mapping(context.new.content.get("info")).get("x-lifecycle") != "deprecated"
    for lower, name in old_headers.items():
        if lower in new_headers:
            continue
        if lower in LIFECYCLE_HEADERS and no_longer_deprecated:
            message = "Deprecation, Sunset and Link headers are no longer sent: this version is not deprecated"
            recorder.record(rules.LIFECYCLE_HEADERS_DROPPED, "/info/x-lifecycle", message, label)
            continue
        pointer = join_pointer(old_pointer, "headers", name)
        recorder.record_grouped(rules.RESPONSE_HEADER_REMOVED, lower, pointer, f"response header {name} removed", label)
    for lower, name in new_headers.items():
        if lower not in old_headers:
            pointer = join_pointer(new_pointer, "headers", name)
            recorder.record_grouped(rules.RESPONSE_HEADER_ADDED, lower, pointer, f"new response header {name}", label)
