"""The system tier on the ``netsuite`` ERP backend: the ERP sandbox speaks NetSuite REST web services
(``python -m sandbox erp --dialect netsuite``) and the system tier its connector (``PSGW_ERP_BACKEND=netsuite``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import RunningStack, system_tier_on
from tests.support.system import SystemApis


@pytest.fixture(scope="session")
def netsuite_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with system_tier_on(tmp_path_factory, {"PSGW_ERP_BACKEND": "netsuite"}) as running:
        yield running


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
