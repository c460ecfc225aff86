"""The CRM as the system of record: a deal won there is provisioned, a contract amended there reaches billing.

Only the CRM sandbox is touched (as a salesperson or a contracts manager would, in its Salesforce dialect); the
process tier finds the change on its change feed with no other call.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import httpx
import pytest

from contracts.toolchain.asyncapi import EventSchemas, load_asyncapi
from tests.support.contract_checks import assert_matches_contract
from tests.support.flows import ERP, PSA, all_items, erp_postings_of, log_and_approve, ok, postings_settled, wait_for
from tests.support.stack import RunningStack, sandbox_url

SOBJECTS = "/services/data/v60.0/sobjects"
FEED = "/process/provisioning/v1/crm-feed"


def crm_record(sandboxes: httpx.Client, stack: RunningStack, sobject: str, field: str, key: str) -> dict[str, Any]:
    return ok(sandboxes.get(f"{sandbox_url(stack, 'crm')}{SOBJECTS}/{sobject}/{field}/{key}"))


def crm_patch(
    sandboxes: httpx.Client, stack: RunningStack, sobject: str, record_id: str, changes: dict[str, Any]
) -> None:
    response = sandboxes.patch(f"{sandbox_url(stack, 'crm')}{SOBJECTS}/{sobject}/{record_id}", json=changes)
    assert response.status_code == 204, response.text


def events_of(experience: httpx.Client, type_: str) -> list[dict[str, Any]]:
    return ok(experience.get("/process/events/v1/events", params={"type": type_, "limit": 500}))["items"]


def test_a_deal_won_in_the_crm_is_provisioned_once_with_no_call(
    stack: RunningStack, experience: httpx.Client, system: httpx.Client, sandboxes: httpx.Client
) -> None:
    before = ok(system.get("/system/crm/v1/opportunities/opp_3107"))
    assert before["stage"] == "negotiation" and before["provisioned_project_id"] is None
    deal = crm_record(sandboxes, stack, "Opportunity", "Opportunity_Number__c", "OPP-3107")

    crm_patch(sandboxes, stack, "Opportunity", deal["Id"], {"StageName": "Closed Won"})

    done = wait_for(
        "opp_3107 provisioned from the CRM feed",
        lambda: (lambda r: r.json() if r.status_code == 200 and r.json()["state"] == "completed" else None)(
            experience.get("/process/provisioning/v1/opportunities/opp_3107/provisioning")
        ),
    )
    project_id = done["resources"]["project_id"]
    # Seen again (the provisioning's own write-back, another edit, an explicit turn): updated, never duplicated.
    crm_patch(sandboxes, stack, "Opportunity", deal["Id"], {"Description": "kick-off booked"})
    polled = experience.post(f"{FEED}/polls")
    assert_matches_contract("process/provisioning", "POST", "/crm-feed/polls", polled)
    again = ok(experience.get("/process/provisioning/v1/opportunities/opp_3107/provisioning"))
    assert (again["id"], again["state"]) == (done["id"], "completed")
    assert [p["id"] for p in all_items(system, f"{PSA}/projects", contract_id=done["resources"]["contract_id"])] == [
        project_id
    ]
    assert ok(system.get("/system/crm/v1/opportunities/opp_3107"))["provisioned_project_id"] == project_id
    won = [e for e in events_of(experience, "opportunity.closed_won") if e["subject"]["opportunity_id"] == "opp_3107"]
    provisioned = [
        e for e in events_of(experience, "project.provisioned") if e["subject"]["opportunity_id"] == "opp_3107"
    ]
    assert len(won) == 1 and len(provisioned) == 1
    feed = experience.get(FEED)
    assert_matches_contract("process/provisioning", "GET", "/crm-feed", feed)
    assert {m["object"] for m in feed.json()["marks"]} == {"opportunity", "contract"}


def test_a_rate_card_amended_in_the_crm_reprices_held_time_and_is_announced(
    stack: RunningStack, experience: httpx.Client, system: httpx.Client, sandboxes: httpx.Client
) -> None:
    # A data scientist's hours on SOW-2002 (the lean rate card has no data scientists) are held.
    held = log_and_approve(
        experience,
        system,
        worker_id="wrk_e1039",
        project_id="prj_4002",
        work_date=dt.date.today() - dt.timedelta(days=1),
        hours="3",
    )
    assert held["reasons"] == ["NO_RATE_FOR_ROLE"]
    entry = {"id": held["time_entry_id"]}
    contract = crm_record(sandboxes, stack, "Contract", "SOW_Number__c", "SOW-2002")
    full = crm_record(sandboxes, stack, "Rate_Card__c", "Name", "RC-USD")
    amended_before = len(events_of(experience, "contract.amended"))
    lean = ok(system.get(f"{ERP}/contracts/ctr_2002"))["rate_card_id"]

    # The contracts manager amends the SOW in the CRM: the full USD rate card.
    crm_patch(sandboxes, stack, "Contract", contract["Id"], {"Rate_Card__c": full["Id"]})
    try:
        wait_for("the held entry re-priced and posted", lambda: postings_settled(experience, [entry["id"]]))
        (posting,) = erp_postings_of(system, entry["id"])
        assert Decimal(posting["amount"]) == 3 * Decimal(210)  # the data scientist's rate on the full card
        assert ok(system.get(f"{ERP}/contracts/ctr_2002"))["rate_card_id"] == "rc_usd"
        amended = [e for e in events_of(experience, "contract.amended") if e["subject"]["contract_id"] == "ctr_2002"]
        assert len(events_of(experience, "contract.amended")) == amended_before + 1
        assert amended[-1]["data"]["changed_fields"] == ["rate_card_id"]
        assert amended[-1]["data"]["terms"]["rate_card_id"] == "rc_usd"
        assert EventSchemas(load_asyncapi()).errors(amended[-1]) == []
        held = ok(
            experience.get(
                "/process/exceptions/v1/exceptions",
                params={"project_id": "prj_4002", "state": "open", "reason_code": "NO_RATE_FOR_ROLE", "limit": 200},
            )
        )["items"]
        assert entry["id"] not in {i["source_id"] for i in held}
    finally:
        crm_patch(sandboxes, stack, "Contract", contract["Id"], {"Rate_Card__c": contract["Rate_Card__c"]})
        wait_for(
            "the amendment undone", lambda: ok(system.get(f"{ERP}/contracts/ctr_2002"))["rate_card_id"] == lean or None
        )


@pytest.mark.parametrize(
    "params",
    [
        {"object": "opportunity"},
        {"object": "opportunity", "since": "2026-11-23T10:00:00"},
        {"object": "opportunity", "since": "not-a-time"},
        {"object": "account", "since": "2026-11-23T10:00:00Z"},
        {"object": "contract", "since": "2026-11-23T10:00:00Z", "limit": "0"},
        {"object": "contract", "since": "99999-01-01T00:00:00Z"},
        {"object": "contract", "since": "2026-11-23T10:00:00Z", "cursor": "%2F..%0D%0A"},
    ],
)
def test_the_change_feed_refuses_bad_input_with_a_problem(system: httpx.Client, params: dict[str, str]) -> None:
    response = system.get("/system/crm/v1/changes", params=params)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_the_crm_sandbox_refuses_a_bad_amendment_and_the_feed_needs_its_scope(
    stack: RunningStack, sandboxes: httpx.Client
) -> None:
    contract = crm_record(sandboxes, stack, "Contract", "SOW_Number__c", "SOW-2003")
    base = f"{sandbox_url(stack, 'crm')}{SOBJECTS}/Contract/{contract['Id']}"
    for changes in (
        {"Rate_Card__c": "a0R000000000000AAA"},
        {"Contract_Value__c": "lots"},
        {"Contract_Value__c": 1e300},
        {"EndDate": "2026-13-45"},
        {"ContractNumber": "1"},
    ):
        refused = sandboxes.patch(base, json=changes)
        assert refused.status_code == 400 and refused.json()[0]["errorCode"], refused.text
    assert crm_record(sandboxes, stack, "Contract", "SOW_Number__c", "SOW-2003")["Version__c"] == contract["Version__c"]
    bad_query = sandboxes.get(
        f"{sandbox_url(stack, 'crm')}/services/data/v60.0/query",
        params={"q": "SELECT Id FROM Contract WHERE SystemModstamp > 2026-99-99T00:00:00Z"},
    )
    assert bad_query.status_code == 400
    with stack.client("mobile-app", subject="wrk_e1001") as mobile:
        assert mobile.post(f"{FEED}/polls").status_code in (401, 403)
