"""Revenue schedules on a real Tryton: its connector has none to read or post into, so revenue is refused plainly
(422 not-supported naming the Tryton connector) rather than planned as if nothing had ever been recognised."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest


def refused_plainly(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith("/not-supported")
    assert "Tryton connector does not support revenue schedules" in problem["detail"]


@pytest.mark.parametrize("version", [1, 2])
def test_revenue_schedules_are_refused_plainly_on_tryton(experience: httpx.Client, system: httpx.Client,
                                                         version: int) -> None:
    base = f"/process/revenue/v{version}/contracts"
    refused_plainly(experience.get(f"{base}/ctr_2001/schedule"))
    refused_plainly(experience.post(f"{base}/ctr_2001/recognitions",
                                    json={"through_period": f"{dt.datetime.now(dt.UTC):%Y-%m}"}))
    refused_plainly(system.get("/system/erp/v1/revenue-schedules", params={"contract_id": "ctr_2001"}))

