"""The admin API's own listener (``admin_listen``): loopback by default, apart from the public API listener.

With ``admin_listen.port`` set, ``/admin/v1`` (and the token endpoint the CLI signs in with) is served on that
address only, and the API listener answers 404 for ``/admin``. Without a port the admin API stays on the API
listener only while that listener is loopback (the embedded default, where the two are equally private); on a
non-loopback API listener it is then served nowhere, so a cluster never exposes it by accident.

The listener is a second uvicorn server in the gateway's own event loop, sharing its state: no lifespan of its
own (the gateway's already ran) and no signal handlers (the API server owns the process's signals; the gateway
stops this one when it stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from gateway.config import AdminListen, is_loopback
from runtime.problems import PROBLEM_CONTENT_TYPE, make_problem

log = logging.getLogger("gateway.admin_listener")

# What the admin listener serves: the admin API, and what a security team's CLI needs to reach it.
ADMIN_PATHS = ("/admin/", "/oauth2/token", "/healthz", "/.well-known/")


def admin_on_api_listener(admin: AdminListen, api_host: str) -> bool:
    return admin.port is None and is_loopback(api_host)


async def not_found(scope: dict[str, Any], send: Any, detail: str) -> None:
    body = make_problem(404, detail, instance=scope["path"]).to_json()
    await send({"type": "http.response.start", "status": 404,
                "headers": [(b"content-type", PROBLEM_CONTENT_TYPE.encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the API server owns SIGTERM/SIGINT; the gateway stops this one on its way out


class AdminListener:
    def __init__(self, app: Any, listen: AdminListen, *, reuse_port: bool = False) -> None:
        self.app = app
        self.listen = listen
        self.reuse_port = reuse_port
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(ADMIN_PATHS):
            await not_found(scope, send, "this is the admin listener: only /admin/v1 is served here")
            return
        await self.app(scope, receive, send)

    async def start(self) -> None:
        assert self.listen.port is not None
        host = self.listen.host
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.reuse_port:  # PSGW_WORKERS: every worker serves the admin port too
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, self.listen.port))  # fails the gateway's start-up loudly when the port is taken
        config = uvicorn.Config(self, lifespan="off", log_config=None, access_log=False, http="httptools",
                                server_header=False, timeout_graceful_shutdown=5)
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="admin-listener")
        log.info("admin API listening", extra={"host": host, "port": self.listen.port})

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 10)
