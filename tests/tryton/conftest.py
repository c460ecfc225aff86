"""The stack on a real Tryton: a Tryton server process behind all four system APIs, and the tiers on top.

The Tryton database is built once per machine and day into ``~/.cache/psgateway/`` (the demo firm is dated
from today) and copied for each test session, so a session pays for a file copy, not for installing modules.
The tests are skipped where the ``[tryton]`` extra is not installed (``pip install -e '.[test,tryton]'``).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

pytest.importorskip("trytond", reason="the [tryton] extra is not installed")

from gateway.launcher import REPO_ROOT, SERVICE_SANDBOXES, Ports, ServiceSpec, Stack
from system_apis.tryton.__main__ import system_tier_env
from system_apis.tryton.server import TrytonHome, copy_home, create_database, load_demo, server_argv
from tests.support.gateway import free_port
from tests.support.stack import RunningStack
from tests.support.tryton import TrytonLook

# What the template database is made from: any change here builds a new one.
TEMPLATE_SOURCES = [REPO_ROOT / path for path in (
    "system_apis/tryton/module/records.py", "system_apis/tryton/module/tryton.cfg",
    "system_apis/tryton/module/message.xml", "system_apis/tryton/demo.py", "system_apis/tryton/server.py",
    "sandbox/firm.py")]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tryton: runs against a real Tryton server (the [tryton] extra)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/tryton/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.tryton)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the template (minutes, once per machine and day) in the background from the start of the session, so
    the first Tryton test's 300 s timeout does not pay for it; the session fixture then finds it ready or waits for
    the rest of the build (the file lock). Every xdist worker starts one: the first builds, the others wait."""
    if any("tests/tryton/" in str(item.fspath).replace(os.sep, "/") for item in session.items):
        threading.Thread(target=template_home, name="tryton-template", daemon=True).start()


def template_home() -> TrytonHome:
    """The cached, fully built Tryton database for this machine, this day and these sources (built if missing)."""
    from trytond import __version__

    digest = hashlib.sha256(b"".join(p.read_bytes() for p in TEMPLATE_SOURCES)).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "psgateway"
    root = cache / f"tryton-template-{__version__}-{digest}-{dt.datetime.now(dt.UTC).date():%Y%m%d}"
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "tryton-template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per machine; parallel sessions wait for it
        home = TrytonHome.of(root)
        if not (root / "ready").exists():
            shutil.rmtree(root, ignore_errors=True)
            create_database(home, "admin@northwind.example")
            load_demo(home)
            (root / "ready").touch()
            for stale in cache.glob("tryton-template-*"):
                if stale != root:
                    shutil.rmtree(stale, ignore_errors=True)
    return home


def wait_for_tryton(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    base = url.split("@", 1)[-1].rsplit("/", 1)[0]
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"trytond exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            answer = httpx.post(f"http://{base}/rpc/", json={
                "id": 0, "method": "common.server.version", "params": []}, timeout=1.0)
            if answer.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"trytond did not answer within {timeout:g}s:\n{log.read_text()[-3000:]}")


@dataclass
class TrytonStack(Stack):
    """The stack with every system API on Tryton: no sandbox vendors, the system tier pointed at Tryton (the tax
    engines and the e-invoicing access point are no systems of record: their sandboxes stay)."""

    tryton_env: dict[str, str] = field(default_factory=dict)

    def specs(self) -> list[ServiceSpec]:
        specs = [s for s in super().specs()
                 if not s.name.startswith("sandbox-") or s.name.removeprefix("sandbox-") in SERVICE_SANDBOXES]
        for spec in specs:
            if spec.name == "system":
                spec.env = {**spec.env, **self.tryton_env}
        return specs


@dataclass
class TrytonRunning:
    home: TrytonHome
    url: str
    stack: RunningStack


@pytest.fixture(scope="session")
def tryton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrytonRunning]:
    template = template_home()
    data_dir = tmp_path_factory.mktemp("psgw-tryton")
    home = TrytonHome.of(data_dir)
    copy_home(template, home)
    port = free_port()
    log = data_dir / "trytond.log"
    with log.open("ab") as out:
        server = subprocess.Popen(server_argv(home, port), env=home.env(), stdout=out, stderr=subprocess.STDOUT,
                                  cwd=REPO_ROOT, start_new_session=True)
    stack = TrytonStack(data_dir=data_dir, ports=Ports.free(), config_file=REPO_ROOT / "gateway.yaml",
                        tryton_env=system_tier_env(home, port))
    try:
        wait_for_tryton(home.url(port), server, log)
        stack.start()
        stack.wait_ready(timeout=90)
        yield TrytonRunning(home=home, url=home.url(port), stack=RunningStack(stack))
    except BaseException:
        for each in [log, *sorted((data_dir / "logs").glob("*.log"))]:
            if each.exists():
                print(f"==== {each.name}\n{each.read_text()[-4000:]}")
        raise
    finally:
        stack.stop()
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="session")
def experience(tryton: TrytonRunning) -> Iterator[httpx.Client]:
    with tryton.stack.client("experience-tier") as client:
        yield client


@pytest.fixture(scope="session")
def consultant(tryton: TrytonRunning) -> Iterator[httpx.Client]:
    """The demo consultant on the mobile app."""
    with tryton.stack.client("mobile-app", subject="wrk_e1001") as client:
        yield client


@pytest.fixture(scope="session")
def system(tryton: TrytonRunning) -> Iterator[httpx.Client]:
    with tryton.stack.client("process-tier") as client:
        yield client


@pytest.fixture
def rpc(tryton: TrytonRunning) -> TrytonLook:
    return TrytonLook(tryton.url)
