"""What the two OData sandboxes share (``sandbox/dynamics365.py``, OData v4, and ``sandbox/s4hana.py``, OData v2 as SAP
Gateway serves it): reading ``$filter`` into the document store's conditions, reading an entity segment's keys,
server-driven paging with ``$skiptoken``, and naming an engine error's field as an entity property.

The OData URL conventions are the same in both versions for all of this (OData v2 "URI Conventions" and OData v4.01
"URL Conventions": ``<EntitySet>(<key predicate>)``, ``$filter`` conditions joined by ``and``, ``$skip``/``$top``
and a next link carrying ``$skiptoken``); what differs is each service's literals, its one string function
(``contains`` in v4, ``substringof`` in v2) and the words of its errors, which each module passes in as an
``ODataDialect``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from sandbox.vendor_http import VendorError

# ``and`` outside quoted literals: a condition's own quotes never split it.
_AND = re.compile(r"\s+and\s+(?=(?:[^']*'[^']*')*[^']*$)")
_SEGMENT = re.compile(r"^(?P<set>\w+)(?:\((?P<keys>.*)\))?$")
# Left as they are in a next link's query (readable keys and literals).
_LINK_SAFE = "$'(),"
# Properties that are no single column: they cannot be filtered on.
UNFILTERABLE = frozenset({"address", "debitcredit"})


@dataclass(frozen=True)
class ODataDialect:
    """One service's literals, string function and error words."""

    literal: Callable[[str], Any]  # a literal's text -> its value
    comparison: re.Pattern[str]  # ``<prop> <op> <value>``: groups prop, op, value
    function: re.Pattern[str]  # the string function: groups value and prop (or lower, a ``tolower``-ed prop)
    key: re.Pattern[str]  # one ``[Name=]value`` of a key predicate: groups 1 (the name, or None) and 2 (the value)
    bad_condition: Callable[[str], VendorError]  # a condition not understood
    bad_property: Callable[[str, str], VendorError]  # (property, entity set): no such filterable property
    not_found: Callable[[str], VendorError]  # a segment naming no entity set
    bad_key: Callable[[str, str], VendorError]  # (key predicate, entity set): not a key predicate
    wrong_keys: Callable[[str, tuple[str, ...]], VendorError]  # (entity set, its key names): other keys given


def parse_filter(
    dialect: ODataDialect,
    entity_set: str,
    fields: dict[str, tuple[str, str]],
    text: str | None,
    in_value: Callable[[str, Any], Any],
) -> tuple[dict[str, Any], dict[str, tuple[Any, Any]], dict[str, str]]:
    """``$filter`` over ``fields`` (engine field -> (property, conversion)) as the document store's (where, ranges,
    contains) on engine fields; ``in_value(conversion, value)`` is the service's reading of a value."""
    where: dict[str, Any] = {}
    ranges: dict[str, tuple[Any, Any]] = {}
    contains: dict[str, str] = {}
    if not text:
        return where, ranges, contains
    by_property = {name: (field, conversion) for field, (name, conversion) in fields.items()}
    for condition in _AND.split(text):
        compared, found = dialect.comparison.match(condition), dialect.function.match(condition)
        match = compared or found
        if match is None:
            raise dialect.bad_condition(condition.strip())
        groups = match.groupdict()
        prop = groups.get("prop") or groups.get("lower") or ""
        conversion = by_property.get(prop, ("", ""))[1]
        if prop not in by_property or conversion in UNFILTERABLE or conversion.startswith("lines:"):
            raise dialect.bad_property(prop, entity_set)
        field = by_property[prop][0]
        value = dialect.literal(match["value"])
        if found is not None:
            contains[field] = str(value)
            continue
        engine = in_value(conversion, value)
        if isinstance(engine, Decimal):
            engine = str(engine)
        op = compared["op"] if compared else "eq"
        if op == "eq":
            where[field] = engine
        else:
            low, high = ranges.get(field, (None, None))
            ranges[field] = (engine, high) if op in ("ge", "gt") else (low, engine)
    return where, ranges, contains


def parse_segment(
    dialect: ODataDialect, segment: str, keys_of: dict[str, tuple[str, ...]]
) -> tuple[str, dict[str, Any] | None]:
    """``<EntitySet>`` or ``<EntitySet>(<key predicate>)`` as (entity set, keys or None); ``keys_of`` names each
    entity set's keys. A single key may go unnamed where the dialect's key pattern allows it."""
    match = _SEGMENT.match(segment)
    if not match or match["set"] not in keys_of:
        raise dialect.not_found(segment)
    entity_set = match["set"]
    if match["keys"] is None:
        return entity_set, None
    names = keys_of[entity_set]
    keys: dict[str, Any] = {}
    text, position = match["keys"], 0
    while position < len(text):
        key = dialect.key.match(text, position)
        if key is None or (key[1] is None and len(names) > 1):
            raise dialect.bad_key(text, entity_set)
        keys[key[1] or names[0]] = dialect.literal(key[2])
        position = key.end()
    if set(keys) != set(names):
        raise dialect.wrong_keys(entity_set, names)
    return entity_set, keys


def page_window(start: int, token: int | None, top: int | None, size: int) -> tuple[int, int | None, int]:
    """Server-driven paging: from ``$skip`` (``start``), ``$skiptoken`` (``token``, where the last page ended) and
    ``$top``, the page's (offset, end of what ``$top`` lets through or None, how many entities it holds at most)."""
    offset = start if token is None else token
    end = None if top is None else start + top
    return offset, end, size if end is None else max(0, min(size, end - offset))


def next_link(url: str, params: dict[str, str], offset: int, count: int, total: int, end: int | None) -> str | None:
    """The next page's URL (the query as sent, ``$skiptoken`` where this page ended), or None after the last."""
    reached = offset + count
    if not count or reached >= (total if end is None else min(total, end)):
        return None
    following = {k: v for k, v in params.items() if k != "$skiptoken"}
    return f"{url}?{urlencode({**following, '$skiptoken': str(reached)}, safe=_LINK_SAFE)}"


def property_path(
    fields: dict[str, tuple[str, str]],
    lines: dict[str, dict[str, tuple[str, str]]],
    path: str | None,
    index: str,
    whole: dict[str, str] | None = None,
) -> str | None:
    """An engine error path (``lines[0].amountMinor``) in the entity's properties: the property, or a line's
    property as ``index`` formats it (``{name}[{i}]/{line}`` in v4, ``{name}({i})/{line}`` in v2); ``whole`` names
    the property that stands for a field spread over several (``address`` -> ``AddressStreet``)."""
    if not path:
        return None
    match = re.match(r"^(\w+)(?:\[(\d+)\](?:\.(\w+))?)?$", path)
    if not match or match[1] not in fields:
        return path
    name, conversion = fields[match[1]]
    if conversion in (whole or {}):
        return (whole or {})[conversion]
    if match[2] is None or not conversion.startswith("lines:"):
        return name
    line = lines[conversion[6:]].get(match[3] or "")
    return index.format(name=name, i=match[2]) + (f"/{line[0]}" if line else "")
