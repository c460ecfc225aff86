"""The scale-out topology (tests/support/cluster.py), started once per session for the reliability tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from gateway.launcher import Ports, Stack
from tests.support.cluster import TIERS, Cluster, RedisServer, ServiceProcess, cluster_config
from tests.support.databases import fresh_postgres_database
from tests.support.gateway import free_port, wait_healthy
from tests.support.stack import print_logs


@pytest.fixture(scope="session")
def fresh_database() -> Iterator[str]:
    with fresh_postgres_database("psgw_cluster") as url:
        yield url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory, fresh_database: str) -> Iterator[Cluster]:
    data_dir = tmp_path_factory.mktemp("psgw-cluster")
    redis_server = RedisServer(data_dir)
    redis_server.start()
    collector = ServiceProcess("otlp_collector.py", data_dir)
    balancers: list[ServiceProcess] = []
    ports = Ports.free()
    stack = Stack(data_dir=data_dir, ports=ports, config_file=cluster_config(data_dir), extra_env={
        "PSGW_DATABASE_URL": fresh_database,
        "PSGW_REDIS_URL": redis_server.url,
        "PSGW_RATE_LIMIT_PREFIX": f"psgw-cluster-{uuid.uuid4().hex[:8]}",
        "PSGW_OTLP_ENDPOINT": collector.url,
        "PSGW_OTLP_EXPORT_DELAY_MS": "200",
        # A slow vendor must be cut off quickly here (the slow-upstream test), not after the default 5 s.
        "PSGW_VENDOR_TIMEOUT_SECONDS": "2",
    })
    replicas: dict[str, list[str]] = {}
    for name in (*TIERS, "gateway"):
        added = stack.add_replicas(name, [free_port(), free_port()])
        replicas[name] = [spec.name for spec in added]
        balancers.append(ServiceProcess("balancer.py", data_dir, *(str(s.port) for s in added),
                                        port=stack.spec(name).port))
    try:
        wait_healthy(collector.url, collector.process, collector.log)
        sandboxes = [f"sandbox-{s}" for s in ("psa", "erp", "hr", "crm")]
        stack.start(only=sandboxes)
        stack.wait_ready(timeout=90, only=sandboxes)
        # First instances one by one (each creates its tables, the gateway its signing key), then the seconds.
        for wave in (0, 1):
            names = [replicas[name][wave] for name in (*TIERS, "gateway")]
            stack.start(only=names)
            stack.wait_ready(timeout=90, only=names)
        yield Cluster(stack, redis_server, collector, fresh_database, replicas)
    except BaseException:
        print_logs(data_dir, 3000)
        raise
    finally:
        stack.stop()
        for balancer in balancers:
            balancer.stop()
        collector.stop()
        redis_server.kill()
