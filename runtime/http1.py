"""A small HTTP/1.1 keep-alive client for hot-path calls: asyncio protocols + httptools.

Used by the gateway's proxy (its upstream pools) and by every tier's :class:`runtime.downstream.Downstream`
(tier-to-gateway and tier-to-vendor calls). Why not httpx here: on the gateway's hot path httpx's connection
pool cost most of the time per call (bench/gateway.py measured ~500 req/s through httpx against ~7-13k through
this pool on the same machine; bench/layers.py found the same in the tiers: httpx's pool checks every pooled
connection's socket on each request). This client does only what those calls need: one origin, persistent
connections, a bounded pool with a bounded wait, Content-Length and chunked responses (parsed by httptools, the
parser uvicorn uses), timeouts on connect and on the whole exchange, and errors that say whether the request
could have reached the upstream. Calls where speed does not matter (token fetches, JWKS, CLIs) keep httpx.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
import time
from dataclasses import dataclass

import httptools

MAX_RESPONSE_BYTES = 32 * 1024 * 1024


class UpstreamError(Exception):
    """Base of every failure to get a response."""

    # True when the request may have been processed upstream (bytes were sent on a live connection).
    maybe_processed = False


class ConnectFailed(UpstreamError):
    """No connection could be opened: the request never left."""


class ConnectTimedOut(UpstreamError):
    """Opening a connection took longer than the connect timeout: the request never left."""


class ResponseTimedOut(UpstreamError):
    maybe_processed = True


class PoolSaturated(UpstreamError):
    """Every connection is busy and the wait for one is full or too long: the request never left.

    Raised instead of queueing without bound, so an overloaded downstream gets a fast refusal (the caller answers
    503 with Retry-After) rather than a pile of requests that all time out."""


class ConnectionDropped(UpstreamError):
    """The upstream closed the connection or sent garbage before the response was complete."""

    def __init__(self, message: str, *, reused: bool, got_bytes: bool) -> None:
        super().__init__(message)
        # A reused keep-alive connection that died before any response byte most likely died idle: the server
        # closed it as we wrote. Safe to retry for idempotent requests.
        self.reused = reused
        self.got_bytes = got_bytes
        self.maybe_processed = True


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]  # names lower-cased
    body: bytes

    def header(self, name: bytes) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None


class _Connection(asyncio.Protocol):
    """One persistent connection; at most one request in flight (no pipelining)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = time.monotonic()
        self.used = 0
        self._parser: httptools.HttpResponseParser | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._size = 0
        self._got_bytes = False
        self._head_only = False
        self._keep_alive = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionDropped("the upstream closed the connection", reused=self.used > 1,
                                     got_bytes=self._got_bytes))

    def data_received(self, data: bytes) -> None:
        if self._parser is None:  # bytes nobody asked for: the connection is not usable any more
            self.close()
            return
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ConnectionDropped("the upstream tried to switch protocols", reused=False, got_bytes=True))
        except httptools.HttpParserError as exc:
            self._fail(ConnectionDropped(f"malformed response from the upstream: {exc}", reused=False,
                                         got_bytes=True))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if self._head_only:
            self._complete()

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_RESPONSE_BYTES:
            self._fail(ConnectionDropped("the upstream response is too large", reused=False, got_bytes=True))
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if not self._head_only:
            self._complete()

    def _complete(self) -> None:
        parser = self._parser
        assert parser is not None
        self._keep_alive = parser.should_keep_alive()
        self.status = parser.get_status_code()
        self._parser = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, error: UpstreamError) -> None:
        self._parser = None
        self.close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)

    def _time_out(self, waiter: asyncio.Future[None], timeout: float, origin: str) -> None:
        if not waiter.done():
            self._parser = None
            self.close()
            waiter.set_exception(ResponseTimedOut(f"no response from {origin} within {timeout:g}s"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def exchange(self, request: bytes, head_only: bool, deadline_seconds: float, origin: str) -> Response:
        """Write the request and read its response, all within ``deadline_seconds``."""
        assert self.transport is not None
        self.used += 1
        self._headers, self._body, self._size, self._got_bytes = [], [], 0, False
        self._head_only = head_only
        self._parser = httptools.HttpResponseParser(self)
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        self.transport.write(request)
        # A timer handle rather than asyncio.timeout(): same effect, a fraction of the cost per call.
        timer = loop.call_later(deadline_seconds, self._time_out, waiter, deadline_seconds, origin)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        if not self._keep_alive:
            self.close()
        self.idle_since = time.monotonic()
        return Response(self.status, self._headers, b"".join(self._body))


def _give_up(waiter: asyncio.Future[None], origin: str, seconds: float) -> None:
    if not waiter.done():
        waiter.set_exception(PoolSaturated(f"{origin}: no connection free within {seconds:g}s"))


class Http1Pool:
    """Persistent connections to one origin, at most ``max_connections`` open; callers queue beyond that."""

    def __init__(self, host: str, port: int, *, max_connections: int = 100, connect_timeout: float = 2.0,
                 response_timeout: float = 10.0, idle_seconds: float = 4.0,
                 tls: ssl.SSLContext | None = None, max_waiting: int | None = None,
                 max_wait_seconds: float | None = None) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.response_timeout = response_timeout
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        # Below uvicorn's default keep-alive (5 s), so we drop an idle connection before the server does.
        self.idle_seconds = idle_seconds
        # Back-pressure (None: unbounded, the proxy's choice): at most this many callers wait for a connection,
        # each at most this long; beyond either, PoolSaturated.
        self.max_waiting = max_waiting
        self.max_wait_seconds = max_wait_seconds
        self._origin = f"{host}:{port}"
        self._host_header = self._origin.encode()
        self._idle: collections.deque[_Connection] = collections.deque()
        self._open = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False

    @property
    def open_connections(self) -> int:
        return self._open

    async def _acquire(self) -> _Connection:
        while True:
            now = time.monotonic()
            while self._idle:
                connection = self._idle.pop()  # the most recently used: warmest, least likely to have expired
                if not connection.closed and now - connection.idle_since < self.idle_seconds:
                    return connection
                connection.close()
                self._open -= 1
            if self._open < self.max_connections:
                break
            if self.max_waiting is not None and len(self._waiters) >= self.max_waiting:
                raise PoolSaturated(f"{self._origin}: all {self.max_connections} connections busy and "
                                    f"{len(self._waiters)} calls waiting")
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()
            self._waiters.append(waiter)
            timer = None
            if self.max_wait_seconds is not None:
                timer = loop.call_later(self.max_wait_seconds, _give_up, waiter, self._origin, self.max_wait_seconds)
            try:
                await waiter
            except PoolSaturated:
                with contextlib.suppress(ValueError):  # already dropped by _wake_one
                    self._waiters.remove(waiter)
                raise
            finally:
                if timer is not None:
                    timer.cancel()
                if not waiter.done():
                    waiter.cancel()
        self._open += 1
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, connection = await asyncio.get_running_loop().create_connection(
                    _Connection, self.host, self.port, ssl=self.tls, server_hostname=self.host if self.tls else None)
        except TimeoutError as exc:
            self._release_slot()
            raise ConnectTimedOut(f"no connection to {self.host}:{self.port} within {self.connect_timeout:g}s") \
                from exc
        except OSError as exc:
            self._release_slot()
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}") from exc
        return connection

    def _release_slot(self) -> None:
        self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _give_back(self, connection: _Connection) -> None:
        if connection.closed or self._closed:
            connection.close()
            self._release_slot()
            return
        self._idle.append(connection)
        self._wake_one()

    def encode(self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
        parts = [method.encode("ascii"), b" ", target.encode("latin-1"), b" HTTP/1.1\r\nhost: ", self._host_header]
        if body or method in ("POST", "PUT", "PATCH"):
            parts += [b"\r\ncontent-length: ", str(len(body)).encode()]
        parts.append(b"\r\n")
        for name, value in headers:
            parts += [name, b": ", value, b"\r\n"]
        parts.append(b"\r\n")
        if body:
            parts.append(body)
        return b"".join(parts)

    async def request(self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes) -> Response:
        """Send one request; ``headers`` must not carry host, content-length or hop-by-hop headers.

        ``response_timeout`` bounds the whole exchange once connected (request written, response read).
        """
        payload = self.encode(method, target, headers, body)
        connection = await self._acquire()
        try:
            response = await connection.exchange(payload, method == "HEAD", self.response_timeout, self._origin)
        except BaseException:
            connection.close()
            raise
        finally:
            self._give_back(connection)
        return response

    async def aclose(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()
            self._open -= 1
        for waiter in self._waiters:
            if not waiter.done():
                waiter.cancel()
