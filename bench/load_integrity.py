"""Load with integrity: mixed traffic through the gateway while faults are injected, then proof that nothing was
lost or doubled.

It starts its own stack (every process on free loopback ports), then for ``--duration`` seconds runs readers
(the consultant's assignments, system reads, event replay) and approvers (a manager approving each project's
submitted week) while it injects an ERP 5xx burst, an ERP outage and one restart of the process tier. Afterwards
it waits for the posting outbox to drain and checks, for every entry approved and queued:

- the ERP holds exactly one posting, for the amount the approval settled, and the PSA says posted;
- ERP postings of those entries add up to the approved eligible amount;
- the process tier's reconciliation finds no difference it did not find before the run;
- every 5xx answer is explained by an injected fault (counted by status and cause).

    python -m bench.load_integrity --duration 90

prints the figures; ``tests/reliability/test_load_integrity.py`` runs it briefly in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from gateway.config import load as load_gateway_config
from gateway.issuer import Issuer
from gateway.launcher import REPO_ROOT, Ports, Stack

# Projects of the demo firm whose submitted billable time is eligible once approved.
PROJECTS = ("prj_4002", "prj_4003", "prj_4005", "prj_4006", "prj_4009", "prj_4010", "prj_4018", "prj_4019")
CONSULTANT = "wrk_e1001"
# Differences that mean money was lost, doubled or misbooked.
MONEY_DIFFERENCES = frozenset({"missing_in_erp", "duplicated_in_erp", "amount_mismatch", "quantity_mismatch",
                               "unknown_source_in_erp"})


@dataclass
class Window:
    cause: str
    start: float
    end: float = float("inf")


@dataclass
class Report:
    duration: float
    calls: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    by_cause: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    approved_entries: int = 0
    queued_entries: int = 0
    erp_postings: int = 0
    approved_amount: Decimal = Decimal(0)
    posted_amount: Decimal = Decimal(0)
    integrity_errors: list[str] = field(default_factory=list)
    new_differences: list[str] = field(default_factory=list)

    @property
    def unexpected_5xx(self) -> int:
        return self.by_cause["unexpected"]

    @property
    def integrity_ok(self) -> bool:
        return not self.integrity_errors and not self.new_differences and self.posted_amount == self.approved_amount

    def render(self) -> str:
        lat = sorted(self.latencies_ms) or [0.0]
        lines = [
            f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
            f"duration {self.duration:.0f}s: {self.calls} calls ({self.calls / max(self.duration, 1e-9):.1f}/s), "
            f"latency p50 {statistics.median(lat):.1f} ms, p95 {lat[max(0, int(len(lat) * 0.95) - 1)]:.1f} ms",
            "by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(self.by_status.items())),
            "5xx by cause: " + (", ".join(f"{c}: {n}" for c, n in sorted(self.by_cause.items())) or "none"),
            f"approved {self.approved_entries} entries, {self.queued_entries} queued for posting, "
            f"{self.erp_postings} ERP postings",
            f"approved eligible amount {self.approved_amount}, posted in the ERP {self.posted_amount}",
            f"integrity: {'OK' if self.integrity_ok else 'FAILED'}",
        ]
        lines.extend(f"  ! {e}" for e in self.integrity_errors + self.new_differences)
        return "\n".join(lines)


class Traffic:
    def __init__(self, stack: Stack, report: Report) -> None:
        self.stack = stack
        self.report = report
        self.windows: list[Window] = []
        env = {**os.environ, "PSGW_ISSUER_URL": stack.gateway_url}
        self.config = load_gateway_config(stack.config_file, env)
        self.issuer = Issuer(self.config.issuer, stack.data_dir)
        self.approvals: list[dict[str, Any]] = []
        self.breaker_open_seconds = max(u.breaker.open_seconds for u in self.config.upstreams.values())

    def client(self, client_id: str, subject: str | None = None) -> httpx.AsyncClient:
        client = next(c for c in self.config.clients if c.id == client_id)
        token = self.issuer.mint(client, None, subject=subject)[0]
        return httpx.AsyncClient(base_url=self.stack.gateway_url, timeout=60,
                                 headers={"Authorization": f"Bearer {token}"})

    async def call(self, client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = await client.request(method, path, **kwargs)
        except httpx.HTTPError:
            self._count(599, started, time.monotonic(), {})
            return None
        ended = time.monotonic()
        body = response.json() if response.headers.get("content-type", "").endswith("json") and \
            response.status_code >= 500 else {}
        self._count(response.status_code, started, ended, body)
        return response

    def _count(self, status: int, started: float, ended: float, body: dict[str, Any]) -> None:
        report = self.report
        report.calls += 1
        report.by_status[status] += 1
        report.latencies_ms.append((ended - started) * 1000)
        if status < 500:
            return
        named = f"{body.get('upstream') or ''} {body.get('downstream') or ''}"
        circuit_open = str(body.get("type", "")).endswith("/upstream-circuit-open")
        for window in self.windows:
            if window.cause.split(":")[1] not in named and status != 599:
                continue
            # Grace: a call that began just before a fault, or answered just after it, met the fault; and the
            # gateway's breaker, opened by the fault, keeps refusing the upstream for up to its open_seconds.
            grace = self.breaker_open_seconds + 1.0 if circuit_open else 1.0
            if started <= window.end + grace and ended >= window.start - 0.5:
                report.by_cause[window.cause + (" (breaker open)" if circuit_open else "")] += 1
                return
        report.by_cause["unexpected"] += 1

    async def readers(self, deadline: float) -> None:
        consultant = self.client("mobile-app", CONSULTANT)
        process = self.client("process-tier")
        experience = self.client("experience-tier")
        try:
            n = 0
            while time.monotonic() < deadline:
                n += 1
                await asyncio.gather(
                    self.call(consultant, "GET", "/experience/mobile-time/v1/me/assignments"),
                    self.call(process, "GET", f"/system/psa/v1/projects/{PROJECTS[n % len(PROJECTS)]}"),
                    self.call(experience, "GET", "/process/events/v1/events", params={"limit": 50}),
                )
        finally:
            for client in (consultant, process, experience):
                await client.aclose()

    async def approver(self, deadline: float, started: float) -> None:
        process = self.client("process-tier")
        experience = self.client("experience-tier")
        try:
            spacing = (deadline - started) / (len(PROJECTS) + 1)
            for index, project in enumerate(PROJECTS, start=1):
                await asyncio.sleep(max(0.0, started + index * spacing - time.monotonic()))
                listed = await self.call(process, "GET", "/system/psa/v1/time-entries",
                                         params={"project_id": project, "state": "submitted", "limit": 200})
                project_body = await self.call(process, "GET", f"/system/psa/v1/projects/{project}")
                if listed is None or project_body is None or listed.status_code != 200:
                    continue
                ids = [e["id"] for e in listed.json()["items"] if e["billable"]]
                if not ids:
                    continue
                body = {"time_entry_ids": ids, "approver_id": project_body.json()["manager_id"],
                        "decision": "approve"}
                key = {"Idempotency-Key": f"load-{project}"}
                for _attempt in range(20):  # the manager's app retries with the same key until it gets an answer
                    answer = await self.call(experience, "POST", "/process/timesheets/v1/approvals", json=body,
                                             headers=key)
                    if answer is not None and answer.status_code in (200, 201, 202):
                        self.approvals.append(answer.json())
                        break
                    await asyncio.sleep(1.0)
        finally:
            await process.aclose()
            await experience.aclose()

    async def faults(self, started: float, duration: float) -> None:
        erp = self.stack.url("sandbox-erp") + "/_sandbox/faults"
        async with httpx.AsyncClient(timeout=10) as sandbox:
            await asyncio.sleep(duration * 0.2)
            self.windows.append(Window("erp:sandbox-erp", time.monotonic()))
            await sandbox.put(erp, json={"fail_next": 4, "error_status": 500, "only_methods": ["POST"]})
            await asyncio.sleep(duration * 0.15)
            await sandbox.put(erp, json={"outage_seconds": max(2.0, duration * 0.1), "only_methods": ["POST"]})
            await asyncio.sleep(max(2.0, duration * 0.1) + 0.5)
            await sandbox.delete(erp)
            self.windows[-1].end = time.monotonic()
            await asyncio.sleep(max(0.0, started + duration * 0.6 - time.monotonic()))
            window = Window("restart:process", time.monotonic())
            self.windows.append(window)
            await asyncio.to_thread(self.stack.restart, "process")
            window.end = time.monotonic()


async def drive(stack: Stack, duration: float) -> Report:
    report = Report(duration=duration)
    traffic = Traffic(stack, report)
    experience = traffic.client("experience-tier")
    process = traffic.client("process-tier")
    try:
        baseline = await reconcile(experience)
        started = time.monotonic()
        deadline = started + duration
        await asyncio.gather(traffic.readers(deadline), traffic.readers(deadline), traffic.approver(deadline, started),
                             traffic.faults(started, duration))
        report.duration = time.monotonic() - started
        await check_integrity(traffic, experience, process, baseline)
    finally:
        await experience.aclose()
        await process.aclose()
    return report


async def reconcile(experience: httpx.AsyncClient) -> set[tuple[str, str]]:
    answer = await experience.post("/process/reconciliation/v1/reconciliations", json={"project_ids": list(PROJECTS)})
    answer.raise_for_status()
    return {(d["type"], d.get("time_entry_id") or "") for p in answer.json()["projects"] for d in p["differences"]
            if d["type"] in MONEY_DIFFERENCES}


async def all_items(client: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = (await client.get(path, params={**params, "limit": 200, **({"cursor": cursor} if cursor else {})})
                ).json()
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


async def check_integrity(traffic: Traffic, experience: httpx.AsyncClient, process: httpx.AsyncClient,
                          baseline: set[tuple[str, str]]) -> None:
    report = traffic.report
    settled: dict[str, Decimal] = {}
    for approval in traffic.approvals:
        for entry in approval["entries"]:
            report.approved_entries += entry["result"] == "approved"
            settlement = entry.get("settlement") or {}
            if settlement.get("disposition") == "queued_for_posting":
                settled[entry["time_entry_id"]] = Decimal(settlement["amount"])
    report.queued_entries = len(settled)
    report.approved_amount = sum(settled.values(), Decimal(0))
    deadline = time.monotonic() + 240  # the outbox drains after the faults (leases, backoff)
    pending = set(settled)
    while pending and time.monotonic() < deadline:
        for entry_id in list(pending):
            rows = (await experience.get("/process/billing/v1/postings", params={"time_entry_id": entry_id})
                    ).json()["items"]
            if rows and rows[0]["state"] == "done":
                pending.discard(entry_id)
        if pending:
            await asyncio.sleep(1.0)
    for entry_id in sorted(pending):
        report.integrity_errors.append(f"{entry_id}: approved and queued, never posted")
    for entry_id, amount in sorted(settled.items()):
        postings = await all_items(process, "/system/erp/v1/postings", source_id=entry_id)
        report.erp_postings += len(postings)
        report.posted_amount += sum((Decimal(p["amount"]) for p in postings), Decimal(0))
        if len(postings) != 1:
            report.integrity_errors.append(f"{entry_id}: {len(postings)} ERP postings")
        elif Decimal(postings[0]["amount"]) != amount:
            report.integrity_errors.append(f"{entry_id}: ERP amount {postings[0]['amount']}, approved {amount}")
        state = (await process.get(f"/system/psa/v1/time-entries/{entry_id}")).json()["state"]
        if state not in ("posted", "invoiced"):
            report.integrity_errors.append(f"{entry_id}: PSA state {state}")
    for kind, entry_id in sorted(await reconcile(experience) - baseline):
        report.new_differences.append(f"reconciliation: {kind} {entry_id}")


def run(duration: float, data_dir: Path | None = None) -> Report:
    """Start a stack, drive it for ``duration`` seconds with faults, check integrity, stop it."""
    with tempfile.TemporaryDirectory(prefix="psgw-load-") as scratch:
        stack = Stack(data_dir=data_dir or Path(scratch), ports=Ports.free(), config_file=REPO_ROOT / "gateway.yaml")
        stack.start()
        try:
            stack.wait_ready(timeout=90)
            return asyncio.run(drive(stack, duration))
        finally:
            stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=90.0, help="seconds of traffic (default 90)")
    parser.add_argument("--data-dir", type=Path, default=None, help="keep the stack's data and logs here")
    args = parser.parse_args()
    report = run(args.duration, args.data_dir)
    print(report.render())
    raise SystemExit(0 if report.integrity_ok and report.unexpected_5xx == 0 else 1)


if __name__ == "__main__":
    main()
