"""The system tier on the ``certinia`` PSA backend: the PSA sandbox serves Certinia PSA's objects over Salesforce
REST and SOQL (``python -m sandbox psa --dialect certinia``) and the system tier uses its Certinia connector
(``PSGW_PSA_BACKEND=certinia``).

Only what a system API call passes through is started (the gateway, the system tier, the sandbox vendors).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.launcher import REPO_ROOT, Ports, ServiceSpec, Stack
from tests.support.stack import RunningStack
from tests.support.system import SystemApis


@dataclass
class SystemTierStack(Stack):
    def specs(self) -> list[ServiceSpec]:
        return [s for s in super().specs() if s.name not in ("process", "experience")]


@pytest.fixture(scope="session")
def certinia_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    data_dir: Path = tmp_path_factory.mktemp("psgw-certinia")
    stack = SystemTierStack(
        data_dir=data_dir,
        ports=Ports.free(),
        config_file=REPO_ROOT / "gateway.yaml",
        extra_env={"PSGW_PSA_BACKEND": "certinia"},
    )
    stack.start()
    try:
        stack.wait_ready(timeout=180)
        yield RunningStack(stack)
    except BaseException:
        for log in sorted((data_dir / "logs").glob("*.log")):
            print(f"==== {log.name}\n{log.read_text()[-4000:]}")
        raise
    finally:
        stack.stop()


@pytest.fixture
def stack(certinia_stack: RunningStack) -> RunningStack:
    return certinia_stack


@pytest.fixture
def apis(certinia_stack: RunningStack) -> Iterator[SystemApis]:
    with certinia_stack.client("process-tier") as client:
        yield SystemApis(client)
