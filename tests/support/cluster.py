"""The scale-out topology of the reliability tests (tests/reliability/conftest.py starts it once per session):

    client -> balancer -> gateway-1 | gateway-2 -> balancer -> <tier>-1 | <tier>-2  (system, process, experience)

every process a real one on loopback, sharing one fresh PostgreSQL database, a Redis server of the session's own
(on a free port, so a test may restart it without touching the machine's shared Redis), and an OTLP/HTTP
collector stand-in receiving every process's spans. The tests use :class:`Cluster` like the session stack.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from gateway.launcher import REPO_ROOT, Stack
from tests.support.gateway import free_port
from tests.support.stack import RunningStack

# The balancer and the collector stand-in: scripts run as their own processes.
SCRIPTS = REPO_ROOT / "tests" / "reliability"

# The rate-limit probe: a client of its own with a small, sustained budget, so "within 5% of the configured
# value" is measurable in seconds.
PROBE_CLIENT = "rate-probe"
PROBE_RATE = 25.0
PROBE_BURST = 25
TIERS = ("system", "process", "experience")


class RedisServer:
    """A redis-server process of our own (no persistence: a restart loses every key, as a crash would)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        log = (self.directory / f"redis-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


class ServiceProcess:
    """A helper process (balancer, collector) run from this directory's scripts."""

    def __init__(self, script: str, directory: Path, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / f"{Path(script).stem}-{self.port}.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, str(SCRIPTS / script), str(self.port), *args],
                                            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Cluster(RunningStack):
    """The started topology, usable like the session stack (``client``, ``token``) plus its moving parts."""

    def __init__(self, stack: Stack, redis_server: RedisServer, collector: ServiceProcess, database_url: str,
                 replicas: dict[str, list[str]]) -> None:
        super().__init__(stack)
        self.redis = redis_server
        self.collector = collector
        self.database_url = database_url
        self.replicas = replicas

    def spans(self) -> list[dict[str, Any]]:
        spans: list[dict[str, Any]] = httpx.get(self.collector.url + "/spans", timeout=10).json()
        return spans

    def metrics(self, name: str) -> str:
        return httpx.get(self.stack.url(name) + "/metrics", timeout=10).text


def cluster_config(directory: Path) -> Path:
    config: dict[str, Any] = yaml.safe_load((REPO_ROOT / "gateway.yaml").read_text())
    config["sla_tiers"]["probe"] = {"requests_per_second": PROBE_RATE, "burst": PROBE_BURST}
    config["clients"].append({"id": PROBE_CLIENT, "name": "Rate-limit probe", "layer": "process",
                              "secret_hash": "sha256:" + "0" * 64, "scopes": ["psa:read"], "sla_tier": "probe"})
    path = directory / "gateway.cluster.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
