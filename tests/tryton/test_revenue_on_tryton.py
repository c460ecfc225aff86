"""Revenue schedules on a real Tryton: its connector has none to read or post into, so revenue is refused plainly
(422 not-supported naming the Tryton connector) rather than planned as if nothing had ever been recognised; the
margin figures, which read recognised revenue, still answer."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from tests.support.flows import ok


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
    refused_plainly(experience.get(f"{base}/ctr_2011/schedule"))
    refused_plainly(experience.post(f"{base}/ctr_2011/recognitions",
                                    json={"through_period": f"{dt.datetime.now(dt.UTC):%Y-%m}"}))
    refused_plainly(system.get("/system/erp/v1/revenue-schedules", params={"contract_id": "ctr_2011"}))


def test_margins_still_answer_on_tryton_without_recognised_revenue(experience: httpx.Client) -> None:
    (row,) = ok(experience.get("/process/insights/v1/project-margins", params={"project_id": "prj_4011"}))["projects"]
    assert row["billing_model"] == "fixed_fee"
