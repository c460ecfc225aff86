"""The system tier on the ``dynamics365`` ERP backend: the ERP sandbox speaks Dynamics 365 Finance OData v4
(``python -m sandbox erp --dialect dynamics365``) and the system tier its connector
(``PSGW_ERP_BACKEND=dynamics365``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import RunningStack, system_tier_on
from tests.support.system import SystemApis


@pytest.fixture(scope="session")
def dynamics365_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with system_tier_on(tmp_path_factory, {"PSGW_ERP_BACKEND": "dynamics365"}) as running:
        yield running


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
