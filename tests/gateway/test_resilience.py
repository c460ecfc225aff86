"""Upstream resilience against a real misbehaving upstream: the breaker opens and recovers through half-open,
idempotent calls are retried, others are not; and a hot reload under load fails no call in flight."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.gateway import GatewayProcess, ServerProcess, admin_headers, base_config

PROJECT = "/system/psa/v1/projects/prj_4001"

# A small contract with a write, so the retry rules for non-idempotent calls can be shown.
FLAKY_CONTRACT = {
    "openapi": "3.1.0",
    "info": {"title": "Flaky test API", "version": "1.0.0", "x-api-id": "system/flaky"},
    "servers": [{"url": "/system/flaky/v1"}],
    "security": [{"oauth2": ["psa:read"]}],
    "paths": {"/things": {"post": {
        "operationId": "createThing",
        "security": [{"oauth2": ["psa:write"]}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
        "responses": {"200": {"description": "Created.",
                              "content": {"application/json": {"schema": {"type": "object"}}}}},
    }}},
    "components": {"securitySchemes": {"oauth2": {"type": "oauth2", "flows": {"clientCredentials": {
        "tokenUrl": "/oauth2/token", "scopes": {"psa:read": "read", "psa:write": "write"}}}}}},
}


def flaky_config(upstream_url: str, contract_file: Path) -> dict[str, Any]:
    config = base_config()
    config["upstreams"]["flaky"] = {
        "url": upstream_url, "timeout_seconds": 0.5,
        "breaker": {"failure_threshold": 3, "open_seconds": 1.0, "failure_statuses": [500, 502, 503, 504]},
        "retries": {"max_retries": 2, "backoff_base_seconds": 0.01},
    }
    for api in config["apis"]:
        if api["id"] == "system/psa":
            api["upstream"] = "flaky"
    config["apis"].append({"id": "system/flaky", "version": 1, "upstream": "flaky", "contract": str(contract_file),
                           "scopes": {"read": ["psa:read"], "write": ["psa:write"]}})
    return config


@pytest.fixture(scope="module")
def flaky(module_gateways: Callable[..., GatewayProcess], tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[GatewayProcess, ServerProcess]]:
    directory = tmp_path_factory.mktemp("flaky")
    upstream = ServerProcess(Path(__file__).with_name("flaky_upstream.py"), directory)
    contract_file = directory / "flaky-v1.yaml"
    contract_file.write_text(yaml.safe_dump(FLAKY_CONTRACT))
    gateway = module_gateways(flaky_config(upstream.url, contract_file))
    yield gateway, upstream
    upstream.stop()


def control(upstream: ServerProcess, **state: Any) -> dict[str, Any]:
    return httpx.put(upstream.url + "/_control", json=state).json()  # type: ignore[no-any-return]


def breaker_state(gateway: GatewayProcess) -> str:
    items = httpx.get(gateway.url + "/admin/v1/upstreams", headers=admin_headers(gateway)).json()["items"]
    return next(u["breaker"]["state"] for u in items if u["name"] == "flaky")


def test_breaker_opens_on_a_slow_upstream_and_recovers_half_open(flaky: tuple[GatewayProcess, ServerProcess]
                                                                ) -> None:
    gateway, upstream = flaky
    control(upstream, mode="slow", drop_next=0)
    with gateway.client("process-tier") as process:
        timeouts = [process.get(PROJECT) for _ in range(3)]
        hits_when_open = control(upstream)["hits"]
        refused = process.get(PROJECT)

        assert [t.status_code for t in timeouts] == [504] * 3
        assert timeouts[0].json()["upstream"] == "flaky" and timeouts[0].json()["reason"] == "upstream_timeout"
        assert refused.status_code == 503
        body = refused.json()
        assert body["type"] == "/catalog/problems/upstream-circuit-open" and body["upstream"] == "flaky"
        assert int(refused.headers["retry-after"]) >= 1
        assert control(upstream)["hits"] == hits_when_open  # an open breaker does not call the upstream
        assert breaker_state(gateway) == "open"
        metrics = httpx.get(gateway.url + "/metrics").text
        assert 'psgw_upstream_breaker_state{upstream="flaky"} 1.0' in metrics

        control(upstream, mode="ok")
        deadline = time.monotonic() + 15
        while (answer := process.get(PROJECT)).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.2)  # open_seconds must pass before the half-open trial call
        assert answer.status_code == 200
        assert breaker_state(gateway) == "closed"


def test_idempotent_calls_are_retried_others_are_not(flaky: tuple[GatewayProcess, ServerProcess]) -> None:
    gateway, upstream = flaky
    control(upstream, mode="ok", drop_next=2)
    with gateway.client("process-tier") as process:
        retried = process.get(PROJECT)
        assert retried.status_code == 200  # two dropped connections, then an answer

        control(upstream, drop_next=1)
        hits = control(upstream)["hits"]
        not_retried = process.post("/system/flaky/v1/things", json={"name": "x"})
        assert not_retried.status_code == 503  # a POST may have been acted on: never retried blindly
        assert not_retried.json()["upstream"] == "flaky"
        assert control(upstream)["hits"] == hits + 1

        control(upstream, drop_next=1)
        keyed = process.post("/system/flaky/v1/things", json={"name": "x"}, headers={"Idempotency-Key": "k-1"})
        assert keyed.status_code == 200  # with an Idempotency-Key the upstream dedupes, so a retry is safe
    metrics = httpx.get(gateway.url + "/metrics").text
    assert 'psgw_upstream_retries_total{reason="connection",upstream="flaky"} 3.0' in metrics
    control(upstream, drop_next=0)


def test_hot_reload_under_load_fails_no_call(gateways: Callable[..., GatewayProcess]) -> None:
    config = base_config()
    gateway = gateways(config)
    token = gateway.token("process-tier")
    failures: list[str] = []
    done = threading.Event()
    counts = {"calls": 0}

    def load() -> None:
        with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
            while not done.is_set():
                response = c.get(PROJECT)
                counts["calls"] += 1
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    admin = httpx.Client(base_url=gateway.url, headers=admin_headers(gateway), timeout=30)
    try:
        for round_ in range(6):
            config["sla_tiers"]["gold"]["burst"] = 1000 + round_
            gateway.write_config(config)
            if round_ % 2:
                gateway.signal(signal.SIGHUP)
            else:
                assert admin.post("/admin/v1/reload").status_code == 200
            time.sleep(0.3)
        # A broken file is refused with the reason, and the previous state keeps serving.
        gateway.config_file.write_text(yaml.safe_dump({**config, "apis": [{"id": "nowhere/x", "version": 1}]}))
        refused = admin.post("/admin/v1/reload")
        assert refused.status_code == 422
        assert "gateway.yaml is refused" in refused.json()["detail"]
        time.sleep(0.3)
    finally:
        done.set()
        for worker in workers:
            worker.join()
    assert failures == []
    assert counts["calls"] > 20
    tiers = admin.get("/admin/v1/sla-tiers").json()
    assert tiers["gold"]["burst"] == 1005


def recovered(process: httpx.Client) -> bool:
    """Call until the breaker (open from an earlier test) lets a half-open trial through and it succeeds."""
    deadline = time.monotonic() + 15
    while process.get(PROJECT).status_code != 200:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def wait_for_breaker(gateway: GatewayProcess, state: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while (current := breaker_state(gateway)) != state and time.monotonic() < deadline:
        time.sleep(0.1)
    return current


def test_dropped_calls_count_for_the_breaker_only_when_the_upstream_fails_its_health_check(
        flaky: tuple[GatewayProcess, ServerProcess]) -> None:
    gateway, upstream = flaky
    control(upstream, mode="ok", drop_next=0, healthy=True)
    with gateway.client("process-tier") as process:
        assert recovered(process)
        # One caller's calls make a healthy upstream hang up (as a route writing input into a header would):
        # each fails alone, the breaker stays closed for everyone else.
        control(upstream, drop_next=6)
        dropped = [process.post("/system/flaky/v1/things", json={"name": "x"}) for _ in range(6)]
        assert [d.status_code for d in dropped] == [503] * 6
        time.sleep(0.3)  # the health probe runs beside the calls
        assert breaker_state(gateway) == "closed"
        assert process.get(PROJECT).status_code == 200

        # The same drops from an upstream that also fails its health check are its fault: the breaker opens.
        time.sleep(1.1)  # the healthy verdict of the last probe has lapsed
        control(upstream, drop_next=6, healthy=False)
        for _ in range(6):
            process.post("/system/flaky/v1/things", json={"name": "x"})
            time.sleep(0.2)
        assert wait_for_breaker(gateway, "open") == "open"
    control(upstream, drop_next=0, healthy=True)


def test_a_5xx_the_upstream_relays_from_its_own_dependency_does_not_open_its_breaker(
        flaky: tuple[GatewayProcess, ServerProcess]) -> None:
    gateway, upstream = flaky
    control(upstream, mode="ok", drop_next=0, healthy=True, fail_with=0, relay=False)
    with gateway.client("process-tier") as process:
        assert recovered(process)
        control(upstream, fail_with=503, relay=True)
        relayed = [process.get(PROJECT) for _ in range(5)]
        assert [r.status_code for r in relayed] == [503] * 5
        assert breaker_state(gateway) == "closed"  # its dependency's breaker is the one to open, not this one

        control(upstream, relay=False)  # now the upstream's own 503s
        for _ in range(3):
            process.get(PROJECT)
        assert breaker_state(gateway) == "open"
    control(upstream, fail_with=0, relay=False)
