"""The system tier on the ``certinia`` PSA backend: the PSA sandbox serves Certinia PSA's objects over Salesforce
REST and SOQL (``python -m sandbox psa --dialect certinia``) and the system tier uses its Certinia connector
(``PSGW_PSA_BACKEND=certinia``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import RunningStack, system_tier_on
from tests.support.system import SystemApis


@pytest.fixture(scope="session")
def certinia_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with system_tier_on(tmp_path_factory, {"PSGW_PSA_BACKEND": "certinia"}) as running:
        yield running


@pytest.fixture
def stack(certinia_stack: RunningStack) -> RunningStack:
    return certinia_stack


@pytest.fixture
def apis(certinia_stack: RunningStack) -> Iterator[SystemApis]:
    with certinia_stack.client("process-tier") as client:
        yield SystemApis(client)
