"""Serving the gateway process: uvicorn (uvloop + httptools) by default, granian as the measured alternative.

The gateway's hot path is an ASGI callable; what serves it matters as much as what it does, so
bench/gateway.py measures both with the full policy chain in the same run. On a bare proxy granian's Rust
HTTP layer was faster; with the full chain uvicorn came out ahead, hence the default.

Granian runs *embedded* in this process rather than as a master with worker processes: the gateway owns
its signals (SIGHUP reloads gateway.yaml and refuses a bad file while the old state keeps serving, where
granian's own SIGHUP would respawn workers whatever the file says), its lifespan (the audit drain on
SIGTERM) and its one event loop. Scale out with more gateway processes behind a Service or load balancer.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import uvloop

from runtime import logs, tracing
from runtime.serve import serve as serve_with_uvicorn
from runtime.settings import load_settings


def serve(app: Any, *, host: str, port: int, server: str, log_level: str, reuse_port: bool = False) -> None:
    if server == "uvicorn":
        serve_with_uvicorn(app, host=host, port=port, service="gateway", log_level=log_level, reuse_port=reuse_port)
        return
    if reuse_port:
        raise SystemExit("PSGW_WORKERS > 1 runs on uvicorn (PSGW_SERVER=uvicorn): embedded granian cannot share a port")
    logs.configure("gateway", log_level)
    tracing.configure("gateway", load_settings(tracing.TracingSettings))
    try:
        uvloop.run(_serve_granian(app, host, port))
    finally:
        tracing.shutdown()


async def _serve_granian(app: Any, host: str, port: int) -> None:
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server.embed import Server

    server = Server(app, address=host, port=port, interface=Interfaces.ASGI, log_enabled=True,
                    log_level=LogLevels.warning, backlog=2048, websockets=False)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop)
    await server.serve()
