"""Shared benchmark plumbing: start processes, run wrk, read latency percentiles and CPU time per request.

Everything runs on loopback; every load run is bounded (wrk -d). CPU per request is the CPU time (user + system,
from /proc) the process under test spent during the run divided by the requests it served, so a result shows
what each request costs, not only how many fit in a second on this machine.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def machine_summary() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Linux {platform.release()}, Python {platform.python_version()}"


class Process:
    """A benchmark participant: started in its own session, stopped with SIGTERM then SIGKILL."""

    def __init__(self, name: str, argv: Sequence[str], *, env: dict[str, str] | None = None,
                 cwd: Path | None = None, log: Path | None = None) -> None:
        self.name = name
        self.log = log
        out = log.open("ab") if log else subprocess.DEVNULL
        self.popen = subprocess.Popen(list(argv), env={**os.environ, **(env or {})}, cwd=cwd, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pids(self) -> list[int]:
        """The process and its children (nginx and haproxy fork workers)."""
        pids = [self.popen.pid]
        try:
            children = Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children").read_text().split()
            pids.extend(int(c) for c in children)
        except OSError:
            pass
        return pids

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
        return total / CLOCK_TICKS

    def wait_http(self, url: str, timeout: float = 30.0, headers: dict[str, str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}"
                                   + (f"; see {self.log}" if self.log else ""))
            try:
                if httpx.get(url, timeout=1.0, headers=headers).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not answering at {url}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()


@dataclass
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    cpu_ms_per_request: float | None
    p90_ms: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(f"unreadable latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(url: str, *, headers: dict[str, str] | None = None, threads: int = 2, connections: int = 32,
        seconds: int = 5, measured: Process | None = None) -> LoadResult:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (Debian package 'wrk')")
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    cpu_before = measured.cpu_seconds() if measured else 0.0
    output = subprocess.run([*argv, url], capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    cpu_used = (measured.cpu_seconds() - cpu_before) if measured else None
    requests_match = re.search(r"(\d+) requests in ([\d.]+)(s|m)", output)
    if not requests_match:
        raise RuntimeError(f"unreadable wrk output:\n{output}")
    requests = int(requests_match.group(1))
    duration = float(requests_match.group(2)) * (60 if requests_match.group(3) == "m" else 1)
    percentiles = dict(re.findall(r"^\s+(50|90|99)(?:\.000)?%\s+(\S+)", output, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return LoadResult(
        requests=requests,
        seconds=duration,
        p50_ms=_latency_ms(percentiles["50"]),
        p99_ms=_latency_ms(percentiles["99"]),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(g) for g in errors.groups()) if errors else 0,
        cpu_ms_per_request=(cpu_used * 1000 / requests) if cpu_used is not None and requests else None,
        p90_ms=_latency_ms(percentiles["90"]),
    )


def median_of(runs: list[LoadResult]) -> LoadResult:
    """The run with the median throughput, so its latencies and CPU belong to one real run."""
    ordered = sorted(runs, key=lambda r: r.rps)
    return ordered[len(ordered) // 2]


def spread(runs: list[LoadResult]) -> float:
    rates = [r.rps for r in runs]
    return statistics.pstdev(rates) / statistics.mean(rates) if len(rates) > 1 else 0.0


def write_readme_section(name: str, text: str, readme: Path | None = None) -> None:
    """Replace what stands between ``<!-- bench:NAME:start -->`` and ``<!-- bench:NAME:end -->`` in README.md."""
    readme = readme or Path(__file__).resolve().parent.parent / "README.md"
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    content = readme.read_text()
    if start not in content or end not in content:
        raise SystemExit(f"README.md has no {start} ... {end} section")
    head, rest = content.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{text}\n{end}{tail}")
