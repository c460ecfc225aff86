"""Rate limits and quotas shared exactly by two gateway instances through Redis, per client and per person;
Retry-After agreeing with the RateLimit header; fail-open, fail-closed and readiness."""

from __future__ import annotations

import itertools
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.gateway import REDIS_URL, GatewayProcess, base_config, free_port, unique

PROJECT = "/system/psa/v1/projects/prj_4001"
ASSIGNMENTS = "/experience/mobile-time/v2/me/assignments"

pytestmark = pytest.mark.redis


def limited_config(prefix: str, redis_url: str, failure_mode: str = "open") -> dict[str, Any]:
    config = base_config()
    config["sla_tiers"]["burst-probe"] = {"requests_per_second": 0.001, "burst": 10}
    config["sla_tiers"]["quota-probe"] = {"requests_per_second": 1000, "burst": 1000, "daily_quota": 7}
    # The mobile app's budget is large; each consultant's share of it is 5 calls.
    config["sla_tiers"]["silver"]["per_subject"] = {"requests_per_second": 0.001, "burst": 5}
    for client in config["clients"]:
        if client["id"] == "process-tier":
            client["sla_tier"] = "burst-probe"
        if client["id"] == "experience-tier":
            client["sla_tier"] = "quota-probe"
    config["policies"]["rate_limit"].update(redis_url=redis_url, key_prefix=prefix, failure_mode=failure_mode)
    return config


@pytest.fixture(scope="module")
def pair(module_gateways: Callable[..., GatewayProcess], tmp_path_factory: pytest.TempPathFactory
         ) -> tuple[GatewayProcess, GatewayProcess]:
    """Two gateway instances sharing Redis (a key prefix of their own) and one SQLite file."""
    config = limited_config(unique("psgw-test"), REDIS_URL)
    shared = tmp_path_factory.mktemp("shared")
    return module_gateways(config, data_dir=shared), module_gateways(config, data_dir=shared)


def test_two_instances_share_one_exact_budget(pair: tuple[GatewayProcess, GatewayProcess]) -> None:
    first, second = pair
    token = first.token("process-tier")
    urls = itertools.cycle([first.url, second.url])

    statuses = [httpx.get(next(urls) + PROJECT, headers={"Authorization": f"Bearer {token}"}).status_code
                for _ in range(24)]

    assert statuses.count(200) == 10, statuses  # the burst, not 10 per instance
    assert statuses.count(429) == 14


def rate_limit_resets(header: str) -> dict[str, tuple[int, int]]:
    """``"tier";r=0;t=999, "day";r=5;t=80000`` -> {"tier": (0, 999), "day": (5, 80000)}."""
    found = {}
    for item in header.split(","):
        name, *params = item.strip().split(";")
        values = dict(p.split("=", 1) for p in params)
        found[name.strip('"')] = (int(values["r"]), int(values["t"]))
    return found


def test_retry_after_agrees_with_the_ratelimit_header(pair: tuple[GatewayProcess, GatewayProcess]) -> None:
    first, _ = pair
    with first.client("process-tier") as process:
        for _ in range(11):  # the burst is 10 (perhaps spent already by the test above)
            if (refused := process.get(PROJECT)).status_code == 429:
                break

    assert refused.status_code == 429
    resets = rate_limit_resets(refused.headers["ratelimit"])
    exhausted = {name: t for name, (r, t) in resets.items() if r == 0}
    assert list(exhausted) == ["tier"], resets  # only the limit that refused shows r=0
    assert int(refused.headers["retry-after"]) == exhausted["tier"] == refused.json()["retry_after"]


def test_one_consultant_cannot_spend_the_whole_app_budget(pair: tuple[GatewayProcess, GatewayProcess]) -> None:
    first, second = pair
    urls = itertools.cycle([first.url, second.url])
    heavy = {"Authorization": "Bearer " + first.token("mobile-app", subject="wrk_e1001")}
    colleague = {"Authorization": "Bearer " + first.token("mobile-app", subject="wrk_e1002")}

    answers = [httpx.get(next(urls) + ASSIGNMENTS, headers=heavy, timeout=30) for _ in range(8)]
    others = [httpx.get(url + ASSIGNMENTS, headers=colleague, timeout=30) for url in (first.url, second.url)]

    assert [a.status_code for a in answers] == [200] * 5 + [429] * 3  # 5 across both instances, not 5 each
    refused = answers[-1].json()
    assert refused["limit"] == "subject" and refused["reason"] == "rate_limited"
    assert "wrk_e1001" in refused["detail"]
    resets = rate_limit_resets(answers[-1].headers["ratelimit"])
    assert resets["subject"][0] == 0 and resets["tier"][0] > 0  # the app's budget is far from spent
    assert int(answers[-1].headers["retry-after"]) == resets["subject"][1]
    assert '"subject";q=5;' in answers[0].headers["ratelimit-policy"]
    assert [o.status_code for o in others] == [200, 200]


def test_daily_quota_is_counted_once_across_instances(pair: tuple[GatewayProcess, GatewayProcess]) -> None:
    first, second = pair
    token = first.token("experience-tier")
    urls = itertools.cycle([first.url, second.url])

    answers = [httpx.get(next(urls) + PROJECT, headers={"Authorization": f"Bearer {token}"}) for _ in range(10)]

    assert [a.status_code for a in answers].count(200) == 7
    refused = answers[-1]
    assert refused.status_code == 429
    assert refused.json()["reason"] == "quota_exhausted" and refused.json()["limit"] == "day"
    assert '"day";r=0;' in refused.headers["ratelimit"]


def _metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize(("mode", "status"), [("open", 200), ("closed", 503)])
def test_redis_unreachable(gateways: Callable[..., GatewayProcess], mode: str, status: int) -> None:
    closed_port = free_port()  # nothing listens there
    gateway = gateways(limited_config(unique("psgw-test"), f"redis://127.0.0.1:{closed_port}/0", mode))
    with gateway.client("process-tier") as process:
        answers = [process.get(PROJECT) for _ in range(3)]

    assert [a.status_code for a in answers] == [status] * 3
    if mode == "closed":
        body = answers[0].json()
        assert body["type"] == "/catalog/problems/rate-limit-unavailable"
        assert body["reason"] == "rate_limit_store_unavailable"
    metrics = httpx.get(gateway.url + "/metrics").text
    assert _metric(metrics, "psgw_rate_limit_store_failures_total", store="redis", mode=mode) >= 3
    assert re.search(rf'rate-limit store unavailable; failing {mode}', gateway.log.read_text())


class OwnRedis:
    """A redis-server of this test's own (never the machine's shared one, which others use), stoppable."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    redis = OwnRedis(tmp_path)
    redis.start()
    yield redis
    redis.stop()


def wait_for_readiness(url: str, status: int, timeout: float = 10.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while (answer := httpx.get(url + "/readyz", timeout=10)).status_code != status and time.monotonic() < deadline:
        time.sleep(0.2)
    return answer


def test_not_ready_while_the_store_a_closed_rate_limit_needs_is_down(gateways: Callable[..., GatewayProcess],
                                                                     own_redis: OwnRedis) -> None:
    gateway = gateways(limited_config(unique("psgw-test"), own_redis.url, "closed"))
    with gateway.client("experience-tier") as caller:
        ready = wait_for_readiness(gateway.url, 200)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["rate_limit_store"] == "ok"
        assert caller.get(PROJECT).status_code == 200

        own_redis.stop()
        down = wait_for_readiness(gateway.url, 503)
        assert down.status_code == 503
        assert down.json()["status"] == "not_ready"
        assert "does not answer" in down.json()["checks"]["rate_limit_store"]
        assert caller.get(PROJECT).status_code == 503  # what readiness announced: every call refused

        own_redis.start()
        back = wait_for_readiness(gateway.url, 200)
        assert back.status_code == 200, back.text
        time.sleep(1.1)  # the store is skipped for a second after a failure
        assert caller.get(PROJECT).status_code == 200


def test_a_store_down_in_open_mode_leaves_the_gateway_ready(gateways: Callable[..., GatewayProcess]) -> None:
    closed_port = free_port()  # nothing listens there
    gateway = gateways(limited_config(unique("psgw-test"), f"redis://127.0.0.1:{closed_port}/0", "open"))
    answer = wait_for_readiness(gateway.url, 200)
    assert answer.status_code == 200, answer.text
    assert "rate_limit_store" not in answer.json()["checks"]
