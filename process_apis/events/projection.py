"""A consumer of the event stream: posted time per time entry and per project, projected from ``time.posted``.

Finance dashboards and reconciliation read it (``GET /process/events/v1/posted-time/projects``) instead of summing
the ERP's postings. Delivery is at least once and not necessarily in order (a redelivery after a crash, a consumer
claiming another's pending message, a stream refilled after Redis lost its data), yet the projection stays exact:

- each event takes effect once: its id is recorded in ``consumed_events`` in the transaction of its effect, so a
  redelivery, also one after a crash between that commit and the XACK, finds it and changes nothing;
- an entry only moves forward: an event about an older version of the entry than the one held is stale, recorded
  and not applied, so a late arrival never overwrites a newer fact;
- project totals change by the difference between the entry's old and new posted values, in that same transaction.

Applying is serialized by the consumer's row lock, so replicas sharing a consumer group never interleave. A page
of events (a stream read, a relayed batch) is applied in one transaction with the result of applying its events
one by one in stream order; an event that cannot be applied fails alone, the rest of its page takes effect.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from process_apis.events.models import Event, PostedTimePage, ProjectPostedTime
from process_apis.store import consumed_events, event_consumers, posted_time_entries, posted_time_projects
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.cursors import decode_position, encode_position
from runtime.storage import utcnow

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


class _Project(msgspec.Struct):
    """A project's totals row as applying a page leaves it (``None`` in the page's map: no row)."""

    contract_id: str
    entries: int
    hours: Decimal
    amount: Decimal
    last_posted_at: dt.datetime


class PostedTimeProjection:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self.uow = uow
        self.db = uow.db

    async def apply(self, event: Event) -> Outcome:
        """Apply one event (any type; only ``time.posted`` matters here). Raises when the event is malformed,
        so the stream keeps it pending and, after repeated failures, dead-letters it."""
        result = (await self.apply_many([event]))[0]
        if isinstance(result, Exception):
            raise result
        return result

    async def apply_many(self, events: Sequence[Event]) -> list[Outcome | Exception]:
        """Apply a page of events in one transaction, with the result of applying them one by one in this order
        (the same entry may appear several times, newer versions first, an event twice). Returns each event's
        outcome, or the error of a malformed one: it fails alone, the rest of the page takes effect."""
        results: list[Outcome | Exception] = ["ignored"] * len(events)
        parsed: list[tuple[int, Event, _Subject, _Data]] = []
        for index, event in enumerate(events):
            if event.type != "time.posted":
                continue
            try:
                parsed.append((index, event, msgspec.convert(event.subject, _Subject),
                               msgspec.convert(event.data, _Data, strict=False)))
            except Exception as exc:  # whatever makes it unreadable, it fails alone
                results[index] = exc
        if not parsed:
            return results
        try:
            for (index, *_), outcome in zip(parsed, await self._apply_page(parsed), strict=True):
                results[index] = outcome
        except Exception:
            if len(parsed) == 1:
                raise
            # The database refused the page (a value its column cannot hold, ...): one at a time, so only the
            # event at fault fails and the others take effect, as they would have one by one.
            for item in parsed:
                try:
                    results[item[0]] = (await self._apply_page([item]))[0]
                except Exception as exc:
                    results[item[0]] = exc
        return results

    async def _apply_page(self, page: Sequence[tuple[int, Event, _Subject, _Data]]) -> list[Outcome]:
        """One transaction: set-based reads (the consumer lock, the ids seen, the entries held, their projects),
        the page walked in memory in stream order exactly as :meth:`apply` would one by one, batched writes."""
        now = utcnow()
        async with self.uow() as uow:
            await uow.conn.execute(self.db.insert_ignoring_conflicts(event_consumers, ["name"]).values(
                name=CONSUMER, applied_events=0, updated_at=now))
            applied_so_far = (await uow.conn.execute(
                sa.select(event_consumers.c.applied_events).where(event_consumers.c.name == CONSUMER)
                .with_for_update())).scalar_one()
            seen = set((await uow.conn.execute(sa.select(consumed_events.c.event_id).where(
                consumed_events.c.consumer == CONSUMER,
                consumed_events.c.event_id.in_(sorted({event.id for _, event, _, _ in page}))))).scalars())
            held: dict[str, dict[str, Any]] = {row.time_entry_id: dict(row._mapping) for row in (
                await uow.conn.execute(sa.select(posted_time_entries).where(posted_time_entries.c.time_entry_id.in_(
                    sorted({subject.time_entry_id for _, _, subject, _ in page}))))).all()}
            keys = {(e["project_id"], e["currency"]) for e in held.values()} | {
                (subject.project_id, data.currency) for _, _, subject, data in page}
            projects: dict[tuple[str, str], _Project | None] = dict.fromkeys(keys)
            for row in (await uow.conn.execute(sa.select(posted_time_projects).where(
                    posted_time_projects.c.project_id.in_(sorted({project for project, _ in keys}))))).all():
                if (row.project_id, row.currency) in keys:
                    projects[(row.project_id, row.currency)] = _Project(
                        row.contract_id, row.entries, row.hours, row.amount, row.last_posted_at)
            existed = {key for key, project in projects.items() if project is not None}

            outcomes: list[Outcome] = []
            consumed: list[dict[str, Any]] = []
            written: dict[str, dict[str, Any]] = {}
            touched: set[tuple[str, str]] = set()
            for _, event, subject, data in page:
                if event.id in seen:
                    outcomes.append("duplicate")
                    continue
                seen.add(event.id)
                before = held.get(subject.time_entry_id)
                outcome: Outcome = ("stale" if before is not None and before["entry_version"] >= data.entry_version
                                    else "applied")
                outcomes.append(outcome)
                consumed.append({"consumer": CONSUMER, "event_id": event.id, "position": event.position,
                                 "outcome": outcome, "consumed_at": now})
                if outcome == "stale":
                    continue
                if before is not None:
                    old_key = (before["project_id"], before["currency"])
                    _add(projects, old_key, before["contract_id"], -1, -before["hours"], -before["amount"], None)
                    touched.add(old_key)
                new_key = (subject.project_id, data.currency)
                _add(projects, new_key, subject.contract_id, 1, data.hours, data.amount, event.occurred_at)
                touched.add(new_key)
                held[subject.time_entry_id] = written[subject.time_entry_id] = {
                    "time_entry_id": subject.time_entry_id, "entry_version": data.entry_version,
                    "project_id": subject.project_id, "contract_id": subject.contract_id,
                    "posting_id": subject.posting_id, "work_date": data.work_date, "hours": data.hours,
                    "amount": data.amount, "currency": data.currency, "event_id": event.id,
                    "posted_at": event.occurred_at}

            if consumed:
                await uow.conn.execute(consumed_events.insert(), consumed)
            if written:
                await uow.conn.execute(self.db.upsert(posted_time_entries, ["time_entry_id"], (
                    "entry_version", "project_id", "contract_id", "posting_id", "work_date", "hours", "amount",
                    "currency", "event_id", "posted_at")).values(), list(written.values()))
            await self._write_projects(uow.conn, projects, existed, touched)
            applied = outcomes.count("applied")
            if applied:
                await uow.conn.execute(event_consumers.update().where(event_consumers.c.name == CONSUMER).values(
                    applied_events=applied_so_far + applied, updated_at=now))
        return outcomes

    async def _write_projects(self, conn: AsyncConnection, projects: dict[tuple[str, str], _Project | None],
                              existed: set[tuple[str, str]], touched: set[tuple[str, str]]) -> None:
        """Write the totals the page changed (after the entries: ``last_posted_at`` is read from them)."""
        gone = [{"p": p, "c": c} for p, c in touched & existed if projects[(p, c)] is None]
        if gone:
            await conn.execute(posted_time_projects.delete().where(
                posted_time_projects.c.project_id == sa.bindparam("p"),
                posted_time_projects.c.currency == sa.bindparam("c")), gone)
        kept = {key: row for key in sorted(touched) if (row := projects[key]) is not None}
        if not kept:
            return
        await conn.execute(self.db.upsert(posted_time_projects, ["project_id", "currency"], (
            "contract_id", "entries", "hours", "amount")).values(), [
            {"project_id": p, "currency": c, **msgspec.structs.asdict(row)} for (p, c), row in kept.items()])
        # The latest posting of the entries counted now (not of every event seen, which depends on order).
        counted = sa.select(sa.func.max(posted_time_entries.c.posted_at)).where(
            posted_time_entries.c.project_id == sa.bindparam("p"), posted_time_entries.c.currency == sa.bindparam("c"))
        await conn.execute(posted_time_projects.update().where(
            posted_time_projects.c.project_id == sa.bindparam("p"),
            posted_time_projects.c.currency == sa.bindparam("c")).values(last_posted_at=counted.scalar_subquery()),
            [{"p": p, "c": c} for p, c in kept])

    async def handle_many(self, events: Sequence[Event]) -> list[Exception | None]:
        """:meth:`apply_many` as a stream or bus page handler: each event's error, or None once it took effect."""
        return [result if isinstance(result, Exception) else None for result in await self.apply_many(events)]

    async def projects(self, *, project_id: str | None = None, contract_id: str | None = None,
                       cursor: str | None = None, limit: int = 100) -> PostedTimePage:
        query = sa.select(posted_time_projects)
        if project_id is not None:
            query = query.where(posted_time_projects.c.project_id == project_id)
        if contract_id is not None:
            query = query.where(posted_time_projects.c.contract_id == contract_id)
        if cursor:
            after = decode_position(cursor, _Cursor)
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
        next_cursor = encode_position(_Cursor(items[-1].project_id, items[-1].currency)) if more else None
        return PostedTimePage(
            items=items, next_cursor=next_cursor,
            applied_events=progress.applied_events if progress else 0,
            updated_at=progress.updated_at if progress else None)


def _add(projects: dict[tuple[str, str], _Project | None], key: tuple[str, str], contract_id: str, entries: int,
         hours: Decimal, amount: Decimal, posted_at: dt.datetime | None) -> None:
    """Add (or, negative, take away) an entry's posted values to its project's totals, as one event would:
    the row gets the contract, goes when its last entry does and comes again with the next (``posted_at``: the
    first ``last_posted_at`` of a new row, until the real one is read from the entries once they are written)."""
    row = projects[key]
    if row is None:
        assert posted_at is not None, "only an entry held already is taken away"
        projects[key] = _Project(contract_id, entries, hours, amount, posted_at)
    elif row.entries + entries == 0:
        projects[key] = None
    else:
        projects[key] = _Project(contract_id, row.entries + entries, row.hours + hours, row.amount + amount,
                                 row.last_posted_at)


class _Cursor(msgspec.Struct, array_like=True):
    project_id: str
    currency: str
