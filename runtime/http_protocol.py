"""The HTTP/1.1 protocol every process serves with: uvicorn's httptools protocol, except for requests its parser
refuses.

llhttp (the parser behind httptools) refuses a malformed request before any ASGI code runs: Content-Length
together with Transfer-Encoding, two Content-Length headers (even equal ones), a control byte in a header, an
obsolete folded header line, a bad request line. uvicorn then writes a text/plain 400, logs a bare warning and
closes the connection. Here the answer is problem+json (type ``/catalog/problems/malformed-http``, with a
correlation id), one structured log line names the parser's reason and the peer, and
``psgw_http_malformed_requests_total{reason}`` counts it. The connection is still closed: after a framing error
nothing that follows on it can be trusted (request smuggling).

llhttp sets no limit on a request's head, so one connection could make a process buffer gigabytes of header
lines: a head (request line and headers) beyond ``MAX_REQUEST_HEAD_BYTES`` is answered ``431`` problem+json
(``request-head-too-large``), logged, counted under the same metric and the connection closed, before the app
sees the request. Bytes received while a head is incomplete are counted per read; only when they pass the limit
(a large read, or a head arriving in many) are the parsed request line and headers measured, so a common request
pays one addition per read.

A response of known length leaves in one write: uvicorn writes the head and the body separately, so every
response cost two sends and woke its client twice; on a machine where the client, the upstream and Redis share
the cores, the head's wake-up was where the gateway's loop lost its core most (py-spy under bench/gateway.py:
12% of the gateway's samples on the head's write, 1% on the body's). Streamed and chunked responses keep their
head going out at once.
"""

from __future__ import annotations

import logging
from typing import Any

import httptools
from prometheus_client import Counter
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from runtime import correlation
from runtime.problems import PROBLEM_CONTENT_TYPE, make_problem

log = logging.getLogger("runtime.http")

# 64 KiB: room for a few large tokens and cookies (h11 and Node allow 16 KiB, nginx 4 x 8 KiB).
MAX_REQUEST_HEAD_BYTES = 64 * 1024

MALFORMED_REQUESTS = Counter("psgw_http_malformed_requests_total",
                             "Requests the HTTP parser refused before the app saw them, by reason", ["reason"])

# llhttp's messages, folded into a few stable label values (the message itself goes to the log).
_REASONS = (
    ("Transfer-Encoding can't be present with Content-Length", "content_length_with_transfer_encoding"),
    ("Content-Length can't be present with Transfer-Encoding", "content_length_with_transfer_encoding"),
    ("Duplicate Content-Length", "duplicate_content_length"),
    ("Content-Length", "invalid_content_length"),
    ("Transfer-Encoding", "invalid_transfer_encoding"),
    ("header", "invalid_header"),
    ("method", "invalid_request_line"),
    ("URL", "invalid_request_line"),
    ("version", "invalid_request_line"),
)


def reason_of(message: str) -> str:
    for fragment, reason in _REASONS:
        if fragment.lower() in message.lower():
            return reason
    return "malformed"


class _HeldHead:
    """A response's transport while its head waits for the body: the first write (the head) is held and goes out
    with the next one; any other use of the transport sends the head first, so nothing is reordered or lost."""

    __slots__ = ("_cycle", "_head", "_transport")

    def __init__(self, cycle: Any, transport: Any, head: bytes | None = None) -> None:
        self._cycle = cycle
        self._transport = transport
        self._head: bytes | None = head

    def write(self, data: bytes) -> None:
        if self._head is None:
            self._head = bytes(data)
            return
        head, self._head = self._head, None
        self._cycle.transport = self._transport  # later writes go straight out
        self._transport.write(head + data)

    def release(self) -> None:
        """Send a head still held (a HEAD request's response has no body write) and step aside."""
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)
        if self._cycle.transport is self:
            self._cycle.transport = self._transport

    def close(self) -> None:
        self.release()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


# The bytes uvicorn's HEADER_RE and HEADER_VALUE_RE accept (both are single-byte classes), for bytes.translate:
# what is left after deleting them is what uvicorn would refuse.
_NAME_BYTES = bytes(b for b in range(256) if not HEADER_RE.match(bytes([b])))
_VALUE_BYTES = bytes(b for b in range(256) if not HEADER_VALUE_RE.match(bytes([b])))


def _fixed_length(message: dict[str, Any]) -> bool:
    return any(name.lower() == b"content-length" for name, _ in message.get("headers", ()))


class _OneWriteCycle(RequestResponseCycle):
    """uvicorn's request/response cycle with the head of a response of known length held for its body.

    A subclass, not a closure stored on the cycle: a closure over the cycle kept on the cycle made every request's
    cycle (and its Event, deque, dicts: ~13 objects) a reference cycle that only the garbage collector could free,
    which drove most of the gateway's collections and the objects full passes walk."""

    async def send(self, message: Any) -> None:
        if (message["type"] == "http.response.start" and not self.response_started
                and not self.waiting_for_100_continue):
            head = self._plain_head(message)
            if head is not None:
                self.transport = _HeldHead(self, self.transport, head)  # type: ignore[assignment]
                return
            if _fixed_length(message):
                self.transport = _HeldHead(self, self.transport)  # type: ignore[assignment]
        try:
            await super().send(message)
        except BaseException:
            self._release_head()
            raise
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self._release_head()  # the response is complete: nothing may stay held

    def _plain_head(self, message: Any) -> bytes | None:
        """The head uvicorn's send would write for this start message, with the cycle's state set as it sets it;
        None, with nothing changed, unless the response is the plain case: one Content-Length, no
        Transfer-Encoding or Connection header, valid names and values, no access log, nothing paused. Every
        other case goes through uvicorn's own send.

        uvicorn checks each header name and value with a regex search of its own: two searches per header,
        16 per gateway response, 3% of the gateway's instructions (callgrind). Here all names, then all values,
        are checked at once against the bytes those regexes accept (derived from them below)."""
        if self.access_log or self.disconnected or self.flow.write_paused:
            return None
        status = STATUS_LINE.get(message["status"])
        headers = self.default_headers + list(message.get("headers", ()))
        names = [name.lower() for name, _ in headers]
        if (status is None or names.count(b"content-length") != 1 or b"transfer-encoding" in names
                or b"connection" in names):
            return None
        values = [value for _, value in headers]
        if (b"".join([name for name, _ in headers]).translate(None, _NAME_BYTES)
                or b"".join(values).translate(None, _VALUE_BYTES)):
            return None  # a byte uvicorn refuses: its send refuses it the same way
        try:
            length = int(values[names.index(b"content-length")].decode())
        except ValueError:
            return None
        content = [status]
        for name, value in zip(names, values, strict=True):
            content += (name, b": ", value, b"\r\n")
        if not self.keep_alive:
            content.append(b"connection: close\r\n")
        content.append(b"\r\n")
        self.response_started = True
        self.waiting_for_100_continue = False
        self.expected_content_length = length
        self.chunked_encoding = False
        return b"".join(content)

    def _release_head(self) -> None:
        holder = self.transport
        if isinstance(holder, _HeldHead):
            holder.release()


class _HeadTooLarge(Exception):
    """Raised from the parser's headers-complete callback: the parser stops, and no request cycle is made."""


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's protocol with parse errors answered as problem+json, logged and counted, and a response of known
    length written in one piece."""

    # Bytes received since the current request's head began, while it is incomplete (True until its headers are).
    _in_head = True
    _head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._head_bytes > MAX_REQUEST_HEAD_BYTES and len(self.url) + sum(
                len(name) + len(value) + 4 for name, value in self.headers) > MAX_REQUEST_HEAD_BYTES:
            raise _HeadTooLarge
        super().on_headers_complete()
        # The cycle was just made and its task not yet run, so its send is looked up on the new class. (An
        # upgrade returns before making one: the previous cycle, already switched, stays.)
        if type(self.cycle) is RequestResponseCycle:
            self.cycle.__class__ = _OneWriteCycle

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0  # the next request on this connection starts with its head

    def data_received(self, data: bytes) -> None:
        # As HttpToolsProtocol.data_received (uvicorn 0.55), but the parser's error reaches refuse_malformed and
        # an oversized head is refused.
        self._unset_keepalive_if_required()
        if self._in_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse_head_too_large()
            else:
                self.refuse_malformed(str(exc) or type(exc).__name__)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_head and self._head_bytes > MAX_REQUEST_HEAD_BYTES:
            self._in_head = False
            self._refuse_head_too_large()

    def _refuse_head_too_large(self) -> None:
        self._refuse(431, b"Request Header Fields Too Large", "request_head_too_large",
                     f"more than {MAX_REQUEST_HEAD_BYTES} bytes of request line and headers",
                     f"the request's head is larger than {MAX_REQUEST_HEAD_BYTES} bytes",
                     slug="request-head-too-large", title="Request head too large")

    def refuse_malformed(self, message: str) -> None:
        self._refuse(400, b"Bad Request", reason_of(message), message,
                     f"the request is not valid HTTP/1.1: {message}", slug="malformed-http",
                     title="Malformed HTTP request")

    def _refuse(self, status: int, phrase: bytes, reason: str, message: str, detail: str, *, slug: str,
                title: str) -> None:
        MALFORMED_REQUESTS.labels(reason).inc()
        trace = correlation.from_headers(None, None)
        log.warning("malformed HTTP request refused by the parser", extra={
            "reason": reason, "parser_error": message, "correlation_id": trace.correlation_id,
            "client_addr": self.client[0] if self.client else None})
        body = make_problem(status, detail, slug=slug, title=title, correlation_id=trace.correlation_id,
                            reason=reason).to_json()
        head = [b"HTTP/1.1 %d %s\r\n" % (status, phrase)]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: ", PROBLEM_CONTENT_TYPE.encode(), b"\r\ncontent-length: ", str(len(body)).encode(),
                 b"\r\nx-correlation-id: ", trace.correlation_id.encode(), b"\r\nconnection: close\r\n\r\n", body]
        self.transport.write(b"".join(head))
        self.transport.close()
