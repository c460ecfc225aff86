"""Travel time: a consultant logs it on mobile-time v3; it is billed where the contract's rate card prices travel
(the demo's GBP card has a travel line) and is cost everywhere else, with a reason the finance lead can read.
v2 cannot name travel (its work_type enum is closed), so it is deprecated with v3 as its successor and shows a
travel entry by its billable flag."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
import yaml

from contracts import CONTRACTS_DIR
from tests.support.contract_checks import assert_matches_contract
from tests.support.days import a_day_of_its_own, week_of
from tests.support.flows import ok, wait_for
from tests.support.stack import RunningStack

API = "experience/mobile-time"
V2 = "/experience/mobile-time/v2"
V3 = "/experience/mobile-time/v3"
BILLING = "/process/billing/v1"
INBOX = "/experience/approvals/v1"
PRICES_TRAVEL = "prj_4006"  # Wingtip Toys, GBP time and materials: the GBP rate card has a travel line (70.00)
TRAVEL_RATE = Decimal("70")
NO_TRAVEL_RATE = "prj_4001"  # Contoso Retail, USD: its rate card prices no travel


def travel(project_id: str, minutes: int, day: dt.date) -> dict[str, object]:
    return {"project_id": project_id, "work_date": day.isoformat(), "minutes": minutes, "work_type": "travel",
            "notes": "train to the client", "client_ref": "travel-" + uuid.uuid4().hex[:12]}


def logged(consultant: httpx.Client, body: dict[str, object]) -> dict[str, object]:
    created = consultant.post(f"{V3}/me/time-entries", json=body)
    assert created.status_code == 201, created.text
    assert_matches_contract(API, "POST", "/me/time-entries", created, version=3)
    return dict(created.json())


@pytest.fixture
def approver(stack: RunningStack) -> Iterator[httpx.Client]:
    """The manager of PRICES_TRAVEL (wrk_e1007) in the approvals inbox."""
    with stack.client("dashboard-web", subject="wrk_e1007") as client:
        yield client


def test_travel_is_logged_read_back_and_listed_in_the_week(consultant: httpx.Client) -> None:
    day = a_day_of_its_own()
    entry = logged(consultant, travel(PRICES_TRAVEL, 100, day))

    assert (entry["work_type"], entry["minutes"], entry["state"]) == ("travel", 100, "draft")
    week = consultant.get(f"{V3}/me/weeks/{week_of(day).isoformat()}")
    assert week.status_code == 200, week.text
    assert_matches_contract(API, "GET", "/me/weeks/{week_start}", week, version=3)
    mine = [e for e in week.json()["entries"] if e["time_entry_id"] == entry["time_entry_id"]]
    assert [(e["work_type"], e["minutes"]) for e in mine] == [("travel", 100)]
    # A work type changed on v3 changes the entry; travel can be turned back into delivery and back again.
    changed = consultant.patch(f"{V3}/me/time-entries/{entry['time_entry_id']}",
                               json={"work_type": "billable_delivery"})
    assert changed.status_code == 200 and changed.json()["work_type"] == "billable_delivery", changed.text
    again = consultant.patch(f"{V3}/me/time-entries/{entry['time_entry_id']}", json={"work_type": "travel"})
    assert again.status_code == 200 and again.json()["work_type"] == "travel", again.text


def test_offline_sync_on_v3_takes_travel_and_refuses_an_unknown_work_type(consultant: httpx.Client) -> None:
    day = a_day_of_its_own()
    good = {**travel(PRICES_TRAVEL, 45, day)}
    bad = {**travel(PRICES_TRAVEL, 45, day), "work_type": "commuting"}

    response = consultant.post(f"{V3}/me/time-entry-syncs", json={"items": [good, bad]})
    resent = consultant.post(f"{V3}/me/time-entry-syncs", json={"items": [good]})

    assert response.status_code == 200, response.text
    assert_matches_contract(API, "POST", "/me/time-entry-syncs", response, version=3)
    first, second = response.json()["items"]
    assert (first["status"], first["entry"]["work_type"]) == ("created", "travel")
    assert second["status"] == "error" and second["problem"]["errors"][0]["pointer"] == "/items/1/work_type"
    assert resent.json()["items"][0]["status"] == "existing"
    assert resent.json()["items"][0]["entry"]["time_entry_id"] == first["entry"]["time_entry_id"]


def test_v2_shows_travel_within_its_closed_enum_and_names_v3_as_successor(consultant: httpx.Client) -> None:
    day = a_day_of_its_own()
    entry = logged(consultant, travel(NO_TRAVEL_RATE, 30, day))
    info = yaml.safe_load((CONTRACTS_DIR / API / "v2.yaml").read_text())["info"]
    sunset = dt.datetime.fromisoformat(str(info["x-sunset"])).replace(tzinfo=dt.UTC)

    week = consultant.get(f"{V2}/me/weeks/{week_of(day).isoformat()}")

    assert week.status_code == 200, week.text
    assert_matches_contract(API, "GET", "/me/weeks/{week_start}", week, version=2)
    seen = [e for e in week.json()["entries"] if e["time_entry_id"] == entry["time_entry_id"]]
    assert [e["work_type"] for e in seen] == ["billable_delivery"]  # never "travel": v2 clients cannot read it
    assert week.headers["sunset"] == sunset.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert week.headers["deprecation"].startswith("@")
    assert week.headers["link"] == f'<{week.request.url.path.replace("/v2/", "/v3/")}>; rel="successor-version"'
    v3 = consultant.get(f"{V3}/me/weeks/{week_of(day).isoformat()}")
    assert "deprecation" not in v3.headers and "sunset" not in v3.headers


def test_travel_is_billed_at_the_travel_rate_where_the_contract_prices_it_and_is_cost_elsewhere(
        consultant: httpx.Client, process_reader: httpx.Client) -> None:
    day = a_day_of_its_own()
    priced = logged(consultant, travel(PRICES_TRAVEL, 20, day))  # a third of an hour
    unpriced = logged(consultant, travel(NO_TRAVEL_RATE, 20, day))
    work = logged(consultant, {**travel(NO_TRAVEL_RATE, 20, day), "work_type": "billable_delivery"})
    ids = [str(e["time_entry_id"]) for e in (priced, unpriced, work)]

    response = process_reader.post(f"{BILLING}/eligibility-evaluations", json={"time_entry_ids": ids})

    assert response.status_code == 200, response.text
    assert_matches_contract("process/billing", "POST", "/eligibility-evaluations", response)
    held = {h["time_entry_id"]: h for h in response.json()["held"]}
    # Not approved yet, so all three are held for that; travel where no travel rate exists is also cost only.
    assert held[ids[0]]["reason_codes"] == ["NOT_APPROVED"]
    assert Decimal(held[ids[0]]["amount"]) == Decimal("23.33")  # 20 minutes x 70.00 / 60, rounded once
    assert held[ids[1]]["reason_codes"] == ["NOT_APPROVED", "TRAVEL_NOT_BILLABLE"]
    assert held[ids[1]]["reasons"] == ["NOT_APPROVED", "NOT_BILLABLE"]  # v1's closed set: the nearest code
    assert held[ids[1]]["amount"] is None
    assert held[ids[2]]["reason_codes"] == ["NOT_APPROVED"] and held[ids[2]]["amount"] is not None


def test_an_approved_travel_entry_posts_once_at_the_travel_rate(
        consultant: httpx.Client, approver: httpx.Client, system_reader: httpx.Client) -> None:
    day = a_day_of_its_own()
    entry = logged(consultant, travel(PRICES_TRAVEL, 90, day))
    entry_id = str(entry["time_entry_id"])
    ok(consultant.post(f"{V3}/me/weeks/{week_of(day).isoformat()}/submissions"))

    decided = approver.post(f"{INBOX}/submitted-entries/{entry_id}/decisions", json={"decision": "approve"})

    assert decided.status_code == 200, decided.text
    assert decided.json()["items"][0]["billing"]["disposition"] == "queued_for_posting", decided.text
    wait_for(f"{entry_id} posted", lambda: system_reader.get(
        f"/system/psa/v1/time-entries/{entry_id}").json()["state"] == "posted" or None)
    postings = ok(system_reader.get("/system/erp/v1/postings", params={"source_id": entry_id}))["items"]
    assert [(Decimal(p["amount"]), p["currency"]) for p in postings] == [(TRAVEL_RATE * Decimal("1.5"), "GBP")]


def test_travel_on_a_contract_without_a_travel_rate_is_cost_not_an_exception(
        consultant: httpx.Client, manager: httpx.Client, system_reader: httpx.Client) -> None:
    day = a_day_of_its_own()
    entry = logged(consultant, travel(NO_TRAVEL_RATE, 60, day))
    entry_id = str(entry["time_entry_id"])
    ok(consultant.post(f"{V3}/me/weeks/{week_of(day).isoformat()}/submissions"))

    decided = manager.post(f"{INBOX}/submitted-entries/{entry_id}/decisions", json={"decision": "approve"})

    assert decided.status_code == 200, decided.text
    billing = decided.json()["items"][0]["billing"]
    assert (billing["disposition"], billing["amount"]) == ("cost_only", None), billing
    assert ok(system_reader.get("/system/erp/v1/postings", params={"source_id": entry_id}))["items"] == []
    stored = ok(system_reader.get("/system/psa/v1/time-entries/" + entry_id))
    assert (stored["state"], stored["activity"]) == ("approved", "travel")
