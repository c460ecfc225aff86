"""The interface every schema engine offers, and the choice of the default one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class SchemaViolation:
    """One place where an instance breaks its schema: an RFC 6901 pointer into the instance, and why."""

    pointer: str
    detail: str


class SchemaCompileError(Exception):
    """The schema itself is not valid JSON Schema 2020-12."""


class CompiledSchema(Protocol):
    def is_valid(self, instance: Any) -> bool: ...

    def violations(self, instance: Any) -> list[SchemaViolation]:
        """Every violation; a missing required property or a forbidden extra one is reported at its own
        pointer (``/lines/0/hours``), not at the object that holds it."""
        ...


class SchemaEngine(Protocol):
    name: str

    def compile(self, schema: Any) -> CompiledSchema:
        """Compile once; raises ``SchemaCompileError`` when the schema is invalid."""
        ...


REQUIRED_DETAIL = "required property is missing"
UNEXPECTED_DETAIL = "property is not allowed"


def default_engine() -> SchemaEngine:
    """jsonschema-rs when it is installed (two orders of magnitude faster on the hot path), else jsonschema."""
    try:
        from contracts.toolchain.schemas.rust_engine import RustSchemaEngine
    except ImportError:
        from contracts.toolchain.schemas.python_engine import PythonSchemaEngine

        return PythonSchemaEngine()
    return RustSchemaEngine()
