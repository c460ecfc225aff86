"""Shared fixtures: the real stack (separate processes, free ports, real HTTP) started once per session.

The suite runs on pytest-xdist workers (``-n`` in pyproject's addopts): a session is then one worker's session,
so each worker starts its own stack on ports of its own; what they would share on this machine is kept apart
here (Redis: a database per worker) and in tests/support (PostgreSQL: a fresh database per use).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from gateway.launcher import REPO_ROOT, Ports, Stack
from tests.support.stack import DEMO_CONSULTANT, RunningStack, events_breaking_their_schema, started


def worker_redis_url(url: str, worker: str | None) -> str:
    """The Redis URL for one xdist worker: the same server, database ``N + 1`` for worker ``gwN`` (0 stays for
    a run without workers), so one worker's keys, streams and counters never meet another's. Redis has 16
    databases: from the 16th worker on they share 1-15 again (the tests' keys are unique per test as well)."""
    if not worker or not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{int(worker.removeprefix('gw')) % 15 + 1}"))


# Before any test module reads it (tests/support/gateway.py and tests/process/conftest.py take it at import).
os.environ["REDIS_URL"] = worker_redis_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                                           os.environ.get("PYTEST_XDIST_WORKER"))

# A directory whose conftest starts a stack of its own for the session (another vendor backend, Tryton, the
# scale-out cluster: it calls system_tier_on() or builds a *Stack) runs whole on one worker, so that stack starts
# once per run instead of once per worker.
STARTS_A_STACK = re.compile(r"\b(system_tier_on|\w*Stack)\(")


def one_worker_directories(root: Path) -> tuple[str, ...]:
    tests = root / "tests"
    return tuple(sorted(f"tests/{conftest.parent.name}" for conftest in tests.glob("*/conftest.py")
                        if STARTS_A_STACK.search(conftest.read_text())))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile``, except that each of one_worker_directories() is one unit of work, handed out first
    (the units that take longest: started last they would leave the other workers idle at the end)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    directories = one_worker_directories(config.rootpath)

    class DirectoryAwareScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return next((d for d in directories if path.startswith(d + "/")), path)

        def _assign_work_unit(self, node: Any) -> None:
            first = next((scope for scope in self.workqueue if scope in directories), None)
            if first is not None:
                self.workqueue.move_to_end(first, last=False)
            super()._assign_work_unit(node)

    return DirectoryAwareScheduling(config, log)


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
