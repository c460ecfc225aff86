"""Observability of every process: Prometheus metrics by route template, business gauges of the process tier, and
one OpenTelemetry trace across gateway -> experience -> process -> system, exported to a real OTLP/HTTP receiver,
whose trace id is also the one of the audit entries and of the exception items the call raised."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from typing import Any

import httpx

from tests.support.cluster import Cluster
from tests.support.flows import PSA, all_items, ok, postings_settled, wait_for
from tests.support.stack import DEMO_CONSULTANT, RunningStack, sandbox_url

MY_ASSIGNMENTS = "/experience/mobile-time/v1/me/assignments"


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of one metric as (labels, value)."""
    found = []
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            head, value = line.rsplit(" ", 1)
            found.append((dict(re.findall(r'(\w+)="([^"]*)"', head)), float(value)))
    return found


def total(text: str, name: str, **wanted: str) -> float:
    return sum(v for labels, v in samples(text, name) if all(labels.get(k) == w for k, w in wanted.items()))


def test_every_process_counts_calls_by_route_template_never_by_raw_path(stack: RunningStack,
                                                                       consultant: httpx.Client) -> None:
    ok(consultant.get(MY_ASSIGNMENTS))
    with stack.client("process-tier") as process:
        ok(process.get("/system/psa/v1/projects/prj_4001"))
        ok(process.get("/system/psa/v1/projects/prj_4002"))
        assert process.get("/system/psa/v1/projects/prj_nope").status_code == 404

    system = httpx.get(stack.stack.url("system") + "/metrics").text
    by_route = total(system, "psgw_tier_requests_total", api="system/psa", version="1",
                     route="GET /projects/{project_id}", client="process-tier", status="200")
    assert by_route >= 2
    assert total(system, "psgw_tier_requests_total", route="GET /projects/{project_id}", status="404") >= 1
    assert "prj_4001" not in system and "prj_nope" not in system  # ids never become label values
    assert total(system, "psgw_tier_request_duration_seconds_count", api="system/psa") >= 3
    assert total(system, "psgw_downstream_requests_total", downstream="sandbox-psa", status="200") >= 2

    for tier, api in (("experience", "experience/mobile-time"), ("process", "process/staffing")):
        text = httpx.get(stack.stack.url(tier) + "/metrics").text
        assert total(text, "psgw_tier_requests_total", api=api, status="200") >= 1, tier
        assert total(text, "psgw_downstream_requests_total", downstream="gateway") >= 1, tier
    gateway = httpx.get(stack.url + "/metrics").text
    assert total(gateway, "psgw_requests_total", api="experience/mobile-time", route="/me/assignments") >= 1


def test_the_process_tier_reports_failing_syncs_and_open_exceptions(stack: RunningStack) -> None:
    """An ERP outage shows as retrying posting rows; a held entry as an open exception by unit and reason."""
    with stack.client("experience-tier") as experience, stack.client("process-tier") as system, \
            httpx.Client(timeout=10) as sandboxes:
        submitted = [e for e in ok(system.get("/system/psa/v1/time-entries", params={
            "project_id": "prj_4018", "state": "submitted", "limit": 200}))["items"] if e["billable"]]
        assert submitted, "the demo firm has submitted time on prj_4018"
        project = ok(system.get("/system/psa/v1/projects/prj_4018"))
        manager = project["manager_id"]
        # The outage below refuses the ERP's POSTs, its OAuth token endpoint among them: the system tier must
        # hold its ERP token before (as it does after any earlier call), or every ERP read fails too.
        ok(system.get(f"/system/erp/v1/contracts/{project['contract_id']}"))
        faults = sandbox_url(stack, "erp") + "/_sandbox/faults"
        ok(sandboxes.put(faults, json={"outage_seconds": 30, "only_methods": ["POST"]}))
        try:
            approval = ok(experience.post("/process/timesheets/v1/approvals", json={
                "time_entry_ids": [e["id"] for e in submitted], "approver_id": manager, "decision": "approve"}),
                201, 202)
            queued = [e["time_entry_id"] for e in approval["entries"]
                      if (e.get("settlement") or {}).get("disposition") == "queued_for_posting"]
            assert queued, [e.get("settlement") for e in approval["entries"]]

            def retrying() -> float:
                text = httpx.get(stack.stack.url("process") + "/metrics").text
                return total(text, "psgw_outbox_retrying_rows", outbox="postings")

            assert wait_for("a posting retrying through the outage", retrying, timeout=60) >= 1
        finally:
            sandboxes.delete(faults)
        wait_for("the postings after the outage", lambda: postings_settled(experience, queued))

        open_items = ok(experience.get("/process/exceptions/v1/exceptions", params={"state": "open", "limit": 200}))
    text = httpx.get(stack.stack.url("process") + "/metrics").text
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for item in open_items["items"]:
        for reason in item["reason_codes"]:
            expected[(item["business_unit_id"] or "unassigned", reason)] += 1
    for (unit, reason), count in expected.items():
        assert total(text, "psgw_open_exceptions", business_unit=unit, reason=reason) >= count, (unit, reason)
    assert samples(text, "psgw_unapproved_time_entries")  # the gauges exist at every scrape
    assert samples(text, "psgw_invoice_ready_postings") or "psgw_invoice_ready_postings" in text


def test_one_trace_across_gateway_experience_process_and_system(cluster: Cluster) -> None:
    trace_id = os.urandom(16).hex()
    caller_span = os.urandom(8).hex()
    token = cluster.token("mobile-app", subject=DEMO_CONSULTANT)
    response = httpx.get(cluster.url + MY_ASSIGNMENTS, timeout=30, headers={
        "Authorization": f"Bearer {token}", "traceparent": f"00-{trace_id}-{caller_span}-01"})
    ok(response)

    def hops() -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """The system tier's server span and its chain of parents, once the chain reaches the caller: each process
        exports its spans in batches of its own, and the outermost gateway span ends (and leaves) last."""
        spans = {s["span_id"]: s for s in cluster.spans() if s["trace_id"] == trace_id}
        system_span = next((s for s in spans.values() if s["service"] == "system-apis" and s["kind"] == "server"),
                           None)
        if system_span is None:
            return None
        chain = [system_span]
        while chain[-1]["parent_span_id"] in spans:
            chain.append(spans[chain[-1]["parent_span_id"]])
        return (system_span, chain) if chain[-1]["parent_span_id"] == caller_span else None

    # The chain of parents: system -> gateway -> process -> gateway -> experience -> gateway -> the caller.
    system_span, chain = wait_for("spans of every hop at the collector", hops, timeout=30)
    assert [s["service"] for s in chain if s["kind"] == "server"] == [
        "system-apis", "gateway", "process-apis", "gateway", "experience-apis", "gateway"]
    assert chain[-1]["parent_span_id"] == caller_span
    assert chain[-1]["name"] == "GET /experience/mobile-time/v1/me/assignments"
    assert system_span["attributes"]["http.route"].startswith("/system/psa/v1/")
    assert {s["attributes"]["http.response.status_code"] for s in chain} == {200}

    # The same trace id is in the audit log of every call the request made through the gateways.
    correlation_id = response.headers["x-correlation-id"]
    admin = {"Authorization": "Bearer " + cluster.token("security-admin")}

    def audited() -> list[dict[str, Any]] | None:
        items = httpx.get(cluster.url + "/admin/v1/audit/calls", headers=admin, timeout=10,
                          params={"correlation_id": correlation_id}).json()["items"]
        apis = {i["api"] for i in items}
        return items if {"experience/mobile-time", "process/staffing", "system/psa"} <= apis else None

    entries = wait_for("the audit entries of every hop", audited, timeout=30)
    assert {e["trace_id"] for e in entries} == {trace_id}


def test_an_exception_item_carries_the_trace_id_of_the_call_that_raised_it(cluster: Cluster) -> None:
    """A data scientist's hours on the lean rate card are held (NO_RATE_FOR_ROLE) by the approval call itself."""
    trace_id = os.urandom(16).hex()
    with cluster.client("experience-tier") as experience, cluster.client("process-tier") as system:
        scientist = [e["id"] for e in all_items(system, f"{PSA}/time-entries", project_id="prj_4002",
                                                state="submitted") if e["billable"] and e["worker_id"] == "wrk_e1039"]
        assert scientist, "the demo firm has a data scientist on the lean rate card"
        manager = ok(system.get(f"{PSA}/projects/prj_4002"))["manager_id"]
        response = experience.post("/process/timesheets/v1/approvals", headers={
            "traceparent": f"00-{trace_id}-{os.urandom(8).hex()}-01"},
            json={"time_entry_ids": scientist[:1], "approver_id": manager, "decision": "approve"})
        settlement = ok(response, 201)["entries"][0]["settlement"]
        assert (settlement["disposition"], settlement["reasons"]) == ("held", ["NO_RATE_FOR_ROLE"])
        item = ok(experience.get(f"/process/exceptions/v1/exceptions/{settlement['exception_id']}"))

    correlation_id = response.headers["x-correlation-id"]
    assert (item["trace_id"], item["correlation_id"]) == (trace_id, correlation_id)
    admin = {"Authorization": "Bearer " + cluster.token("security-admin")}

    def audited() -> list[dict[str, Any]] | None:
        items = httpx.get(cluster.url + "/admin/v1/audit/calls", headers=admin, timeout=10,
                          params={"correlation_id": correlation_id}).json()["items"]
        return [i for i in items if i["api"] == "process/timesheets"] or None

    approval_calls = wait_for("the audit entry of the approval call", audited, timeout=30)
    assert [e["trace_id"] for e in approval_calls] == [item["trace_id"]]
