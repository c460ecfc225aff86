"""The system tier on the ``dynamics365`` ERP backend: the ERP sandbox speaks Dynamics 365 Finance OData v4
(``python -m sandbox erp --dialect dynamics365``) and the system tier its connector
(``PSGW_ERP_BACKEND=dynamics365``).

Only what a system API call passes through is started (the gateway, the system tier, the sandbox vendors): the
process and experience tiers play no part in the system tier's contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.launcher import REPO_ROOT, Ports
from tests.netsuite.conftest import SystemTierStack
from tests.support.stack import RunningStack
from tests.support.system import SystemApis


@pytest.fixture(scope="session")
def dynamics365_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    data_dir: Path = tmp_path_factory.mktemp("psgw-dynamics365")
    stack = SystemTierStack(
        data_dir=data_dir,
        ports=Ports.free(),
        config_file=REPO_ROOT / "gateway.yaml",
        extra_env={"PSGW_ERP_BACKEND": "dynamics365"},
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
def stack(dynamics365_stack: RunningStack) -> RunningStack:
    return dynamics365_stack


@pytest.fixture
def apis(dynamics365_stack: RunningStack) -> Iterator[SystemApis]:
    with dynamics365_stack.client("process-tier") as client:
        yield SystemApis(client)


@pytest.fixture
def erp_downstream() -> str:
    return "dynamics365"
