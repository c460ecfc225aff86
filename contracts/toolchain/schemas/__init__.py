"""JSON Schema 2020-12 validation behind one small interface, with a fast engine and a pure-Python one."""

from contracts.toolchain.schemas.bundling import bundle_schema
from contracts.toolchain.schemas.engine import (
    CompiledSchema,
    SchemaCompileError,
    SchemaEngine,
    SchemaViolation,
    default_engine,
)
from contracts.toolchain.schemas.python_engine import PythonSchemaEngine

__all__ = [
    "CompiledSchema",
    "PythonSchemaEngine",
    "SchemaCompileError",
    "SchemaEngine",
    "SchemaViolation",
    "bundle_schema",
    "default_engine",
]
