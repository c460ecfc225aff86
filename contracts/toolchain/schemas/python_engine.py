"""Schema engine on ``jsonschema`` (Draft 2020-12, which is what OpenAPI 3.1 schemas are)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from contracts.toolchain.pointer import join_pointer, pointer_from_parts
from contracts.toolchain.schemas.engine import (
    REQUIRED_DETAIL,
    UNEXPECTED_DETAIL,
    SchemaCompileError,
    SchemaViolation,
)


class PythonSchemaEngine:
    """Pure Python; always available. Formats (date-time, date, uuid, email...) are asserted."""

    name = "jsonschema"

    def compile(self, schema: Any) -> _PythonCompiledSchema:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as error:
            raise SchemaCompileError(error.message) from error
        return _PythonCompiledSchema(Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER))


class _PythonCompiledSchema:
    __slots__ = ("_validator",)

    def __init__(self, validator: Draft202012Validator) -> None:
        self._validator = validator

    def is_valid(self, instance: Any) -> bool:
        return self._validator.is_valid(instance)

    def violations(self, instance: Any) -> list[SchemaViolation]:
        found: list[SchemaViolation] = []
        seen: set[SchemaViolation] = set()
        for error in self._validator.iter_errors(instance):
            # jsonschema yields one "required" error per missing name, and each of ours names them all.
            for violation in _violations_of(error):
                if violation not in seen:
                    seen.add(violation)
                    found.append(violation)
        return found


def _violations_of(error: ValidationError) -> list[SchemaViolation]:
    pointer = pointer_from_parts(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, Mapping):
        return [
            SchemaViolation(join_pointer(pointer, name), REQUIRED_DETAIL)
            for name in error.validator_value
            if name not in instance
        ]
    if error.validator == "additionalProperties" and isinstance(instance, Mapping):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        declared = schema.get("properties", {})
        patterns = list(schema.get("patternProperties", {}))
        return [
            SchemaViolation(join_pointer(pointer, name), UNEXPECTED_DETAIL)
            for name in instance
            if name not in declared and not any(re.search(pattern, name) for pattern in patterns)
        ]
    return [SchemaViolation(pointer, error.message)]
