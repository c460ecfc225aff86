"""Users of the experience tier: the demo consultant on the phone, the demo manager, the finance dashboard."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RunningStack

DEMO_MANAGER = "wrk_e1002"  # manages prj_4001, where the demo consultant works


def this_monday() -> dt.date:
    today = dt.datetime.now(dt.UTC).date()
    return today - dt.timedelta(days=today.weekday())


@pytest.fixture
def manager(stack: RunningStack) -> Iterator[httpx.Client]:
    with stack.client("dashboard-web", subject=DEMO_MANAGER) as client:
        yield client


@pytest.fixture
def finance(stack: RunningStack) -> Iterator[httpx.Client]:
    with stack.client("dashboard-web") as client:
        yield client


@pytest.fixture
def process_reader(stack: RunningStack) -> Iterator[httpx.Client]:
    """Reads process and system APIs as the experience tier does, to check figures independently."""
    with stack.client("experience-tier") as client:
        yield client


@pytest.fixture
def system_reader(stack: RunningStack) -> Iterator[httpx.Client]:
    with stack.client("process-tier") as client:
        yield client


def all_items(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = client.get(path, params={**params, "limit": 200, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            return items
