"""Faults injected into real processes: a tier killed mid-flow, a vendor failing in bursts, a vendor too slow,
every event delivered a second time to the tier's own consumer.

What the ERP outage and Redis tests elsewhere prove is not repeated: tests/process/test_time_to_bill.py (an ERP
outage with a graceful restart of the process tier), tests/gateway/test_resilience.py (the breaker on a slow
upstream), tests/gateway/test_rate_limits.py (Redis unreachable), tests/reliability/test_scale_out.py (Redis
restarted under the cluster).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx

from tests.support.cluster import Cluster
from tests.support.flows import ERP, PSA, all_items, ok, postings_settled, wait_for
from tests.support.stack import RunningStack, sandbox_url

APPROVALS = "/process/timesheets/v1/approvals"
POSTINGS = "/process/billing/v1/postings"


def test_the_process_tier_killed_mid_flow_loses_and_doubles_nothing(stack: RunningStack) -> None:
    with stack.client("experience-tier") as experience, stack.client("process-tier") as system, \
            httpx.Client(timeout=10) as sandboxes:
        week = [e for e in all_items(system, f"{PSA}/time-entries", project_id="prj_4019", state="submitted")
                if e["billable"]]
        manager = ok(system.get(f"{PSA}/projects/prj_4019"))["manager_id"]
        ids = [e["id"] for e in week]
        faults = sandbox_url(stack, "erp") + "/_sandbox/faults"
        # The system tier signs in to the ERP (a POST to its token endpoint) before the faults, as a running
        # stack has: the burst is meant for the postings, not for a first sign-in that would hold the approval.
        all_items(system, f"{ERP}/postings", source_id=ids[0])
        # A burst of ERP failures, then slow answers: work is in flight or due again when the tier dies.
        ok(sandboxes.put(faults, json={"fail_next": 2, "error_status": 500, "latency_ms": 300,
                                       "only_methods": ["POST"]}))
        try:
            approval = ok(experience.post(APPROVALS, json={"time_entry_ids": ids, "approver_id": manager,
                                                           "decision": "approve"}), 201, 202)
            queued = [e["time_entry_id"] for e in approval["entries"]
                      if (e.get("settlement") or {}).get("disposition") == "queued_for_posting"]
            assert queued == ids
            wait_for("a posting attempt refused by the ERP", lambda: any(
                i["attempts"] > 0 for i in ok(experience.get(POSTINGS, params={"project_id": "prj_4019"}))["items"]))

            stack.stack.kill("process")  # SIGKILL: no shutdown hook, leases held, a batch maybe half sent
            down = experience.get(POSTINGS, params={"project_id": "prj_4019"}, timeout=10)
            assert down.status_code == 503
            assert down.headers["content-type"] == "application/problem+json"
            assert down.json()["upstream"] == "process"

            stack.stack.start(only=["process"])
            stack.stack.wait_ready(only=["process"])
            assert ok(sandboxes.get(faults))["injected"]["error"] > 0
        finally:
            sandboxes.delete(faults)

        # Leases of the killed process expire (outbox_lease_seconds) and the restarted one takes the rows over.
        wait_for("every posting after the crash", lambda: postings_settled(experience, ids), timeout=240)
        for entry_id in ids:
            posted = all_items(system, f"{ERP}/postings", source_id=entry_id)
            assert len(posted) == 1, f"{entry_id} posted {len(posted)} times"
            assert ok(system.get(f"{PSA}/time-entries/{entry_id}"))["state"] == "posted"
        subjects = [e["subject"]["time_entry_id"]
                    for e in all_items(experience, "/process/events/v1/events", type="time.posted")]
        assert all(subjects.count(i) == 1 for i in ids)


def test_a_vendor_too_slow_is_cut_off_and_the_gateway_keeps_serving_others(cluster: Cluster) -> None:
    faults = cluster.stack.url("sandbox-erp") + "/_sandbox/faults"
    ok(httpx.put(faults, json={"timeout": True, "hang_seconds": 20, "only_methods": ["GET"]}))
    try:
        with cluster.client("process-tier") as system, ThreadPoolExecutor(6) as pool:
            slow = [pool.submit(system.get, f"{ERP}/contracts/ctr_2001") for _ in range(3)]
            others = [pool.submit(system.get, f"{PSA}/projects/prj_4001") for _ in range(3)]
            slow_answers = [f.result() for f in slow]
            other_answers = [f.result() for f in others]
    finally:
        httpx.delete(faults)

    for answer in slow_answers:
        # The system tier's vendor timeout (2 s here) answers for the hung vendor, long before the 20 s hang.
        assert answer.status_code == 504, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["downstream"] == "sandbox-erp"
    assert [a.status_code for a in other_answers] == [200, 200, 200]
    with cluster.client("process-tier") as system:
        assert ok(system.get(f"{ERP}/contracts/ctr_2001"))["id"] == "ctr_2001"  # back once the vendor is


def test_every_event_delivered_again_doubles_nothing_in_the_posted_time_projection(cluster: Cluster) -> None:
    """The tier's consumer group is rewound to the start of the stream (as after restoring Redis from an old
    snapshot): both process replicas receive every event a second time, and the projection does not move."""
    stream, group = "psgw:events", "posted-time"
    with cluster.client("experience-tier") as experience, cluster.client("process-tier") as system:
        project, week = next((p, week) for p in ("prj_4006", "prj_4007", "prj_4008", "prj_4009") if (week := [
            e["id"] for e in all_items(system, f"{PSA}/time-entries", project_id=p, state="submitted")
            if e["billable"]]))
        manager = ok(system.get(f"{PSA}/projects/{project}"))["manager_id"]
        approval = ok(experience.post(APPROVALS, json={"time_entry_ids": week, "approver_id": manager,
                                                       "decision": "approve"}), 201)
        queued = [e["time_entry_id"] for e in approval["entries"]
                  if (e.get("settlement") or {}).get("disposition") == "queued_for_posting"]
        assert queued, [e.get("settlement") for e in approval["entries"]]
        wait_for("the week's postings", lambda: postings_settled(experience, queued), timeout=120)
        erp = [p for entry in queued for p in all_items(system, f"{ERP}/postings", source_id=entry)]
        assert len(erp) == len(queued)

        def projected() -> dict[str, Any] | None:
            page = ok(experience.get("/process/events/v1/posted-time/projects", params={"project_id": project}))
            items = page["items"]
            return page if items and items[0]["entries"] == len(queued) else None

        (totals,) = wait_for("the projection of the posted week", projected, timeout=60)["items"]
        assert Decimal(totals["amount"]) == sum(Decimal(p["amount"]) for p in erp)
        assert Decimal(totals["hours"]) == sum(Decimal(p["quantity"]) for p in erp)

        redis_client = cluster.redis.client()

        def caught_up() -> bool:
            top = redis_client.xinfo_stream(stream)["last-generated-id"]
            (info,) = [g for g in redis_client.xinfo_groups(stream) if g["name"] == group.encode()]
            return bool(info["last-delivered-id"] == top and info["pending"] == 0)

        try:
            wait_for("the group to consume the stream", caught_up, timeout=120)
            before = ok(experience.get("/process/events/v1/posted-time/projects", params={"project_id": project}))
            redis_client.xgroup_setid(stream, group, "0")
            wait_for("the group to be delivered the whole stream again", caught_up, timeout=120)
        finally:
            redis_client.close()
        after = ok(experience.get("/process/events/v1/posted-time/projects", params={"project_id": project}))
    assert after["items"] == before["items"]
    assert after["applied_events"] == before["applied_events"]  # every redelivery recognized, none applied
