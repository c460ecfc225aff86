"""HR is the system of record for what a person costs: a cost-rate change there reaches the margin figures."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.support.flows import entries, ok, wait_for
from tests.support.stack import RunningStack, sandbox_url

WORKER = "wrk_e1001"
PROCESSES = "/ccx/api/v1/northwind/workers/{wid}/businessProcesses"


def hr_process(
    sandboxes: httpx.Client, stack: RunningStack, name: str, body: Any, worker: str = "E1001"
) -> httpx.Response:
    wid = hashlib.md5(f"worker:{worker}".encode(), usedforsecurity=False).hexdigest()
    return sandboxes.post(sandbox_url(stack, "hr") + PROCESSES.format(wid=wid) + "/" + name, json=body)


def margin_of(experience: httpx.Client, project_id: str) -> dict[str, Any]:
    (row,) = ok(experience.get("/process/insights/v1/project-margins", params={"project_id": project_id}))["projects"]
    return dict(row)


def test_a_cost_rate_changed_in_hr_changes_the_projects_margin(
    stack: RunningStack, experience: httpx.Client, system: httpx.Client, sandboxes: httpx.Client
) -> None:
    rate = ok(system.get(f"/system/hr/v1/workers/{WORKER}"))["cost_rates"][-1]
    since = dt.date.fromisoformat(rate["valid_from"])
    hours = sum(
        (
            Decimal(e["hours"])
            for e in entries(system, project_id="prj_4001")
            if e["worker_id"] == WORKER
            and e.get("superseded_by_id") is None  # a correction replaces its original, never adds to it
            and e["state"] in ("approved", "posted", "invoiced")
            and dt.date.fromisoformat(e["work_date"]) >= since
        ),
        Decimal(0),
    )
    assert hours > 0, "the demo consultant has costed time on PRJ-4001 at today's rate"
    before = margin_of(experience, "prj_4001")

    raised = Decimal(rate["hourly_cost"]) + 50
    ok(
        hr_process(
            sandboxes,
            stack,
            "Request_Compensation_Change",
            {"Effective_Date": since.isoformat(), "Amount": str(raised)},
        )
    )
    try:
        # HR's worker list is cached at the gateway for 30 s (contracts/system/hr/v1.yaml): seen within that.
        after = wait_for(
            "the new cost rate in the margin",
            lambda: (lambda row: row if row["cost"] != before["cost"] else None)(margin_of(experience, "prj_4001")),
        )
        assert Decimal(after["cost"]) - Decimal(before["cost"]) == hours * 50
        assert Decimal(before["margin"]) - Decimal(after["margin"]) == hours * 50
    finally:
        ok(
            hr_process(
                sandboxes,
                stack,
                "Request_Compensation_Change",
                {"Effective_Date": since.isoformat(), "Amount": rate["hourly_cost"]},
            )
        )
    wait_for("the old cost rate back", lambda: margin_of(experience, "prj_4001")["cost"] == before["cost"] or None)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("Request_Compensation_Change", {"Effective_Date": "2026-02-30", "Amount": "100"}),
        ("Request_Compensation_Change", {"Effective_Date": "2026-01-01", "Amount": "-5"}),
        ("Request_Compensation_Change", {"Effective_Date": "2026-01-01", "Amount": "1e400"}),
        ("Request_Compensation_Change", {"Effective_Date": "2026-01-01", "Amount": 12.5}),
        ("Request_Compensation_Change", ["not", "an", "object"]),
        ("Change_Worker_Status", {"Worker_Status": "Retired"}),
    ],
)
def test_hr_refuses_a_bad_change(stack: RunningStack, sandboxes: httpx.Client, name: str, body: Any) -> None:
    response = hr_process(sandboxes, stack, name, body)
    assert response.status_code == 400 and response.json()["error"], response.text


def test_hr_knows_no_such_worker(stack: RunningStack, sandboxes: httpx.Client) -> None:
    response = hr_process(sandboxes, stack, "Change_Worker_Status", {"Worker_Status": "On Leave"}, worker="E9999")
    assert response.status_code == 404
