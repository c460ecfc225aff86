"""The HTTP/1.1 protocol every process serves with: uvicorn's httptools protocol, except for requests its parser
refuses.

llhttp (the parser behind httptools) refuses a malformed request before any ASGI code runs: Content-Length
together with Transfer-Encoding, two Content-Length headers (even equal ones), a control byte in a header, an
obsolete folded header line, a bad request line. uvicorn then writes a text/plain 400, logs a bare warning and
closes the connection. Here the answer is problem+json (type ``/catalog/problems/malformed-http``, with a
correlation id), one structured log line names the parser's reason and the peer, and
``psgw_http_malformed_requests_total{reason}`` counts it. The connection is still closed: after a framing error
nothing that follows on it can be trusted (request smuggling).
"""

from __future__ import annotations

import logging

import httptools
from prometheus_client import Counter
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from runtime import correlation
from runtime.problems import PROBLEM_CONTENT_TYPE, make_problem

log = logging.getLogger("runtime.http")

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


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's protocol with parse errors answered as problem+json, logged and counted."""

    def data_received(self, data: bytes) -> None:
        # As HttpToolsProtocol.data_received (uvicorn 0.55), but the parser's error reaches refuse_malformed.
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.refuse_malformed(str(exc) or type(exc).__name__)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def refuse_malformed(self, message: str) -> None:
        reason = reason_of(message)
        MALFORMED_REQUESTS.labels(reason).inc()
        trace = correlation.from_headers(None, None)
        log.warning("malformed HTTP request refused by the parser", extra={
            "reason": reason, "parser_error": message, "correlation_id": trace.correlation_id,
            "client_addr": self.client[0] if self.client else None})
        body = make_problem(400, f"the request is not valid HTTP/1.1: {message}", slug="malformed-http",
                            title="Malformed HTTP request", correlation_id=trace.correlation_id,
                            reason=reason).to_json()
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: ", PROBLEM_CONTENT_TYPE.encode(), b"\r\ncontent-length: ", str(len(body)).encode(),
                 b"\r\nx-correlation-id: ", trace.correlation_id.encode(), b"\r\nconnection: close\r\n\r\n", body]
        self.transport.write(b"".join(head))
        self.transport.close()
