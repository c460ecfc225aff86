"""Gateway hot-path benchmark: our policy chain against real peers, side by side, in one run.

    .venv/bin/python -m bench.gateway            # print the table
    .venv/bin/python -m bench.gateway --readme   # and regenerate the README's performance section

Scenarios (each: wrk -t2 -c32 -d5s on loopback, median of 3, against the same fast upstream):
  direct     straight to the upstream (the ceiling)
  nginx      nginx as a plain reverse proxy (if installed)
  haproxy    HAProxy verifying the RS256 JWT + a stick-table rate limit (if installed)
  naive      bench/naive_gateway.py: Litestar + authlib + Redis INCR/EXPIRE + shared httpx client
  psgateway  our gateway, one worker, full chain (bench/gateway.bench.yaml), on uvicorn and on granian;
             then with PSGW_WORKERS = cores (one process per core on one port) for the scaling figure
The upstream serves the route the chain validates: GET /experience/mobile-time/v1/me/assignments.

Every figure carries p50/p90/p99 and the machine's 1-minute load average when it was taken: on a shared machine
a figure is only comparable with others taken in the same run. The latency curve (--curve) measures the naive
gateway and ours at several connection counts, back to back, to show how much of the p99 is queueing behind
the other connections on one event loop rather than time the chain itself takes.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.harness import (
    LoadResult,
    Process,
    free_port,
    machine_summary,
    write_readme_section,
)
from bench.harness import wrk as harness_wrk
from gateway import config as gateway_config
from gateway.issuer import Issuer

REPO = Path(__file__).resolve().parent.parent
ROUTE = "/experience/mobile-time/v1/me/assignments"
BODY = ('{"items":[{"assignment_id":"asg_6001","project_id":"prj_4001","project_name":"Contoso Retail: Pricing",'
        '"role":"consultant","planned_hours_per_week":"8","start_date":"2026-08-01","can_log_time":true}],'
        '"next_cursor":null}')


def nginx_conf(prefix: Path, port: int, body: str | None = None, upstream: int | None = None) -> Path:
    if body is not None:
        location = f"default_type application/json; return 200 '{body}';"
        upstream_block = ""
    else:
        location = "proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\";"
        upstream_block = f"upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; }}"
    conf = prefix / "nginx.conf"
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    conf.write_text(f"""
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body; proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fcgi; uwsgi_temp_path {prefix}/uwsgi; scgi_temp_path {prefix}/scgi;
  keepalive_requests 1000000;
  {upstream_block}
  server {{ listen 127.0.0.1:{port}; location / {{ {location} }} }}
}}
""")
    return conf


def haproxy_conf(prefix: Path, port: int, upstream: int, public_key: Path) -> Path:
    conf = prefix / "haproxy.cfg"
    conf.write_text(f"""
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 2s
  timeout client 10s
  timeout server 10s
frontend api
  bind 127.0.0.1:{port}
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
  http-request deny status 401 unless {{ var(txn.alg) -m str RS256 }}
  http-request deny status 401 unless {{ var(txn.bearer),jwt_verify(txn.alg,"{public_key}") -m int 1 }}
  http-request set-var(txn.client) var(txn.bearer),jwt_payload_query('$.client_id')
  stick-table type string len 64 size 100k expire 60s store http_req_rate(1s)
  http-request track-sc0 var(txn.client)
  http-request deny status 429 if {{ sc_http_req_rate(0) gt 1000000 }}
  default_backend tier
backend tier
  http-reuse always
  server up 127.0.0.1:{upstream}
""")
    return conf


@dataclass
class Figures(LoadResult):
    """A wrk run and the machine's 1-minute load average at its start."""

    load: float = 0.0


def median_of(runs: list[Figures]) -> Figures:
    """The run with the median throughput, so its latencies and CPU belong to one real run."""
    return sorted(runs, key=lambda r: r.rps)[len(runs) // 2]


def spread(runs: list[Figures]) -> float:
    rates = [r.rps for r in runs]
    return statistics.pstdev(rates) / statistics.mean(rates) if len(rates) > 1 else 0.0


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def wrk(url: str, *, headers: dict[str, str] | None = None, connections: int = 32, seconds: int = 5,
        measured: Process | None = None) -> Figures:
    """bench.harness.wrk, with the load average at the start of the run."""
    load = load_average()
    figures = harness_wrk(url, headers=headers, connections=connections, seconds=seconds, measured=measured)
    return Figures(**dataclasses.asdict(figures), load=load)


def run_scenario(name: str, url: str, headers: dict[str, str], measured: Process, runs: int,
                 seconds: int) -> list[Figures]:
    wrk(url, headers=headers, seconds=1, measured=measured)  # warm-up: pools, caches, JIT-free but not cold
    results = [wrk(url, headers=headers, seconds=seconds, measured=measured) for _ in range(runs)]
    bad = sum(r.non_2xx + r.errors for r in results)
    if bad:
        print(f"  ! {name}: {bad} non-2xx responses or socket errors", file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--readme", action="store_true", help="rewrite the README performance section")
    parser.add_argument("--workers", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure PSGW_WORKERS = cores")
    parser.add_argument("--compare-servers", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure the gateway served by granian")
    parser.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure nginx and HAProxy as proxies (when installed)")
    parser.add_argument("--curve", default="8,16,64",
                        help="connection counts (besides 32) at which the naive gateway and ours are measured "
                             "back to back for the latency curve; empty for none")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="psgw-bench-"))
    processes: list[Process] = []

    def start(name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        process = Process(name, argv, env=env, cwd=REPO, log=work / f"{name}.log")
        processes.append(process)
        return process

    results: dict[str, list[Figures]] = {}
    curve: dict[str, dict[int, Figures]] = {}
    counts = [int(c) for c in args.curve.split(",") if c.strip()]
    try:
        # The fast upstream every scenario ends at.
        upstream_port = free_port()
        if shutil.which("nginx"):
            upstream = start("upstream", ["nginx", "-p", str(work / "up"), "-c",
                                          str(nginx_conf(work / "up", upstream_port, body=BODY)), "-g", "daemon off;"])
        else:
            upstream = start("upstream", [sys.executable, "-m", "bench.fast_upstream"],
                             {"UPSTREAM_PORT": str(upstream_port), "UPSTREAM_BODY": BODY})
        upstream.wait_http(f"http://127.0.0.1:{upstream_port}{ROUTE}")

        # Our gateway, with the bench config: the experience upstream is the fast upstream.
        gateway_port = free_port()
        env = {"PSGW_CONFIG_FILE": str(REPO / "bench" / "gateway.bench.yaml"), "PSGW_DATA_DIR": str(work / "data"),
               "PSGW_GATEWAY_PORT": str(gateway_port), "PSGW_ISSUER_URL": f"http://127.0.0.1:{gateway_port}",
               "PSGW_EXPERIENCE_URL": f"http://127.0.0.1:{upstream_port}", "PSGW_LOG_LEVEL": "WARNING",
               "PSGW_BENCH_PREFIX": f"bench{os.getpid()}"}
        config = gateway_config.load(REPO / "bench" / "gateway.bench.yaml", {**os.environ, **env})
        issuer = Issuer(config.issuer, work / "data")
        client = next(c for c in config.clients if c.id == "bench-app")
        token = issuer.mint(client, subject="wrk_e1001", ttl_seconds=3600)[0]
        auth = {"Authorization": f"Bearer {token}"}
        public_key = work / "issuer-public.pem"
        public_key.write_bytes(issuer.key.as_pem(private=False))

        scenarios: list[tuple[str, Callable[[], tuple[Process, int]]]] = [
            ("direct", lambda: (upstream, upstream_port)),
        ]
        if args.peers and shutil.which("nginx"):
            def nginx_proxy() -> tuple[Process, int]:
                port = free_port()
                conf = nginx_conf(work / "px", port, upstream=upstream_port)
                proxy = start("nginx", ["nginx", "-p", str(work / "px"), "-c", str(conf), "-g", "daemon off;"])
                proxy.wait_http(f"http://127.0.0.1:{port}{ROUTE}")
                return proxy, port
            scenarios.append(("nginx", nginx_proxy))
        if args.peers and shutil.which("haproxy"):
            def haproxy() -> tuple[Process, int]:
                port = free_port()
                proxy = start("haproxy", ["haproxy", "-db", "-f",
                                          str(haproxy_conf(work, port, upstream_port, public_key))])
                proxy.wait_http(f"http://127.0.0.1:{port}{ROUTE}", headers=auth)
                return proxy, port
            scenarios.append(("haproxy", haproxy))

        def naive() -> tuple[Process, int]:
            port = free_port()
            process = start("naive", [sys.executable, "-m", "bench.naive_gateway"], {
                "NAIVE_PORT": str(port), "NAIVE_UPSTREAM": f"http://127.0.0.1:{upstream_port}",
                "NAIVE_PUBLIC_KEY": str(public_key)})
            process.wait_http(f"http://127.0.0.1:{port}{ROUTE}", headers=auth)
            return process, port
        scenarios.append(("naive", naive))

        def ours(server: str, workers: int = 1) -> Callable[[], tuple[Process, int]]:
            def launch() -> tuple[Process, int]:
                process = start(f"psgateway-{server}-{workers}", [sys.executable, "-m", "gateway"],
                                {**env, "PSGW_SERVER": server, "PSGW_WORKERS": str(workers)})
                process.wait_http(f"http://127.0.0.1:{gateway_port}/healthz", timeout=180)  # start-up on a busy machine
                return process, gateway_port
            return launch
        # The server is chosen by this measurement: both run the same gateway and chain.
        scenarios.append(("psgateway (uvicorn, default)", ours("uvicorn")))
        if args.compare_servers:
            scenarios.append(("psgateway (granian)", ours("granian")))
        cores = os.cpu_count() or 1
        if args.workers and cores > 1:
            scenarios.append((f"psgateway ({cores} workers)", ours("uvicorn", cores)))

        for name, launch in scenarios:
            process, port = launch()
            print(f"measuring {name} ...", file=sys.stderr)
            url = f"http://127.0.0.1:{port}{ROUTE}"
            results[name] = run_scenario(name, url, auth, process, args.runs, args.seconds)
            if name in ("naive", ONE_WORKER):
                # The curve: one run per count, right after this scenario's own runs (same period, same process).
                curve[name] = {c: wrk(url, headers=auth, connections=c, seconds=args.seconds, measured=process)
                               for c in counts}
                curve[name][32] = median_of(results[name])
            if name != "direct":
                process.stop()
    finally:
        for process in reversed(processes):
            process.stop()

    table = render(results, args)
    if any(len(points) > 1 for points in curve.values()):
        table += "\n" + render_curve(curve)
    print(table)
    if args.readme:
        write_readme_section("gateway", table)


ONE_WORKER = "psgateway (uvicorn, default)"
TARGET_RPS = 4_000
TARGET_VS_NAIVE = 8.0
TARGET_P99_MS = 10.0


def render(results: dict[str, list[Figures]], args: argparse.Namespace) -> str:
    naive = median_of(results["naive"]).rps if "naive" in results else None
    lines = [
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine_summary()}.",
        f"Command: `.venv/bin/python -m bench.gateway` (wrk -t2 -c32 -d{args.seconds}s, median of {args.runs}, "
        "loopback, one process per proxy unless stated; CPU/req is the proxy's own CPU time, all its processes).",
        "",
        "| scenario | req/s | p50 ms | p90 ms | p99 ms | CPU ms/req | vs naive | run spread | load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, runs in results.items():
        median = median_of(runs)
        cpu = f"{median.cpu_ms_per_request:.3f}" if median.cpu_ms_per_request is not None else "-"
        ratio = f"{median.rps / naive:.1f}x" if naive else "-"
        lines.append(f"| {name} | {median.rps:,.0f} | {median.p50_ms:.2f} | {median.p90_ms:.2f} | "
                     f"{median.p99_ms:.2f} | {cpu} | {ratio} | {spread(runs):.1%} | {median.load:.1f} |")
    if ONE_WORKER in results and naive:
        ours = median_of(results[ONE_WORKER])
        checks = [
            (f"{ours.rps:,.0f} req/s (target >= {TARGET_RPS:,})", ours.rps >= TARGET_RPS),
            (f"{ours.rps / naive:.1f}x naive (target >= {TARGET_VS_NAIVE:g}x)", ours.rps / naive >= TARGET_VS_NAIVE),
            (f"p99 {ours.p99_ms:.2f} ms (target < {TARGET_P99_MS:g} ms)", ours.p99_ms < TARGET_P99_MS),
        ]
        verdicts = "; ".join(f"{text}: {'met' if ok else 'NOT met'}" for text, ok in checks)
        lines += ["", f"One worker, full chain: {verdicts}."]
        scaled = next((name for name in results if name.endswith(" workers)")), None)
        if scaled is not None:
            many = median_of(results[scaled])
            lines.append(f"Scaling: {scaled.split('(')[1].rstrip(')')} on one port serve {many.rps:,.0f} req/s, "
                         f"{many.rps / ours.rps:.2f}x one worker, with wrk, the upstream and Redis on the same "
                         f"{os.cpu_count()} cores.")
    lines.append(f"Load is the 1-minute load average when a figure was taken, on {os.cpu_count()} cores shared with "
                 "whatever else runs: compare figures of one run only.")
    return "\n".join(lines)


def render_curve(curve: dict[str, dict[int, Figures]]) -> str:
    """Latency against connection count: at a fixed throughput ceiling, p50 grows with the connections queued
    on the event loop (Little's law), so the curve separates queueing from the chain's own cost."""
    lines = ["", "Latency curve (one run per point, taken right after the scenario's own runs):", "",
             "| scenario | connections | req/s | p50 ms | p90 ms | p99 ms | load |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, points in curve.items():
        for connections in sorted(points):
            r = points[connections]
            lines.append(f"| {name} | {connections} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p90_ms:.2f} | "
                         f"{r.p99_ms:.2f} | {r.load:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
