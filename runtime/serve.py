"""Serve an ASGI app with uvicorn (uvloop + httptools), JSON logs, graceful shutdown on SIGTERM/SIGINT, and
OpenTelemetry export when ``PSGW_OTLP_ENDPOINT`` is set (spans still queued are sent at shutdown)."""

from __future__ import annotations

import socket
from typing import Any

import uvicorn

from runtime import logs, tracing
from runtime.http_protocol import ProblemHttpToolsProtocol
from runtime.settings import load_settings


def serve(app: Any, *, host: str, port: int, service: str, log_level: str = "INFO", reuse_port: bool = False) -> None:
    """``reuse_port``: bind with SO_REUSEPORT, so that several worker processes share the port (the kernel
    spreads connections among them)."""
    logs.configure(service, log_level)
    tracing.configure(service, load_settings(tracing.TracingSettings))
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=ProblemHttpToolsProtocol,  # httptools; a request its parser refuses gets problem+json
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        server_header=False,
        # The client address is the TCP peer. Which X-Forwarded-For hops to believe is each policy's own
        # ``trusted_proxies`` (ip_allow, sign-in attempts); uvicorn's default would believe any from 127.0.0.1.
        proxy_headers=False,
    )
    sockets = None
    if reuse_port:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.set_inheritable(True)
        sockets = [sock]
    try:
        uvicorn.Server(config).run(sockets=sockets)
    finally:
        tracing.shutdown()
