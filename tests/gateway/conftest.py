"""Extra gateway processes for the policy tests: their own gateway.yaml (derived from the repo's), their own
port and data dir, routed to the session stack's tiers; plus small real servers (a flaky upstream, an OIDC
issuer) started as processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import GATEWAY_TESTS, GatewayProcess, ServerProcess
from tests.support.stack import RunningStack


def _gateway_starter(stack: RunningStack, tmp_path: Path) -> tuple[Callable[..., GatewayProcess],
                                                                     list[GatewayProcess]]:
    started: list[GatewayProcess] = []

    def start(config: dict[str, Any], *, data_dir: Path | None = None, **kwargs: Any) -> GatewayProcess:
        gateway = GatewayProcess(stack, data_dir or tmp_path / f"gw{len(started)}", config, **kwargs)
        started.append(gateway)
        return gateway.start()

    return start, started


@pytest.fixture(scope="module")
def module_gateways(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[Callable[..., GatewayProcess]]:
    """Extra gateways shared by the tests of one module (each start costs seconds)."""
    start, started = _gateway_starter(stack, tmp_path_factory.mktemp("gateways"))
    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture
def gateways(stack: RunningStack, tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """Start extra gateways; all are stopped at the end of the test."""
    start, started = _gateway_starter(stack, tmp_path)
    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(script: str, *args: str) -> ServerProcess:
        server = ServerProcess(GATEWAY_TESTS / script, tmp_path, *args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
