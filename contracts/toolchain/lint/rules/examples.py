"""PSG-601..PSG-603: examples exist, are valid against their schemas (JSON Schema 2020-12) and carry only
declared properties."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from contracts.toolchain.lint.context import LintContext
from contracts.toolchain.lint.model import Severity, Violation, rule
from contracts.toolchain.operations import as_list, as_mapping, iter_responses, request_body_of
from contracts.toolchain.pointer import join_pointer
from contracts.toolchain.references import check_references
from contracts.toolchain.schema_sites import iter_schema_holders, iter_schemas
from contracts.toolchain.schemas import CompiledSchema, PythonSchemaEngine, SchemaCompileError, bundle_schema


class _ExampleChecker:
    """Compiles each schema once (jsonschema, Draft 2020-12) and checks examples against it."""

    def __init__(self, context: LintContext) -> None:
        self._document = context.document
        self._engine = PythonSchemaEngine()
        self._compiled: dict[str, CompiledSchema | None] = {}
        self._checked: set[tuple[str, str]] = set()

    def check(self, schema: Any, schema_pointer: str, example: Any, example_pointer: str) -> Iterator[Violation]:
        if (schema_pointer, example_pointer) in self._checked:
            return
        self._checked.add((schema_pointer, example_pointer))
        compiled = self._compile(schema, schema_pointer)
        if compiled is None or compiled.is_valid(example):
            return
        for violation in compiled.violations(example):
            where = violation.pointer or "the example"
            yield Violation(
                example_pointer + violation.pointer, f"example does not match its schema at {where}: {violation.detail}"
            )

    def _compile(self, schema: Any, pointer: str) -> CompiledSchema | None:
        if pointer not in self._compiled:
            try:
                self._compiled[pointer] = self._engine.compile(bundle_schema(schema, self._document.content))
            except SchemaCompileError:
                self._compiled[pointer] = None  # an invalid schema is PSG-001's finding
        return self._compiled[pointer]


@rule(
    "PSG-601",
    "valid-examples",
    Severity.ERROR,
    "Examples are documentation people copy and test data tools replay; a wrong one teaches the wrong contract.",
)
def valid_examples(context: LintContext) -> Iterator[Violation]:
    document = context.document
    if check_references(document):
        return  # broken references are PSG-002's; schemas cannot be compiled until they resolve
    checker = _ExampleChecker(context)
    for schema, schema_pointer, example, pointer in _iter_examples(context):
        yield from checker.check(schema, schema_pointer, example, pointer)


def _has_example(context: LintContext, media: Mapping[str, Any]) -> bool:
    if "example" in media or as_mapping(media.get("examples")):
        return True
    schema, _ = context.document.try_dereference(media.get("schema"), "")
    return bool(as_list(as_mapping(schema).get("examples")))


@rule(
    "PSG-602",
    "examples-present",
    Severity.WARNING,
    "Every request body and response carries an example: the catalog shows it and contract tests replay it.",
)
def examples_present(context: LintContext) -> Iterator[Violation]:
    reported: set[str] = set()
    for site in context.operations:
        contents: list[tuple[str, Any]] = []
        body = request_body_of(context.document, site)
        if body is not None:
            contents.append((join_pointer(body[1], "content"), body[0].get("content")))
        for response in iter_responses(context.document, site):
            contents.append((join_pointer(response.pointer, "content"), response.response.get("content")))
        for content_pointer, content in contents:
            for media_type, media in as_mapping(content).items():
                pointer = join_pointer(content_pointer, media_type)
                if pointer in reported or not isinstance(media, Mapping) or _has_example(context, media):
                    continue
                reported.add(pointer)
                yield Violation(pointer, f"{media_type} content has no example")


def _iter_examples(context: LintContext) -> Iterator[tuple[Any, str, Any, str]]:
    """Every (schema, its pointer, example value, its pointer) in the document: media and schema examples."""
    document = context.document
    for holder, pointer in iter_schema_holders(document):
        schema, schema_pointer = holder["schema"], join_pointer(pointer, "schema")
        if "example" in holder:
            yield schema, schema_pointer, holder["example"], join_pointer(pointer, "example")
        for name, raw in as_mapping(holder.get("examples")).items():
            example, example_pointer = document.try_dereference(raw, join_pointer(pointer, "examples", name))
            if isinstance(example, Mapping) and "value" in example:
                yield schema, schema_pointer, example["value"], join_pointer(example_pointer, "value")
    for site in iter_schemas(document):
        for index, example in enumerate(as_list(site.schema.get("examples"))):
            yield site.schema, site.pointer, example, join_pointer(site.pointer, "examples", index)
        if "example" in site.schema:
            yield site.schema, site.pointer, site.schema["example"], join_pointer(site.pointer, "example")


_OPEN_OBJECT_KEYWORDS = ("additionalProperties", "patternProperties", "unevaluatedProperties")


class _DeclaredProperties:
    """Walks an example beside its schema and names members no schema on the way declares."""

    def __init__(self, context: LintContext) -> None:
        self._document = context.document

    def undeclared(self, schema: Any, example: Any, pointer: str) -> Iterator[Violation]:
        schema, _ = self._document.try_dereference(schema, "")
        if not isinstance(schema, Mapping):
            return
        if isinstance(example, list):
            for index, item in enumerate(example):
                yield from self.undeclared(schema.get("items"), item, join_pointer(pointer, index))
            return
        if not isinstance(example, Mapping):
            return
        branches = [
            self._document.try_dereference(b, "")[0]
            for b in as_list(schema.get("oneOf")) + as_list(schema.get("anyOf"))
        ]
        object_branches = [b for b in branches if isinstance(b, Mapping) and self._declared(b) is not None]
        if object_branches:
            best = max(object_branches, key=lambda b: len(set(example) & (self._declared(b) or set())))
            yield from self.undeclared(best, example, pointer)
        declared = self._declared(schema)
        if declared is None:
            return
        for key, value in example.items():
            if key not in declared:
                yield Violation(join_pointer(pointer, key), f"example member {key!r} is not declared in its schema")
            else:
                yield from self.undeclared(self._property_schema(schema, key), value, join_pointer(pointer, key))

    def _declared(self, schema: Mapping[str, Any]) -> set[str] | None:
        """Property names an object schema declares (allOf included); None when it is open or not an object."""
        if any(keyword in schema for keyword in _OPEN_OBJECT_KEYWORDS):
            return None
        names: set[str] | None = set(as_mapping(schema.get("properties"))) if "properties" in schema else None
        for part in as_list(schema.get("allOf")):
            resolved, _ = self._document.try_dereference(part, "")
            inner = self._declared(resolved) if isinstance(resolved, Mapping) else None
            if inner is None and isinstance(resolved, Mapping) and any(k in resolved for k in _OPEN_OBJECT_KEYWORDS):
                return None
            names = (names or set()) | (inner or set())
        return names

    def _property_schema(self, schema: Mapping[str, Any], key: str) -> Any:
        if key in as_mapping(schema.get("properties")):
            return schema["properties"][key]
        for part in as_list(schema.get("allOf")):
            resolved, _ = self._document.try_dereference(part, "")
            found = self._property_schema(as_mapping(resolved), key)
            if found is not None:
                return found
        return None


@rule(
    "PSG-603",
    "examples-declared-properties",
    Severity.WARNING,
    "An example member its schema does not declare is undocumented behaviour: generated clients drop it and "
    "readers cannot tell whether it is promised (Redocly no-invalid-media-type-examples).",
)
def examples_declared_properties(context: LintContext) -> Iterator[Violation]:
    walker = _DeclaredProperties(context)
    seen: set[str] = set()
    for schema, _, example, pointer in _iter_examples(context):
        if pointer not in seen:
            seen.add(pointer)
            yield from walker.undeclared(schema, example, pointer)


RULES = (valid_examples, examples_present, examples_declared_properties)
