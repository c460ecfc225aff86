"""The system tier on the ``s4hana`` ERP backend: the ERP sandbox speaks SAP S/4HANA Cloud OData v2
(``python -m sandbox erp --dialect s4hana``) and the system tier its connector (``PSGW_ERP_BACKEND=s4hana``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import RunningStack, system_tier_on
from tests.support.system import SystemApis


@pytest.fixture(scope="session")
def s4hana_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with system_tier_on(tmp_path_factory, {"PSGW_ERP_BACKEND": "s4hana"}) as running:
        yield running


@pytest.fixture
def stack(s4hana_stack: RunningStack) -> RunningStack:
    return s4hana_stack


@pytest.fixture
def apis(s4hana_stack: RunningStack) -> Iterator[SystemApis]:
    with s4hana_stack.client("process-tier") as client:
        yield SystemApis(client)


@pytest.fixture
def erp_downstream() -> str:
    return "s4hana"
