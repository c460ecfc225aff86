"""Path, query and header parameters of one operation, compiled to one schema check per location.

All parameters of a location are validated as one object (``{"limit": 20, "cursor": "abc"}``) against a
schema compiled once, so a request costs one engine call per location that has values, and pointers come
out as ``/limit`` or ``/status/1`` for free.

Supported serialisations (OpenAPI 3.1 ``style``): query ``form`` (exploded or not), ``spaceDelimited``,
``pipeDelimited`` and ``deepObject``; path and header ``simple``. Cookie parameters are not validated.
Anything else is refused when the contract is compiled, never silently passed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

import msgspec

from contracts.toolchain.loader import ContractDocument
from contracts.toolchain.operations import ParameterSite, as_mapping
from contracts.toolchain.pointer import join_pointer
from contracts.toolchain.schemas import CompiledSchema, SchemaCompileError, SchemaEngine, bundle_schema
from contracts.toolchain.schemas.engine import REQUIRED_DETAIL
from contracts.toolchain.validation.coercion import Coercer, declared_types, scalar_coercer
from contracts.toolchain.validation.errors import ContractCompileError
from contracts.toolchain.validation.issues import IssueLocation, ValidationIssue

QueryInput = str | Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]]
ParameterLocation = Literal["path", "query", "header"]
Shape = Literal["scalar", "array", "object"]

# OpenAPI: these header parameters are described elsewhere (content negotiation, security) and ignored.
_IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})
_DEFAULT_STYLES: dict[str, str] = {"path": "simple", "query": "form", "header": "simple"}
_SUPPORTED_STYLES: dict[str, frozenset[str]] = {
    "path": frozenset({"simple"}),
    "query": frozenset({"form", "spaceDelimited", "pipeDelimited", "deepObject"}),
    "header": frozenset({"simple"}),
}
_DELIMITERS = {"form": ",", "simple": ",", "spaceDelimited": " ", "pipeDelimited": "|"}
_DEEP_OBJECT_KEY = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<key>[^\[\]]*)\]$")
# Keywords that never reject a value: a schema made only of these (plus type string) accepts any text.
_ANNOTATIONS = frozenset(
    {"title", "description", "example", "examples", "deprecated", "readOnly", "writeOnly", "default", "$comment"}
)


def _unchanged(text: str) -> Any:
    return text


@dataclass(frozen=True, slots=True)
class ParameterReader:
    """How the raw text of one parameter becomes the JSON value its schema describes."""

    name: str
    required: bool
    shape: Shape
    style: str
    explode: bool
    coerce: Coercer
    property_coercers: Mapping[str, Coercer] = field(default_factory=dict)
    json_encoded: bool = False

    def read(self, texts: Sequence[str]) -> Any:
        if self.json_encoded:
            return _decode_json(texts[-1])
        if self.shape == "array":
            if self.explode and self.style == "form":
                items: list[str] = list(texts)
            else:
                delimiter = _DELIMITERS[self.style]
                items = [part for text in texts if text for part in text.split(delimiter)]
            return [self.coerce(item) for item in items]
        if self.shape == "object":
            # Non-exploded object: "role,consultant,level,3".
            parts = texts[-1].split(",")
            if len(parts) % 2:
                return texts[-1]  # not key/value pairs: the schema reports "not of type object"
            return {key: self.coerce_property(key, text) for key, text in zip(parts[::2], parts[1::2], strict=True)}
        return self.coerce(texts[0])

    def coerce_property(self, key: str, text: str) -> Any:
        return self.property_coercers.get(key, _unchanged)(text)


def _decode_json(text: str) -> Any:
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return text  # the schema reports the raw text as the wrong type


class ParameterGroup:
    """The parameters of one location of one operation."""

    __slots__ = ("_by_lower", "_deep_objects", "_exploded_properties", "_missing", "_readers", "_schema", "location")

    def __init__(
        self,
        location: ParameterLocation,
        readers: Sequence[ParameterReader],
        schema: CompiledSchema | None,
    ) -> None:
        self.location: ParameterLocation = location
        self._readers = {reader.name: reader for reader in readers}
        self._by_lower = {reader.name.lower(): reader for reader in readers}
        self._schema = schema
        self._missing = tuple(
            ValidationIssue(location, join_pointer("", r.name), _missing_detail(location), "missing_parameter")
            for r in readers
            if r.required
        )
        self._deep_objects = {r.name: r for r in readers if r.shape == "object" and r.style == "deepObject"}
        # An exploded form object spreads its properties as top-level query names (?role=x&level=3).
        self._exploded_properties = {
            key: r
            for r in readers
            if r.shape == "object" and r.style == "form" and r.explode
            for key in r.property_coercers
        }

    @property
    def is_empty(self) -> bool:
        return not self._readers

    def check_path(self, path_params: Mapping[str, str]) -> list[ValidationIssue]:
        if self._schema is None:
            return []
        values = {
            name: reader.read((path_params[name],)) for name, reader in self._readers.items() if name in path_params
        }
        return self._check(values, [])

    def check_query(self, query: QueryInput) -> list[ValidationIssue]:
        grouped = _group_query(query)
        if not grouped:
            return list(self._missing)
        issues: list[ValidationIssue] = []
        values: dict[str, Any] = {}
        for name, texts in grouped.items():
            reader = self._readers.get(name)
            if reader is not None and not (reader.shape == "object" and reader.explode):
                if reader.shape == "scalar" and len(texts) > 1:
                    issues.append(
                        ValidationIssue(
                            "query",
                            join_pointer("", name),
                            f"expected one value, got {len(texts)}",
                            "repeated_parameter",
                        )
                    )
                values[name] = reader.read(texts)
            elif (owner := self._owner_of(name)) is not None:
                reader, key = owner
                values.setdefault(reader.name, {})[key] = reader.coerce_property(key, texts[-1])
            else:
                issues.append(
                    ValidationIssue("query", join_pointer("", name), "unknown query parameter", "unknown_parameter")
                )
        return self._check(values, issues)

    def _owner_of(self, name: str) -> tuple[ParameterReader, str] | None:
        reader = self._exploded_properties.get(name)
        if reader is not None:
            return reader, name
        deep = _DEEP_OBJECT_KEY.match(name)
        if deep is not None:
            reader = self._deep_objects.get(deep["name"])
            if reader is not None:
                return reader, deep["key"]
        return None

    def check_headers(self, headers: Mapping[str, str] | None) -> list[ValidationIssue]:
        if not headers:
            return list(self._missing)
        lowered = {key.lower(): value for key, value in headers.items()}
        values = {
            reader.name: reader.read((lowered[lower],)) for lower, reader in self._by_lower.items() if lower in lowered
        }
        return self._check(values, [])

    def _check(self, values: dict[str, Any], issues: list[ValidationIssue]) -> list[ValidationIssue]:
        if self._schema is None or self._schema.is_valid(values):
            return issues
        for violation in self._schema.violations(values):
            # Only a top-level miss is a missing parameter; deeper ones are inside a parameter value.
            if violation.detail == REQUIRED_DETAIL and violation.pointer.count("/") == 1:
                issues.append(
                    ValidationIssue(
                        self.location, violation.pointer, _missing_detail(self.location), "missing_parameter"
                    )
                )
            else:
                issues.append(ValidationIssue(self.location, violation.pointer, violation.detail))
        return issues


def _missing_detail(location: IssueLocation) -> str:
    return f"required {location} parameter is missing"


def _group_query(query: QueryInput) -> dict[str, list[str]]:
    if isinstance(query, str):
        pairs: Iterable[tuple[str, str]] = parse_qsl(query, keep_blank_values=True)
    elif isinstance(query, Mapping):
        grouped: dict[str, list[str]] = {}
        for name, value in query.items():
            grouped[name] = [value] if isinstance(value, str) else list(value)
        return grouped
    else:
        pairs = query
    result: dict[str, list[str]] = {}
    for name, value in pairs:
        result.setdefault(name, []).append(value)
    return result


def compile_parameter_group(
    document: ContractDocument,
    location: ParameterLocation,
    sites: Sequence[ParameterSite],
    engine: SchemaEngine,
    operation_pointer: str,
) -> ParameterGroup:
    """Readers and one compiled object schema for the parameters of ``location``."""
    selected = [
        site
        for site in sites
        if site.location == location and not (location == "header" and site.name.lower() in _IGNORED_HEADERS)
    ]
    readers = [_reader_of(document, site) for site in selected]
    schemas = {site.name: _schema_of(site) for site in selected}
    needs_schema = bool(selected) and not (
        location == "path" and all(_accepts_any_text(document, schema) for schema in schemas.values())
    )
    compiled: CompiledSchema | None = None
    if needs_schema:
        group_schema = {
            "type": "object",
            "properties": schemas,
            "required": [reader.name for reader in readers if reader.required],
        }
        try:
            compiled = engine.compile(bundle_schema(group_schema, document.content))
        except SchemaCompileError as error:
            raise ContractCompileError(f"{operation_pointer}: invalid {location} parameter schema: {error}") from error
    return ParameterGroup(location, readers, compiled)


def _schema_of(site: ParameterSite) -> Any:
    if "schema" in site.parameter:
        return site.parameter["schema"]
    for media in as_mapping(site.parameter.get("content")).values():
        return as_mapping(media).get("schema", {})
    return {}


def _reader_of(document: ContractDocument, site: ParameterSite) -> ParameterReader:
    style = site.parameter.get("style", _DEFAULT_STYLES[site.location])
    if style not in _SUPPORTED_STYLES[site.location]:
        raise ContractCompileError(f"{site.pointer}: parameter style {style!r} is not supported in {site.location}")
    explode = site.parameter.get("explode", style == "form") is True
    schema, _ = document.try_dereference(_schema_of(site), site.pointer)
    schema = as_mapping(schema)
    types = declared_types(document, schema)
    json_encoded = "schema" not in site.parameter and any(
        media_type == "application/json" or media_type.endswith("+json")
        for media_type in as_mapping(site.parameter.get("content"))
    )
    # A JSON-encoded parameter is one value, whatever its schema's shape.
    shape: Shape = (
        "scalar" if json_encoded else "array" if "array" in types else "object" if "object" in types else "scalar"
    )
    if shape == "object" and site.location != "query":
        raise ContractCompileError(f"{site.pointer}: object parameters are only supported in the query string")
    if style == "deepObject" and shape != "object":
        raise ContractCompileError(f"{site.pointer}: style deepObject needs an object schema")
    coerce = scalar_coercer(types)
    property_coercers: dict[str, Coercer] = {}
    if shape == "array":
        coerce = scalar_coercer(declared_types(document, schema.get("items", {})))
    elif shape == "object":
        property_coercers = {
            key: scalar_coercer(declared_types(document, value))
            for key, value in as_mapping(schema.get("properties")).items()
        }
    return ParameterReader(
        name=site.name,
        required=site.required,
        shape=shape,
        style=style,
        explode=explode,
        coerce=coerce,
        property_coercers=property_coercers,
        json_encoded=json_encoded,
    )


def _accepts_any_text(document: ContractDocument, schema: Any) -> bool:
    resolved, _ = document.try_dereference(schema, "")
    if not isinstance(resolved, Mapping):
        return resolved is True
    constraints = {key for key in resolved if key not in _ANNOTATIONS and not key.startswith("x-")}
    return constraints <= {"type"} and resolved.get("type", "string") == "string"
