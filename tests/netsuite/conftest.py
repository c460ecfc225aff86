"""The system tier on the ``netsuite`` ERP backend: the ERP sandbox speaks NetSuite REST web services
(``python -m sandbox erp --dialect netsuite``) and the system tier its connector (``PSGW_ERP_BACKEND=netsuite``).

Only what a system API call passes through is started (the gateway, the system tier, the sandbox vendors): the
process and experience tiers play no part in the system tier's contract.
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
def netsuite_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    data_dir: Path = tmp_path_factory.mktemp("psgw-netsuite")
    stack = SystemTierStack(data_dir=data_dir, ports=Ports.free(), config_file=REPO_ROOT / "gateway.yaml",
                            extra_env={"PSGW_ERP_BACKEND": "netsuite"})
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
def stack(netsuite_stack: RunningStack) -> RunningStack:
    return netsuite_stack


@pytest.fixture
def apis(netsuite_stack: RunningStack) -> Iterator[SystemApis]:
    with netsuite_stack.client("process-tier") as client:
        yield SystemApis(client)


@pytest.fixture
def erp_downstream() -> str:
    return "netsuite"
