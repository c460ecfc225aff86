"""Request and response bodies: media type negotiation, then one compiled schema check per JSON media type.

Only JSON bodies (``application/json`` and ``*/*+json``) are parsed and validated against their schema;
other declared media types are accepted as declared (the contract has no way to describe their bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from contracts.toolchain.loader import ContractDocument
from contracts.toolchain.operations import as_mapping
from contracts.toolchain.pointer import join_pointer
from contracts.toolchain.schemas import CompiledSchema, SchemaCompileError, SchemaEngine, bundle_schema
from contracts.toolchain.validation.errors import ContractCompileError
from contracts.toolchain.validation.issues import ValidationIssue

_json_decoder = msgspec.json.Decoder()


def media_type_of(content_type: str | None) -> str:
    """``"application/json; charset=utf-8"`` -> ``"application/json"``."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def is_json_media_type(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


@dataclass(frozen=True, slots=True)
class _MediaTypeEntry:
    declared: str
    schema: CompiledSchema | None


class BodyValidator:
    """The ``content`` map of a request body or a response, compiled."""

    __slots__ = ("_declared", "_exact", "_part", "_required", "_wildcards")

    def __init__(self, entries: list[_MediaTypeEntry], required: bool, part: str) -> None:
        self._exact = {entry.declared: entry for entry in entries if "*" not in entry.declared}
        # "application/*" before "*/*": the narrower range wins.
        self._wildcards = sorted(
            (entry for entry in entries if "*" in entry.declared), key=lambda entry: entry.declared.startswith("*")
        )
        self._declared = ", ".join(entry.declared for entry in entries)
        self._required = required
        self._part = part

    @property
    def accepts_content(self) -> bool:
        return bool(self._exact or self._wildcards)

    def check(self, body: bytes | None, content_type: str | None) -> list[ValidationIssue]:
        if not body:
            if self._required:
                return [ValidationIssue("body", "", f"{self._part} body is required", "missing_body")]
            return []
        if not self.accepts_content:
            return [ValidationIssue("body", "", f"this {self._part} has no body in the contract", "unexpected_body")]
        media_type = media_type_of(content_type)
        entry = self._exact.get(media_type) or self._wildcard_for(media_type)
        if entry is None:
            return [
                ValidationIssue(
                    "header",
                    "/content-type",
                    f"media type {media_type or '(none)'!r} is not in the contract; expected {self._declared}",
                    "unsupported_media_type",
                )
            ]
        if entry.schema is None or not is_json_media_type(media_type):
            return []
        try:
            instance = _json_decoder.decode(body)
        except msgspec.DecodeError as error:
            return [ValidationIssue("body", "", f"body is not valid JSON: {error}", "invalid_json")]
        except RecursionError:
            # Nesting deeper than the decoder's stack: a hostile body, refused like malformed JSON (never a 500).
            return [ValidationIssue("body", "", "body is nested too deeply", "invalid_json")]
        if entry.schema.is_valid(instance):
            return []
        return [ValidationIssue("body", v.pointer, v.detail) for v in entry.schema.violations(instance)]

    def _wildcard_for(self, media_type: str) -> _MediaTypeEntry | None:
        kind = media_type.split("/", 1)[0]
        for entry in self._wildcards:
            if entry.declared == "*/*" or entry.declared == f"{kind}/*":
                return entry
        return None


def compile_body(
    document: ContractDocument,
    content: Any,
    pointer: str,
    engine: SchemaEngine,
    *,
    required: bool,
    part: str,
) -> BodyValidator:
    """Compile a ``content`` map found at ``pointer`` (``part`` is "request" or "response" for messages)."""
    entries: list[_MediaTypeEntry] = []
    for declared, media in as_mapping(content).items():
        media_type = media_type_of(declared)
        schema = as_mapping(media).get("schema")
        compiled = None
        if schema is not None and is_json_media_type(media_type):
            try:
                compiled = engine.compile(bundle_schema(schema, document.content))
            except SchemaCompileError as error:
                location = join_pointer(pointer, declared, "schema")
                raise ContractCompileError(f"{location}: invalid schema: {error}") from error
        entries.append(_MediaTypeEntry(media_type, compiled))
    return BodyValidator(entries, required, part)
