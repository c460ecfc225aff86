"""The layer tax: one user's call through all three tiers against a one-process baseline, in one run.

    .venv/bin/python -m bench.layers            # print the table
    .venv/bin/python -m bench.layers --readme   # and regenerate the README's layers section

Layered: the real stack as `psgw up` starts it (sandbox vendors, system, process and experience tiers, gateway;
launcher.Stack), with the default gateway.yaml except that every SLA tier is raised so no call is rate limited.
``GET /experience/mobile-time/v2/me/assignments`` goes experience -> gateway -> process -> gateway -> system ->
sandbox PSA. Direct: bench/layers_direct.py, one process verifying the same token and calling the same sandbox
PSA through the same connector, answering the same payload (checked equal before measuring).

For each path, wrk at 8, 32 and 64 connections (-t2, --timeout 5s, loopback; each read row the median of
``--runs`` runs by req/s); CPU per call is every process's
CPU time (user + system, /proc) during the run divided by the calls served, so the figure holds whatever else
runs on the machine; throughput and latency do not: on a busy machine read the ratios, not the absolutes.
The write path logs time entries (``POST .../me/time-entries``, a fresh client_ref each) through all tiers and
directly, as 36 consultants on days the demo has logged nothing on, 16 connections at once on each consultant's
day (the per-day rule under contention; see WRITE_SCRIPT). Every answer is counted by status and the first body
of each failing status printed, so a non-2xx is named, not only counted. Every run is bounded by wrk -d; the whole
script takes about three minutes (``--writes-only``: the write path alone, for a quick before/after).
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from bench.harness import CLOCK_TICKS, free_port, machine_summary, write_readme_section
from gateway import config as gateway_config
from gateway.issuer import Issuer
from gateway.launcher import REPO_ROOT, Ports, Stack, vendor_credentials

READ = "/experience/mobile-time/v2/me/assignments"
WRITE = "/experience/mobile-time/v2/me/time-entries"
CONSULTANT = "wrk_e1001"
LEVELS = (8, 32, 64)
WRITE_CONNECTIONS = 32
# Targets (issue 16), checked in the printed section, never in tests.
TARGET_READ_RPS = 500
TARGET_READ_P99_MS = 100.0
TARGET_CPU_MS = 4.0
TARGET_RATIO = 3.0
TARGET_WRITE_RPS = 200
TARGET_HOLD = 0.9  # throughput at 64 connections against the peak
WRK_THREADS = 2

# Every run counts its answers by status (wrk itself only says "non-2xx") and keeps the first body of each failing
# status, so a failure under load is named (a 409, a 429, a 503 with its problem slug), not only counted.
COUNT_SCRIPT = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
statuses = {}
samples = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status >= 300 and samples[status] == nil then
    samples[status] = string.gsub(string.sub(body or "", 1, 300), "\\n", " ")
  end
end
function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      io.write(string.format("psgw-status %d %d\\n", status, count))
    end
    for status, body in pairs(thread:get("samples")) do
      io.write(string.format("psgw-sample %d %s\\n", status, body))
    end
  end
end
"""

# Each wrk thread numbers its own requests, and every run has a tag of its own, so every entry has a fresh
# client_ref (a repeat would be answered with the existing entry, not logged again: the benchmark would measure the
# idempotent path instead). Entries go 20 to a consultant's day (10 hours), the 16 connections of a thread logging
# onto the same day at once (the per-day rule under contention), each next day-block to the next consultant (each
# logs with a token of their own), then the next day. Days from tomorrow on: the demo has logged no time there (its
# past days hold up to 30 hours: a bench on them would measure refusals), and the warm-up's days are not the
# measured run's (``first_day``). The firm's window for work dates is 60 days ahead.
WRITERS = [f"wrk_e{1001 + i}" for i in range(36)]  # the sandbox firm's active consultants (E1038 is on leave)
ENTRIES_PER_DAY = 20
WRITE_SCRIPT = """
local tokens = {%(tokens)s}
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function request()
  n = n + 1
  local slot = math.floor((n - 1) / %(per_day)d) * %(threads)d + tid - 1
  local day = os.date("!%%Y-%%m-%%d", %(epoch)d + math.floor(slot / #tokens) * 86400)
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Authorization"] = "Bearer " .. tokens[slot %% #tokens + 1]
  local body = string.format(
    '{"project_id":"%(project)s","work_date":"%%s","minutes":30,"work_type":"billable_delivery",'
    .. '"notes":"bench","client_ref":"%(run)s-%%d-%%d"}', day, tid, n)
  return wrk.format(nil, nil, headers, body)
end
"""


@dataclass
class Member:
    """One process of a measured path, for its CPU time."""

    name: str
    pid: int

    def cpu_seconds(self) -> float:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Run:
    connections: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    timeouts: int
    socket_errors: int
    cpu_ms: dict[str, float] = field(default_factory=dict)  # per process, per call
    statuses: dict[int, int] = field(default_factory=dict)  # answers by HTTP status
    samples: dict[int, str] = field(default_factory=dict)  # the first body answered with each failing status

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_total_ms(self) -> float:
        return sum(self.cpu_ms.values())

    @property
    def failures(self) -> str:
        """The non-2xx answers, by status ("0", or "12 (409: 10, 503: 2)")."""
        failing = {status: n for status, n in sorted(self.statuses.items()) if not 200 <= status < 300}
        if not self.non_2xx and not failing:
            return "0"
        return f"{self.non_2xx} (" + ", ".join(f"{status}: {n}" for status, n in failing.items()) + ")"


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(f"unreadable latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(url: str, token: str, members: list[Member], *, connections: int, seconds: int, script: Path) -> Run:
    argv = ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s",
            "-H", f"Authorization: Bearer {token}", "-s", str(script)]
    before = {m.name: m.cpu_seconds() for m in members}
    output = subprocess.run([*argv, url], capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    used = {m.name: m.cpu_seconds() - before[m.name] for m in members}
    counted = re.search(r"(\d+) requests in ([\d.]+)(s|m)", output)
    if not counted:
        raise RuntimeError(f"unreadable wrk output:\n{output}")
    requests = int(counted.group(1))
    percentiles = dict(re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+)", output, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    statuses: dict[int, int] = {}
    for status, count in re.findall(r"^psgw-status (\d+) (\d+)$", output, re.MULTILINE):
        statuses[int(status)] = statuses.get(int(status), 0) + int(count)
    samples = {int(status): body for status, body in re.findall(r"^psgw-sample (\d+) (.*)$", output, re.MULTILINE)}
    return Run(
        connections=connections,
        requests=requests,
        seconds=float(counted.group(2)) * (60 if counted.group(3) == "m" else 1),
        p50_ms=_ms(percentiles["50"]) if "50" in percentiles else 0.0,
        p99_ms=_ms(percentiles["99"]) if "99" in percentiles else 0.0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        timeouts=int(errors.group(4)) if errors else 0,
        socket_errors=sum(int(g) for g in errors.groups()[:3]) if errors else 0,
        cpu_ms={name: seconds * 1000 / requests for name, seconds in used.items()} if requests else {},
        statuses=statuses,
        samples=samples,
    )


def bench_config(work: Path) -> Path:
    """gateway.yaml with every SLA tier raised, per-person limits and quotas off: the benchmark measures the
    layers, not the rate limits."""
    config = yaml.safe_load((REPO_ROOT / "gateway.yaml").read_text())
    if not config.get("sla_tiers"):
        raise SystemExit("gateway.yaml: no sla_tiers entries found to raise")
    config["sla_tiers"] = {name: {"requests_per_second": 1000000, "burst": 1000000} for name in config["sla_tiers"]}
    text = yaml.safe_dump(config, sort_keys=False)
    path = work / "gateway.layers.yaml"
    path.write_text(text)
    return path


def start_direct(stack: Stack, work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, **vendor_credentials(stack.data_dir)[1], "PSGW_PORT": str(port),
           "PSGW_PSA_URL": stack.url("sandbox-psa"),
           "PSGW_GATEWAY_URL": stack.gateway_url, "PSGW_TOKEN_ISSUER": stack.gateway_url, "PSGW_LOG_LEVEL": "WARNING",
           # The baseline stands where the gateway stands: it verifies the client's own token, not an internal one.
           "PSGW_TOKEN_AUDIENCE": "psgateway"}
    log = (work / "direct.log").open("ab")
    process = subprocess.Popen([sys.executable, "-m", "bench.layers_direct"], env=env, cwd=REPO_ROOT, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the direct baseline exited with {process.returncode}; see {work / 'direct.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0).status_code == 200:
                return process, port
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError("the direct baseline did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def same_answer(layered_url: str, direct_url: str, token: str) -> tuple[str, dict[str, object]]:
    """Both paths answer the same payload; returns a project the consultant may log time on."""
    headers = {"Authorization": f"Bearer {token}"}
    layered = httpx.get(layered_url + READ, headers=headers, timeout=30.0)
    direct = httpx.get(direct_url + READ, headers=headers, timeout=30.0)
    if layered.status_code != 200 or direct.status_code != 200:
        raise SystemExit(f"the read failed: layered {layered.status_code} {layered.text[:300]}, "
                         f"direct {direct.status_code} {direct.text[:300]}")
    if layered.json() != direct.json():
        raise SystemExit(f"the two paths answer differently:\n{layered.text}\n{direct.text}")
    body = layered.json()
    loggable = [a for a in body["items"] if a["can_log_time"]]
    if not loggable:
        raise SystemExit(f"{CONSULTANT} has no assignment open for time entry")
    return loggable[0]["project_id"], body


def quiet(members: list[Member], *, below: float = 0.05, longest: float = 30.0) -> float:
    """Wait until the processes together use less than ``below`` of a core over a second (a fresh stack's
    background loops catch up first: their CPU would be counted against the first calls measured); returns the
    seconds waited (``longest`` at most)."""
    started = time.monotonic()
    while time.monotonic() - started < longest:
        before = sum(m.cpu_seconds() for m in members)
        time.sleep(1.0)
        if sum(m.cpu_seconds() for m in members) - before < below:
            break
    return time.monotonic() - started


def measure(name: str, url: str, token: str, members: list[Member], levels: tuple[int, ...], seconds: int,
            script: Callable[[str], str], work: Path, repeats: int = 1) -> list[Run]:
    """Warm up, then ``repeats`` wrk runs per connection count, keeping the median by req/s (one run on a shared
    machine moves by more than the targets' margins); ``script(phase)`` is each run's Lua ("warm-up", "8" ...)."""
    print(f"measuring {name} ...", file=sys.stderr)

    def run_once(phase: str, connections: int, duration: int) -> Run:
        path = work / f"{re.sub(r'[^a-z0-9]+', '-', name)}-{phase}.lua"
        path.write_text(script(phase))
        return wrk(url, token, members, connections=connections, seconds=duration, script=path)

    run_once("warm-up", levels[0], 1)  # pools, caches, tokens
    runs = []
    for connections in levels:
        tries = sorted((run_once(str(connections), connections, seconds) for _ in range(repeats)),
                       key=lambda r: r.rps)
        run = tries[len(tries) // 2]
        print(f"  {connections:>3} connections: {run.rps:,.0f} req/s, p99 {run.p99_ms:.1f} ms, "
              f"CPU {run.cpu_total_ms:.2f} ms/call, non-2xx {run.failures}, {run.timeouts} timeouts", file=sys.stderr)
        for status, body in sorted(run.samples.items()):
            print(f"      first {status}: {body}", file=sys.stderr)
        runs.append(run)
    if any(run.non_2xx or run.socket_errors for run in runs):
        print(f"  ! {name}: non-2xx responses or socket errors (see the table)", file=sys.stderr)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5, help="each wrk run (default 5)")
    parser.add_argument("--runs", type=int, default=3,
                        help="wrk runs per read row, the median by req/s kept (default 3; writes run once)")
    parser.add_argument("--readme", action="store_true", help="rewrite the README's layers section")
    parser.add_argument("--keep", action="store_true", help="keep the data directory (logs) afterwards")
    parser.add_argument("--writes-only", action="store_true",
                        help="measure only the write path, both ways (a quicker comparison; not for --readme)")
    args = parser.parse_args()
    if args.writes_only and args.readme:
        parser.error("--readme needs the whole table: leave out --writes-only")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian package 'wrk')")

    work = Path(tempfile.mkdtemp(prefix="psgw-layers-"))
    stack = Stack(data_dir=work / "data", ports=Ports.free(), config_file=bench_config(work),
                  extra_env={"PSGW_LOG_LEVEL": "WARNING"})
    direct: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    try:
        print(f"starting the stack in {work} ...", file=sys.stderr)
        stack.start()
        stack.wait_ready(timeout=120)
        config = gateway_config.load(stack.config_file, {**os.environ, "PSGW_ISSUER_URL": stack.gateway_url})
        issuer = Issuer(config.issuer, stack.data_dir)
        client = next(c for c in config.clients if c.id == "mobile-app")
        token = issuer.mint(client, subject=CONSULTANT, ttl_seconds=3600)[0]
        direct, direct_port = start_direct(stack, work)
        direct_url = f"http://127.0.0.1:{direct_port}"
        project_id, answer = same_answer(stack.gateway_url, direct_url, token)

        layered_members = [Member(name, process.pid) for name, process in stack.processes.items()]
        psa = next(m for m in layered_members if m.name == "sandbox-psa")
        direct_members = [Member("direct", direct.pid), psa]

        results: dict[str, list[Run]] = {}
        if not args.writes_only:
            results["read, three tiers"] = measure("the read through three tiers", stack.gateway_url + READ, token,
                                                   layered_members, LEVELS, args.seconds, lambda _: COUNT_SCRIPT,
                                                   work, args.runs)
            results["read, direct"] = measure("the read, direct", direct_url + READ, token, direct_members, LEVELS,
                                              args.seconds, lambda _: COUNT_SCRIPT, work, args.runs)
        run_id = f"bench{os.getpid()}{int(time.time())}"
        tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
        writers = ",".join(f'"{issuer.mint(client, subject=w, ttl_seconds=3600)[0]}"' for w in WRITERS)

        def writes(tag: str) -> Callable[[str], str]:
            def script(phase: str) -> str:
                # The warm-up (1 s) fills at most a few days of each consultant; the measured run starts after.
                first_day = tomorrow + dt.timedelta(days=0 if phase == "warm-up" else 5)
                return COUNT_SCRIPT + WRITE_SCRIPT % {
                    "project": project_id, "run": f"{run_id}-{tag}-{phase}", "threads": WRK_THREADS,
                    "per_day": ENTRIES_PER_DAY, "tokens": writers, "epoch": calendar.timegm(first_day.timetuple())}
            return script

        for name, url, members, tag in (("write, three tiers", stack.gateway_url + WRITE, layered_members, "tiers"),
                                        ("write, direct", direct_url + WRITE, direct_members, "direct")):
            waited = quiet(members)
            print(f"{name}: the processes were quiet after {waited:.0f} s", file=sys.stderr)
            results[name] = measure(name, url, token, members, (WRITE_CONNECTIONS,), args.seconds, writes(tag),
                                    work)
    except BaseException:
        for log in sorted((work / "data" / "logs").glob("*.log")):
            print(f"==== {log.name}\n{log.read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        if direct is not None:
            stop(direct)
        stack.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    table = render(results, args, len(answer["items"]), time.monotonic() - started,  # type: ignore[arg-type]
                   load_before)
    print(table)
    if args.readme:
        write_readme_section("layers", table)


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def render(results: dict[str, list[Run]], args: argparse.Namespace, items: int, wall: float,
           load_before: float) -> str:
    lines = [
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine_summary()}.",
        f"Command: `.venv/bin/python -m bench.layers` (wrk -t2 -d{args.seconds}s --timeout 5s, loopback; each read row "
        f"the median by req/s of {args.runs} runs, each write row one run (a rerun would find its days full); "
        f"the read answers {items} assignments for {CONSULTANT}, both paths checked equal; CPU per call is the sum "
        f"over every process of the path; every process logs at WARNING, no access log lines; script wall time "
        f"{wall:.0f} s; load average {load_before:.1f} at the "
        "start: figures from a busy machine understate throughput and overstate latency, not CPU per call).",
        "",
        "| path | conns | req/s | p50 ms | p99 ms | non-2xx (by status) | timeouts | CPU ms/call | "
        "CPU by process (ms/call) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, runs in results.items():
        for run in runs:
            by_process = ", ".join(f"{p} {ms:.2f}" for p, ms in sorted(run.cpu_ms.items(), key=lambda kv: -kv[1])
                                   if ms >= 0.01)
            lines.append(f"| {name} | {run.connections} | {run.rps:,.0f} | {run.p50_ms:.1f} | {run.p99_ms:.1f} | "
                         f"{run.failures} | {run.timeouts} | {run.cpu_total_ms:.2f} | {by_process} |")
    write, write_direct = results["write, three tiers"][0], results["write, direct"][0]
    lines += ["", f"Write layered/direct: CPU per call {ratio(write.cpu_total_ms, write_direct.cpu_total_ms):.1f}x, "
                  f"req/s {ratio(write.rps, write_direct.rps):.2f}x (the direct baseline writes without the per-day "
                  "rule)."]
    if "read, three tiers" not in results:
        met = "met" if write.rps >= TARGET_WRITE_RPS else "NOT met"
        return "\n".join([*lines, f"Three tiers: write {write.rps:,.0f} req/s (target >= {TARGET_WRITE_RPS}): {met}."])
    layered, direct = results["read, three tiers"], results["read, direct"]
    pairs = list(zip(layered, direct, strict=True))
    at32 = next(r for r in layered if r.connections == 32)
    peak = max(r.rps for r in layered)
    at64 = next(r for r in layered if r.connections == 64)
    cpu_ratio_32 = next(ratio(three.cpu_total_ms, d.cpu_total_ms) for three, d in pairs if three.connections == 32)
    lines += ["Layered/direct, per connection count: " + "; ".join(
        f"{three.connections}: CPU per call {ratio(three.cpu_total_ms, d.cpu_total_ms):.1f}x, "
        f"p50 {ratio(three.p50_ms, d.p50_ms):.1f}x, req/s {ratio(three.rps, d.rps):.2f}x" for three, d in pairs) + "."]
    cores = os.cpu_count() or 1
    if at32.cpu_total_ms:
        lines.append(f"CPU bound: at {at32.cpu_total_ms:.2f} ms per call the three tiers could serve at most "
                     f"{cores * 1000 / at32.cpu_total_ms:,.0f} req/s on {cores} idle cores (wrk's own CPU aside); "
                     "the gap to the measured rate is the machine's other load and the hops' waiting.")
    checks = [
        (f"CPU layered/direct {cpu_ratio_32:.1f}x at 32 connections (goal < {TARGET_RATIO:g}x)",
         cpu_ratio_32 < TARGET_RATIO),
        (f"read at 32 connections {at32.rps:,.0f} req/s (target >= {TARGET_READ_RPS})", at32.rps >= TARGET_READ_RPS),
        (f"p99 {at32.p99_ms:.1f} ms (target < {TARGET_READ_P99_MS:g} ms)",
         at32.requests > 0 and at32.p99_ms < TARGET_READ_P99_MS),
        (f"{sum(r.timeouts for r in layered)} timeouts and {sum(r.non_2xx + r.socket_errors for r in layered)} "
         "other failures (target 0)", not any(r.timeouts or r.non_2xx or r.socket_errors for r in layered)),
        (f"CPU {at32.cpu_total_ms:.2f} ms/call (target <= {TARGET_CPU_MS:g})",
         at32.requests > 0 and at32.cpu_total_ms <= TARGET_CPU_MS),
        (f"64 connections hold {ratio(at64.rps, peak):.0%} of the peak (target >= {TARGET_HOLD:.0%})",
         peak > 0 and at64.rps >= TARGET_HOLD * peak),
        (f"write {write.rps:,.0f} req/s (target >= {TARGET_WRITE_RPS})", write.rps >= TARGET_WRITE_RPS),
    ]
    lines.append("Three tiers: " + "; ".join(f"{text}: {'met' if ok else 'NOT met'}" for text, ok in checks) + ".")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
