"""Instructions per read in each tier process, counted by callgrind: a measure of the layer tax that holds on a
busy machine, where CPU time per call moves with the neighbours by more than a change's effect.

    .venv/bin/python -m bench.layers_instructions              # system, process and experience tiers, 300 reads
    .venv/bin/python -m bench.layers_instructions --tiers experience --reads 500

The stack is bench/layers.py's (launcher.Stack, every SLA tier raised), with each named tier started under
``valgrind --tool=callgrind --instr-atstart=no`` and the process tier's timed loops (feeds, relay, dispatcher,
recovery) slowed to nothing: callgrind stretches the wall time, and their turns would swamp the calls. After a
warm-up, counting is switched on in every named tier, ``--reads`` reads of
``GET /experience/mobile-time/v2/me/assignments`` are sent one after another, and counting is switched off; then
the same tiers are counted over an idle window, and each tier's idle instructions per second times the reads'
wall time are subtracted (what it runs whatever the load: timers, its event loop). Instructions are those of the
process's own code (Python, its C extensions, libc), not the kernel's: a syscall's cost is not in them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.layers import CONSULTANT, READ, bench_config
from gateway import config as gateway_config
from gateway.issuer import Issuer
from gateway.launcher import TIERS, Ports, ServiceSpec, Stack

QUIET_LOOPS = {
    "PSGW_PSA_WATCH_INTERVAL_SECONDS": "0",
    "PSGW_CRM_FEED_INTERVAL_SECONDS": "0",
    "PSGW_HR_FEED_INTERVAL_SECONDS": "0",
    "PSGW_DISPATCH_INTERVAL_SECONDS": "3600",
    "PSGW_RELAY_INTERVAL_SECONDS": "3600",
    "PSGW_RECOVERY_INTERVAL_SECONDS": "3600",
}
IDLE_SECONDS = 15.0


class CountedStack(Stack):
    """The bench stack with some processes under callgrind (counting off until switched on)."""

    counted: tuple[str, ...] = ()
    out_dir: Path = Path()

    def specs(self) -> list[ServiceSpec]:
        specs = []
        for spec in super().specs():
            if spec.name in self.counted:
                argv = [
                    "valgrind",
                    "--tool=callgrind",
                    "--instr-atstart=no",
                    f"--callgrind-out-file={self.out_dir}/{spec.name}.%p",
                    *spec.argv,
                ]
                spec = ServiceSpec(spec.name, argv, spec.port, spec.env, health_path=spec.health_path)
            specs.append(spec)
        return specs


def control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=120)


def counted(out_dir: Path, name: str, pid: int) -> list[int]:
    """The instruction totals of each dump of one process, in dump order."""
    dumps = sorted(out_dir.glob(f"{name}.{pid}.*"), key=lambda path: int(path.suffix[1:]))
    totals = []
    for dump in dumps:
        line = next(line for line in dump.read_text().splitlines() if line.startswith("totals:"))
        totals.append(int(line.split()[1]))
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiers", default=",".join(TIERS), help="comma-separated (default: all three tiers)")
    parser.add_argument("--reads", type=int, default=300, help="reads counted (default 300)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed (Debian package 'valgrind')")
    names = tuple(name.strip() for name in args.tiers.split(",") if name.strip())
    work = Path(tempfile.mkdtemp(prefix="psgw-instructions-"))
    out_dir = work / "callgrind"
    out_dir.mkdir()
    stack = CountedStack(
        data_dir=work / "data",
        ports=Ports.free(),
        config_file=bench_config(work),
        extra_env={"PSGW_LOG_LEVEL": "WARNING", "PSGW_OUTBOUND_TIMEOUT_SECONDS": "60", **QUIET_LOOPS},
    )
    stack.counted, stack.out_dir = names, out_dir
    try:
        print(f"starting the stack in {work} (callgrind: {', '.join(names)}; minutes) ...", file=sys.stderr)
        stack.start()
        stack.wait_ready(timeout=900)
        config = gateway_config.load(stack.config_file, {**os.environ, "PSGW_ISSUER_URL": stack.gateway_url})
        client = next(c for c in config.clients if c.id == "mobile-app")
        token = Issuer(config.issuer, stack.data_dir).mint(client, subject=CONSULTANT, ttl_seconds=3600)[0]
        pids = {name: stack.processes[name].pid for name in names}
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(timeout=120.0) as http:
            for _ in range(20):  # pools, caches, tokens
                http.get(stack.gateway_url + READ, headers=headers).raise_for_status()
            for pid in pids.values():
                control("-i", "on", str(pid))
            started = time.monotonic()
            for _ in range(args.reads):
                http.get(stack.gateway_url + READ, headers=headers).raise_for_status()
            wall = time.monotonic() - started
            for pid in pids.values():
                control("-i", "off", str(pid))
                control("-d", str(pid))
        for pid in pids.values():
            control("-i", "on", str(pid))
        time.sleep(IDLE_SECONDS)
        for pid in pids.values():
            control("-i", "off", str(pid))
            control("-d", str(pid))
        time.sleep(2)
        print(f"Instructions per read of {READ} ({args.reads} reads one after another in {wall:.0f} s, callgrind):")
        for name, pid in pids.items():
            busy, idle = counted(out_dir, name, pid)[:2]
            net = (busy - idle / IDLE_SECONDS * wall) / args.reads
            print(
                f"  {name:<11} {net:>12,.0f} Ir/read  (counted {busy / args.reads:,.0f}, idle "
                f"{idle / IDLE_SECONDS:,.0f} Ir/s subtracted)"
            )
    finally:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
