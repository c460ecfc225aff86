"""Schema engine on ``jsonschema-rs``: the same Draft 2020-12 semantics, compiled to native code.

Importing this module raises ``ImportError`` when the package is absent; ``default_engine`` falls back.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs

from contracts.toolchain.pointer import join_pointer, pointer_from_parts
from contracts.toolchain.schemas.engine import (
    REQUIRED_DETAIL,
    UNEXPECTED_DETAIL,
    SchemaCompileError,
    SchemaViolation,
)


class RustSchemaEngine:
    name = "jsonschema-rs"

    def compile(self, schema: Any) -> _RustCompiledSchema:
        try:
            # offline: a contract never makes the gateway fetch a remote schema.
            validator = jsonschema_rs.Draft202012Validator(schema, validate_formats=True, offline=True)
        except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as error:
            raise SchemaCompileError(str(error)) from error
        return _RustCompiledSchema(validator)


class _RustCompiledSchema:
    __slots__ = ("_validator",)

    def __init__(self, validator: jsonschema_rs.Validator) -> None:
        self._validator = validator

    def is_valid(self, instance: Any) -> bool:
        return self._validator.is_valid(instance)

    def violations(self, instance: Any) -> list[SchemaViolation]:
        found: list[SchemaViolation] = []
        for error in self._validator.iter_errors(instance):
            pointer = pointer_from_parts(error.instance_path)
            kind = error.kind
            if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
                found.append(SchemaViolation(join_pointer(pointer, kind.property), REQUIRED_DETAIL))
            elif isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
                found.extend(
                    SchemaViolation(join_pointer(pointer, name), UNEXPECTED_DETAIL) for name in kind.unexpected
                )
            else:
                found.append(SchemaViolation(pointer, error.message))
        return found
