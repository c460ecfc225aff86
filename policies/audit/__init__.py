"""Audit: every call and every decision, and every admin change, to a durable SQL log.

Calls reach it through the log phase of the policy chain (:class:`AuditSink`, bound globally by default, so calls
no API matched are recorded too); admin changes through :meth:`AuditLog.record_change`.
The hot path only appends a :class:`CallEntry` to an in-memory queue (no I/O, no await); a background task
writes batches (``batch_size`` rows or every ``flush_interval_seconds``). A failed write keeps the batch for
the next attempt, and a clean shutdown drains the queue before the process exits, so no entry is lost.
Admin changes are written synchronously (they are rare, and the admin API answers only once they are durable).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

import msgspec
from prometheus_client import Counter, Gauge

from policies.audit.store import AuditStore, CallEntry, ChangeEntry, SqlAuditStore
from policies.exchange import Exchange
from policies.registry import BuildContext, PolicySpec, Services

log = logging.getLogger("policies.audit")

QUEUE_DEPTH = Gauge("psgw_audit_queue_depth", "Audit entries waiting to be written")
WRITE_FAILURES = Counter("psgw_audit_write_failures_total", "Failed audit batch writes (retried)")
WRITTEN = Counter("psgw_audit_entries_written_total", "Audit entries written to the store")

__all__ = ["POLICY", "AuditConfig", "AuditLog", "AuditSink", "AuditStore", "CallEntry", "ChangeEntry", "SqlAuditStore"]


class AuditConfig(msgspec.Struct, kw_only=True, frozen=True):
    enabled: bool = True
    batch_size: int = 500
    flush_interval_seconds: float = 0.25


class AuditLog:
    def __init__(self, store: AuditStore, config: AuditConfig) -> None:
        self.store = store
        self.config = config
        self._pending: deque[CallEntry] = deque()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()

    def record(self, entry: CallEntry) -> None:
        """Queue one call for the log (hot path: an append, nothing else)."""
        if self.config.enabled:
            self._pending.append(entry)
            if len(self._pending) >= self.config.batch_size:
                self._wake.set()

    async def record_change(self, change: ChangeEntry) -> None:
        await self.store.write_changes([change])

    async def start(self) -> None:
        await self.store.create_schema()
        self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.flush_interval_seconds)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # the writer must survive anything; the entries stay queued
                log.exception("audit flush failed; will retry")

    async def flush(self) -> int:
        """Write everything queued so far; returns how many entries were written."""
        written = 0
        async with self._flush_lock:
            while self._pending:
                batch = [self._pending.popleft() for _ in range(min(self.config.batch_size, len(self._pending)))]
                try:
                    await self.store.write_calls(batch)
                except Exception:
                    self._pending.extendleft(reversed(batch))
                    WRITE_FAILURES.inc()
                    QUEUE_DEPTH.set(len(self._pending))
                    raise
                written += len(batch)
                WRITTEN.inc(len(batch))
            QUEUE_DEPTH.set(len(self._pending))
        return written

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for attempt in range(5):
            try:
                await self.flush()
                break
            except Exception:
                log.exception("audit flush at shutdown failed (attempt %d)", attempt + 1)
                await asyncio.sleep(0.2 * (attempt + 1))
        if self._pending:
            log.error("audit entries could not be written at shutdown", extra={"count": len(self._pending)})
        close = getattr(self.store, "aclose", None)  # SqlAuditStore's writer thread (test stores have none)
        if close is not None:
            await close()


class AuditSink:
    """The log phase: each call, as it ended, queued for the audit log."""

    name = "audit"

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit

    def log(self, exchange: Exchange | None, entry: CallEntry) -> None:
        self.audit.record(entry)


def _sink(config: AuditConfig, services: Services) -> AuditSink | None:
    # The log itself is the gateway's (admin changes go there too, and it is drained at shutdown).
    return AuditSink(services.extra["audit"]) if config.enabled else None


def _build(config: AuditConfig, ctx: BuildContext) -> AuditSink | None:
    return ctx.once(("audit", config.enabled), lambda: _sink(config, ctx.services))


POLICY = PolicySpec(name="audit", config=AuditConfig, priority=10, build=_build, build_unrouted=_sink,
                    enabled_by_default=True, summary="every call and its decisions to the durable audit log")
