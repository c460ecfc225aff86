"""Exactly-once posting of eligible time to the ERP: a transactional outbox and its dispatcher.

A row of ``billing_postings`` is written in the same transaction as the decision that made the entry eligible.
The dispatcher then, with retries and exponential backoff + jitter:

1. sends queued rows to the ERP (one ``POST /postings`` or ``POST /postings/batch`` for many), each with an
   Idempotency-Key derived from the time entry id and version; the ERP's uniqueness per source is the last line
   of defence, so a resend after a crash or timeout finds the existing posting instead of making a second;
2. moves the PSA entries to ``posted`` (``POST /time-entries/transitions``, one call per claimed batch) and marks
   the rows done, emitting ``time.posted`` in that transaction.

Each step commits one transaction per batch, not per row, so a month end of tens of thousands of entries costs
hundreds of round trips and commits, not hundreds of thousands.

Rows are leased while in flight, so replicas (or a restarted process) never work the same row at once, and
an expired lease (a crash mid-flight) simply makes the row due again. An ERP outage only delays rows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.canonical import Posting, decimal_text, display_hours, whole_minutes
from process_apis.backoff import describe, is_transient, next_attempt_at
from process_apis.events.outbox import record_events
from process_apis.exceptions.service import raise_exception, resolve_open
from process_apis.store import billing_postings, billing_reversals
from process_apis.systems import Systems
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.downstream import DownstreamProblem
from runtime.storage import Database, utcnow

log = logging.getLogger("process_apis.billing")

ERP_BATCH_LIMIT = 500
# What the PSA said of one row: ("posted", its state, "") | ("refused", its state or None, why) | a failure to retry.
PsaOutcome = tuple[str, str | None, str] | BaseException


def idempotency_key(time_entry_id: str, version: int) -> str:
    return f"posting:{time_entry_id}:v{version}"


def posting_minutes(row: Any) -> int | None:
    """The row's whole minutes: recorded with it, else (a row queued before minutes were kept) read from its hours."""
    return row.minutes if row.minutes is not None else whole_minutes(row.hours)


def posting_body(row: Any) -> dict[str, Any]:
    """The ERP posting of a row: time in exact whole minutes, its hours for a reader of hours rounded to the
    hundredth (:func:`display_hours`); the amount was computed once from the minutes (eligibility)."""
    minutes = posting_minutes(row)
    hours = row.hours if minutes is None else display_hours(minutes)
    body = {
        "source_type": "time_entry", "source_id": row.time_entry_id, "project_id": row.project_id,
        "contract_id": row.contract_id, "legal_entity_id": row.legal_entity_id,
        "work_date": row.work_date.isoformat(), "quantity": decimal_text(hours), "amount": decimal_text(row.amount),
        "currency": row.currency,
    }
    if minutes is not None:
        body["minutes"] = minutes
    return body


async def booked_rates(db: Database, time_entry_ids: Sequence[str]) -> dict[str, Decimal]:
    """The hourly rate each entry's amount was computed at when it was queued for posting (its latest version;
    entries posted before rates were kept, or by another path, are absent): what invoices show as unit price."""
    rates: dict[str, Decimal] = {}
    async with db.read() as conn:
        for start in range(0, len(time_entry_ids), 500):
            rows = (await conn.execute(sa.select(
                billing_postings.c.time_entry_id, billing_postings.c.rate).where(
                billing_postings.c.time_entry_id.in_(list(time_entry_ids[start:start + 500])),
                billing_postings.c.rate.is_not(None)).order_by(billing_postings.c.entry_version))).all()
            rates.update({r.time_entry_id: r.rate for r in rows})
    return rates


def batch_key(rows: Sequence[Any]) -> str:
    """The same set of rows always gives the same key (and the same body), so a resent batch is harmless."""
    digest = hashlib.sha256("\n".join(sorted(r.idempotency_key for r in rows)).encode()).hexdigest()
    return f"posting-batch:{digest[:48]}"


async def queue_reversal(db: Database, conn: AsyncConnection, *, time_entry_id: str, correction_id: str,
                         project_id: str) -> None:
    """Queue, in the open transaction, the taking back of ``time_entry_id``'s ERP posting (once: the first
    correction of an entry queues it); the dispatcher sends it after the posting is booked."""
    now = utcnow()
    await conn.execute(db.insert_ignoring_conflicts(billing_reversals, ["time_entry_id"]).values(
        time_entry_id=time_entry_id, correction_id=correction_id, project_id=project_id, state="waiting",
        attempts=0, next_attempt_at=now, created_at=now, updated_at=now))


class PostingDispatcher:
    def __init__(self, uow: UnitOfWorkFactory, systems: Systems, *,
                 batch_size: int = ERP_BATCH_LIMIT, lease_seconds: float = 120.0, retry_base_seconds: float = 0.5,
                 retry_max_seconds: float = 60.0) -> None:
        self.uow = uow
        self.db = uow.db
        self.systems = systems
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
                if not rows:  # postings first: a reversal waits for the posting it takes back
                    return done + await self._reverse_due()
                queued = [r for r in rows if r.state == "queued"]
                in_erp = [r for r in rows if r.state == "in_erp"]
                in_erp.extend(await self._send_to_erp(queued))
                done += await self._mark_posted_in_psa(in_erp)

    async def _reverse_due(self) -> int:
        """Book every due reversal of a superseded version's posting; returns how many were completed.

        A reversal waits while the old version's own posting is still queued here (it may yet reach the ERP),
        then reverses every posting the ERP holds for that source and has not reversed yet. The ERP reverses a
        posting at most once and the call carries an Idempotency-Key, so a crash or a timeout between the ERP's
        answer and our commit is harmless: the next attempt finds the reversal instead of making another."""
        done = 0
        for row in await self._claim_reversals():
            try:
                reversal_ids = await self._reverse(row)
            except Exception as exc:
                await self._reversal_failed(row, exc)
                continue
            if reversal_ids is None:
                await self._reversal_later(row, "the superseded version's posting is still on its way")
                continue
            async with self.uow() as uow:
                await uow.conn.execute(billing_reversals.update().where(billing_reversals.c.id == row.id).values(
                    state="done", erp_reversal_ids=reversal_ids, attempts=row.attempts + 1, lease_until=None,
                    last_error=None, updated_at=utcnow()))
                # A refused posting of the old version must never be retried into the ERP now.
                await resolve_open(uow.conn, kind="posting", source_type="time_entry", source_id=row.time_entry_id,
                                   resolution=f"superseded (correction {row.correction_id})")
            done += 1
        return done

    async def _claim_reversals(self) -> list[Any]:
        now = utcnow()
        async with self.uow() as uow:
            rows = (await uow.conn.execute(
                sa.select(billing_reversals)
                .where(billing_reversals.c.state == "waiting", billing_reversals.c.next_attempt_at <= now,
                       sa.or_(billing_reversals.c.lease_until.is_(None), billing_reversals.c.lease_until < now))
                .order_by(billing_reversals.c.id).limit(50).with_for_update(skip_locked=True))).all()
            if rows:
                await uow.conn.execute(billing_reversals.update()
                                   .where(billing_reversals.c.id.in_([r.id for r in rows]))
                                   .values(lease_until=now + dt.timedelta(seconds=self.lease_seconds)))
        return list(rows)

    async def _reverse(self, row: Any) -> list[str] | None:
        """The ids of the reversals of every ERP posting of the source; None while its posting is queued here."""
        async with self.db.read() as conn:
            on_its_way = (await conn.execute(sa.select(billing_postings.c.id).where(
                billing_postings.c.time_entry_id == row.time_entry_id,
                billing_postings.c.state == "queued"))).first()
        if on_its_way is not None:
            return None
        postings = await self.systems.erp.postings(source_id=row.time_entry_id)
        reversed_by = {p.reverses_posting_id: p.id for p in postings if p.reverses_posting_id}
        today = dt.datetime.now(dt.UTC).date()  # in the current (open) period, whatever the work date was
        for posting in postings:
            if posting.reverses_posting_id is None and posting.id not in reversed_by:
                reversal = await self.systems.erp.reverse(posting.id, today, f"reversal:{posting.id}")
                reversed_by[posting.id] = reversal.id
        return sorted(reversed_by.values())

    async def _reversal_later(self, row: Any, why: str) -> None:
        async with self.uow() as uow:
            await uow.conn.execute(billing_reversals.update().where(billing_reversals.c.id == row.id).values(
                lease_until=None, last_error=why, updated_at=utcnow(),
                next_attempt_at=next_attempt_at(1, self.retry_base_seconds, self.retry_max_seconds)))

    async def _reversal_failed(self, row: Any, exc: BaseException) -> None:
        attempts = row.attempts + 1
        async with self.uow() as uow:
            if is_transient(exc):
                log.warning("reversal deferred", extra={"time_entry_id": row.time_entry_id, "error": describe(exc)})
                await uow.conn.execute(billing_reversals.update().where(billing_reversals.c.id == row.id).values(
                    attempts=attempts, lease_until=None, last_error=describe(exc), updated_at=utcnow(),
                    next_attempt_at=next_attempt_at(attempts, self.retry_base_seconds, self.retry_max_seconds)))
                return
            await uow.conn.execute(billing_reversals.update().where(billing_reversals.c.id == row.id).values(
                state="rejected", attempts=attempts, lease_until=None, last_error=describe(exc), updated_at=utcnow()))
            await raise_exception(
                uow.conn, kind="posting", source_type="time_entry", source_id=row.time_entry_id,
                reason_codes=["ERP_REVERSAL_REJECTED"], project_id=row.project_id, detail=describe(exc),
                payload={"correction_id": row.correction_id, "error": describe(exc)})

    async def _claim(self) -> list[Any]:
        now = utcnow()
        async with self.uow() as uow:
            rows = (await uow.conn.execute(
                sa.select(billing_postings)
                .where(billing_postings.c.state.in_(("queued", "in_erp")),
                       billing_postings.c.next_attempt_at <= now,
                       sa.or_(billing_postings.c.lease_until.is_(None), billing_postings.c.lease_until < now))
                .order_by(billing_postings.c.id).limit(self.batch_size)
                .with_for_update(skip_locked=True))).all()
            if rows:
                await uow.conn.execute(billing_postings.update()
                                   .where(billing_postings.c.id.in_([r.id for r in rows]))
                                   .values(lease_until=now + dt.timedelta(seconds=self.lease_seconds)))
        return list(rows)

    async def _send_to_erp(self, rows: list[Any]) -> list[Any]:
        """Post the rows; returns those the ERP now has (created or already existing), reloaded as ``in_erp``."""
        if not rows:
            return []
        accepted: list[tuple[Any, Posting]] = []
        rejected: list[tuple[Any, str]] = []
        if len(rows) == 1:
            row = rows[0]
            try:
                posting = await self.systems.erp.post(posting_body(row), row.idempotency_key)
            except Exception as exc:
                await self._failed(rows, exc)
                return []
            if posting.source_id != row.time_entry_id:  # another source's posting: asked again, never recorded
                await self._failed(rows, RuntimeError(f"the ERP answered the posting of {posting.source_id}"))
                return []
            accepted.append((row, posting))
        else:
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
                if item.posting is not None and item.posting.source_id != item.source_id:
                    continue  # another source's posting: never recorded as this entry's; asked again below
                answered.add(item.source_id)
                if item.status in ("created", "existing") and item.posting is not None:
                    accepted.append((row, item.posting))
                else:
                    problem = item.problem or {}
                    rejected.append((row, f"{problem.get('status', '')} {problem.get('detail', 'rejected')}".strip()))
            missing = [r for r in rows if r.time_entry_id not in answered]
            if missing:  # an answer without these rows: ask again later rather than guess
                await self._failed(missing, RuntimeError("the ERP batch answer omitted these sources"))
        # One transaction for the whole answer (not one per row): a crash before it commits leaves the rows
        # queued, and sending them again finds the ERP's postings (unique per source) instead of making more.
        async with self.uow() as uow:
            if accepted:
                await uow.conn.execute(
                    billing_postings.update().where(billing_postings.c.id == sa.bindparam("row_id")).values(
                        state="in_erp", erp_posting_id=sa.bindparam("posting_id"),
                        attempts=sa.bindparam("new_attempts"), last_error=None, updated_at=utcnow()),
                    [{"row_id": row.id, "posting_id": posting.id, "new_attempts": row.attempts + 1}
                     for row, posting in accepted])
            for row, detail in rejected:
                await self._reject(uow.conn, row, detail)
        return await self._reload([row.id for row, _ in accepted])

    async def _reload(self, row_ids: list[int]) -> list[Any]:
        if not row_ids:
            return []
        async with self.db.read() as conn:
            return list((await conn.execute(sa.select(billing_postings).where(
                billing_postings.c.id.in_(row_ids)).order_by(billing_postings.c.id))).all())

    async def _failed(self, rows: Sequence[Any], exc: BaseException) -> None:
        if not is_transient(exc):
            async with self.uow() as uow:
                for row in rows:
                    await self._reject(uow.conn, row, describe(exc))
            return
        log.warning("posting deferred", extra={"rows": len(rows), "error": describe(exc)})
        async with self.uow() as uow:
            for row in rows:
                attempts = row.attempts + 1
                await uow.conn.execute(billing_postings.update().where(billing_postings.c.id == row.id).values(
                    attempts=attempts, lease_until=None, last_error=describe(exc), updated_at=utcnow(),
                    next_attempt_at=next_attempt_at(attempts, self.retry_base_seconds, self.retry_max_seconds)))

    @staticmethod
    async def _reject(conn: AsyncConnection, row: Any, detail: str) -> None:
        await conn.execute(billing_postings.update().where(billing_postings.c.id == row.id).values(
            state="rejected", attempts=row.attempts + 1, lease_until=None, last_error=detail, updated_at=utcnow()))
        await raise_exception(
            conn, kind="posting", source_type="time_entry", source_id=row.time_entry_id,
            reason_codes=["ERP_REJECTED"], project_id=row.project_id, detail=detail,
            payload={"posting": posting_body(row), "idempotency_key": row.idempotency_key, "error": detail})

    async def _mark_posted_in_psa(self, rows: list[Any]) -> int:
        """Move the rows' entries to ``posted`` in the PSA (one batch call; one row alone uses the single call),
        then complete every row in one transaction with its ``time.posted`` event (one insert for all)."""
        if not rows:
            return 0
        outcomes = await (self._psa_single(rows[0]) if len(rows) == 1 else self._psa_batch(rows))
        posted: list[tuple[Any, str]] = []
        refused: list[tuple[Any, str, str | None]] = []
        deferred: list[tuple[Any, BaseException]] = []
        for row in rows:
            outcome = outcomes[row.time_entry_id]
            if isinstance(outcome, BaseException):
                deferred.append((row, outcome))
            elif outcome[0] == "posted":
                posted.append((row, outcome[1] or "posted"))
            else:
                refused.append((row, outcome[2], outcome[1]))
        by_failure: dict[int, tuple[BaseException, list[Any]]] = {}
        for row, exc in deferred:  # a failed batch call is one failure shared by every row: one transaction
            by_failure.setdefault(id(exc), (exc, []))[1].append(row)
        for exc, failed_rows in by_failure.values():
            await self._failed(failed_rows, exc)
        if posted or refused:
            now = utcnow()
            async with self.uow() as uow:
                if posted:
                    await uow.conn.execute(
                        billing_postings.update().where(billing_postings.c.id == sa.bindparam("row_id")).values(
                            state="done", lease_until=None, last_error=None, updated_at=now),
                        [{"row_id": row.id} for row, _ in posted])
                await record_events(uow.conn, "time.posted", [({
                    "time_entry_id": row.time_entry_id, "project_id": row.project_id,
                    "contract_id": row.contract_id, "posting_id": row.erp_posting_id or ""},
                    {"amount": decimal_text(row.amount), "currency": row.currency, "hours": decimal_text(row.hours),
                     "work_date": row.work_date.isoformat(), "entry_version": row.entry_version,
                     "psa_state": state}) for row, state in posted])
                for row, detail, psa_state in refused:
                    await self._refuse(uow.conn, row, detail, psa_state)
        return len(posted)

    async def _psa_single(self, row: Any) -> dict[str, PsaOutcome]:
        try:
            entry = await self.systems.psa.transition_time_entry(row.time_entry_id, "posted")
        except DownstreamProblem as exc:
            if exc.status == 409:
                return {row.time_entry_id: await self._after_conflict(row, describe(exc), None)}
            return {row.time_entry_id: exc if is_transient(exc) else ("refused", None, describe(exc))}
        except Exception as exc:
            return {row.time_entry_id: exc}
        return {row.time_entry_id: ("posted", entry.state, "")}

    async def _psa_batch(self, rows: list[Any]) -> dict[str, PsaOutcome]:
        try:
            result = await self.systems.psa.transition_time_entries(
                [{"time_entry_id": r.time_entry_id, "to_state": "posted"} for r in rows])
        except Exception as exc:
            if isinstance(exc, DownstreamProblem) and not is_transient(exc):
                return {r.time_entry_id: ("refused", None, describe(exc)) for r in rows}
            return {r.time_entry_id: exc for r in rows}
        by_entry = {item.time_entry_id: item for item in result.items}
        outcomes: dict[str, PsaOutcome] = {}
        for row in rows:
            item = by_entry.get(row.time_entry_id)
            if item is None:  # an answer without this entry: ask again later rather than guess
                outcomes[row.time_entry_id] = RuntimeError("the PSA batch answer omitted this entry")
            elif item.status in ("changed", "unchanged") and item.time_entry is not None:
                outcomes[row.time_entry_id] = ("posted", item.time_entry.state, "")
            else:
                problem = item.problem or {}
                slug = str(problem.get("type", "")).rsplit("/", 1)[-1]
                detail = f"{problem.get('status', '')} {slug}: {problem.get('detail', 'refused')}"
                if problem.get("status") == 409:
                    outcomes[row.time_entry_id] = await self._after_conflict(row, detail, problem.get("from_state"))
                else:
                    outcomes[row.time_entry_id] = ("refused", None, detail)
        return outcomes

    async def _after_conflict(self, row: Any, detail: str, state: str | None) -> PsaOutcome:
        """The PSA refused ``posted``: fine when the entry is posted or invoiced already, or was superseded by a
        correction meanwhile (the ERP has its posting, and the correction's reversal takes it back); else a
        refusal."""
        if state not in ("posted", "invoiced"):
            try:
                entry = await self.systems.psa.time_entry(row.time_entry_id)
            except Exception as exc:
                return exc
            if entry.superseded_by_id is not None:
                return "posted", entry.state, ""
            state = entry.state
        return ("posted", state, "") if state in ("posted", "invoiced") else ("refused", state, detail)

    @staticmethod
    async def _refuse(conn: AsyncConnection, row: Any, detail: str, psa_state: str | None) -> None:
        await conn.execute(billing_postings.update().where(billing_postings.c.id == row.id).values(
            state="psa_refused", lease_until=None, last_error=detail, updated_at=utcnow()))
        await raise_exception(
            conn, kind="posting", source_type="time_entry", source_id=row.time_entry_id,
            reason_codes=["PSA_REFUSED_POSTED"], project_id=row.project_id, detail=detail,
            payload={"posting": posting_body(row), "erp_posting_id": row.erp_posting_id,
                     "psa_state": psa_state, "error": detail})
