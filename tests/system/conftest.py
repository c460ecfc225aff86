"""Helpers for system API tests through the running stack (the session ``stack`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import RunningStack
from tests.support.system import SystemApis


@pytest.fixture
def apis(stack: RunningStack) -> Iterator[SystemApis]:
    with stack.client("process-tier") as client:
        yield SystemApis(client)


@pytest.fixture
def erp_downstream() -> str:
    """The vendor the ERP system API names in its problems (tests/netsuite runs the same tests on NetSuite)."""
    return "sandbox-erp"
