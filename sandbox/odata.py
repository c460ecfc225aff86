"""What the two OData sandboxes share (``sandbox/dynamics365.py``, OData v4, and ``sandbox/s4hana.py``, OData v2 as SAP
Gateway serves it): reading ``$filter`` into the document store's conditions, reading an entity segment's keys,
server-driven paging with ``$skiptoken``, naming an engine error's field as an entity property, and ``$batch`` in the
multipart/mixed format (reading a batch into its parts and change sets, writing the answer).

The OData URL conventions are the same in both versions for all of this (OData v2 "URI Conventions" and OData v4.01
"URL Conventions": ``<EntitySet>(<key predicate>)``, ``$filter`` conditions joined by ``and``, ``$skip``/``$top``
and a next link carrying ``$skiptoken``); what differs is each service's literals, its one string function
(``contains`` in v4, ``substringof`` in v2) and the words of its errors, which each module passes in as an
``ODataDialect``.

The multipart batch is the same in both versions too: OData v2 "Batch Processing" (odata.org/documentation/
odata-version-2-0/batch-processing; SAP's "$batch Processing", help.sap.com/doc/saphelp_nw75/7.5.5/en-US/94/
a126519eff236ee10000000a445394/content.htm: "An OData batch request is represented as a multipart MIME v1.0
message", "a change set is an atomic unit of work", "Change sets cannot contain retrieve requests and cannot be
nested") and OData v4.0 Part 1: Protocol, 11.7: ``Content-Type: multipart/mixed; boundary=...``, each part an
``application/http`` request (``Content-Transfer-Encoding: binary``) or a ``multipart/mixed`` change set of them;
answered ``multipart/mixed``, one part per part sent, a change set's responses in a multipart part of their own
or, when it failed, one response for the whole change set.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
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


# --- $batch (multipart/mixed) ----------------------------------------------------------------------------------

CRLF = b"\r\n"
BATCH_METHODS = frozenset({"GET", "POST", "PATCH"})
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_REQUEST_LINE = re.compile(r"^([A-Z]+) (\S+) HTTP/1\.1$")
# One response of a batch: status, headers and body (bytes), the Content-ID of the request it answers.
BatchResponse = tuple[int, dict[str, str], bytes, str | None]


def _boundary(content_type: str, bad_request: Callable[[str], VendorError]) -> str:
    if not content_type.lower().startswith("multipart/mixed"):
        raise bad_request("The batch request must have 'multipart/mixed' as the media type.")
    found = _BOUNDARY.search(content_type)
    if found is None:
        raise bad_request("The batch request must have a boundary specification in the 'Content-Type' header.")
    return found[1].strip()


def _parts(body: bytes, boundary: str, bad_request: Callable[[str], VendorError]) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart body (RFC 2046, 5.1.1): (headers, lower-case names; content)."""
    pieces = (CRLF + body).split(b"\r\n--" + boundary.encode("latin-1"))
    parts: list[tuple[dict[str, str], bytes]] = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            return parts
        line_end = piece.find(CRLF)
        if line_end < 0 or piece[:line_end].strip(b" \t"):
            raise bad_request("A boundary delimiter in the batch is not followed by a line end.")
        piece = piece[line_end + 2 :]
        head, found, content = (b"", CRLF, piece[2:]) if piece.startswith(CRLF) else piece.partition(CRLF + CRLF)
        if not found:
            raise bad_request("A part of the batch has no blank line after its headers.")
        parts.append((_header_fields(head, bad_request), content))
    raise bad_request("The batch has no close delimiter.")


def _header_fields(head: bytes, bad_request: Callable[[str], VendorError]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in head.split(CRLF):
        if line:
            name, colon, value = line.partition(b":")
            if not colon or not name.strip():
                raise bad_request("A header line in the batch has no name.")
            fields[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
    return fields


def _operation(
    headers: dict[str, str],
    content: bytes,
    content_ids: set[str],
    in_changeset: bool,
    bad_request: Callable[[str], VendorError],
) -> dict[str, Any]:
    """One ``application/http`` part as the request it holds."""
    if not headers.get("content-type", "").lower().startswith("application/http"):
        raise bad_request("Each part of a batch must be 'application/http' or a 'multipart/mixed' change set.")
    if headers.get("content-transfer-encoding", "").lower() != "binary":
        raise bad_request("Each request of a batch must have 'Content-Transfer-Encoding: binary'.")
    head, _, body = content.partition(CRLF + CRLF)
    lines = head.split(CRLF)
    line = _REQUEST_LINE.match(lines[0].decode("latin-1"))
    if line is None:
        raise bad_request("A request of the batch has no request line 'METHOD url HTTP/1.1'.")
    if line[1] not in BATCH_METHODS:
        raise bad_request(f"The method '{line[1]}' is not allowed in a batch.")
    content_id = headers.get("content-id")
    if in_changeset:
        if line[1] == "GET":
            raise bad_request("A change set may not contain a GET request.")
        if not content_id:
            raise bad_request("Each request of a change set must have a 'Content-ID' header.")
    if content_id is not None:
        if content_id in content_ids:
            raise bad_request(f"The Content-ID '{content_id}' is used twice in the batch.")
        content_ids.add(content_id)
    return {
        "method": line[1],
        "url": line[2],
        "headers": _header_fields(CRLF.join(lines[1:]), bad_request),
        "body": body,
        "content_id": content_id,
    }


def batch_parts(
    content_type: str,
    body: bytes,
    bad_request: Callable[[str], VendorError],
    max_requests: int,
    one_per_changeset: VendorError | None = None,
) -> list[tuple[bool, list[dict[str, Any]]]]:
    """The parts of a multipart batch as (a change set?, its requests: one for a request outside a change set),
    checked before any runs (a malformed batch runs nothing; ``bad_request`` words the refusal). A service that
    takes change sets of one request only passes the refusal of a longer one as ``one_per_changeset``."""
    parts: list[tuple[bool, list[dict[str, Any]]]] = []
    content_ids: set[str] = set()
    count = 0
    for headers, content in _parts(body, _boundary(content_type, bad_request), bad_request):
        if headers.get("content-type", "").lower().startswith("multipart/mixed"):
            changeset = _parts(content, _boundary(headers["content-type"], bad_request), bad_request)
            if not changeset:
                raise bad_request("A change set of the batch holds no request.")
            if one_per_changeset is not None and len(changeset) > 1:
                raise one_per_changeset
            parts.append((True, [_operation(*part, content_ids, True, bad_request) for part in changeset]))
        else:
            parts.append((False, [_operation(headers, content, content_ids, False, bad_request)]))
        count += len(parts[-1][1])
        if count > max_requests:
            raise bad_request(f"The batch has more than {max_requests} requests.")
    return parts


def _response_part(status: int, headers: dict[str, str], body: bytes, content_id: str | None) -> bytes:
    part = b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    if content_id is not None:
        part += f"Content-ID: {content_id}\r\n".encode("latin-1")
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
    part += CRLF + f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")
    part += b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in headers.items())
    return part + CRLF + body


def batch_answer(answers: list[tuple[bool, list[BatchResponse]]], token: str) -> tuple[bytes, str]:
    """The answer to a batch (body, media type): per part sent, in order, a request's response, a change set's
    responses in a multipart part of their own, or the one failure that answers a failed change set."""
    delimiter = f"--batchresponse_{token}".encode()
    out: list[bytes] = []
    for in_changeset, responses in answers:
        if in_changeset and responses[0][0] < 400:
            inner = f"--changesetresponse_{token}".encode()
            head = f"Content-Type: multipart/mixed; boundary=changesetresponse_{token}\r\n\r\n".encode()
            inside = b"".join(inner + CRLF + _response_part(*response) + CRLF for response in responses)
            out.append(delimiter + CRLF + head + inside + inner + b"--" + CRLF)
        else:
            status, headers, body, _ = responses[0]
            out.append(delimiter + CRLF + _response_part(status, headers, body, None) + CRLF)
    out.append(delimiter + b"--" + CRLF)
    return b"".join(out), f"multipart/mixed; boundary=batchresponse_{token}"
