"""The exception queue: anything that fails a rule lands here with an owner, reason codes, the payload and age.

Items are raised inside the transaction of the workflow that found the problem (so nothing fails silently
and nothing is raised twice: one open item per kind and source, re-raising updates it). ``retry`` hands the
item back to the workflow that owns its kind (registered by the app), which resolves it in the same
transaction as its fix.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from process_apis.events.outbox import record_event
from process_apis.exceptions.models import ExceptionItem, ExceptionPage, HistoryEntry, RetryOutcome
from process_apis.store import exception_history, exceptions
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime import correlation
from runtime.cursors import decode_position, encode_position
from runtime.problems import Conflict, NotFound
from runtime.storage import utcnow

RetryResult = tuple[Literal["resolved", "still_failing", "in_progress"], str]
RetryHandler = Callable[[ExceptionItem, str | None], Awaitable[RetryResult]]


_LOOKUP_CHUNK = 500  # ids per IN list: well under SQLite's bound-parameter limit


def _open_key(kind: str, source_type: str, source_id: str) -> str:
    return f"{kind}:{source_type}:{source_id}"


async def _history(conn: AsyncConnection, exception_id: str, action: str, *, actor_id: str | None = None,
                   detail: str | None = None, reason_codes: Sequence[str] | None = None) -> None:
    await conn.execute(exception_history.insert().values(
        exception_id=exception_id, at=utcnow(), action=action, actor_id=actor_id, detail=detail,
        reason_codes=list(reason_codes) if reason_codes is not None else None,
        correlation_id=correlation.current_correlation_id()))


async def raise_exception(conn: AsyncConnection, *, kind: str, source_type: str, source_id: str,
                          reason_codes: Sequence[str], payload: Mapping[str, Any],
                          business_unit_id: str | None = None, project_id: str | None = None,
                          detail: str | None = None) -> tuple[str, bool]:
    """Open an item (or refresh the open one for this source); returns its id and whether it is new."""
    key = _open_key(kind, source_type, source_id)
    now = utcnow()
    reasons = list(dict.fromkeys(reason_codes))
    existing = (await conn.execute(sa.select(exceptions.c.id, exceptions.c.reason_codes)
                                   .where(exceptions.c.open_key == key).with_for_update())).first()
    if existing is not None:
        await conn.execute(exceptions.update().where(exceptions.c.id == existing.id).values(
            reason_codes=reasons, reason_index=_index(reasons), payload=dict(payload), updated_at=now))
        if list(existing.reason_codes) != reasons:
            await _history(conn, existing.id, "reasons_changed", detail=detail, reason_codes=reasons)
        return existing.id, False
    exception_id = "exc_" + uuid.uuid4().hex[:24]
    await conn.execute(exceptions.insert().values(
        id=exception_id, kind=kind, source_type=source_type, source_id=source_id, open_key=key, state="open",
        reason_codes=reasons, reason_index=_index(reasons), business_unit_id=business_unit_id,
        project_id=project_id, owner_id=None, payload=dict(payload),
        correlation_id=correlation.current_correlation_id(), trace_id=correlation.current_trace_id(),
        created_at=now, updated_at=now))
    await _history(conn, exception_id, "raised", detail=detail, reason_codes=reasons)
    await record_event(conn, "exception.raised", {"exception_id": exception_id, source_type + "_id": source_id},
                       {"kind": kind, "reason_codes": reasons, "business_unit_id": business_unit_id,
                        "project_id": project_id})
    return exception_id, True


async def resolve_open(conn: AsyncConnection, *, kind: str, source_type: str, source_id: str,
                       resolution: str, actor_id: str | None = None) -> str | None:
    """Resolve the open item of this source, if there is one (a workflow fixed it); returns its id."""
    row = (await conn.execute(sa.select(exceptions.c.id).where(
        exceptions.c.open_key == _open_key(kind, source_type, source_id)).with_for_update())).first()
    if row is None:
        return None
    await _resolve(conn, row.id, resolution, actor_id, action="resolved")
    return str(row.id)


async def open_sources(conn: AsyncConnection, *, kind: str, source_type: str, source_ids: Sequence[str]) -> set[str]:
    """Which of these sources have an open item of this kind (by the unique open key, a few hundred per query)."""
    found: set[str] = set()
    prefix = _open_key(kind, source_type, "")
    for start in range(0, len(source_ids), _LOOKUP_CHUNK):
        keys = [_open_key(kind, source_type, s) for s in source_ids[start:start + _LOOKUP_CHUNK]]
        found.update(key[len(prefix):] for key in (await conn.execute(
            sa.select(exceptions.c.open_key).where(exceptions.c.open_key.in_(keys)))).scalars())
    return found


async def open_items(conn: AsyncConnection, *, kind: str, source_ids: Sequence[str]) -> dict[str, str]:
    """The unresolved item of this kind for each of these sources that has one: source id -> exception id."""
    found: dict[str, str] = {}
    for start in range(0, len(source_ids), _LOOKUP_CHUNK):
        found.update({r.source_id: r.id for r in (await conn.execute(
            sa.select(exceptions.c.id, exceptions.c.source_id).where(
                exceptions.c.kind == kind, exceptions.c.source_id.in_(list(source_ids[start:start + _LOOKUP_CHUNK])),
                exceptions.c.state != "resolved"))).all()})
    return found


async def _resolve(conn: AsyncConnection, exception_id: str, resolution: str, actor_id: str | None,
                   action: str) -> None:
    now = utcnow()
    await conn.execute(exceptions.update().where(exceptions.c.id == exception_id).values(
        state="resolved", open_key=None, resolution=resolution, resolved_at=now, updated_at=now))
    await _history(conn, exception_id, action, actor_id=actor_id, detail=resolution)
    row = (await conn.execute(sa.select(exceptions.c.kind, exceptions.c.source_type, exceptions.c.source_id)
                              .where(exceptions.c.id == exception_id))).one()
    await record_event(conn, "exception.resolved",
                       {"exception_id": exception_id, row.source_type + "_id": row.source_id},
                       {"kind": row.kind, "resolution": resolution, "actor_id": actor_id})


def _index(reasons: Sequence[str]) -> str:
    return "|" + "|".join(reasons) + "|"


def _age_days(created_at: dt.datetime, now: dt.datetime) -> int:
    return max(0, (now - created_at).days)


def _item(row: Any, history: list[HistoryEntry], now: dt.datetime) -> ExceptionItem:
    return ExceptionItem(
        id=row.id, kind=row.kind, source_type=row.source_type, source_id=row.source_id, state=row.state,
        reason_codes=list(row.reason_codes), business_unit_id=row.business_unit_id, project_id=row.project_id,
        owner_id=row.owner_id, payload=dict(row.payload), correlation_id=row.correlation_id,
        trace_id=row.trace_id, resolution=row.resolution, created_at=row.created_at, updated_at=row.updated_at,
        resolved_at=row.resolved_at, age_days=_age_days(row.created_at, now), history=history)


async def _histories(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, list[HistoryEntry]]:
    by_id: dict[str, list[HistoryEntry]] = {i: [] for i in ids}
    if not ids:
        return by_id
    rows = (await conn.execute(sa.select(exception_history).where(exception_history.c.exception_id.in_(ids))
                               .order_by(exception_history.c.id))).all()
    for r in rows:
        by_id[r.exception_id].append(HistoryEntry(
            at=r.at, action=r.action, actor_id=r.actor_id, detail=r.detail,
            reason_codes=list(r.reason_codes) if r.reason_codes is not None else None,
            correlation_id=r.correlation_id))
    return by_id


class _Cursor(msgspec.Struct, array_like=True):
    created_at: dt.datetime
    id: str


def _decode_cursor(cursor: str) -> _Cursor:
    decoded = decode_position(cursor, _Cursor)
    if decoded.created_at.tzinfo is None:
        decoded.created_at = decoded.created_at.replace(tzinfo=dt.UTC)
    return decoded


def by_source_type(handlers: Mapping[str, RetryHandler], otherwise: RetryHandler) -> RetryHandler:
    """One kind, several owners: the retry goes to the workflow of the item's source type."""

    async def retry(item: ExceptionItem, actor_id: str | None) -> RetryResult:
        return await handlers.get(item.source_type, otherwise)(item, actor_id)

    return retry


class ExceptionQueue:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self.uow = uow
        self.db = uow.db
        self.retry_handlers: dict[str, RetryHandler] = {}

    def on_retry(self, kind: str, handler: RetryHandler) -> None:
        self.retry_handlers[kind] = handler

    async def list(self, *, state: str | None = None, kind: str | None = None, reason_code: str | None = None,
                   business_unit_id: str | None = None, owner_id: str | None = None, project_id: str | None = None,
                   source_id: str | None = None, min_age_days: int | None = None, max_age_days: int | None = None,
                   cursor: str | None = None, limit: int = 50) -> ExceptionPage:
        now = utcnow()
        query = sa.select(exceptions)
        if state is not None:
            query = query.where(exceptions.c.state == state)
        if kind is not None:
            query = query.where(exceptions.c.kind == kind)
        if reason_code is not None:
            query = query.where(exceptions.c.reason_index.like(f"%|{reason_code}|%"))
        for column, value in ((exceptions.c.business_unit_id, business_unit_id), (exceptions.c.owner_id, owner_id),
                              (exceptions.c.project_id, project_id), (exceptions.c.source_id, source_id)):
            if value is not None:
                query = query.where(column == value)
        if min_age_days is not None:
            query = query.where(exceptions.c.created_at <= now - dt.timedelta(days=min_age_days))
        if max_age_days is not None:
            query = query.where(exceptions.c.created_at > now - dt.timedelta(days=max_age_days + 1))
        if cursor:
            after = _decode_cursor(cursor)
            query = query.where(sa.or_(exceptions.c.created_at > after.created_at, sa.and_(
                exceptions.c.created_at == after.created_at, exceptions.c.id > after.id)))
        query = query.order_by(exceptions.c.created_at, exceptions.c.id).limit(limit + 1)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
            more = len(rows) > limit
            rows = rows[:limit]
            histories = await _histories(conn, [r.id for r in rows])
        items = [_item(r, histories[r.id], now) for r in rows]
        next_cursor = encode_position(_Cursor(rows[-1].created_at, rows[-1].id)) if more and rows else None
        return ExceptionPage(items=items, next_cursor=next_cursor)

    async def get(self, exception_id: str, conn: AsyncConnection | None = None) -> ExceptionItem:
        if conn is None:
            async with self.db.read() as read_conn:
                return await self.get(exception_id, read_conn)
        row = (await conn.execute(sa.select(exceptions).where(exceptions.c.id == exception_id))).first()
        if row is None:
            raise NotFound(f"no exception {exception_id!r}", slug="unknown-id")
        histories = await _histories(conn, [exception_id])
        return _item(row, histories[exception_id], utcnow())

    async def assign(self, exception_id: str, owner_id: str, actor_id: str | None) -> ExceptionItem:
        async with self.uow() as uow:
            row = await self._locked(uow.conn, exception_id)
            if row.state == "resolved":
                raise Conflict(f"exception {exception_id} is resolved", slug="invalid-transition",
                               from_state="resolved", to_state="assigned")
            await uow.conn.execute(exceptions.update().where(exceptions.c.id == exception_id).values(
                owner_id=owner_id, state="assigned", updated_at=utcnow()))
            await _history(uow.conn, exception_id, "assigned", actor_id=actor_id, detail=f"owner {owner_id}")
            return await self.get(exception_id, uow.conn)

    async def resolve(self, exception_id: str, actor_id: str, resolution: str) -> ExceptionItem:
        async with self.uow() as uow:
            row = await self._locked(uow.conn, exception_id)
            if row.state == "resolved":
                raise Conflict(f"exception {exception_id} is resolved already", slug="invalid-transition",
                               from_state="resolved", to_state="resolved")
            await _resolve(uow.conn, exception_id, resolution, actor_id, action="resolved")
            return await self.get(exception_id, uow.conn)

    async def retry(self, exception_id: str, actor_id: str | None) -> RetryOutcome:
        item = await self.get(exception_id)
        if item.state == "resolved":
            raise Conflict(f"exception {exception_id} is resolved: nothing to retry", slug="invalid-transition",
                           from_state="resolved", to_state="retried")
        handler = self.retry_handlers.get(item.kind)
        if handler is None:
            raise Conflict(f"exceptions of kind {item.kind!r} cannot be retried", slug="not-retryable")
        async with self.uow() as uow:
            await _history(uow.conn, exception_id, "retry_requested", actor_id=actor_id)
        outcome, detail = await handler(item, actor_id)
        if outcome == "still_failing":
            async with self.uow() as uow:
                await _history(uow.conn, exception_id, "retry_failed", actor_id=actor_id, detail=detail)
        return RetryOutcome(outcome=outcome, detail=detail, exception=await self.get(exception_id))

    @staticmethod
    async def _locked(conn: AsyncConnection, exception_id: str) -> Any:
        row = (await conn.execute(sa.select(exceptions).where(exceptions.c.id == exception_id)
                                  .with_for_update())).first()
        if row is None:
            raise NotFound(f"no exception {exception_id!r}", slug="unknown-id")
        return row
