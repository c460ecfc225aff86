"""PSG-601, PSG-602: examples exist and are valid against their schemas (JSON Schema 2020-12)."""

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
    for holder, pointer in iter_schema_holders(document):
        schema, schema_pointer = holder["schema"], join_pointer(pointer, "schema")
        if "example" in holder:
            yield from checker.check(schema, schema_pointer, holder["example"], join_pointer(pointer, "example"))
        for name, raw in as_mapping(holder.get("examples")).items():
            example, example_pointer = document.try_dereference(raw, join_pointer(pointer, "examples", name))
            if isinstance(example, Mapping) and "value" in example:
                yield from checker.check(
                    schema, schema_pointer, example["value"], join_pointer(example_pointer, "value")
                )
    for site in iter_schemas(document):
        for index, example in enumerate(as_list(site.schema.get("examples"))):
            yield from checker.check(site.schema, site.pointer, example, join_pointer(site.pointer, "examples", index))
        if "example" in site.schema:
            yield from checker.check(
                site.schema, site.pointer, site.schema["example"], join_pointer(site.pointer, "example")
            )


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


RULES = (valid_examples, examples_present)
