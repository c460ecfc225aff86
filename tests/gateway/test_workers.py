"""PSGW_WORKERS: several gateway processes on one port, sharing budgets, metrics and admin state."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from gateway.launcher import REPO_ROOT
from tests.gateway.test_rate_limits import PROJECT, limited_config
from tests.support.gateway import REDIS_URL, GatewayProcess, admin_headers, base_config, unique

pytestmark = pytest.mark.redis


def workers_of(gateway: GatewayProcess) -> set[int]:
    assert gateway.process is not None
    pid = gateway.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {int(child) for child in children}


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def answering_instances(gateway: GatewayProcess, *, client_id: str | None = None, probe: bool = False) -> set[str]:
    """The workers (host:pid) in the audit log; with ``probe``, after one more call on a new connection (an
    unauthenticated one: refused, audited, and it spends nobody's budget)."""
    if probe:
        httpx.get(gateway.url + PROJECT)
    params: dict[str, str | int] = {"limit": 100, **({"client_id": client_id} if client_id else {})}
    calls = httpx.get(gateway.url + "/admin/v1/audit/calls", headers=admin_headers(gateway), params=params).json()
    return {call["instance"] for call in calls["items"]}


def served(metrics_text: str, client: str) -> int:
    pattern = re.compile(r'^psgw_requests_total\{(.*)\} (\S+)$', re.MULTILINE)  # labels may hold braces
    return int(sum(float(value) for labels, value in pattern.findall(metrics_text)
                   if f'client="{client}"' in labels and 'route="/projects/{project_id}"' in labels))


def test_workers_share_the_port_one_exact_budget_and_one_metrics_view(
        gateways: Callable[..., GatewayProcess]) -> None:
    gateway = gateways(limited_config(unique("psgw-workers"), REDIS_URL), env={"PSGW_WORKERS": "2"})
    assert len(workers_of(gateway)) == 2
    wait_for(lambda: len(answering_instances(gateway, probe=True)) == 2, "both workers serving")
    token = gateway.token("process-tier")

    # A new connection per call, so the kernel spreads the calls over both workers.
    statuses = [httpx.get(gateway.url + PROJECT, headers={"Authorization": f"Bearer {token}"}).status_code
                for _ in range(24)]

    assert statuses.count(200) == 10, statuses  # the burst of the tier, not 10 per worker
    assert statuses.count(429) == 14
    # Each worker's audit entries name their process; both answered.
    wait_for(lambda: len(answering_instances(gateway, client_id="process-tier")) == 2,
             "both workers' audit entries of the budgeted calls")
    # Any worker answers a scrape with the calls of all of them.
    wait_for(lambda: served(httpx.get(gateway.url + "/metrics").text, "process-tier") == 24,
             "the metrics of both workers in one scrape")


def test_a_dead_worker_is_replaced_while_the_other_keeps_serving(gateways: Callable[..., GatewayProcess]) -> None:
    config = base_config()
    config["policies"]["rate_limit"].update(redis_url=REDIS_URL, key_prefix=unique("psgw-workers"))
    gateway = gateways(config, env={"PSGW_WORKERS": "2"})
    token = gateway.token("process-tier")
    wait_for(lambda: len(answering_instances(gateway, probe=True)) == 2, "both workers serving")
    before = workers_of(gateway)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    # Connections the kernel had already queued on the victim's socket die with it (as with any instance that
    # crashes); what matters is that every call after that is served by the other worker. Gone means reaped by
    # the supervisor: a zombie main thread may still have sibling threads holding the socket open.
    wait_for(lambda: not Path(f"/proc/{victim}").exists(), "the supervisor to reap the killed worker")

    statuses = [httpx.get(gateway.url + PROJECT, headers={"Authorization": f"Bearer {token}"}).status_code
                for _ in range(20)]

    assert set(statuses) == {200}, statuses
    wait_for(lambda: len(workers_of(gateway)) == 2 and victim not in workers_of(gateway), "a replacement worker")
    assert "gateway worker exited; restarting it" in gateway.log.read_text()

    everyone = before | workers_of(gateway)
    gateway.stop()  # SIGTERM to the supervisor: every worker drains and exits, and so does it
    assert gateway.process is not None and gateway.process.returncode == 0
    assert not [pid for pid in everyone if Path(f"/proc/{pid}").exists()], "a worker outlived the supervisor"


def test_workers_refuse_an_in_process_rate_limit_store(tmp_path: Path) -> None:
    config_file = tmp_path / "gateway.yaml"
    config = base_config()
    config["policies"]["rate_limit"]["redis_url"] = ""
    config_file.write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "gateway"], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=60, env={**os.environ, "PSGW_CONFIG_FILE": str(config_file),
                                             "PSGW_DATA_DIR": str(tmp_path), "PSGW_WORKERS": "2"})
    assert result.returncode != 0
    assert "PSGW_WORKERS > 1 needs policies.rate_limit.redis_url" in result.stdout + result.stderr
