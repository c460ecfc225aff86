"""Walk the operations of an OpenAPI document with their effective parameters, security and responses."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from contracts.toolchain.loader import ContractDocument
from contracts.toolchain.pointer import join_pointer

HTTP_METHODS: tuple[str, ...] = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

SecurityRequirement = dict[str, list[str]]


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty one: rules must survive malformed contracts."""
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True, slots=True)
class OperationSite:
    """One operation as it sits in the document."""

    path: str
    method: str
    pointer: str
    operation: Mapping[str, Any]
    path_item: Mapping[str, Any]
    path_item_pointer: str

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"


@dataclass(frozen=True, slots=True)
class ParameterSite:
    """An effective parameter of an operation, its ``$ref`` followed.

    ``pointer`` is where its definition lives (a component, when referenced); ``usage_pointer`` is where the
    operation or path item lists it.
    """

    name: str
    location: str
    parameter: Mapping[str, Any]
    pointer: str
    usage_pointer: str

    @property
    def required(self) -> bool:
        return self.location == "path" or self.parameter.get("required") is True


@dataclass(frozen=True, slots=True)
class ResponseSite:
    status: str
    response: Mapping[str, Any]
    pointer: str
    usage_pointer: str


def iter_operations(document: ContractDocument) -> Iterator[OperationSite]:
    for path, raw_item in as_mapping(document.content.get("paths")).items():
        item_pointer = join_pointer("/paths", path)
        item, resolved_pointer = document.try_dereference(raw_item, item_pointer)
        item = as_mapping(item)
        for method in HTTP_METHODS:
            operation = item.get(method)
            if isinstance(operation, Mapping):
                yield OperationSite(
                    path=path,
                    method=method,
                    pointer=join_pointer(resolved_pointer, method),
                    operation=operation,
                    path_item=item,
                    path_item_pointer=resolved_pointer,
                )


def effective_parameters(document: ContractDocument, site: OperationSite) -> list[ParameterSite]:
    """Path-item parameters overridden by operation parameters with the same ``(in, name)``."""
    merged: dict[tuple[str, str], ParameterSite] = {}
    sources = ((site.path_item, site.path_item_pointer), (site.operation, site.pointer))
    for owner, owner_pointer in sources:
        for index, raw in enumerate(as_list(owner.get("parameters"))):
            usage = join_pointer(owner_pointer, "parameters", index)
            parameter, pointer = document.try_dereference(raw, usage)
            if not isinstance(parameter, Mapping):
                continue
            name, location = parameter.get("name"), parameter.get("in")
            if isinstance(name, str) and isinstance(location, str):
                merged[(location, name)] = ParameterSite(name, location, parameter, pointer, usage)
    return list(merged.values())


def effective_security(document: ContractDocument, site: OperationSite) -> tuple[list[Any], str] | None:
    """The security requirements that apply (operation-level, else document-level) and where they are."""
    if "security" in site.operation:
        return as_list(site.operation["security"]), join_pointer(site.pointer, "security")
    if "security" in document.content:
        return as_list(document.content["security"]), "/security"
    return None


def iter_responses(document: ContractDocument, site: OperationSite) -> Iterator[ResponseSite]:
    responses_pointer = join_pointer(site.pointer, "responses")
    for status, raw in as_mapping(site.operation.get("responses")).items():
        usage = join_pointer(responses_pointer, status)
        response, pointer = document.try_dereference(raw, usage)
        if isinstance(response, Mapping):
            yield ResponseSite(str(status), response, pointer, usage)


def request_body_of(document: ContractDocument, site: OperationSite) -> tuple[Mapping[str, Any], str] | None:
    raw = site.operation.get("requestBody")
    if raw is None:
        return None
    body, pointer = document.try_dereference(raw, join_pointer(site.pointer, "requestBody"))
    return (body, pointer) if isinstance(body, Mapping) else None


def is_error_status(status: str) -> bool:
    return status[:1] in ("4", "5")


def is_success_status(status: str) -> bool:
    return status[:1] in ("2", "3")
