"""Opportunity -> project through real processes: exactly once, whatever is re-sent or fails."""

from __future__ import annotations

import uuid

import httpx

from tests.support.contract_checks import assert_matches_contract
from tests.support.flows import ERP, PSA, all_items, at_once, ok, wait_for
from tests.support.stack import RunningStack, sandbox_url

PROVISIONINGS = "/process/provisioning/v1/provisionings"
FINISHED = {"completed", "failed", "rejected", "compensated"}


def settled(experience: httpx.Client, provisioning_id: str) -> dict:
    return wait_for(f"provisioning {provisioning_id}", lambda: (
        lambda body: body if body["state"] in FINISHED else None)(
        ok(experience.get(f"{PROVISIONINGS}/{provisioning_id}"))))


def test_a_won_opportunity_provisions_one_customer_contract_and_project_despite_resends_and_an_erp_failure(
        stack: RunningStack, experience: httpx.Client, system: httpx.Client, sandboxes: httpx.Client) -> None:
    opportunity = ok(system.get("/system/crm/v1/opportunities/opp_3103"))
    assert opportunity["stage"] == "closed_won" and not opportunity["provisioned_project_id"]
    contracts_before = all_items(system, f"{ERP}/contracts", customer_id=opportunity["account_id"])
    erp_faults = sandbox_url(stack, "erp") + "/_sandbox/faults"
    ok(sandboxes.put(erp_faults, json={"fail_next": 1, "only_methods": ["POST"]}))
    key = f"crm-webhook-{uuid.uuid4().hex}"
    try:
        first = experience.post(PROVISIONINGS, json={"opportunity_id": "opp_3103"}, headers={"Idempotency-Key": key})
        assert first.status_code == 202, first.text
        assert_matches_contract("process/provisioning", "POST", "/provisionings", first)
        after_first = settled(experience, first.json()["id"])
        assert ok(sandboxes.get(erp_faults))["injected"]["error"] == 1
    finally:
        sandboxes.delete(erp_faults)
    if after_first["state"] == "failed":  # the injected failure stopped it: visible and resumable
        failed_step = next(s for s in after_first["steps"] if s["state"] == "failed")
        assert failed_step["error"]["status"] in (502, 503)

    second = experience.post(PROVISIONINGS, json={"opportunity_id": "opp_3103"}, headers={"Idempotency-Key": key})
    assert second.status_code in (200, 202) and second.json()["id"] == first.json()["id"]
    # The resend resumes the failed run; until the resumed run has started, the status still reads "failed".
    provisioning_id = second.json()["id"]
    done = wait_for(f"provisioning {provisioning_id} completed after the resend", lambda: (
        lambda body: body if body["state"] == "completed" else None)(
        ok(experience.get(f"{PROVISIONINGS}/{provisioning_id}"))))
    third = experience.post("/process/provisioning/v1/opportunities/opp_3103/provisioning")

    assert done["state"] == "completed", done
    assert third.status_code == 200 and third.json()["id"] == done["id"] and third.json()["state"] == "completed"
    assert all(s["state"] == "done" for s in done["steps"])
    resources = done["resources"]
    new_contracts = [c for c in all_items(system, f"{ERP}/contracts", customer_id=opportunity["account_id"])
                     if c["id"] not in {b["id"] for b in contracts_before}]
    assert [c["id"] for c in new_contracts] == [resources["contract_id"]]
    projects = all_items(system, f"{PSA}/projects", contract_id=resources["contract_id"])
    assert [p["id"] for p in projects] == [resources["project_id"]]
    assert len(all_items(system, f"{PSA}/projects/{resources['project_id']}/tasks")) == 4
    assert ok(system.get(f"{ERP}/customers/{resources['customer_id']}"))["id"] == opportunity["account_id"]
    # Time and materials billing terms, from the won deal: its rate card, currency, term and NTE (none: uncapped),
    # never the deal amount as a value or an amount per period.
    contract = ok(system.get(f"{ERP}/contracts/{resources['contract_id']}"))
    terms = ("billing_model", "currency", "rate_card_id", "nte_amount", "start_date", "end_date")
    assert [contract[k] for k in terms] == [opportunity[k] for k in terms]
    assert (contract["status"], contract["total_value"], contract["billing_profile"]["scheduled_amount"]) == (
        "active", None, None)
    assert len(all_items(system, f"{ERP}/project-dimensions", project_id=resources["project_id"])) == 1
    demand = all_items(system, f"{PSA}/assignments", project_id=resources["project_id"])
    assert [a["status"] for a in demand] == ["proposed"]
    linked = ok(system.get("/system/crm/v1/opportunities/opp_3103"))
    assert linked["provisioned_project_id"] == resources["project_id"]
    events = ok(experience.get("/process/events/v1/events", params={"type": "project.provisioned", "limit": 500}))
    assert [e["subject"]["project_id"] for e in events["items"]].count(resources["project_id"]) == 1


def test_an_opportunity_that_is_not_won_is_rejected_into_the_exception_queue(experience: httpx.Client) -> None:
    started = ok(experience.post(PROVISIONINGS, json={"opportunity_id": "opp_3101"}), 202)

    rejected = settled(experience, started["id"])

    assert rejected["state"] == "rejected"
    assert rejected["error"]["reason_codes"] == ["OPPORTUNITY_NOT_WON"]
    item = ok(experience.get(f"/process/exceptions/v1/exceptions/{rejected['exception_id']}"))
    assert item["kind"] == "provisioning" and item["reason_codes"] == ["OPPORTUNITY_NOT_WON"]
    assert item["source_id"] == "opp_3101"
    assert rejected["resources"]["project_id"] is None


def test_unknown_provisioning_is_a_404_problem(experience: httpx.Client) -> None:
    missing = experience.get(f"{PROVISIONINGS}/prv_nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_one_key_sent_at_once_by_both_routes_provisions_once_and_a_reused_key_is_refused(
        stack: RunningStack, experience: httpx.Client, system: httpx.Client) -> None:
    # OPP-3105 is won and signed; other tests of the session may provision it too, which changes nothing here.
    key = f"crm-webhook-{uuid.uuid4().hex}"

    def send(client: httpx.Client) -> httpx.Response:
        if uuid.uuid4().int % 2:
            return client.post(PROVISIONINGS, json={"opportunity_id": "opp_3105"}, headers={"Idempotency-Key": key})
        return client.post("/process/provisioning/v1/opportunities/opp_3105/provisioning",
                           headers={"Idempotency-Key": key})

    answers = at_once(lambda: stack.client("experience-tier"), 6, send)

    assert all(a.status_code in (200, 202) for a in answers), [(a.status_code, a.text) for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    done = settled(experience, answers[0].json()["id"])
    assert done["state"] == "completed", done
    contract_id = done["resources"]["contract_id"]
    account = ok(system.get("/system/crm/v1/opportunities/opp_3105"))["account_id"]
    assert [c["id"] for c in all_items(system, f"{ERP}/contracts", customer_id=account)].count(contract_id) == 1
    assert len(all_items(system, f"{PSA}/projects", contract_id=contract_id)) == 1
    provisioned = [e for e in all_items(experience, "/process/events/v1/events", type="project.provisioned")
                   if e["subject"]["project_id"] == done["resources"]["project_id"]]
    assert len(provisioned) == 1

    other = f"opp_never_{uuid.uuid4().hex[:8]}"
    reused = experience.post(PROVISIONINGS, json={"opportunity_id": other}, headers={"Idempotency-Key": key})
    assert reused.status_code == 422 and reused.headers["content-type"] == "application/problem+json"
    assert reused.json()["type"].endswith("/idempotency-key-reused")
    assert experience.get(f"/process/provisioning/v1/opportunities/{other}/provisioning").status_code == 404
