"""Several gateway worker processes on one port (``PSGW_WORKERS``): one event loop per core.

A gateway process runs one event loop, so it uses one core. With ``PSGW_WORKERS=N`` (``0``: one per core) the
process started becomes a small supervisor: it prepares what the workers share (the issuer's keys on disk, the
SQL schemas), then starts N ordinary gateway processes that each bind the same port with ``SO_REUSEPORT``, so
the kernel spreads connections among them. Each worker is a complete gateway, exactly like one instance of a
scale-out: the rate-limit budget is shared in Redis, the audit log and admin state in SQL, and admin changes
reach every worker through the same sync as between instances. The supervisor forwards SIGHUP (each worker
re-reads gateway.yaml) and SIGTERM/SIGINT (each drains its audit queue), and restarts a worker that dies.

Metrics use prometheus_client's multiprocess mode, so ``/metrics`` on any worker reports all of them.
Rate limits need Redis here: the in-process store would give every worker a budget of its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gateway import config as gateway_config
from gateway.config import ConfigError, GatewayConfig
from gateway.issuer import Issuer
from gateway.settings import GatewaySettings
from gateway.store import OverrideStore, create_engine, database_url
from policies.audit import SqlAuditStore
from policies.rate_limit import RateLimitConfig
from runtime import logs

log = logging.getLogger("gateway.workers")

# A worker that dies sooner than this after its start counts as crashing: restarts back off, up to a minute.
STABLE_AFTER_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 60.0


def worker_count(settings: GatewaySettings) -> int:
    return settings.workers if settings.workers > 0 else os.cpu_count() or 1


def check_shareable(config: GatewayConfig) -> None:
    """Refuse a configuration whose workers could not share their state."""
    rate = config.policy(RateLimitConfig)
    if rate.enabled and not rate.redis_url:
        raise ConfigError("PSGW_WORKERS > 1 needs policies.rate_limit.redis_url: with the in-process store each "
                          "worker would enforce a budget of its own")


async def _prepare_shared_state(config: GatewayConfig, settings: GatewaySettings, data_dir: Path) -> None:
    Issuer(config.issuer, data_dir)  # creates the signing key once, before N workers could race to
    engine = create_engine(database_url(settings.database_url or config.database_url, data_dir))
    try:
        await OverrideStore(engine).create_schema()
        await SqlAuditStore(engine).create_schema()
    finally:
        await engine.dispose()


class Supervisor:
    def __init__(self, settings: GatewaySettings, count: int) -> None:
        self.settings = settings
        self.count = count
        self.stopping = False
        self.metrics_dir = Path(tempfile.mkdtemp(prefix="psgw-metrics-"))
        self.workers: list[subprocess.Popen[bytes] | None] = [None] * count
        self.started_at = [0.0] * count
        self.failures = [0] * count
        self.restart_at = [0.0] * count

    def _spawn(self, index: int) -> None:
        env = {**os.environ, "PSGW_WORKERS": "1", "PSGW_REUSE_PORT": "true",
               "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir), "PSGW_WORKER_INDEX": str(index)}
        self.workers[index] = subprocess.Popen([sys.executable, "-m", "gateway"], env=env)
        self.started_at[index] = time.monotonic()
        log.info("gateway worker started", extra={"worker": index, "pid": self.workers[index].pid})  # type: ignore[union-attr]

    def _signal_all(self, signum: int) -> None:
        for worker in self.workers:
            if worker is not None and worker.poll() is None:
                worker.send_signal(signum)

    def run(self) -> int:
        signal.signal(signal.SIGHUP, lambda *_: self._signal_all(signal.SIGHUP))
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)
        try:
            for index in range(self.count):
                self._spawn(index)
            while not self.stopping:
                self._supervise_once()
                time.sleep(0.2)
            return self._wait_for_workers()
        finally:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def _stop(self, signum: int, _frame: object) -> None:
        log.info("gateway supervisor stopping its workers", extra={"signal": signal.Signals(signum).name})
        self.stopping = True
        self._signal_all(signal.SIGTERM)

    def _supervise_once(self) -> None:
        now = time.monotonic()
        for index, worker in enumerate(self.workers):
            if worker is not None:
                code = worker.poll()
                if code is None:
                    continue
                self._mark_dead(worker.pid)
                lived = now - self.started_at[index]
                self.failures[index] = 0 if lived >= STABLE_AFTER_SECONDS else self.failures[index] + 1
                delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** self.failures[index]) if self.failures[index] else 0.0
                log.error("gateway worker exited; restarting it", extra={
                    "worker": index, "pid": worker.pid, "exit_code": code, "restart_in_seconds": delay})
                self.workers[index] = None
                self.restart_at[index] = now + delay
            if self.workers[index] is None and now >= self.restart_at[index] and not self.stopping:
                self._spawn(index)

    def _mark_dead(self, pid: int) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, str(self.metrics_dir))

    def _wait_for_workers(self) -> int:
        worst = 0
        for worker in self.workers:
            if worker is None:
                continue
            try:
                code = worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                code = worker.wait()
            worst = worst or (code if code not in (0, -signal.SIGTERM) else 0)
        return worst


def supervise(settings: GatewaySettings) -> int:
    """Run ``worker_count(settings)`` gateway workers until SIGTERM/SIGINT; returns the exit status."""
    logs.configure("gateway", settings.log_level)
    count = worker_count(settings)
    try:
        config = gateway_config.load(settings.config_file)
        check_shareable(config)
    except ConfigError as exc:
        log.error("the gateway cannot start its workers: %s", exc)
        return 2
    asyncio.run(_prepare_shared_state(config, settings, Path(settings.data_dir)))
    log.info("gateway supervisor starting workers", extra={"workers": count})
    return Supervisor(settings, count).run()
