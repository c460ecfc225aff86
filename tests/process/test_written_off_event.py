"""A write-off is announced once, typed as the AsyncAPI says; events API v1 keeps to the types it promised and v2
serves every type."""

from __future__ import annotations

from decimal import Decimal

import httpx

from contracts.toolchain.asyncapi import EventSchemas, load_asyncapi
from tests.process.test_revenue_v2 import key, this_month
from tests.support.flows import ok


def a_contract_with_revenue_left(experience: httpx.Client) -> str:
    for number in range(2016, 2000, -1):
        response = experience.get(f"/process/revenue/v2/contracts/ctr_{number}/schedule")
        if response.status_code == 200:
            schedule = response.json()
            if Decimal(schedule["scheduled_total"]) - Decimal(schedule["recognized_to_date"]) >= 10:
                return f"ctr_{number}"
    raise AssertionError("no demo contract has revenue left to recognise")


def written_off(experience: httpx.Client, write_off_id: str) -> list[dict[str, object]]:
    page = ok(experience.get("/process/events/v2/events", params={"type": "revenue.written_off", "limit": 500}))
    return [e for e in page["items"] if e["subject"]["write_off_id"] == write_off_id]


def test_a_write_off_is_announced_once_with_its_typed_payload(experience: httpx.Client) -> None:
    contract = a_contract_with_revenue_left(experience)
    body = {"amount": "1.00", "reason": "Goodwill on a disputed hour", "period": this_month()}
    name = key()
    recorded = ok(
        experience.post(
            f"/process/revenue/v2/contracts/{contract}/write-offs", json=body, headers={"Idempotency-Key": name}
        ),
        201,
    )["write_off"]
    ok(
        experience.post(
            f"/process/revenue/v2/contracts/{contract}/write-offs", json=body, headers={"Idempotency-Key": name}
        )
    )

    (event,) = written_off(experience, recorded["id"])
    assert event["subject"] == {
        "write_off_id": recorded["id"],
        "contract_id": contract,
        "customer_id": event["subject"]["customer_id"],
        "project_id": recorded["project_id"],
    }
    assert event["data"] == {
        "amount": "1.00",
        "currency": recorded["currency"],
        "period": this_month(),
        "reason": body["reason"],
        "recorded_by": recorded["recorded_by"],
    }
    assert EventSchemas(load_asyncapi()).errors(event) == []

    # v1 lists a closed set of types: it neither filters on a newer one nor serves it
    assert experience.get("/process/events/v1/events", params={"type": "revenue.written_off"}).status_code == 400
    assert experience.get(f"/process/events/v1/events/{event['id']}").status_code == 404
    assert ok(experience.get(f"/process/events/v2/events/{event['id']}"))["type"] == "revenue.written_off"
    v1_page = ok(experience.get("/process/events/v1/events", params={"after": event["position"] - 1, "limit": 5}))
    assert all(e["type"] != "revenue.written_off" for e in v1_page["items"])
