"""Follow-up side effects as durable jobs: enqueued in the transaction of the decision, run until done.

Used for the flow-backs after an invoice is posted (PSA entries and milestones -> invoiced, the CRM's invoice
status). A job is leased while it runs, retried with backoff + jitter while its downstream is unavailable, and
raised to the exception queue (kind ``flow_back``) when its downstream refuses it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from process_apis.backoff import describe, is_transient, next_attempt_at
from process_apis.exceptions.models import ExceptionItem
from process_apis.exceptions.service import RetryResult, raise_exception, resolve_open
from process_apis.store import OutboxGauge, jobs, outbox_gauge
from process_apis.unit_of_work import Outbox, UnitOfWorkFactory, note_written
from runtime import correlation
from runtime.storage import Database, utcnow

log = logging.getLogger("process_apis.jobs")

JobHandler = Callable[[Mapping[str, Any]], Awaitable[None]]


async def enqueue_job(db: Database, conn: AsyncConnection, kind: str, dedupe_key: str,
                      payload: Mapping[str, Any]) -> None:
    """Add a job in the open transaction; the same ``dedupe_key`` twice is one job."""
    now = utcnow()
    await conn.execute(db.insert_ignoring_conflicts(jobs, ["dedupe_key"]).values(
        kind=kind, dedupe_key=dedupe_key, payload=dict(payload), state="pending", attempts=0, next_attempt_at=now,
        correlation_id=correlation.current_correlation_id(), trace_id=correlation.current_trace_id(),
        created_at=now, updated_at=now))
    note_written(conn, Outbox.JOBS)


async def run_now(conn: AsyncConnection, dedupe_key: str) -> None:
    """Make the job due now, in the open transaction, if it is waiting (pending or failed) and not leased; the unit
    of work wakes the job runner after commit."""
    now = utcnow()
    await conn.execute(jobs.update().where(
        jobs.c.dedupe_key == dedupe_key, jobs.c.state.in_(("pending", "failed")),
        sa.or_(jobs.c.lease_until.is_(None), jobs.c.lease_until < now),
    ).values(state="pending", next_attempt_at=now, updated_at=now))
    note_written(conn, Outbox.JOBS)


class JobRunner:
    def __init__(self, uow: UnitOfWorkFactory, *, batch_size: int = 100,
                 lease_seconds: float = 120.0, retry_base_seconds: float = 0.5,
                 retry_max_seconds: float = 60.0) -> None:
        self.uow = uow
        self.db = uow.db
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.retry_base_seconds = retry_base_seconds
        self.retry_max_seconds = retry_max_seconds
        self.handlers: dict[str, JobHandler] = {}

    def handle(self, kind: str, handler: JobHandler) -> None:
        self.handlers[kind] = handler

    async def run_once(self) -> int:
        done = 0
        while True:
            rows = await self._claim()
            if not rows:
                return done
            for row in rows:
                done += await self._run(row)

    async def _claim(self) -> list[Any]:
        now = utcnow()
        async with self.uow() as uow:
            rows = (await uow.conn.execute(
                sa.select(jobs).where(jobs.c.state == "pending", jobs.c.next_attempt_at <= now,
                                      sa.or_(jobs.c.lease_until.is_(None), jobs.c.lease_until < now))
                .order_by(jobs.c.id).limit(self.batch_size).with_for_update(skip_locked=True))).all()
            if rows:
                await uow.conn.execute(jobs.update().where(jobs.c.id.in_([r.id for r in rows])).values(
                    lease_until=now + dt.timedelta(seconds=self.lease_seconds)))
        return list(rows)

    async def _run(self, row: Any) -> int:
        handler = self.handlers.get(row.kind)
        token = correlation.set_current(correlation.resume(row.correlation_id, row.trace_id))
        try:
            if handler is None:
                raise RuntimeError(f"no handler for job kind {row.kind!r}")
            await handler(row.payload)
        except Exception as exc:
            await self._failed(row, exc)
            return 0
        finally:
            correlation.reset_current(token)
        async with self.uow() as uow:
            await uow.conn.execute(jobs.update().where(jobs.c.id == row.id).values(
                state="done", lease_until=None, last_error=None, attempts=row.attempts + 1, updated_at=utcnow()))
        return 1

    async def _failed(self, row: Any, exc: BaseException) -> None:
        attempts = row.attempts + 1
        async with self.uow() as uow:
            if is_transient(exc):
                await uow.conn.execute(jobs.update().where(jobs.c.id == row.id).values(
                    attempts=attempts, lease_until=None, last_error=describe(exc), updated_at=utcnow(),
                    next_attempt_at=next_attempt_at(attempts, self.retry_base_seconds, self.retry_max_seconds)))
                return
            await uow.conn.execute(jobs.update().where(jobs.c.id == row.id).values(
                state="failed", attempts=attempts, lease_until=None, last_error=describe(exc), updated_at=utcnow()))
            await raise_exception(uow.conn, kind="flow_back", source_type="job", source_id=row.dedupe_key,
                                  reason_codes=["FLOW_BACK_REFUSED"], detail=describe(exc),
                                  payload={"job_kind": row.kind, "job": dict(row.payload), "error": describe(exc)})

    async def retry_exception(self, item: ExceptionItem, actor_id: str | None) -> RetryResult:
        async with self.uow() as uow:
            await uow.conn.execute(jobs.update().where(jobs.c.dedupe_key == item.source_id, jobs.c.state == "failed")
                               .values(state="pending", next_attempt_at=utcnow(), lease_until=None,
                                       updated_at=utcnow()))
            uow.queued(Outbox.JOBS)
            await resolve_open(uow.conn, kind="flow_back", source_type="job", source_id=item.source_id,
                               resolution="requeued", actor_id=actor_id)
        return "in_progress", "requeued: the job runs again (a new exception opens if it is refused again)"

    async def progress(self, dedupe_prefix: str) -> dict[str, int]:
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(jobs.c.state, sa.func.count()).where(
                jobs.c.dedupe_key.like(dedupe_prefix + "%")).group_by(jobs.c.state))).all()
        return {str(state): int(count) for state, count in rows}


async def jobs_outbox(conn: AsyncConnection) -> OutboxGauge:
    """How the follow-up jobs outbox stands (process_apis/metrics.py): pending rows, and failed ones given up."""
    return await outbox_gauge(conn, jobs, pending=("pending",), given_up=("failed",), tries=jobs.c.attempts,
                              retrying=jobs.c.attempts > 0)
