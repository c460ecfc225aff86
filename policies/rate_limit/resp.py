"""A lean, pipelined Redis client for the rate limit's one command per call (``EVALSHA``).

Why not redis-py here: on the gateway's hot path its command machinery (connection pool checkout, retry and
health-check wrappers, stream writer, per-call timeout context) cost about a fifth of the gateway's CPU per
call (py-spy under wrk, bench/gateway.py). This client keeps one connection per gateway process and pipelines
every in-flight call on it: commands written in the same event-loop tick go out in one ``write``, replies are
parsed by hiredis (the parser redis-py itself uses) and handed to the waiting calls in order.

Failure semantics are the simple, safe ones: a call that gets no answer within ``timeout`` fails, and so does
the connection (the next call reconnects), so a stuck Redis never leaves replies misaligned with callers. URLs
are read by redis-py's own parser: ``redis://``, ``rediss://`` (TLS) and ``unix://``, with user, password, db.
Everything else that talks to Redis (events, admin) keeps using redis-py.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from typing import Any

import hiredis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url


class RespError(Exception):
    """Redis answered with an error reply (``-ERR ...``)."""


class RespUnavailable(ConnectionError):
    """No connection, a dropped connection or no answer in time: the command's effect is unknown."""


def encode_command(args: tuple[bytes | str | int, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        value = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(value), value))
    return b"".join(parts)


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader(replyError=RespError)
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.lost: Exception | None = None
        self._buffer: list[bytes] = []
        self._flush_scheduled = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RespUnavailable(f"redis closed the connection ({exc or 'EOF'})"))

    def fail(self, error: Exception) -> None:
        self.lost = error
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as exc:
                self.fail(RespUnavailable(f"redis sent a malformed reply: {exc}"))
                return
            if reply is False:
                return
            future = self.waiting.popleft()
            if not future.done():  # a caller that gave up has closed the connection; nothing else is skipped
                if isinstance(reply, RespError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)

    def send(self, payload: bytes, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Any]:
        future = loop.create_future()
        self.waiting.append(future)
        self._buffer.append(payload)
        if not self._flush_scheduled:  # one write per loop tick for every command queued in it
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(self._buffer))
        self._buffer.clear()


class RespClient:
    def __init__(self, url: str, *, timeout: float = 0.25) -> None:
        self.url = url
        self.timeout = timeout
        options = parse_url(url)
        self._options = options
        self._connection: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        options = self._options
        kind = options.get("connection_class")
        async with asyncio.timeout(self.timeout):
            if kind is UnixDomainSocketConnection:
                _, protocol = await loop.create_unix_connection(_Protocol, options["path"])
            else:
                tls = None
                if kind is SSLConnection:
                    tls = ssl.create_default_context()
                    if options.get("ssl_cert_reqs") in ("none", ssl.CERT_NONE):
                        tls.check_hostname = False
                        tls.verify_mode = ssl.CERT_NONE
                _, protocol = await loop.create_connection(
                    _Protocol, options.get("host", "localhost"), int(options.get("port", 6379)), ssl=tls)
            setup: list[asyncio.Future[Any]] = []
            if options.get("password"):
                credentials = ((options["username"],) if options.get("username") else ()) + (options["password"],)
                setup.append(protocol.send(encode_command(("AUTH", *credentials)), loop))
            if int(options.get("db") or 0):
                setup.append(protocol.send(encode_command(("SELECT", int(options["db"]))), loop))
            try:
                for future in setup:
                    await future
            except BaseException:
                protocol.fail(RespUnavailable("redis refused the connection setup"))
                raise
        return protocol

    async def _live(self) -> _Protocol:
        connection = self._connection
        if connection is not None and connection.lost is None:
            return connection
        if self._connecting is None:  # one connect for every caller that arrives meanwhile
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            connection = await asyncio.shield(connecting)
        except (OSError, TimeoutError, RespError) as exc:
            raise RespUnavailable(f"cannot connect to redis: {type(exc).__name__}: {exc}") from exc
        finally:
            if self._connecting is connecting and connecting.done():
                self._connecting = None
        self._connection = connection
        return connection

    async def execute(self, payload: bytes) -> Any:
        """Send one encoded command (see :func:`encode_command`) and return its reply; raises RespError for an
        error reply and RespUnavailable when the answer did not come."""
        connection = await self._live()
        loop = asyncio.get_running_loop()
        future = connection.send(payload, loop)
        timer = loop.call_later(self.timeout, self._expire, connection, future)
        try:
            return await future
        finally:
            timer.cancel()

    def _expire(self, connection: _Protocol, future: asyncio.Future[Any]) -> None:
        if not future.done():
            connection.fail(RespUnavailable(f"no answer from redis within {self.timeout:g}s"))

    async def aclose(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        if self._connection is not None:
            self._connection.fail(RespUnavailable("the client is closed"))
            self._connection = None
