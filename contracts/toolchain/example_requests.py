"""Requests built from a contract's own examples: one per operation, for the mock tests and example runners.

Path, query and header parameters take their example (or their schema's example, default or first enum value;
a date, date-time, integer or string by type otherwise); the body is the request body's example.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import msgspec

from contracts.toolchain.loader import ContractDocument
from contracts.toolchain.operations import (
    OperationSite,
    as_list,
    as_mapping,
    effective_parameters,
    iter_operations,
    request_body_of,
)


@dataclass(frozen=True, slots=True)
class ExampleRequest:
    method: str
    template: str  # the contract's path, e.g. /me/time-entries/{time_entry_id}
    path: str  # filled in, relative to the server URL
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str | None = None


def media_example(document: ContractDocument, media: Mapping[str, Any]) -> tuple[bool, Any]:
    """The example of a media type object (``example``, first of ``examples``, or its schema's), if any."""
    if "example" in media:
        return True, media["example"]
    for raw in as_mapping(media.get("examples")).values():
        example, _ = document.try_dereference(raw, "")
        if isinstance(example, Mapping) and "value" in example:
            return True, example["value"]
    schema, _ = document.try_dereference(media.get("schema"), "")
    examples = as_list(as_mapping(schema).get("examples"))
    return (True, examples[0]) if examples else (False, None)


def _parameter_value(document: ContractDocument, parameter: Mapping[str, Any]) -> Any:
    if "example" in parameter:
        return parameter["example"]
    for raw in as_mapping(parameter.get("examples")).values():
        example, _ = document.try_dereference(raw, "")
        if isinstance(example, Mapping) and "value" in example:
            return example["value"]
    schema, _ = document.try_dereference(parameter.get("schema"), "")
    schema = as_mapping(schema)
    for key in ("example", "default"):
        if key in schema:
            return schema[key]
    for key in ("examples", "enum"):
        if as_list(schema.get(key)):
            return as_list(schema[key])[0]
    if schema.get("format") == "date":
        today = dt.date.today()
        return (today - dt.timedelta(days=today.weekday())).isoformat()  # a Monday: weeks start on one
    if schema.get("format") == "date-time":
        return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    types = schema.get("type")
    if types == "integer" or (isinstance(types, list) and "integer" in types):
        return max(int(schema.get("minimum", 1)), 1)
    return "example"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def example_request(document: ContractDocument, site: OperationSite) -> ExampleRequest:
    path, query, headers = site.path, {}, {}
    for parameter in effective_parameters(document, site):
        if not parameter.required and parameter.location != "header":
            continue
        if parameter.location == "header" and not parameter.required and parameter.name != "Idempotency-Key":
            continue
        value = _text(_parameter_value(document, parameter.parameter))
        if parameter.location == "path":
            path = path.replace("{" + parameter.name + "}", quote(value, safe=""))
        elif parameter.location == "query":
            query[parameter.name] = value
        elif parameter.location == "header":
            headers[parameter.name] = value
    body = content_type = None
    found = request_body_of(document, site)
    if found is not None:
        for media_type, media in as_mapping(found[0].get("content")).items():
            has_example, example = media_example(document, as_mapping(media))
            if has_example:
                body, content_type = msgspec.json.encode(example), media_type
                break
    return ExampleRequest(site.method.upper(), site.path, path, query, headers, body, content_type)


def example_requests(document: ContractDocument) -> Iterator[ExampleRequest]:
    """One request per operation of the contract, in document order."""
    for site in iter_operations(document):
        yield example_request(document, site)
