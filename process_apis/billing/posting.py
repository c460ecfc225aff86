"""Exactly-once posting of eligible time to the ERP: a transactional outbox and its dispatcher.

A row of ``billing_postings`` is written in the same transaction as the decision that made the entry eligible.
The dispatcher then, with retries and exponential backoff + jitter:

1. sends queued rows to the ERP (one ``POST /postings`` or ``POST /postings/batch`` for many), each with an
   Idempotency-Key derived from the time entry id and version; the ERP's uniqueness per source is the last line
   of defence, so a resend after a crash or timeout finds the existing posting instead of making a second;
2. moves the PSA entry to ``posted`` and marks the row done, emitting ``time.posted`` in that transaction.

Rows are leased while in flight, so replicas (or a restarted process) never work the same row at once, and
an expired lease (a crash mid-flight) simply makes the row due again. An ERP outage only delays rows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from contracts.canonical import Posting
from process_apis.backoff import describe, is_transient, next_attempt_at
from process_apis.events.outbox import record_event
from process_apis.exceptions.service import raise_exception
from process_apis.store import billing_postings
from process_apis.systems import Systems
from runtime.downstream import DownstreamProblem
from runtime.storage import Database, utcnow

log = logging.getLogger("process_apis.billing")

ERP_BATCH_LIMIT = 500


def idempotency_key(time_entry_id: str, version: int) -> str:
    return f"posting:{time_entry_id}:v{version}"


def posting_body(row: Any) -> dict[str, Any]:
    return {
        "source_type": "time_entry", "source_id": row.time_entry_id, "project_id": row.project_id,
        "contract_id": row.contract_id, "legal_entity_id": row.legal_entity_id,
        "work_date": row.work_date.isoformat(), "quantity": str(row.hours), "amount": str(row.amount),
        "currency": row.currency,
    }


def batch_key(rows: Sequence[Any]) -> str:
    """The same set of rows always gives the same key (and the same body), so a resent batch is harmless."""
    digest = hashlib.sha256("\n".join(sorted(r.idempotency_key for r in rows)).encode()).hexdigest()
    return f"posting-batch:{digest[:48]}"


class PostingDispatcher:
    def __init__(self, db: Database, systems: Systems, *, on_events: Callable[[], None] = lambda: None,
                 batch_size: int = 200, lease_seconds: float = 120.0, retry_base_seconds: float = 0.5,
                 retry_max_seconds: float = 60.0) -> None:
        self.db = db
        self.systems = systems
        self.on_events = on_events
        self.batch_size = min(batch_size, ERP_BATCH_LIMIT)
        self.lease_seconds = lease_seconds
        self.retry_base_seconds = retry_base_seconds
        self.retry_max_seconds = retry_max_seconds
        self._lock = asyncio.Lock()

    async def dispatch_once(self) -> int:
        """Work every due row until none is left; returns how many rows were completed."""
        done = 0
        async with self._lock:
            while True:
                rows = await self._claim()
                if not rows:
                    return done
                queued = [r for r in rows if r.state == "queued"]
                in_erp = [r for r in rows if r.state == "in_erp"]
                in_erp.extend(await self._send_to_erp(queued))
                done += await self._mark_posted_in_psa(in_erp)

    async def _claim(self) -> list[Any]:
        now = utcnow()
        async with self.db.transaction() as conn:
            rows = (await conn.execute(
                sa.select(billing_postings)
                .where(billing_postings.c.state.in_(("queued", "in_erp")),
                       billing_postings.c.next_attempt_at <= now,
                       sa.or_(billing_postings.c.lease_until.is_(None), billing_postings.c.lease_until < now))
                .order_by(billing_postings.c.id).limit(self.batch_size)
                .with_for_update(skip_locked=True))).all()
            if rows:
                await conn.execute(billing_postings.update()
                                   .where(billing_postings.c.id.in_([r.id for r in rows]))
                                   .values(lease_until=now + dt.timedelta(seconds=self.lease_seconds)))
        return list(rows)

    async def _send_to_erp(self, rows: list[Any]) -> list[Any]:
        """Post the rows; returns those the ERP now has (created or already existing)."""
        if not rows:
            return []
        accepted: list[Any] = []
        if len(rows) == 1:
            row = rows[0]
            try:
                posting = await self.systems.erp.post(posting_body(row), row.idempotency_key)
            except Exception as exc:
                await self._failed(rows, exc)
                return []
            await self._in_erp(row, posting)
            return [await self._reload(row.id)]
        try:
            result = await self.systems.erp.post_batch([posting_body(r) for r in rows], batch_key(rows))
        except Exception as exc:
            await self._failed(rows, exc)
            return []
        by_source = {r.time_entry_id: r for r in rows}
        answered: set[str] = set()
        for item in result.items:
            row = by_source.get(item.source_id)
            if row is None or item.source_id in answered:
                continue
            answered.add(item.source_id)
            if item.status in ("created", "existing") and item.posting is not None:
                await self._in_erp(row, item.posting)
                accepted.append(await self._reload(row.id))
            else:
                problem = item.problem or {}
                await self._rejected(row, f"{problem.get('status', '')} {problem.get('detail', 'rejected')}".strip())
        missing = [r for r in rows if r.time_entry_id not in answered]
        if missing:  # an answer without these rows: ask again later rather than guess
            await self._failed(missing, RuntimeError("the ERP batch answer omitted these sources"))
        return accepted

    async def _reload(self, row_id: int) -> Any:
        async with self.db.read() as conn:
            return (await conn.execute(sa.select(billing_postings).where(billing_postings.c.id == row_id))).one()

    async def _in_erp(self, row: Any, posting: Posting) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(billing_postings.update().where(billing_postings.c.id == row.id).values(
                state="in_erp", erp_posting_id=posting.id, attempts=row.attempts + 1, last_error=None,
                updated_at=utcnow()))

    async def _failed(self, rows: Sequence[Any], exc: BaseException) -> None:
        if not is_transient(exc):
            for row in rows:
                await self._rejected(row, describe(exc))
            return
        log.warning("posting deferred", extra={"rows": len(rows), "error": describe(exc)})
        async with self.db.transaction() as conn:
            for row in rows:
                attempts = row.attempts + 1
                await conn.execute(billing_postings.update().where(billing_postings.c.id == row.id).values(
                    attempts=attempts, lease_until=None, last_error=describe(exc), updated_at=utcnow(),
                    next_attempt_at=next_attempt_at(attempts, self.retry_base_seconds, self.retry_max_seconds)))

    async def _rejected(self, row: Any, detail: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(billing_postings.update().where(billing_postings.c.id == row.id).values(
                state="rejected", attempts=row.attempts + 1, lease_until=None, last_error=detail,
                updated_at=utcnow()))
            await raise_exception(
                conn, kind="posting", source_type="time_entry", source_id=row.time_entry_id,
                reason_codes=["ERP_REJECTED"], project_id=row.project_id, detail=detail,
                payload={"posting": posting_body(row), "idempotency_key": row.idempotency_key, "error": detail})
        self.on_events()

    async def _mark_posted_in_psa(self, rows: list[Any]) -> int:
        done = 0
        for row in rows:
            try:
                entry = await self.systems.psa.transition_time_entry(row.time_entry_id, "posted")
                state = entry.state
            except DownstreamProblem as exc:
                if exc.status == 409:
                    state = (await self.systems.psa.time_entry(row.time_entry_id)).state
                    if state not in ("posted", "invoiced"):
                        await self._psa_refused(row, describe(exc), state)
                        continue
                elif is_transient(exc):
                    await self._failed([row], exc)
                    continue
                else:
                    await self._psa_refused(row, describe(exc), None)
                    continue
            except Exception as exc:
                await self._failed([row], exc)
                continue
            async with self.db.transaction() as conn:
                await conn.execute(billing_postings.update().where(billing_postings.c.id == row.id).values(
                    state="done", lease_until=None, last_error=None, updated_at=utcnow()))
                await record_event(conn, "time.posted", {
                    "time_entry_id": row.time_entry_id, "project_id": row.project_id,
                    "contract_id": row.contract_id, "posting_id": row.erp_posting_id or ""},
                    {"amount": str(row.amount), "currency": row.currency, "hours": str(row.hours),
                     "work_date": row.work_date.isoformat(), "entry_version": row.entry_version,
                     "psa_state": state})
            done += 1
        if done:
            self.on_events()
        return done

    async def _psa_refused(self, row: Any, detail: str, psa_state: str | None) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(billing_postings.update().where(billing_postings.c.id == row.id).values(
                state="psa_refused", lease_until=None, last_error=detail, updated_at=utcnow()))
            await raise_exception(
                conn, kind="posting", source_type="time_entry", source_id=row.time_entry_id,
                reason_codes=["PSA_REFUSED_POSTED"], project_id=row.project_id, detail=detail,
                payload={"posting": posting_body(row), "erp_posting_id": row.erp_posting_id,
                         "psa_state": psa_state, "error": detail})
        self.on_events()
