"""Compare two schemas in the direction data flows through them.

A request schema may accept more (old clients still fit) but not less; a response schema may promise more
but not less (old clients still understand it). The same edit is therefore breaking on one side and safe
on the other: a new enum value is fine in a request and breaking in a response.

References are followed in both documents. Recursive schemas stop where a pair of schema locations is
already being compared further up the stack.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from contracts.toolchain.diff import rules
from contracts.toolchain.diff.model import DiffRule, Direction
from contracts.toolchain.diff.recorder import DiffContext
from contracts.toolchain.diff.schema_view import LOWER_BOUNDS, UPPER_BOUNDS, SchemaAt, SchemaView, view_of
from contracts.toolchain.loader import ContractDocument
from contracts.toolchain.pointer import split_pointer

_InProgress = set[tuple[str, str, Direction]]


class SchemaComparison:
    """Compares the schemas of one operation; ``operation`` labels every change it records."""

    def __init__(self, context: DiffContext, operation: str, direction: Direction) -> None:
        self._context = context
        self._operation = operation
        self._direction = direction
        self._in_progress: _InProgress = set()

    def compare(self, old: SchemaAt, new: SchemaAt, subject: str) -> None:
        """``subject`` names the compared thing in messages ("request body", "query parameter 'limit'")."""
        old_view = view_of(self._context.old, old.schema, old.pointer)
        new_view = view_of(self._context.new, new.schema, new.pointer)
        subject = _component_subject(new, new_view) or subject
        key = (old_view.pointer, new_view.pointer, self._direction)
        if key in self._in_progress:
            return
        self._in_progress.add(key)
        try:
            self._types(old_view, new_view, subject)
            self._enum(old_view, new_view, subject)
            self._format(old_view, new_view, subject)
            self._bounds(old_view, new_view, subject)
            self._properties(old_view, new_view, subject)
            if old_view.items is not None and new_view.items is not None:
                self.compare(old_view.items, new_view.items, f"{subject} items")
            self._variants(old_view, new_view, subject)
        finally:
            self._in_progress.discard(key)

    @property
    def _is_request(self) -> bool:
        return self._direction is Direction.REQUEST

    def _record(self, rule: DiffRule, pointer: str, message: str) -> None:
        self._context.recorder.record(rule, pointer, message, self._operation)

    def _types(self, old: SchemaView, new: SchemaView, subject: str) -> None:
        if old.types == new.types:
            return
        message = f"{subject}: type changed from {_types_text(old.types)} to {_types_text(new.types)}"
        if self._is_request:
            widened = _covers(new.types, old.types)
            self._record(rules.REQUEST_RELAXED if widened else rules.TYPE_CHANGED, new.pointer, message)
        else:
            narrowed = _covers(old.types, new.types)
            self._record(rules.RESPONSE_TIGHTENED if narrowed else rules.TYPE_CHANGED, new.pointer, message)

    def _enum(self, old: SchemaView, new: SchemaView, subject: str) -> None:
        if old.enum is None and new.enum is None:
            return
        if old.enum is not None and new.enum is not None:
            removed = [old.enum[key] for key in old.enum if key not in new.enum]
            added = [new.enum[key] for key in new.enum if key not in old.enum]
        else:
            removed, added = [], []
        if self._is_request:
            if new.enum is not None and old.enum is None:
                self._record(
                    rules.ENUM_NARROWED, new.pointer, f"{subject}: now limited to {_values(new.enum.values())}"
                )
            elif removed:
                self._record(rules.ENUM_NARROWED, new.pointer, f"{subject}: no longer accepts {_values(removed)}")
            if new.enum is None or added:
                accepted = "any value" if new.enum is None else _values(added)
                self._record(rules.REQUEST_RELAXED, new.pointer, f"{subject}: now also accepts {accepted}")
        else:
            if old.enum is not None and new.enum is None:
                self._record(rules.ENUM_WIDENED, new.pointer, f"{subject}: enum removed, any value may be returned")
            elif added:
                self._record(rules.ENUM_WIDENED, new.pointer, f"{subject}: may now return {_values(added)}")
            if (old.enum is None and new.enum is not None) or removed:
                dropped = "values outside the new enum" if old.enum is None else _values(removed)
                self._record(rules.RESPONSE_TIGHTENED, new.pointer, f"{subject}: no longer returns {dropped}")

    def _format(self, old: SchemaView, new: SchemaView, subject: str) -> None:
        if old.format == new.format:
            return
        message = f"{subject}: format changed from {old.format or 'none'} to {new.format or 'none'}"
        if self._is_request and new.format is None:
            self._record(rules.REQUEST_RELAXED, new.pointer, message)
        elif not self._is_request and old.format is None:
            self._record(rules.RESPONSE_TIGHTENED, new.pointer, message)
        else:
            self._record(rules.FORMAT_CHANGED, new.pointer, message)

    def _bounds(self, old: SchemaView, new: SchemaView, subject: str) -> None:
        for keyword in sorted(set(old.bounds) | set(new.bounds)):
            before, after = old.bounds.get(keyword), new.bounds.get(keyword)
            if before == after:
                continue
            tightened = _tightens(keyword, before, after)
            message = f"{subject}: {keyword} changed from {_bound_text(before)} to {_bound_text(after)}"
            if self._is_request:
                rule = rules.REQUEST_CONSTRAINT_TIGHTENED if tightened else rules.REQUEST_RELAXED
            else:
                rule = rules.RESPONSE_TIGHTENED if tightened else rules.RESPONSE_CONSTRAINT_LOOSENED
            self._record(rule, new.pointer, message)
        if self._is_request and _forbids_extra(new) and not _forbids_extra(old):
            self._record(
                rules.REQUEST_CONSTRAINT_TIGHTENED, new.pointer, f"{subject}: unknown properties are now rejected"
            )

    def _properties(self, old: SchemaView, new: SchemaView, subject: str) -> None:
        old_names = [name for name, at in old.properties.items() if not self._hidden(self._context.old, at)]
        new_names = [name for name, at in new.properties.items() if not self._hidden(self._context.new, at)]
        renames = renamed_properties(old_names, new_names)
        for name in old_names:
            new_property = new.properties.get(name)
            if name in renames:
                self._property_renamed(name, renames[name], old, new, subject)
            elif new_property is None:
                self._property_removed(name, old.properties[name], new, subject)
            else:
                self.compare(old.properties[name], new_property, f"{subject} property '{name}'")
        renamed_to = set(renames.values())
        for name in new_names:
            if name not in old.properties and name not in renamed_to:
                self._property_added(name, new.properties[name], new, subject)
        self._required(old, new, subject, renames)

    def _property_renamed(self, name: str, new_name: str, old: SchemaView, new: SchemaView, subject: str) -> None:
        old_view = view_of(self._context.old, old.properties[name].schema, old.properties[name].pointer)
        new_view = view_of(self._context.new, new.properties[new_name].schema, new.properties[new_name].pointer)
        before, after = _shape_text(old_view), _shape_text(new_view)
        retyped = f" ({before} -> {after})" if before != after else ""
        message = f"{subject}: property '{name}' renamed to '{new_name}'{retyped}"
        self._record(rules.PROPERTY_RENAMED, new.properties[new_name].pointer, message)

    def _hidden(self, document: ContractDocument, schema: SchemaAt) -> bool:
        """readOnly properties are never sent, writeOnly ones never returned: their changes do not count."""
        view = view_of(document, schema.schema, schema.pointer)
        return view.read_only if self._is_request else view.write_only

    def _property_removed(self, name: str, old_property: SchemaAt, new: SchemaView, subject: str) -> None:
        message = f"{subject}: property '{name}' removed"
        if not self._is_request:
            self._record(rules.RESPONSE_PROPERTY_REMOVED, old_property.pointer, message)
        elif _forbids_extra(new):
            self._record(rules.REQUEST_PROPERTY_REJECTED, old_property.pointer, message + " and is now rejected")
        else:
            self._record(rules.REQUEST_PROPERTY_REMOVED, old_property.pointer, message + "; it is ignored if sent")

    def _property_added(self, name: str, new_property: SchemaAt, new: SchemaView, subject: str) -> None:
        if not self._is_request:
            self._record(rules.RESPONSE_PROPERTY_ADDED, new_property.pointer, f"{subject}: new property '{name}'")
        elif name not in new.required:
            self._record(
                rules.OPTIONAL_REQUEST_PROPERTY_ADDED,
                new_property.pointer,
                f"{subject}: new optional property '{name}'",
            )
        # A new required request property is reported by _required.

    def _required(self, old: SchemaView, new: SchemaView, subject: str, renames: dict[str, str]) -> None:
        # A rename is one change: its old and new names are not reported again as required or optional.
        old_required = old.required - renames.keys()
        new_required = new.required - set(renames.values())
        if self._is_request:
            for name in sorted(new_required - old_required):
                pointer = new.properties[name].pointer if name in new.properties else new.pointer
                message = (
                    f"{subject}: new required property '{name}'"
                    if name not in old.properties
                    else f"{subject}: property '{name}' is now required"
                )
                self._record(rules.REQUEST_PROPERTY_REQUIRED, pointer, message)
            for name in sorted(old_required - new_required):
                # A removed property is reported as removed, not as relaxed.
                if name in new.properties or name not in old.properties:
                    pointer = new.properties[name].pointer if name in new.properties else new.pointer
                    self._record(rules.REQUEST_RELAXED, pointer, f"{subject}: property '{name}' is no longer required")
        else:
            for name in sorted(old_required - new_required):
                if name in new.properties:
                    self._record(
                        rules.RESPONSE_PROPERTY_OPTIONAL,
                        new.properties[name].pointer,
                        f"{subject}: property '{name}' may now be absent",
                    )
            for name in sorted(new_required - old_required):
                if name in old.properties and name in new.properties:
                    self._record(
                        rules.RESPONSE_TIGHTENED,
                        new.properties[name].pointer,
                        f"{subject}: property '{name}' is now always present",
                    )

    def _variants(self, old: SchemaView, new: SchemaView, subject: str) -> None:
        for keyword in sorted(set(old.variants) & set(new.variants)):
            before, after = old.variants[keyword], new.variants[keyword]
            for key in sorted(before.keys() - after.keys()):
                message = f"{subject}: {keyword} variant {key} removed"
                rule = rules.SCHEMA_VARIANT_CHANGED if self._is_request else rules.RESPONSE_TIGHTENED
                self._record(rule, before[key].pointer, message)
            for key in sorted(after.keys() - before.keys()):
                message = f"{subject}: {keyword} variant {key} added"
                rule = rules.REQUEST_RELAXED if self._is_request else rules.SCHEMA_VARIANT_CHANGED
                self._record(rule, after[key].pointer, message)
            for key in [key for key in before if key in after]:
                self.compare(before[key], after[key], f"{subject} {keyword} {key}")


def renamed_properties(old_names: list[str], new_names: list[str]) -> dict[str, str]:
    """Old name -> new name for properties that were renamed: a removed and an added property in the same
    place, i.e. between the same surviving neighbours, paired in order (``hours, billable`` between
    ``work_date`` and ``notes`` becoming ``minutes, work_type`` there reads as two renames)."""
    kept = [name for name in old_names if name in new_names]
    renames: dict[str, str] = {}
    for gap in range(len(kept) + 1):
        removed = _between(old_names, kept, gap, lambda name: name not in new_names)
        added = _between(new_names, kept, gap, lambda name: name not in old_names)
        renames.update(zip(removed, added, strict=False))
    return renames


def _between(names: list[str], kept: list[str], gap: int, wanted: Callable[[str], bool]) -> list[str]:
    """The ``wanted`` names after kept[gap - 1] and before kept[gap] (the ends when out of range)."""
    start = names.index(kept[gap - 1]) + 1 if gap > 0 else 0
    end = names.index(kept[gap]) if gap < len(kept) else len(names)
    return [name for name in names[start:end] if wanted(name)]


def _shape_text(view: SchemaView) -> str:
    text = _types_text(view.types)
    return f"{text} ({view.format})" if view.format else text


def _component_subject(schema: SchemaAt, view: SchemaView) -> str | None:
    """Entering a referenced component names it ("schema TimeEntry"), so one change to a shared schema reads
    the same from every operation and is reported once with all of them."""
    if not (isinstance(schema.schema, Mapping) and "$ref" in schema.schema):
        return None
    tokens = split_pointer(view.pointer)
    if len(tokens) == 3 and tokens[:2] == ["components", "schemas"]:
        return f"schema {tokens[2]}"
    return None


def _covers(wider: frozenset[str] | None, narrower: frozenset[str] | None) -> bool:
    """Does a value of any type in ``narrower`` also fit ``wider``? (an integer fits a number)"""
    if wider is None:
        return True
    if narrower is None:
        return False
    return all(kind in wider or (kind == "integer" and "number" in wider) for kind in narrower)


def _tightens(keyword: str, before: Any, after: Any) -> bool:
    if keyword in UPPER_BOUNDS:
        return after is not None and (before is None or _less(after, before))
    if keyword in LOWER_BOUNDS:
        return after is not None and (before is None or _less(before, after))
    if keyword == "uniqueItems":
        return after is True
    return after is not None  # pattern or multipleOf added or changed: assume it accepts less


def _less(left: Any, right: Any) -> bool:
    try:
        return bool(left < right)
    except TypeError:
        return True


def _forbids_extra(view: SchemaView) -> bool:
    return view.additional_properties is False


def _types_text(types: frozenset[str] | None) -> str:
    return "any" if types is None else "|".join(sorted(types)) or "none"


def _values(values: Any) -> str:
    return ", ".join(repr(value) for value in values)


def _bound_text(value: Any) -> str:
    return "none" if value is None else repr(value)
