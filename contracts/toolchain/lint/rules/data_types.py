"""PSG-701..PSG-703: money is a decimal string, instants are date-time strings."""

from __future__ import annotations

import re
from collections.abc import Iterator

from contracts.toolchain.lint.context import LintContext
from contracts.toolchain.lint.model import Severity, Violation, rule
from contracts.toolchain.operations import as_mapping
from contracts.toolchain.schema_sites import iter_properties, schema_types

# Names that carry money or a monetary rate: bill_rate, nte_amount, total, unit_price, taxes...
MONEY_NAME = re.compile(r"(^|_)(amount|rate|price|cost|fee|total|subtotal|tax|balance|revenue)(s|es)?$")


@rule(
    "PSG-701",
    "money-as-decimal-string",
    Severity.ERROR,
    "Binary floating point cannot hold 0.10 exactly; money crosses the wire as a decimal string and is read "
    "into Decimal.",
)
def money_as_decimal_string(context: LintContext) -> Iterator[Violation]:
    for site in iter_properties(context.document):
        if not MONEY_NAME.search(site.name):
            continue
        schema, _ = context.document.try_dereference(site.schema, site.pointer)
        schema = as_mapping(schema)
        if "number" in schema_types(schema) or schema.get("format") in ("float", "double"):
            yield Violation(
                site.pointer, f"{site.name!r} is money: use type string with a decimal pattern, not number/float"
            )


@rule(
    "PSG-702",
    "money-decimal-pattern",
    Severity.WARNING,
    "A decimal string without a pattern accepts '12,5' and 'ten'; the pattern is the contract.",
)
def money_decimal_pattern(context: LintContext) -> Iterator[Violation]:
    for site in iter_properties(context.document):
        if not MONEY_NAME.search(site.name):
            continue
        schema, _ = context.document.try_dereference(site.schema, site.pointer)
        schema = as_mapping(schema)
        if schema_types(schema) & {"string"} and "pattern" not in schema and schema.get("format") != "decimal":
            yield Violation(site.pointer, f"{site.name!r} is a money string without a decimal pattern")


@rule(
    "PSG-703",
    "date-time-instants",
    Severity.ERROR,
    "Fields named *_at are instants: RFC 3339 date-time strings with an offset, UTC on the wire.",
)
def date_time_instants(context: LintContext) -> Iterator[Violation]:
    for site in iter_properties(context.document):
        if not site.name.endswith("_at"):
            continue
        schema, _ = context.document.try_dereference(site.schema, site.pointer)
        schema = as_mapping(schema)
        if "string" not in schema_types(schema) or schema.get("format") != "date-time":
            yield Violation(site.pointer, f"{site.name!r} is an instant: use type string, format date-time")


RULES = (money_as_decimal_string, money_decimal_pattern, date_time_instants)
