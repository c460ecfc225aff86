"""Users of the experience tier: the demo consultant on the phone, the demo manager, the finance dashboard."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.stack import DEMO_MANAGER, RunningStack


@pytest.fixture
def manager(stack: RunningStack) -> Iterator[httpx.Client]:
    with stack.client("dashboard-web", subject=DEMO_MANAGER) as client:
        yield client


@pytest.fixture
def finance(stack: RunningStack) -> Iterator[httpx.Client]:
    with stack.client("dashboard-web") as client:
        yield client


@pytest.fixture
def process_reader(stack: RunningStack) -> Iterator[httpx.Client]:
    """Reads process and system APIs as the experience tier does, to check figures independently."""
    with stack.client("experience-tier") as client:
        yield client


@pytest.fixture
def system_reader(stack: RunningStack) -> Iterator[httpx.Client]:
    with stack.client("process-tier") as client:
        yield client
