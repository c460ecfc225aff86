"""Serve an ASGI app with uvicorn (uvloop + httptools), JSON logs, graceful shutdown on SIGTERM/SIGINT, and
OpenTelemetry export when ``PSGW_OTLP_ENDPOINT`` is set (spans still queued are sent at shutdown)."""

from __future__ import annotations

from typing import Any

import uvicorn

from runtime import logs, tracing
from runtime.settings import load_settings


def serve(app: Any, *, host: str, port: int, service: str, log_level: str = "INFO") -> None:
    logs.configure(service, log_level)
    tracing.configure(service, load_settings(tracing.TracingSettings))
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
    try:
        uvicorn.Server(config).run()
    finally:
        tracing.shutdown()
