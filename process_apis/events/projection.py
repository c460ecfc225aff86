"""A consumer of the event stream: posted time per time entry and per project, projected from ``time.posted``.

Finance dashboards and reconciliation read it (``GET /process/events/v1/posted-time/projects``) instead of summing
the ERP's postings. Delivery is at least once and not necessarily in order (a redelivery after a crash, a consumer
claiming another's pending message, a stream refilled after Redis lost its data), yet the projection stays exact:

- each event takes effect once: its id is recorded in ``consumed_events`` in the transaction of its effect, so a
  redelivery, also one after a crash between that commit and the XACK, finds it and changes nothing;
- an entry only moves forward: an event about an older version of the entry than the one held is stale, recorded
  and not applied, so a late arrival never overwrites a newer fact;
- project totals change by the difference between the entry's old and new posted values, in that same transaction.

Applying is serialized by the consumer's row lock, so replicas sharing a consumer group never interleave.
"""

from __future__ import annotations

import base64
import datetime as dt
from decimal import Decimal
from typing import Any, Literal

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from process_apis.events.models import Event, PostedTimePage, ProjectPostedTime
from process_apis.store import consumed_events, event_consumers, posted_time_entries, posted_time_projects
from runtime.problems import BadRequest, FieldError
from runtime.storage import Database, utcnow

CONSUMER = "posted-time"
Outcome = Literal["applied", "stale", "duplicate", "ignored"]


class _Subject(msgspec.Struct):
    time_entry_id: str
    project_id: str
    contract_id: str
    posting_id: str = ""


class _Data(msgspec.Struct):
    amount: Decimal
    currency: str
    hours: Decimal
    work_date: dt.date
    entry_version: int


class PostedTimeProjection:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def apply(self, event: Event) -> Outcome:
        """Apply one event (any type; only ``time.posted`` matters here). Raises when the event is malformed,
        so the stream keeps it pending and, after repeated failures, dead-letters it."""
        if event.type != "time.posted":
            return "ignored"
        subject = msgspec.convert(event.subject, _Subject)
        data = msgspec.convert(event.data, _Data, strict=False)
        now = utcnow()
        async with self.db.transaction() as conn:
            await conn.execute(self.db.insert_ignoring_conflicts(event_consumers, ["name"]).values(
                name=CONSUMER, applied_events=0, updated_at=now))
            applied_so_far = (await conn.execute(
                sa.select(event_consumers.c.applied_events).where(event_consumers.c.name == CONSUMER)
                .with_for_update())).scalar_one()
            seen = (await conn.execute(sa.select(consumed_events.c.outcome).where(
                consumed_events.c.consumer == CONSUMER, consumed_events.c.event_id == event.id))).first()
            if seen is not None:
                return "duplicate"
            held = (await conn.execute(sa.select(posted_time_entries).where(
                posted_time_entries.c.time_entry_id == subject.time_entry_id))).first()
            outcome: Outcome = "stale" if held is not None and held.entry_version >= data.entry_version else "applied"
            await conn.execute(consumed_events.insert().values(
                consumer=CONSUMER, event_id=event.id, position=event.position, outcome=outcome, consumed_at=now))
            if outcome == "stale":
                return outcome
            if held is not None:
                await _add(conn, held.project_id, held.currency, held.contract_id, -1, -held.hours, -held.amount,
                           None)
            await _add(conn, subject.project_id, data.currency, subject.contract_id, 1, data.hours, data.amount,
                       event.occurred_at)
            await conn.execute(self.db.upsert(posted_time_entries, ["time_entry_id"], (
                "entry_version", "project_id", "contract_id", "posting_id", "work_date", "hours", "amount",
                "currency", "event_id", "posted_at")).values(
                time_entry_id=subject.time_entry_id, entry_version=data.entry_version, project_id=subject.project_id,
                contract_id=subject.contract_id, posting_id=subject.posting_id, work_date=data.work_date,
                hours=data.hours, amount=data.amount, currency=data.currency, event_id=event.id,
                posted_at=event.occurred_at))
            # The latest posting of the entries counted now (not of every event seen, which depends on order).
            for project_id, currency in {(subject.project_id, data.currency),
                                         *([(held.project_id, held.currency)] if held is not None else [])}:
                counted = (posted_time_entries.c.project_id == project_id, posted_time_entries.c.currency == currency)
                await conn.execute(posted_time_projects.update().where(
                    posted_time_projects.c.project_id == project_id, posted_time_projects.c.currency == currency)
                    .values(last_posted_at=sa.select(sa.func.max(posted_time_entries.c.posted_at)).where(*counted)
                            .scalar_subquery()))
            await conn.execute(event_consumers.update().where(event_consumers.c.name == CONSUMER).values(
                applied_events=applied_so_far + 1, updated_at=now))
        return outcome

    async def handle(self, event: Event) -> None:
        """:meth:`apply` as a stream or bus handler."""
        await self.apply(event)

    async def projects(self, *, project_id: str | None = None, contract_id: str | None = None,
                       cursor: str | None = None, limit: int = 100) -> PostedTimePage:
        query = sa.select(posted_time_projects)
        if project_id is not None:
            query = query.where(posted_time_projects.c.project_id == project_id)
        if contract_id is not None:
            query = query.where(posted_time_projects.c.contract_id == contract_id)
        if cursor:
            after = _decode_cursor(cursor)
            query = query.where(sa.tuple_(posted_time_projects.c.project_id, posted_time_projects.c.currency)
                                > sa.tuple_(sa.literal(after.project_id), sa.literal(after.currency)))
        async with self.db.read() as conn:
            rows = (await conn.execute(query.order_by(posted_time_projects.c.project_id,
                                                      posted_time_projects.c.currency).limit(limit + 1))).all()
            progress = (await conn.execute(sa.select(event_consumers).where(
                event_consumers.c.name == CONSUMER))).first()
        items = [ProjectPostedTime(project_id=r.project_id, contract_id=r.contract_id, currency=r.currency,
                                   entries=r.entries, hours=r.hours, amount=r.amount, last_posted_at=r.last_posted_at)
                 for r in rows[:limit]]
        more = len(rows) > limit
        return PostedTimePage(
            items=items, next_cursor=_encode_cursor(items[-1]) if more else None,
            applied_events=progress.applied_events if progress else 0,
            updated_at=progress.updated_at if progress else None)


async def _add(conn: AsyncConnection, project_id: str, currency: str, contract_id: str, entries: int,
               hours: Decimal, amount: Decimal, posted_at: dt.datetime | None) -> None:
    """Add (or, negative, take away) an entry's posted values to its project's totals (``posted_at``: the
    first ``last_posted_at`` of a new row; the caller sets the real one once the entry row is written)."""
    key = (posted_time_projects.c.project_id == project_id, posted_time_projects.c.currency == currency)
    row: Any = (await conn.execute(sa.select(posted_time_projects).where(*key))).first()
    if row is None:
        assert posted_at is not None, "only an entry held already is taken away"
        await conn.execute(posted_time_projects.insert().values(
            project_id=project_id, currency=currency, contract_id=contract_id, entries=entries, hours=hours,
            amount=amount, last_posted_at=posted_at))
        return
    if row.entries + entries == 0:
        await conn.execute(posted_time_projects.delete().where(*key))
        return
    await conn.execute(posted_time_projects.update().where(*key).values(
        contract_id=contract_id, entries=row.entries + entries, hours=row.hours + hours, amount=row.amount + amount))


class _Cursor(msgspec.Struct, array_like=True):
    project_id: str
    currency: str


def _encode_cursor(item: ProjectPostedTime) -> str:
    raw = msgspec.json.encode(_Cursor(item.project_id, item.currency))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> _Cursor:
    try:
        return msgspec.json.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)), type=_Cursor)
    except (ValueError, msgspec.DecodeError) as exc:
        raise BadRequest("the cursor is not one this API gave out", slug="validation-error",
                         errors=[FieldError(pointer="/cursor", detail="unknown cursor", location="query")]) from exc
