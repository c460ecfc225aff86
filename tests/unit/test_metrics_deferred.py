"""Calls served and made are counted as plain numbers between scrapes (runtime/metrics.py): a scrape shows exactly
what recording each call into Prometheus at once would have shown (counts, sums, every bucket)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.parser import text_string_to_metric_families

from runtime import metrics

# On a bucket bound, just above it, far above the last, zero: each lands where Histogram.observe puts it.
DURATIONS = [0.001, 0.0010001, 0.0004, 0.0, 0.005, 0.3, 31.0, 2.5, 0.0099, 0.01]


def samples(text: str, prefix: str, **labels: str) -> dict[tuple[str, str], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith(prefix) and all(sample.labels.get(k) == v for k, v in labels.items()):
                found[(sample.name, sample.labels.get("le", ""))] = sample.value
    return found


def reference(durations: list[float]) -> dict[tuple[str, str], float]:
    """The same calls recorded the immediate way, in a registry of their own."""
    registry = CollectorRegistry()
    counter = Counter("ref_total", "", ["x"], registry=registry)
    histogram = Histogram("ref_seconds", "", ["x"], buckets=metrics.LATENCY_BUCKETS, registry=registry)
    for seconds in durations:
        counter.labels("a").inc()
        histogram.labels("a").observe(seconds)
    out = {}
    for m in registry.collect():
        for s in m.samples:
            if not s.name.endswith("_created"):
                out[(s.name.replace("ref_", ""), s.labels.get("le", ""))] = s.value
    return out


def test_a_scrape_shows_what_immediate_recording_would_have() -> None:
    for seconds in DURATIONS:
        metrics.record_served("deferred-test", "GET", "/system/psa/v1/projects/{project_id:str}", "c1", 200, seconds)
        metrics.record_downstream("deferred-test-down", "GET", 200, seconds)
    text = metrics.latest().decode()
    served = samples(
        text,
        "psgw_tier_request",
        service="deferred-test",
        route="GET /projects/{project_id}",
        status="200",
        client="c1",
    )
    calls = samples(text, "psgw_tier_requests_total", service="deferred-test")
    down = samples(text, "psgw_downstream_duration", downstream="deferred-test-down", status="200")
    down_calls = samples(text, "psgw_downstream_requests_total", downstream="deferred-test-down", method="GET")
    expected = reference(DURATIONS)
    assert calls == {("psgw_tier_requests_total", ""): expected[("total", "")]}
    assert down_calls == {("psgw_downstream_requests_total", ""): expected[("total", "")]}
    for name, prefix in (
        ("seconds_bucket", "psgw_tier_request_duration_seconds_bucket"),
        ("seconds_count", "psgw_tier_request_duration_seconds_count"),
        ("seconds_sum", "psgw_tier_request_duration_seconds_sum"),
    ):
        mine = {le: v for (n, le), v in served.items() if n == prefix}
        theirs = {le: v for (n, le), v in expected.items() if n == name}
        assert mine == theirs, name
        mine_down = {le: v for (n, le), v in down.items() if n == prefix.replace("tier_request", "downstream")}
        assert mine_down == theirs, name
    # A second scrape adds nothing twice; new calls are added to what was shown.
    metrics.record_served("deferred-test", "GET", "/system/psa/v1/projects/{project_id:str}", "c1", 200, 0.02)
    again = samples(metrics.latest().decode(), "psgw_tier_requests_total", service="deferred-test")
    assert again == {("psgw_tier_requests_total", ""): len(DURATIONS) + 1}
