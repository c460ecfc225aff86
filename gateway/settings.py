"""Settings of the gateway process (the policies themselves live in gateway.yaml)."""

from __future__ import annotations

from typing import Literal

import msgspec


class GatewaySettings(msgspec.Struct, kw_only=True):
    config_file: str = "gateway.yaml"
    data_dir: str = ".data"
    host: str | None = None  # overrides gateway.yaml listen.host
    port: int | None = None  # overrides gateway.yaml listen.port
    log_level: str = "INFO"
    # The HTTP server, chosen by bench/gateway.py, which measures both with the full chain in one run.
    server: Literal["granian", "uvicorn"] = "uvicorn"
    # PSGW_DATABASE_URL: PostgreSQL for the audit log and admin state (else gateway.yaml, else SQLite).
    database_url: str = ""
    # PSGW_WORKERS: gateway processes on this port, one event loop each (0: one per core); gateway/workers.py.
    workers: int = 1
    # Set by the supervisor for its workers: bind with SO_REUSEPORT so they share the port.
    reuse_port: bool = False
    # PSGW_ENV: "production" refuses to start while any client still has the embedded demo's public secret.
    env: str = "development"
