"""Faults injected into real processes: a tier killed mid-flow, a vendor failing in bursts, a vendor too slow.

What the ERP outage and Redis tests elsewhere prove is not repeated: tests/process/test_time_to_bill.py (an ERP
outage with a graceful restart of the process tier), tests/gateway/test_resilience.py (the breaker on a slow
upstream), tests/gateway/test_rate_limits.py (Redis unreachable), tests/reliability/test_scale_out.py (Redis
restarted under the cluster).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import RunningStack
from tests.process.conftest import sandbox_url
from tests.process.flows import ERP, PSA, all_items, ok, postings_settled, wait_for
from tests.reliability.conftest import Cluster

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
