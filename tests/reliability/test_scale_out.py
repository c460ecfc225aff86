"""Scale-out: two gateways and two replicas of every tier behind balancers, sharing Redis and PostgreSQL.

Global rate limits hold across the gateways; approvals and provisioning sent to several instances at once still
post and provision exactly once; a Redis restart neither breaks calls (rate limiting fails open, as configured)
nor loses an event (the SQL outbox refills the stream, in order, once each).
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.support.cluster import PROBE_BURST, PROBE_CLIENT, PROBE_RATE, Cluster
from tests.support.flows import ERP, PSA, all_items, ok, postings_settled, wait_for

APPROVALS = "/process/timesheets/v1/approvals"
PROVISIONINGS = "/process/provisioning/v1/provisionings"


def test_a_global_rate_limit_holds_within_five_percent_across_two_gateways(cluster: Cluster) -> None:
    token = cluster.token(PROBE_CLIENT)
    url = cluster.url + "/system/psa/v1/projects/prj_4001"
    statuses: list[int] = []
    sent_at: list[float] = []
    started = time.monotonic()
    window = 5.0

    def hammer(_worker: int) -> list[tuple[float, int]]:
        seen = []
        # One connection per worker through the balancer: the workers spread over both gateways.
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            while time.monotonic() - started < window:
                at = time.monotonic()
                seen.append((at, client.get(url).status_code))
        return seen

    with ThreadPoolExecutor(8) as pool:
        for seen in pool.map(hammer, range(8)):
            sent_at.extend(at for at, _ in seen)
            statuses.extend(status for _, status in seen)
    # The span the limiter saw: from the first call sent to the last (not thread start-up or the last answer).
    elapsed = max(sent_at) - min(sent_at)

    allowed = statuses.count(200)
    configured = PROBE_BURST + PROBE_RATE * elapsed  # GCRA: the burst, then the rate
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(429) > allowed  # the callers asked for far more than the budget
    assert abs(allowed - configured) <= 0.05 * configured, (allowed, configured)
    # Both gateways served: the budget was shared, not doubled.
    served = [total_requests(cluster, name) for name in cluster.replicas["gateway"]]
    assert all(n > 0 for n in served), served


def total_requests(cluster: Cluster, gateway: str) -> float:
    text = cluster.metrics(gateway)
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("psgw_requests_total{") and f'client="{PROBE_CLIENT}"' in line)


def test_approvals_sent_to_every_instance_at_once_post_each_entry_exactly_once(cluster: Cluster) -> None:
    with cluster.client("process-tier") as system:
        week = [e for e in all_items(system, f"{PSA}/time-entries", project_id="prj_4003", state="submitted")
                if e["billable"]]
        manager = ok(system.get(f"{PSA}/projects/prj_4003"))["manager_id"]
    ids = [e["id"] for e in week]
    body = {"time_entry_ids": ids, "approver_id": manager, "decision": "approve"}
    token = cluster.token("experience-tier")

    def approve(n: int) -> httpx.Response:
        # Half resend one request (same key), half are separate approvals of the same time: six at once.
        key = "week-4003" if n % 2 else f"week-4003-{n}"
        with httpx.Client(base_url=cluster.url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as c:
            return c.post(APPROVALS, json=body, headers={"Idempotency-Key": key})

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(approve, range(6)))

    for n, answer in enumerate(answers):
        if answer.status_code == 409:
            # A resend while the first request with its key is still in flight: the IETF Idempotency-Key draft's
            # answer, as problem+json; only the requests sharing one key may get it.
            assert n % 2 and answer.headers["content-type"] == "application/problem+json", (n, answer.text)
        else:
            assert answer.status_code in (200, 201, 202), (n, answer.status_code, answer.text)
    assert any(a.status_code in (200, 201, 202) for n, a in enumerate(answers) if n % 2), "the shared key never won"
    with cluster.client("experience-tier") as experience, cluster.client("process-tier") as system:
        wait_for("every posting of the week", lambda: postings_settled(experience, ids))
        for entry_id in ids:
            posted = all_items(system, f"{ERP}/postings", source_id=entry_id)
            assert len(posted) == 1, f"{entry_id} posted {len(posted)} times"
        events = all_items(experience, "/process/events/v1/events", type="time.posted")
        subjects = [e["subject"]["time_entry_id"] for e in events]
        assert all(subjects.count(i) == 1 for i in ids)


def test_one_opportunity_provisioned_from_two_instances_at_once_is_provisioned_once(cluster: Cluster) -> None:
    token = cluster.token("experience-tier")

    def provision(n: int) -> httpx.Response:
        with httpx.Client(base_url=cluster.url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as c:
            return c.post(PROVISIONINGS, json={"opportunity_id": "opp_3103"},
                          headers={"Idempotency-Key": f"crm-webhook-{uuid.uuid4().hex}"})

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(provision, range(4)))
    assert all(a.status_code in (200, 202) for a in answers), [(a.status_code, a.text) for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1

    with cluster.client("experience-tier") as experience, cluster.client("process-tier") as system:
        def finished() -> dict[str, Any] | None:
            body: dict[str, Any] = ok(experience.get(f"{PROVISIONINGS}/{answers[0].json()['id']}"))
            return body if body["state"] in ("completed", "failed", "rejected") else None

        done = wait_for("the provisioning", finished)
        assert done["state"] == "completed", done
        account = ok(system.get("/system/crm/v1/opportunities/opp_3103"))["account_id"]
        contracts = [c for c in all_items(system, f"{ERP}/contracts", customer_id=account)
                     if c["id"] == done["resources"]["contract_id"]]
        assert len(contracts) == 1
        assert len(all_items(system, f"{PSA}/projects", contract_id=done["resources"]["contract_id"])) == 1
        provisioned = all_items(experience, "/process/events/v1/events", type="project.provisioned")
        assert [e["subject"]["project_id"] for e in provisioned].count(done["resources"]["project_id"]) == 1


def test_a_redis_restart_fails_rate_limits_open_and_loses_no_event(cluster: Cluster) -> None:
    stream = "psgw:events"
    with cluster.client("experience-tier") as experience, cluster.client("process-tier") as system:
        week = [e for e in all_items(system, f"{PSA}/time-entries", project_id="prj_4005", state="submitted")
                if e["billable"]]
        manager = ok(system.get(f"{PSA}/projects/prj_4005"))["manager_id"]

        cluster.redis.kill()  # lost with everything it held: counters and the stream
        try:
            # Rate limiting is configured to fail open: calls keep being served while Redis is gone...
            assert ok(system.get(f"{PSA}/projects/prj_4005"))["id"] == "prj_4005"
            # ...and the workflow goes on: its events wait in the SQL outbox.
            ok(experience.post(APPROVALS, json={"time_entry_ids": [e["id"] for e in week],
                                                "approver_id": manager, "decision": "approve"}), 201, 202)
            wait_for("the postings while Redis is down", lambda: postings_settled(experience, [e["id"]
                                                                                               for e in week]))
        finally:
            cluster.redis.start()

        outbox = all_items(experience, "/process/events/v1/events")
        client = cluster.redis.client()
        try:
            def refilled() -> list[int] | None:
                entries: Any = client.xrange(stream)
                ids = [int(entry_id.decode().split("-")[0]) for entry_id, _ in entries]
                return ids if ids and ids[-1] >= outbox[-1]["position"] else None

            positions = wait_for("the relay to refill the stream", refilled, timeout=60)
        finally:
            client.close()
    # Every committed event once, in order, with no gap: what consumers replay is the outbox, exactly.
    assert positions[: len(outbox)] == [e["position"] for e in outbox] == list(range(1, len(outbox) + 1))
