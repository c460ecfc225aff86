"""A response of known length leaves in one write; every other response is unchanged, byte for byte.

The protocol is uvicorn's (runtime/http_protocol.py), driven here through a recording transport so that the
writes themselves can be counted: the count is what the change is about (each write wakes the client).
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from runtime.http_protocol import ProblemHttpToolsProtocol

BODY = b'{"items":[],"next_cursor":null}'


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


release = asyncio.Event()

LENGTH = b"%d" % len(BODY)
VARIANTS: dict[str, list[tuple[bytes, bytes]]] = {
    "plain": [(b"content-type", b"application/json"), (b"content-length", LENGTH), (b"x-correlation-id", b"c-1")],
    "upper-case": [(b"Content-Length", LENGTH), (b"X-Ratelimit", b'"tier";r=999;t=1')],
    "connection-close": [(b"content-length", LENGTH), (b"connection", b"close")],
    "two-lengths": [(b"content-length", LENGTH), (b"content-length", LENGTH)],
    "chunked-too": [(b"content-length", LENGTH), (b"transfer-encoding", b"chunked")],
    "bad-value": [(b"content-length", LENGTH), (b"x-injected", b"a\r\nset-cookie: b")],
    "bad-name": [(b"content-length", LENGTH), (b"x bad", b"1")],
    "bad-length": [(b"content-length", b"ten")],
}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/fixed":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]})
        await send({"type": "http.response.body", "body": BODY})
    elif path == "/fixed-in-parts":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b"def"})
    elif path == "/stream":  # chunked: the head must not wait for the body
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await release.wait()
        await send({"type": "http.response.body", "body": b"late"})
    elif path.startswith("/head/"):  # response heads uvicorn's own send must write byte for byte the same
        headers = VARIANTS[path.removeprefix("/head/")]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": BODY})
    elif path == "/broken":  # a head and then a failure: the head goes out, then the connection closes
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        raise RuntimeError("the app failed after its head")


async def serve_one(request: bytes, *, until: Any, protocol_class: type[HttpToolsProtocol] = ProblemHttpToolsProtocol
                    ) -> RecordingTransport:
    config = uvicorn.Config(app, http=protocol_class, lifespan="off", log_config=None, access_log=False)
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={},
                              _loop=asyncio.get_running_loop())
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    for _ in range(1000):  # turns of the loop, not time: the app runs to its next await each turn
        if until(transport):
            break
        await asyncio.sleep(0)
    return transport


def head_and_body(transport: RecordingTransport) -> tuple[bytes, bytes]:
    head, _, body = b"".join(transport.writes).partition(b"\r\n\r\n")
    return head, body


async def test_a_response_of_known_length_is_written_once_head_and_body_together() -> None:
    transport = await serve_one(b"GET /fixed HTTP/1.1\r\nHost: gw\r\n\r\n", until=lambda t: BODY in b"".join(t.writes))
    assert len(transport.writes) == 1
    head, body = head_and_body(transport)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length: %d" % len(BODY) in head
    assert body == BODY and not transport.closed


async def test_a_head_request_still_gets_its_head_and_no_body() -> None:
    transport = await serve_one(b"HEAD /fixed HTTP/1.1\r\nHost: gw\r\n\r\n", until=lambda t: t.writes)
    assert len(transport.writes) == 1
    head, body = head_and_body(transport)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and body == b""


async def test_a_body_sent_in_parts_keeps_its_order_and_its_length() -> None:
    transport = await serve_one(b"GET /fixed-in-parts HTTP/1.1\r\nHost: gw\r\n\r\n",
                                until=lambda t: b"def" in b"".join(t.writes))
    assert len(transport.writes) == 2  # the head rides with the first part
    assert head_and_body(transport)[1] == b"abcdef"


async def test_a_streamed_response_sends_its_head_before_its_body_exists() -> None:
    release.clear()
    transport = await serve_one(b"GET /stream HTTP/1.1\r\nHost: gw\r\n\r\n", until=lambda t: t.writes)
    assert transport.writes and transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding: chunked" in transport.writes[0]
    release.set()
    for _ in range(100):
        await asyncio.sleep(0)
    assert b"4\r\nlate\r\n0\r\n\r\n" in b"".join(transport.writes)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_an_app_failing_after_its_head_still_gets_the_head_out_before_the_close() -> None:
    transport = await serve_one(b"GET /broken HTTP/1.1\r\nHost: gw\r\n\r\n", until=lambda t: t.closed)
    assert transport.closed
    assert transport.writes and transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")


async def test_a_served_request_is_freed_by_reference_counting_alone() -> None:
    # A request's cycle that only the garbage collector can free makes collections frequent and long under load.
    gc.collect()
    gc.disable()
    try:
        config = uvicorn.Config(app, http=ProblemHttpToolsProtocol, lifespan="off", log_config=None,
                                access_log=False)
        protocol = ProblemHttpToolsProtocol(config=config, server_state=ServerState(), app_state={},
                                            _loop=asyncio.get_running_loop())
        transport = RecordingTransport()
        protocol.connection_made(transport)
        protocol.data_received(b"GET /fixed HTTP/1.1\r\nHost: gw\r\n\r\n")
        for _ in range(100):
            await asyncio.sleep(0)
        assert BODY in b"".join(transport.writes)
        cycle = weakref.ref(protocol.cycle)
        protocol.connection_lost(None)
        protocol.cycle = None  # type: ignore[assignment]  # as the next request on the connection replaces it
        assert cycle() is None
    finally:
        gc.enable()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("version", ["1.1", "1.0"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_every_response_head_is_byte_for_byte_what_uvicorn_writes(variant: str, version: str,
                                                                       method: str) -> None:
    request = f"{method} /head/{variant} HTTP/{version}\r\nHost: gw\r\n\r\n".encode()

    def done(transport: RecordingTransport) -> bool:
        return transport.closed or BODY in b"".join(transport.writes) or (method == "HEAD" and bool(transport.writes))

    ours = await serve_one(request, until=done)
    theirs = await serve_one(request, until=done, protocol_class=HttpToolsProtocol)
    for _ in range(20):  # let both settle (a refused head closes the connection after the 500)
        await asyncio.sleep(0)
    assert b"".join(ours.writes) == b"".join(theirs.writes)
    assert ours.closed == theirs.closed
    if variant == "plain":
        assert len(ours.writes) == 1
