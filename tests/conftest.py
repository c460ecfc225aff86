"""Shared fixtures: the real stack (separate processes, free ports, real HTTP) started once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.launcher import REPO_ROOT, Ports, Stack
from tests.support.stack import DEMO_CONSULTANT, RunningStack, events_breaking_their_schema, started


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    data_dir: Path = tmp_path_factory.mktemp("psgw-data")
    stack = Stack(data_dir=data_dir, ports=Ports.free(), config_file=REPO_ROOT / "gateway.yaml")
    with started(stack, timeout=90) as running:
        yield running
        drifted = events_breaking_their_schema(running)
        assert not drifted, f"published events do not match contracts/process/events/asyncapi.yaml: {drifted[:5]}"


@pytest.fixture
def consultant(stack: RunningStack) -> Iterator[httpx.Client]:
    """The demo consultant on the mobile app."""
    with stack.client("mobile-app", subject=DEMO_CONSULTANT) as client:
        yield client
