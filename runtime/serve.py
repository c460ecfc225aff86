"""Serve an ASGI app with uvicorn (uvloop + httptools), JSON logs, graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

from typing import Any

import uvicorn

from runtime import logs


def serve(app: Any, *, host: str, port: int, service: str, log_level: str = "INFO") -> None:
    logs.configure(service, log_level)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    uvicorn.Server(config).run()
