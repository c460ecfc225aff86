"""The interface every schema engine offers, and the choice of the default one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import msgspec


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


class SharedSchemaEngine:
    """Compiles each distinct schema once per process, when it is first used, and shares the result.

    Bundling makes every operation's schema self-contained, so the same schema recurs across operations and
    contracts (the problem+json responses, shared components): the repository's contracts ask for 1,083
    compilations of 181 distinct schemas, and compiling each again cost the gateway ~400 MB of resident memory.
    A compiled schema is immutable, so sharing it is safe.

    Compiled, the 317 distinct schemas of every version of every contract held ~160 MB of the gateway's native
    memory (jsonschema-rs), most of it for operations a deployment never calls. So each schema is compiled at
    start once to refuse an invalid one there (then dropped: compiling and dropping all of them costs ~0.2 s and
    leaves ~30 MB), and compiled for good on its first use (well under a millisecond).
    """

    def __init__(self, engine: SchemaEngine) -> None:
        self.engine = engine
        self.name = engine.name
        self._compiled: dict[bytes, CompiledSchema] = {}

    def compile(self, schema: Any) -> CompiledSchema:
        key = msgspec.json.encode(schema, order="deterministic")
        compiled = self._compiled.get(key)
        if compiled is None:
            self.engine.compile(schema)  # raises SchemaCompileError now, not on the first call that uses it
            compiled = self._compiled[key] = _CompiledOnFirstUse(self.engine, schema)
        return compiled


class _CompiledOnFirstUse:
    """A schema compiled by its first ``is_valid`` or ``violations``; after that both slots hold the compiled
    schema's own methods, so a validation on the hot path costs no extra call."""

    __slots__ = ("_engine", "_schema", "is_valid", "violations")

    def __init__(self, engine: SchemaEngine, schema: Any) -> None:
        self._engine = engine
        self._schema = schema
        self.is_valid: Any = self._compiled_is_valid
        self.violations: Any = self._compiled_violations

    def _compile(self) -> CompiledSchema:
        compiled = self._engine.compile(self._schema)
        self.is_valid, self.violations = compiled.is_valid, compiled.violations
        return compiled

    def _compiled_is_valid(self, instance: Any) -> bool:
        return self._compile().is_valid(instance)

    def _compiled_violations(self, instance: Any) -> list[SchemaViolation]:
        return self._compile().violations(instance)


_default: SchemaEngine | None = None


def default_engine() -> SchemaEngine:
    """jsonschema-rs when it is installed (two orders of magnitude faster on the hot path), else jsonschema;
    one per process, sharing compiled schemas."""
    global _default
    if _default is None:
        try:
            from contracts.toolchain.schemas.rust_engine import RustSchemaEngine
        except ImportError:
            from contracts.toolchain.schemas.python_engine import PythonSchemaEngine

            _default = SharedSchemaEngine(PythonSchemaEngine())
        else:
            _default = SharedSchemaEngine(RustSchemaEngine())
    return _default
