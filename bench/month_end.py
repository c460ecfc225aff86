"""Month end through real processes: settle a month of approved time and post all of it to the ERP, exactly once.

    .venv/bin/python -m bench.month_end [--entries 50000] [--baseline-entries 1000] [--readme]
    .venv/bin/python -m bench.month_end --psa-backend certinia --erp-backend netsuite --erp-backend dynamics365

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

Through the vendors' APIs and their limits (``--psa-backend``, ``--erp-backend``, each repeatable; the choices are
the bundled vendor backends of ``system_apis.backends``): one run per vendor named, that system on that vendor and
the others on their defaults, its sandbox enforcing the vendor's limits (``VENDOR_LIMITS``: ``PUT /_sandbox/limits``
once it is up, and the system tier configured for them as an operator would), against the default backends run
batched on the same entries in the same run (the per-entry baseline is then left out). The vendors are read back
in step 3 by a fresh instance of the system tier's connector for each (``connector_for`` with the stack's
generated vendor credentials): the vendor's own records through its own API, not the system API, the outbox or the
idempotency store that did the posting. The limits counters are read from the system tier's ``/metrics``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import signal
import subprocess
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import httpx

from bench.harness import machine_summary, write_readme_section
from gateway.config import load as load_gateway_config
from gateway.issuer import Issuer
from gateway.launcher import Ports, Stack, vendor_credentials
from sandbox import firm as demo
from system_apis.backends import BUNDLED, NOT_VENDORS, connector_for
from system_apis.erp.models import PostingFilter
from system_apis.ids import to_canonical
from system_apis.psa.models import TimeEntryFilter
from system_apis.vendor_auth import VendorCredentials
from system_apis.vendor_calls import VendorLimits

TARGET_SECONDS = 60.0
TARGET_ENTRIES = 50_000
TARGET_RSS_MB = 300.0
ERP_BATCH = 500  # the ERP system contract's batch limit (and the PSA batch transition's)
CENT = Decimal("0.01")
# An operator's call: the experience tier's client with the scope settling needs (gateway.yaml grants it to none).
CALLER = "experience-tier"
CALLER_SCOPES = ["billing:read", "billing:write"]
# Each vendor's limits in the run: what its sandbox enforces (PUT /_sandbox/limits) and the system tier's settings
# an operator would give it for them. Salesforce (Certinia): an Enterprise Edition org's base daily allocation of
# 100,000 calls ("API Request Limits and Allocations"). NetSuite: 5 concurrent web-services requests, a standard
# account without SuiteCloud Plus ("Concurrency Governance"), so the system tier sends at most 5 at once.
# Dynamics 365 Finance service protection: 6,000 requests per user per 5-minute window and 52 concurrent requests
# ("Priority-based throttling" / service protection API limits).
# SAP S/4HANA Cloud publishes no API rate of its own: the limit is the one the tenant's API Management proxy enforces,
# a Quota policy (calls per interval of a minute or more, answered 429 with Retry-After until the interval ends; SAP's
# "Quota with 429 status code" policy template). Here 60,000 calls a minute, a quota sized for the month end: the
# connector books one posting per call (the sandbox serves no $batch), so 50,000 entries in 60 s are ~51,000 calls.
VENDOR_LIMITS: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "certinia": ({"daily": 100_000}, {}),
    "netsuite": ({"concurrent": 5}, {"PSGW_ERP_MAX_CONCURRENCY": "5"}),
    "dynamics365": ({"per_window": 6_000, "window_seconds": 300, "concurrent": 52}, {}),
    "s4hana": ({"per_window": 60_000, "window_seconds": 60}, {}),
}
LIMIT_COUNTERS = ("psgw_vendor_limited_total", "psgw_vendor_waits_total", "psgw_vendor_wait_seconds_total",
                  "psgw_vendor_exhausted_total")


def vendor_backends(system: str) -> list[str]:
    """The bundled backends of ``system`` that speak a vendor's API (the registry's, so a new one is a choice)."""
    return sorted(name for name in BUNDLED[system] if name != "sandbox" and name not in NOT_VENDORS)


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
    backends: dict[str, str] = field(default_factory=dict)  # system -> vendor backend (others: their defaults)
    limits: dict[str, dict[str, Any]] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    settle_seconds: float = 0.0
    post_seconds: float = 0.0
    peak_rss_kb: dict[str, int] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # per process, over settle + post
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process and its children (a server's workers), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    # utime and stime are fields 14 and 15 of stat (1-based); fields[0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / ticks + sum(cpu_seconds(int(child)) for child in children)


def profilers(stack: Stack, names: list[str], out_dir: Path | None) -> list[subprocess.Popen[bytes]]:
    """py-spy sampling the named processes (collapsed stacks in ``out_dir``) until they are stopped with SIGINT."""
    if not names or out_dir is None:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    tag = "-".join(stack.data_dir.name.split("-")[2:]) or "default"
    return [subprocess.Popen(["py-spy", "record", "--format", "raw", "--rate", "200", "--subprocesses",
                              "-o", str(out_dir / f"{tag}-{name}.txt"), "-p", str(stack.processes[name].pid)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name in names if name in stack.processes]


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


def limit_counters(stack: Stack) -> dict[str, float]:
    """The system tier's vendor-limit counters, summed over vendors."""
    text = httpx.get(stack.url("system") + "/metrics", timeout=30.0).text
    return {name: sum(float(v) for v in re.findall(rf"^{name}\{{[^}}]*\}} (\S+)$", text, re.MULTILINE))
            for name in LIMIT_COUNTERS}


def run(label: str, entries: int, batch_size: int, work_dir: Path, timeout: float,
        backends: dict[str, str] | None = None, profile: list[str] | None = None,
        profile_dir: Path | None = None) -> Result:
    result = Result(label, entries, batch_size, backends=dict(backends or {}))
    want = expected(entries)
    env = {"PSGW_SANDBOX_MONTH_END_ENTRIES": str(entries), "PSGW_POSTING_BATCH_SIZE": str(batch_size)}
    for system, backend in result.backends.items():
        env[f"PSGW_{system.upper()}_BACKEND"] = backend
        env.update(VENDOR_LIMITS.get(backend, ({}, {}))[1])
    name = "-".join([f"batch-{batch_size}", *result.backends.values()])
    stack = Stack(data_dir=work_dir / name, ports=Ports.free(), extra_env=env)
    stack.start()
    try:
        stack.wait_ready(timeout=180)
        for system, backend in result.backends.items():
            plan = VENDOR_LIMITS.get(backend, ({}, {}))[0]
            if plan:
                httpx.put(stack.url(f"sandbox-{system}") + "/_sandbox/limits", json=plan).raise_for_status()
                result.limits[backend] = plan
        with caller(stack) as http:
            spies = profilers(stack, profile or [], profile_dir)
            cpu_before = {name: cpu_seconds(process.pid) for name, process in stack.processes.items()}
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
            result.cpu_seconds = {name: cpu_seconds(process.pid) - cpu_before[name]
                                  for name, process in stack.processes.items()}
            for spy in spies:
                spy.send_signal(signal.SIGINT)
            for spy in spies:
                spy.wait(timeout=60)
            for state in ("rejected", "psa_refused"):
                if outbox_count(http, state):
                    result.problems.append(f"postings ended {state}")
        for name, process in stack.processes.items():
            result.peak_rss_kb.update(peak_rss_kb(name, process.pid))
        result.counters = limit_counters(stack)
        asyncio.run(verify(stack, want, result))
    finally:
        stack.stop()
    return result


def connector(stack: Stack, system: str, backend: str) -> Any:
    """A fresh instance of the system tier's connector to ``system``'s vendor, with the stack's vendor credentials."""
    _, env = vendor_credentials(stack.data_dir)
    prefix = f"PSGW_{system.upper()}_"
    credentials = VendorCredentials(**{name: env.get(prefix + name.upper(), "") for name in (
        "client_id", "client_secret", "username", "private_key_file", "certificate_id", "tenant_id", "token_url")})
    return connector_for(system, backend, stack.url(f"sandbox-{system}"), 120.0, VendorLimits(max_concurrency=4),
                         credentials)


async def verify(stack: Stack, want: Expected, result: Result) -> None:
    """Ask the vendors (each through its own API, see the module docstring): one ERP posting per seeded entry, the
    right totals, and the PSA says posted."""
    sources: Counter[str] = Counter()
    totals: dict[str, Decimal] = defaultdict(Decimal)
    erp = connector(stack, "erp", result.backends.get("erp", "sandbox"))
    psa = connector(stack, "psa", result.backends.get("psa", "sandbox"))
    try:
        cursor: str | None = None
        while True:
            page = await erp.list_postings(PostingFilter(from_date=want.first, to_date=want.last), cursor=cursor,
                                           limit=500)
            for posting in page.items:
                if posting.source_type == "time_entry":
                    sources[posting.source_id] += 1
                    totals[posting.currency] += posting.amount
            cursor = page.next_cursor
            if cursor is None:
                break
        posted = 0
        cursor = None
        while True:
            entries = await psa.list_time_entries(
                TimeEntryFilter(state="posted", from_date=want.first, to_date=want.last), cursor=cursor, limit=500)
            posted += len(entries.items)
            cursor = entries.next_cursor
            if cursor is None:
                break
    finally:
        await erp.aclose()
        await psa.aclose()
    result.erp_postings = sum(sources.values())
    result.erp_totals = dict(totals)
    result.psa_posted = posted
    wanted = {to_canonical("time_entry", number) for number in want.numbers}
    doubled = [s for s, n in sources.items() if n > 1]
    if doubled:
        result.problems.append(f"{len(doubled)} entries posted more than once (e.g. {doubled[0]})")
    if set(sources) != wanted:
        result.problems.append(f"ERP sources differ from the seeded entries: {len(wanted - set(sources))} "
                               f"missing, {len(set(sources) - wanted)} unexpected")
    if dict(totals) != want.totals:
        result.problems.append(f"ERP totals {dict(totals)} != expected {want.totals}")
    if result.psa_posted != len(want.numbers):
        result.problems.append(f"the PSA shows {result.psa_posted} of {len(want.numbers)} entries posted")


def cpu_summary(result: Result) -> str:
    """CPU seconds of the busiest processes over settle + post, and the vendor sandbox's per entry."""
    busy = sorted(result.cpu_seconds.items(), key=lambda item: -item[1])[:4]
    vendors = [f"sandbox-{system}" for system in result.backends]
    per_entry = ", ".join(f"{name} {result.cpu_seconds.get(name, 0) / result.entries * 1000:.2f} ms an entry"
                          for name in vendors)
    return ("CPU s over settle + post: " + ", ".join(f"{name} {s:.1f}" for name, s in busy)
            + (f" ({per_entry})" if per_entry else "") + ".")


def render(main: Result, baselines: list[Result], command: str) -> str:
    """The figures; ``baselines[0]`` is what every ratio is against (the per-entry run, or the default backends)."""
    want = expected(main.entries)
    peak = max(main.peak_rss_kb.items(), key=lambda item: item[1]) if main.peak_rss_kb else ("-", 0)
    vendor_runs = [r for r in baselines if r.backends]
    reference = main if vendor_runs else baselines[0]
    lines = [
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine_summary()}.",
        f"Command: `{command}` (month {want.period}; every process on loopback; wall time from the settle call "
        "until the outbox is drained; checked against the vendors afterwards).",
        "",
        "| run | entries | ERP batch | settle s | post s | total s | entries/s | vs "
        + ("default backends" if vendor_runs else "baseline") + " | vendor limits hit / waits / s waited / 503s "
        "| exactly once |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in (main, *baselines):
        ratio = result.rate / reference.rate if reference.rate else 0.0
        c = result.counters
        lines.append(
            f"| {result.label} | {result.entries:,} | {result.batch_size} | {result.settle_seconds:.1f} | "
            f"{result.post_seconds:.1f} | {result.seconds:.1f} | {result.rate:,.0f} | {ratio:.2f}x | "
            f"{c.get('psgw_vendor_limited_total', 0):.0f} / {c.get('psgw_vendor_waits_total', 0):.0f} / "
            f"{c.get('psgw_vendor_wait_seconds_total', 0):.0f} / {c.get('psgw_vendor_exhausted_total', 0):.0f} | "
            f"{'yes' if not result.problems else 'NO: ' + '; '.join(result.problems)} |")
    for result in vendor_runs:
        lines += ["", f"{result.label}: sandbox limits " + (", ".join(
            f"{vendor} {plan}" for vendor, plan in result.limits.items()) or "none")
            + f"; ERP {result.erp_postings:,} postings, PSA {result.psa_posted:,} posted; " + cpu_summary(result)]
    lines += [
        "",
        f"ERP after the main run: {main.erp_postings:,} postings for {len(want.numbers):,} entries, totals "
        + ", ".join(f"{c} {a:,.2f}" for c, a in sorted(main.erp_totals.items()))
        + f"; PSA: {main.psa_posted:,} posted.",
        "",
        "Peak RSS (VmHWM) per process, main run: "
        + ", ".join(f"{name} {kb / 1024:.0f} MB" for name, kb in sorted(main.peak_rss_kb.items())) + ".",
        "",
    ]
    for result in [main, *vendor_runs]:
        # The target is 50,000 entries in 60 s; a smaller run is held to the same rate.
        target = TARGET_SECONDS * result.entries / TARGET_ENTRIES
        lines.append(
            f"Target under {target:.3g} s for {result.entries:,} entries ({TARGET_ENTRIES:,} in "
            f"{TARGET_SECONDS:g} s), {result.label}: "
            f"{'met' if result.seconds < target and not result.problems else 'not met'} ({result.seconds:.1f} s).")
    lines.append(f"Target under {TARGET_RSS_MB:g} MB per process: "
                 f"{'met' if peak[1] / 1024 < TARGET_RSS_MB else 'not met'} (largest: {peak[0]} {peak[1] / 1024:.0f} "
                 "MB, main run).")
    return "\n".join(lines)


def progress(result: Result) -> str:
    """One line per run as it ends: its times and the CPU each busy process spent on it."""
    busy = sorted(result.cpu_seconds.items(), key=lambda item: -item[1])
    return (f"{result.label}: {result.seconds:.1f}s (settle {result.settle_seconds:.1f}, post "
            f"{result.post_seconds:.1f}); CPU s " + ", ".join(f"{name} {s:.2f}" for name, s in busy if s >= 0.05)
            + (f" {result.problems}" if result.problems else ""))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.month_end", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--baseline-entries", type=int, default=1_000)
    parser.add_argument("--timeout", type=float, default=300.0, help="longest wait for the outbox to drain")
    for system in ("psa", "erp"):
        parser.add_argument(f"--{system}-backend", action="append", default=[], choices=vendor_backends(system),
                            help=f"also run with the {system.upper()} on this vendor, within its limits (repeatable)")
    parser.add_argument("--readme", action="store_true", help="write the figures into README.md")
    parser.add_argument("--profile", action="append", default=[], metavar="PROCESS",
                        help="sample this process (sandbox-erp, system, ...) with py-spy over settle + post, each run "
                             "(repeatable; py-spy on PATH)")
    parser.add_argument("--profile-dir", type=Path, default=Path("month-end-profiles"),
                        help="where the collapsed stacks go (<run>-<process>.txt)")
    args = parser.parse_args()
    vendors = [("psa", b) for b in args.psa_backend] + [("erp", b) for b in args.erp_backend]
    command = ".venv/bin/python -m bench.month_end" + (
        f" --entries {args.entries}" if args.entries != 50_000 else "") + (
        f" --baseline-entries {args.baseline_entries}" if args.baseline_entries != 1_000 and not vendors else "") + (
        "".join(f" --{system}-backend {backend}" for system, backend in vendors))
    with tempfile.TemporaryDirectory(prefix="psgw-month-end-") as work:
        profiling = {"profile": args.profile, "profile_dir": args.profile_dir}
        main_run = run("batched" if not vendors else "batched, default backends", args.entries, ERP_BATCH,
                       Path(work), args.timeout, **profiling)
        print(progress(main_run), flush=True)
        baselines = []
        for system, backend in vendors:
            result = run(f"batched, {system} on {backend}", args.entries, ERP_BATCH, Path(work), args.timeout,
                         {system: backend}, **profiling)
            print(progress(result), flush=True)
            baselines.append(result)
        if not vendors:
            baselines.append(run("baseline, one call per entry", args.baseline_entries, 1, Path(work),
                                 args.timeout))
    text = render(main_run, baselines, command)
    print(text)
    if args.readme:
        write_readme_section("month-end" if not vendors else "month-end-vendors", text)


if __name__ == "__main__":
    main()
