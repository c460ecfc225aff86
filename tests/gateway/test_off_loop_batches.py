"""The gateway's metrics are drained in short turns beside the calls, and still count every call.

The turns were bounded by time to shorten the stalls each call in flight waited through (bench/gateway.py);
what a user relies on is unchanged: every call is counted, and the queue cannot fall ever further behind.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.telemetry import DRAIN_CHECK_EVERY, DRAIN_MIN_SHARE, LATENCY_BUCKETS, Telemetry, observe_all
from policies.audit import AuditConfig, AuditLog
from policies.audit.store import CallEntry, CallQuery, SqlAuditStore

HOSTILE_PATHS = ["/experience/x/v1/a\r\nX-Injected: 1", "/system/%2F..%2Fetc", "/process/ünïcødé/'; DROP TABLE x;--",
                 "/" + "a" * 5000]


def entry(i: int, *, api: str = "experience/mobile-time") -> CallEntry:
    return CallEntry(
        # Stamped in UTC by the proxy; another offset (stored as the same instant in UTC) now and then.
        at=(dt.datetime(2026, 12, 6, 6, 0, tzinfo=dt.UTC) + dt.timedelta(microseconds=7 * i + 1)).astimezone(
            dt.timezone(dt.timedelta(hours=2)) if i % 8 == 3 else dt.UTC),
        correlation_id=f"corr-{i}",
        trace_id=f"{i:032x}",
        method="GET" if i % 2 else "POST",
        path=HOSTILE_PATHS[i % len(HOSTILE_PATHS)],
        status=200 + i % 300,
        outcome={"authenticate": "ok", "rate_limit": 'said "no"' if i % 3 else "ok"},
        latency_ms=1e300 if i % 5 == 0 else i / 3,
        client_id=None if i % 4 == 0 else "bench-app",
        subject="wrk_\u00e9" if i % 2 else None,
        api=api,
        version=2**31 - 1 if i % 7 == 0 else 1,
        upstream_ms=None if i % 6 == 0 else 0.25,
        retries=i % 3,
        instance="host:1",
    )


def _requests_counted(client: str) -> float:
    return sum(sample.value for metric in REGISTRY.collect() if metric.name == "psgw_requests"
               for sample in metric.samples
               if sample.name == "psgw_requests_total" and sample.labels.get("client") == client)


def test_a_budgeted_metrics_drain_still_shrinks_the_queue_and_counts_every_call() -> None:
    telemetry = Telemetry()
    client = f"drain-test-{id(telemetry)}"
    queued = 40 * DRAIN_MIN_SHARE * DRAIN_CHECK_EVERY
    for i in range(queued):
        call = entry(i)
        call.client_id = client
        telemetry.record(call, access_log=False)
    # No time at all for a turn: it still takes its floor, so the queue cannot fall ever further behind.
    telemetry.drain(budget_seconds=0.0)
    left = len(telemetry._pending)
    assert queued - left >= max(DRAIN_CHECK_EVERY, queued // DRAIN_MIN_SHARE)
    assert left < queued
    turns = 1
    while telemetry._pending:
        telemetry.drain(budget_seconds=0.0)
        turns += 1
        assert turns <= queued  # each turn takes something
    assert _requests_counted(client) == queued


def _samples(histogram: Histogram) -> dict[tuple[str, str], float]:
    return {(sample.name, sample.labels.get("le", "")): sample.value for metric in histogram.collect()
            for sample in metric.samples if not sample.name.endswith("_created")}


def test_observations_counted_together_land_in_the_buckets_one_observe_each_would_give() -> None:
    # On the bounds, just either side of them, beyond the last finite one, zero and below.
    bounds = LATENCY_BUCKETS
    amounts = [b + d for b in bounds for d in (-1e-9, 0.0, 1e-9)] + [0.0, -1.0, 1e9, 0.0042, 0.0042]
    one, together = (Histogram(f"h_{n}", "test", buckets=bounds, registry=CollectorRegistry()) for n in "ab")
    for amount in amounts:
        one.observe(amount)
    observe_all(together, amounts)
    expected, got = _samples(one), _samples(together)
    assert {k: v for k, v in got.items() if k[0] != "h_b_sum"} == {
        (name.replace("h_a", "h_b"), le): v for (name, le), v in expected.items() if name != "h_a_sum"}
    assert abs(got[("h_b_sum", "")] - expected[("h_a_sum", "")]) < 1e-6


def _decisions() -> dict[tuple[str, str], float]:
    return {(sample.labels["policy"], sample.labels["outcome"]): sample.value for metric in REGISTRY.collect()
            if metric.name == "psgw_policy_decisions" for sample in metric.samples
            if sample.name == "psgw_policy_decisions_total"}


def test_a_drain_counts_every_call_its_latency_and_each_decision() -> None:
    decided = _decisions()
    telemetry = Telemetry()
    client = f"decisions-test-{id(telemetry)}"
    calls = [entry(i) for i in range(50)]
    for call in calls:
        call.client_id = client
        telemetry.record(call, access_log=False)
    telemetry.drain()
    observed = sum(sample.value for metric in REGISTRY.collect() if metric.name == "psgw_request_duration_seconds"
                   for sample in metric.samples
                   if sample.name.endswith("_count") and sample.labels.get("client") == client)
    assert observed == len(calls) == _requests_counted(client)
    by_status: dict[str, int] = {}
    for call in calls:
        by_status[str(call.status)] = by_status.get(str(call.status), 0) + 1
    for status, times in by_status.items():
        assert sum(sample.value for metric in REGISTRY.collect() if metric.name == "psgw_requests"
                   for sample in metric.samples if sample.name == "psgw_requests_total"
                   and sample.labels.get("client") == client and sample.labels["status"] == status) == times
    made: dict[tuple[str, str], int] = {}
    for call in calls:
        for decision in call.outcome.items():
            made[decision] = made.get(decision, 0) + 1
    now = _decisions()
    assert {decision: now[decision] - decided.get(decision, 0) for decision in made} == made


async def test_every_audited_call_reads_back_as_it_was_recorded(tmp_path: Path) -> None:
    # The rows are encoded column by column off the loop; each column must still hold its own field.
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
    store = SqlAuditStore(engine)
    audit = AuditLog(store, AuditConfig(batch_size=7))
    try:
        await store.create_schema()
        recorded = [entry(i) for i in range(23)]
        for call in recorded:
            audit.record(call)
        assert await audit.flush() == len(recorded)
        read = await store.calls(CallQuery(limit=100))
    finally:
        await engine.dispose()
    assert len(read) == len(recorded)
    for call, back in zip(recorded, reversed(read), strict=True):
        assert back.id is not None
        back.id = None
        assert back == call


async def test_audited_calls_read_back_from_a_database_only_the_engine_can_open() -> None:
    # On a SQLite file the rows go in through a connection of their own (one hop per batch); an in-memory
    # database is the engine's alone, and a second connection would write into one nobody reads.
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    store = SqlAuditStore(engine)
    audit = AuditLog(store, AuditConfig(batch_size=5))
    try:
        await store.create_schema()
        recorded = [entry(i) for i in range(12)]
        for call in recorded:
            audit.record(call)
        assert await audit.flush() == len(recorded)
        audit.record(entry(12))
        await audit.stop()  # the last call is written at shutdown, and the writer thread closed
        read = await store.calls(CallQuery(limit=100))
    finally:
        await engine.dispose()
    assert [back.correlation_id for back in reversed(read)] == [f"corr-{i}" for i in range(13)]
