"""OData ``$batch`` in the multipart/mixed format, as Dynamics 365 finance and operations (OData v4.0) and SAP
Gateway for S/4HANA Cloud (OData v2) accept it: the multipart layout below is the same in both versions (OData v2
"Batch Processing", odata.org/documentation/odata-version-2-0/batch-processing; SAP, "$batch Processing",
help.sap.com/doc/saphelp_nw75/7.5.5/en-US/94/a126519eff236ee10000000a445394/content.htm). What differs is outside
this module: the version header each adapter sends (``OData-Version: 4.0``, ``DataServiceVersion: 2.0``), whether
the service stops at a failure (v4.0 unless ``Prefer: odata.continue-on-error``; v2 goes on past a failed change
set) and the answer's status (200 in v4.0, 202 from SAP Gateway).

Microsoft Learn, "Open Data Protocol (OData)" for finance and operations apps
(learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/odata), section "Batch requests": "Batch
requests are supported in the OData service", pointing to OData Version 4.0 Part 1: Protocol, section 11.7 "Batch
Requests" (docs.oasis-open.org/odata/odata/v4.0/errata02/os/complete/part1-protocol/...#_Toc406398359); its "Run
multiple requests in a single transaction" tip groups writes in change sets. OData v4.0 knows only the multipart
batch format (the JSON batch format is OData v4.01's), so that is what this module writes and reads:

- the request is ``POST <service root>/$batch`` with ``Content-Type: multipart/mixed; boundary=batch_<token>``
  (RFC 2046 multipart, CRLF line ends); each part is either one request (``Content-Type: application/http``,
  ``Content-Transfer-Encoding: binary``, then the request line, its headers, a blank line and its body) or a change
  set (``Content-Type: multipart/mixed; boundary=changeset_<token>``) of such parts, each with a ``Content-ID``
  unique in the batch (section 11.7.3);
- a change set is atomic (all its requests or none) and may not hold a GET, so every write goes in a change set
  of its own here: a refused posting is refused alone, and with ``Prefer: odata.continue-on-error`` (section
  8.2.8.3) the service goes on with the next part;
- the answer is ``multipart/mixed`` with one part per request part, in the order sent (section 11.7.4): an
  ``application/http`` response for a request, and for a change set either a ``multipart/mixed`` part of its
  responses or, when it failed, one ``application/http`` response (the failure) for the whole change set.
"""

from __future__ import annotations

import re

CRLF = b"\r\n"
_HTTP_PART = b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3})")
_CONTENT_TYPE = re.compile(rb"\r\ncontent-type:([^\r\n]*)", re.IGNORECASE)


class BatchFormatError(ValueError):
    """The answer is no multipart batch this module can read (the service spoke otherwise)."""


def encode_batch(requests: list[tuple[str, str, bytes | None]], boundary: str, changeset: str) -> bytes:
    """``(method, url, JSON body)`` requests as one multipart batch: a GET as a part of its own, any other request
    alone in a change set (``Content-ID`` its 1-based position). ``url`` is relative to the service root."""
    delimiter = b"--" + boundary.encode("ascii")
    inner = b"--" + changeset.encode("ascii")
    out: list[bytes] = []
    for position, (method, url, body) in enumerate(requests, 1):
        request = f"{method} {url} HTTP/1.1\r\nAccept: application/json\r\n".encode()
        if body is not None:
            request += b"Content-Type: application/json\r\n"
        request += CRLF + (body or b"") + CRLF
        if method == "GET":
            out.append(delimiter + CRLF + _HTTP_PART + CRLF + request)
        else:
            head = b"Content-Type: multipart/mixed; boundary=%s\r\n\r\n" % changeset.encode("ascii")
            part = _HTTP_PART + b"Content-ID: %d\r\n" % position + CRLF + request
            out.append(delimiter + CRLF + head + inner + CRLF + part + inner + b"--" + CRLF)
    out.append(delimiter + b"--" + CRLF)
    return b"".join(out)


def boundary_of(content_type: str) -> str:
    """The ``boundary`` parameter of a multipart content type."""
    if not content_type.lower().startswith("multipart/mixed"):
        raise BatchFormatError(f"not multipart/mixed: {content_type[:80]!r}")
    found = _BOUNDARY.search(content_type)
    if found is None:
        raise BatchFormatError("a multipart/mixed content type without a boundary")
    return found[1].strip()


def split_parts(body: bytes, boundary: str) -> list[tuple[str, bytes]]:
    """The parts of a multipart body (RFC 2046 section 5.1.1) as (its Content-Type, its content)."""
    pieces = (CRLF + body).split(b"\r\n--" + boundary.encode("latin-1"))
    parts: list[tuple[str, bytes]] = []
    for piece in pieces[1:]:
        if piece[:2] == b"--":
            return parts
        line_end = piece.find(CRLF)
        if line_end < 0 or piece[:line_end].strip(b" \t"):  # only transport padding may follow a delimiter
            raise BatchFormatError("a boundary delimiter not followed by a line end")
        head_end = piece.find(b"\r\n\r\n", line_end)
        if head_end < 0:
            raise BatchFormatError("a part without the blank line that ends its headers")
        found = _CONTENT_TYPE.search(piece, line_end, head_end + 2)
        parts.append((found[1].decode("latin-1").strip() if found else "", piece[head_end + 4 :]))
    raise BatchFormatError("a multipart body without its close delimiter")


def http_response(content: bytes) -> tuple[int, bytes]:
    """An ``application/http`` part's response: its status and its body."""
    found = _STATUS.match(content)
    if found is None:
        raise BatchFormatError("an application/http part without an HTTP status line")
    _, _, body = content.partition(CRLF + CRLF)
    return int(found[1]), body


def decode_batch(content_type: str, body: bytes) -> list[tuple[int, bytes]]:
    """A batch answer as one (status, body) per part sent, in order: a change set's one response, or the failure
    that stands for the whole change set."""
    answers: list[tuple[int, bytes]] = []
    for kind, content in split_parts(body, boundary_of(content_type)):
        if kind.lower().startswith("multipart/mixed"):
            inner = split_parts(content, boundary_of(kind))
            if len(inner) != 1:
                raise BatchFormatError(f"a change set of one request answered with {len(inner)} responses")
            kind, content = inner[0]
        if not kind.lower().startswith("application/http"):
            raise BatchFormatError(f"a part of type {kind[:60]!r}, not application/http")
        answers.append(http_response(content))
    return answers
