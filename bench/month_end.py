"""Month end through real processes: settle a month of approved time and post all of it to the ERP, exactly once.

    .venv/bin/python -m bench.month_end [--entries 50000] [--baseline-entries 1000] [--readme]

Each run starts its own stack on free loopback ports (four sandbox vendors, the system, process and experience
tiers, the gateway: separate processes, as ``psgw up`` starts them) with the sandbox PSA seeded with ``--entries``
approved, eligible entries in one month (``PSGW_SANDBOX_MONTH_END_ENTRIES``, see ``sandbox.firm.with_month_end``).
Then, through the gateway with a caller's token, as an operator would:

1. ``POST /process/billing/v1/settlements {"period": ...}``: the process tier fetches the month's approved time
   from the PSA system API, evaluates eligibility and queues every eligible entry in its posting outbox;
2. waits until the outbox is drained: the dispatcher has posted every entry to the ERP and marked it posted in
   the PSA (nothing queued or in flight, nothing rejected or refused);
3. checks the vendors themselves: the sandbox ERP holds exactly one posting per seeded entry and their amounts
   add up, per currency, to hours x rate computed here from the demo firm; the sandbox PSA shows them posted.

The wall time covers 1 and 2. Peak RSS is VmHWM from /proc of every process of the run. The baseline is the same
flow with batching off (``PSGW_POSTING_BATCH_SIZE=1``: one ERP posting call and one PSA transition call per
entry) on ``--baseline-entries``, in the same run, so the ratio shows what batching buys.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import httpx

from bench.harness import machine_summary, write_readme_section
from gateway.config import load as load_gateway_config
from gateway.issuer import Issuer
from gateway.launcher import Ports, Stack
from sandbox import firm as demo

TARGET_SECONDS = 60.0
TARGET_RSS_MB = 300.0
ERP_BATCH = 500  # the ERP system contract's batch limit (and the PSA batch transition's)
CENT = Decimal("0.01")
# An operator's call: the experience tier's client with the scope settling needs (gateway.yaml grants it to none).
CALLER = "experience-tier"
CALLER_SCOPES = ["billing:read", "billing:write"]


@dataclass
class Expected:
    period: str
    first: dt.date
    last: dt.date
    numbers: frozenset[str]
    totals: dict[str, Decimal]


@dataclass
class Result:
    label: str
    entries: int
    batch_size: int
    settle_seconds: float = 0.0
    post_seconds: float = 0.0
    peak_rss_kb: dict[str, int] = field(default_factory=dict)
    erp_postings: int = 0
    erp_totals: dict[str, Decimal] = field(default_factory=dict)
    psa_posted: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.settle_seconds + self.post_seconds

    @property
    def rate(self) -> float:
        return self.entries / self.seconds if self.seconds else 0.0


def expected(entries: int) -> Expected:
    """The seeded entries and what they are worth, from the demo firm alone (not from the code under test)."""
    story = demo.with_month_end(demo.build(), entries)
    seeded = story.time_entries[-entries:]
    projects = {p.code: p for p in story.projects}
    contracts = {c.number: c for c in story.contracts}
    cards = {r.code: r for r in story.rate_cards}
    roles = {(a.worker, a.project): a.role for a in story.assignments if a.status == "confirmed"}
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for entry in seeded:
        contract = contracts[projects[entry.project].contract]
        rate = cards[contract.rate_card].rates[roles[(entry.worker, entry.project)]]
        totals[contract.currency] += (Decimal(entry.minutes) / 60 * rate).quantize(CENT, ROUND_HALF_EVEN)
    first = demo.month_end_period(story.today)
    last = demo.month_end_period(first) - dt.timedelta(days=1)
    return Expected(first.strftime("%Y-%m"), first, last, frozenset(e.number for e in seeded), dict(totals))


def peak_rss_kb(name: str, pid: int) -> dict[str, int]:
    """VmHWM of the process and, each on its own, of any child it forked (a server with worker processes)."""
    peaks: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks[name] = int(line.split()[1])
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return peaks
    for child in children:
        peaks.update(peak_rss_kb(f"{name}/{child}", int(child)))
    return peaks


def caller(stack: Stack) -> httpx.Client:
    config = load_gateway_config(stack.config_file, {**os.environ, "PSGW_ISSUER_URL": stack.gateway_url})
    client = next(c for c in config.clients if c.id == CALLER)
    token = Issuer(config.issuer, stack.data_dir).mint(client, CALLER_SCOPES)[0]
    return httpx.Client(base_url=stack.gateway_url, timeout=300.0, headers={"Authorization": f"Bearer {token}"})


def outbox_count(http: httpx.Client, state: str) -> int:
    """Whether any posting is in ``state`` (0 or 1: one item is enough to know)."""
    response = http.get("/process/billing/v1/postings", params={"state": state, "limit": 1})
    response.raise_for_status()
    return len(response.json()["items"])


def run(label: str, entries: int, batch_size: int, work_dir: Path, timeout: float) -> Result:
    result = Result(label, entries, batch_size)
    want = expected(entries)
    stack = Stack(data_dir=work_dir / f"batch-{batch_size}", ports=Ports.free(), extra_env={
        "PSGW_SANDBOX_MONTH_END_ENTRIES": str(entries), "PSGW_POSTING_BATCH_SIZE": str(batch_size)})
    stack.start()
    try:
        stack.wait_ready(timeout=180)
        with caller(stack) as http:
            started = time.monotonic()
            response = http.post("/process/billing/v1/settlements", json={"period": want.period})
            result.settle_seconds = time.monotonic() - started
            if response.status_code != 200:
                result.problems.append(f"settling answered {response.status_code}: {response.text[:300]}")
                return result
            summary = response.json()["summary"]
            if summary["queued_for_posting"] != entries:
                result.problems.append(f"{summary['queued_for_posting']} of {entries} entries queued: {summary}")
            settled = time.monotonic()
            while outbox_count(http, "queued") or outbox_count(http, "in_erp"):
                if time.monotonic() - settled > timeout:
                    result.problems.append(f"the outbox was not drained within {timeout:g}s")
                    break
                time.sleep(0.2)
            result.post_seconds = time.monotonic() - settled
            for state in ("rejected", "psa_refused"):
                if outbox_count(http, state):
                    result.problems.append(f"postings ended {state}")
        for name, process in stack.processes.items():
            result.peak_rss_kb.update(peak_rss_kb(name, process.pid))
        verify(stack, want, result)
    finally:
        stack.stop()
    return result


def verify(stack: Stack, want: Expected, result: Result) -> None:
    """Ask the vendors, not our APIs: one ERP posting per seeded entry, the right total, and PSA says posted."""
    sources: Counter[str] = Counter()
    totals: dict[str, Decimal] = defaultdict(Decimal)
    with httpx.Client(timeout=60.0) as vendor:
        offset = 0
        while True:
            page = vendor.get(f"{stack.url('sandbox-erp')}/api/v1/postings", params={
                "fromDate": want.first.isoformat(), "toDate": want.last.isoformat(), "offset": offset,
                "limit": 1000}).json()
            for posting in page["items"]:
                if posting["sourceDocumentType"] == "TIMECARD":
                    sources[posting["sourceDocumentId"]] += 1
                    totals[posting["currencyCode"]] += Decimal(posting["amountMinor"]) / 100
            offset += page["count"]
            if not page["hasMore"]:
                break
        posted = vendor.get(f"{stack.url('sandbox-psa')}/api/v3/timecards", params={
            "status": "Posted", "fromDate": want.first.isoformat(), "toDate": want.last.isoformat(),
            "pageSize": 1}).json()
    result.erp_postings = sum(sources.values())
    result.erp_totals = dict(totals)
    result.psa_posted = posted["meta"]["totalCount"]
    doubled = [s for s, n in sources.items() if n > 1]
    if doubled:
        result.problems.append(f"{len(doubled)} entries posted more than once (e.g. {doubled[0]})")
    if set(sources) != want.numbers:
        result.problems.append(f"ERP sources differ from the seeded entries: {len(want.numbers - set(sources))} "
                               f"missing, {len(set(sources) - want.numbers)} unexpected")
    if dict(totals) != want.totals:
        result.problems.append(f"ERP totals {dict(totals)} != expected {want.totals}")
    if result.psa_posted != len(want.numbers):
        result.problems.append(f"the PSA shows {result.psa_posted} of {len(want.numbers)} entries posted")


def render(main: Result, baseline: Result, command: str) -> str:
    want = expected(main.entries)
    peak = max(main.peak_rss_kb.items(), key=lambda item: item[1]) if main.peak_rss_kb else ("-", 0)
    lines = [
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine_summary()}.",
        f"Command: `{command}` (month {want.period}; every process on loopback; wall time from the settle call "
        "until the outbox is drained; checked against the vendors afterwards).",
        "",
        "| run | entries | ERP batch | settle s | post s | total s | entries/s | vs baseline | exactly once |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in (main, baseline):
        ratio = result.rate / baseline.rate if baseline.rate else 0.0
        lines.append(
            f"| {result.label} | {result.entries:,} | {result.batch_size} | {result.settle_seconds:.1f} | "
            f"{result.post_seconds:.1f} | {result.seconds:.1f} | {result.rate:,.0f} | {ratio:.1f}x | "
            f"{'yes' if not result.problems else 'NO: ' + '; '.join(result.problems)} |")
    lines += [
        "",
        f"ERP after the main run: {main.erp_postings:,} postings for {len(want.numbers):,} entries, totals "
        + ", ".join(f"{c} {a:,.2f}" for c, a in sorted(main.erp_totals.items()))
        + f"; PSA: {main.psa_posted:,} posted.",
        "",
        "Peak RSS (VmHWM) per process, main run: "
        + ", ".join(f"{name} {kb / 1024:.0f} MB" for name, kb in sorted(main.peak_rss_kb.items())) + ".",
        "",
        f"Target under {TARGET_SECONDS:g} s for {main.entries:,} entries: "
        f"{'met' if main.seconds < TARGET_SECONDS and not main.problems else 'not met'} ({main.seconds:.1f} s). "
        f"Target under {TARGET_RSS_MB:g} MB per process: "
        f"{'met' if peak[1] / 1024 < TARGET_RSS_MB else 'not met'} (largest: {peak[0]} {peak[1] / 1024:.0f} MB).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.month_end", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--baseline-entries", type=int, default=1_000)
    parser.add_argument("--timeout", type=float, default=300.0, help="longest wait for the outbox to drain")
    parser.add_argument("--readme", action="store_true", help="write the figures into README.md")
    args = parser.parse_args()
    command = ".venv/bin/python -m bench.month_end" + (
        f" --entries {args.entries}" if args.entries != 50_000 else "") + (
        f" --baseline-entries {args.baseline_entries}" if args.baseline_entries != 1_000 else "")
    with tempfile.TemporaryDirectory(prefix="psgw-month-end-") as work:
        main_run = run("batched", args.entries, ERP_BATCH, Path(work), args.timeout)
        print(f"batched: {main_run.seconds:.1f}s", flush=True)
        baseline = run("baseline, one call per entry", args.baseline_entries, 1, Path(work), args.timeout)
    text = render(main_run, baseline, command)
    print(text)
    if args.readme:
        write_readme_section("month-end", text)


if __name__ == "__main__":
    main()
