"""Month end on S/4HANA through the process tier, end to end: the settle call queues a month of approved time, the
posting dispatcher sends it through the gateway to the system tier, whose S/4HANA connector writes the entries to the
S/4HANA sandbox (OAuth client credentials, a CSRF token before the first write, one OData ``$batch`` per ERP batch,
each entry its own change set, so the API Management quota sees a few calls, not one per entry); then
the vendor, read through its own OData API and not through the outbox that did the posting, holds each entry exactly
once for the amount the demo firm's rate cards give, and the PSA shows every entry posted. Settling the month again
queues nothing and posts nothing twice.

The same flow and checks as ``bench/month_end.py`` (``--erp-backend s4hana``), on a small month: what is expected
comes from the demo firm alone (``expected``), what is there from the vendors (``verify``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from bench.month_end import CALLER, CALLER_SCOPES, Expected, Result, connector, expected, verify
from gateway.launcher import REPO_ROOT, Ports, Stack
from system_apis.erp.models import PostingFilter
from tests.support.stack import RunningStack, started

ENTRIES = 120
BATCH = 40  # three ERP batches for the month


@pytest.fixture(scope="module")
def month_end(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    env = {
        "PSGW_ERP_BACKEND": "s4hana",
        "PSGW_SANDBOX_MONTH_END_ENTRIES": str(ENTRIES),
        "PSGW_POSTING_BATCH_SIZE": str(BATCH),
    }
    stack = Stack(
        data_dir=tmp_path_factory.mktemp("psgw-s4hana-month-end"),
        ports=Ports.free(),
        config_file=REPO_ROOT / "gateway.yaml",
        extra_env=env,
    )
    with started(stack, timeout=180) as running:
        yield running


def drained(operator: httpx.Client, timeout: float = 120.0) -> None:
    """Until nothing is queued or in the ERP (the dispatcher has posted everything and told the PSA)."""
    deadline = time.monotonic() + timeout
    while True:
        busy = [
            state
            for state in ("queued", "in_erp")
            if operator.get("/process/billing/v1/postings", params={"state": state, "limit": 1}).json()["items"]
        ]
        if not busy:
            return
        assert time.monotonic() < deadline, f"postings still {busy} after {timeout:g}s"
        time.sleep(0.2)


def outbox_postings(operator: httpx.Client) -> dict[str, str]:
    """The ERP posting the outbox recorded for each entry it finished (time entry id -> posting id)."""
    recorded: dict[str, str] = {}
    params: dict[str, str | int] = {"state": "done", "limit": 200}
    while True:
        page = operator.get("/process/billing/v1/postings", params=params).json()
        recorded.update({row["time_entry_id"]: row["erp_posting_id"] for row in page["items"]})
        if not page["next_cursor"]:
            return recorded
        params["cursor"] = page["next_cursor"]


async def vendor_postings(stack: Stack, want: Expected) -> dict[str, str]:
    """What S/4HANA holds for the month, read through its own API (time entry id -> posting id)."""
    erp = connector(stack, "erp", "s4hana")
    held: dict[str, str] = {}
    try:
        cursor: str | None = None
        while True:
            page = await erp.list_postings(
                PostingFilter(from_date=want.first, to_date=want.last), cursor=cursor, limit=500
            )
            held.update({p.source_id: p.id for p in page.items if p.source_type == "time_entry"})
            cursor = page.next_cursor
            if cursor is None:
                return held
    finally:
        await erp.aclose()


def test_a_month_settled_on_s4hana_reaches_the_vendor_exactly_once(month_end: RunningStack) -> None:
    want = expected(ENTRIES)
    limits = f"{month_end.stack.url('sandbox-erp')}/_sandbox/limits"
    assert httpx.put(limits, json={"daily": 1_000_000}).status_code == 200  # to count the calls the quota sees
    with month_end.client(CALLER, scopes=CALLER_SCOPES) as operator:
        operator.timeout = httpx.Timeout(120.0)
        settled = operator.post("/process/billing/v1/settlements", json={"period": want.period})
        assert settled.status_code == 200, settled.text[:500]
        assert settled.json()["summary"]["queued_for_posting"] == ENTRIES
        drained(operator)
        # the postings went as $batch calls (one per ERP batch), not one call per entry
        calls = httpx.get(limits).json()["used"]
        assert calls < ENTRIES // 2, calls
        assert httpx.delete(limits).status_code == 200
        for state in ("rejected", "psa_refused"):
            stuck = operator.get("/process/billing/v1/postings", params={"state": state, "limit": 5}).json()
            assert stuck["items"] == [], (state, stuck)

        result = Result("s4hana", ENTRIES, BATCH, backends={"erp": "s4hana"})
        asyncio.run(verify(month_end.stack, want, result))
        assert result.problems == []
        assert result.erp_postings == ENTRIES and result.psa_posted == ENTRIES
        assert result.erp_totals == want.totals and sum(want.totals.values()) > 0
        # and each entry's outbox row names the vendor's posting of that entry, not another one
        assert outbox_postings(operator) == asyncio.run(vendor_postings(month_end.stack, want))

        again = operator.post("/process/billing/v1/settlements", json={"period": want.period})
        assert again.status_code == 200, again.text[:500]
        assert again.json()["summary"]["queued_for_posting"] == 0
        drained(operator)
        twice = Result("s4hana", ENTRIES, BATCH, backends={"erp": "s4hana"})
        asyncio.run(verify(month_end.stack, want, twice))
        assert twice.problems == [] and twice.erp_postings == ENTRIES
