"""Dead letters: the events a consumer of this tier gave up on, kept in SQL for operators to list, inspect and
re-drive (``/process/events/v1/dead-letters``).

A consumer hands each event it gives up on to :meth:`DeadLetters.record` (the Redis stream consumer after
``max_deliveries``, or at once when it cannot decode the message; the in-process bus after the first failure,
having no retries). Re-driving hands the stored event to the same consumer's page handler again, exactly once:

- a re-drive first claims the letter (``dead`` -> ``redriving``, a conditional update: one caller wins, the others
  are told it is in progress or done), so repeated and concurrent re-drives deliver it once;
- the claim has a lease: a re-drive that crashed before settling is claimable again after it, and the consumers
  recognise an event they have already applied by its id, so that second delivery changes nothing;
- the consumer's answer settles the letter: ``redriven``, or back to ``dead`` with the new error and one more
  attempt.

Redis plays no part in listing or re-driving: the letters and the consumers' effects are both in SQL.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from process_apis.events.bus import PageHandler
from process_apis.events.models import (
    DeadLetter,
    DeadLetterPage,
    DeadLetterRecord,
    DeadLetterState,
    DeadLetterSummary,
    Event,
    RedriveOutcome,
)
from process_apis.store import dead_letters
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.cursors import decode_position, encode_position
from runtime.problems import NotFound
from runtime.storage import utcnow

log = logging.getLogger("process_apis.events")

REDRIVE_LEASE = dt.timedelta(seconds=60)


class _Cursor(msgspec.Struct, array_like=True):
    seq: int


class DeadLetters:
    def __init__(self, uow: UnitOfWorkFactory, consumers: Mapping[str, PageHandler]) -> None:
        """``consumers``: each consumer of this tier by name, with the page handler a re-drive hands events to."""
        self.uow = uow
        self.db = uow.db
        self.consumers = dict(consumers)

    async def record(self, letter: DeadLetterRecord) -> str:
        """Keep a dead letter (once per consumer and event: a letter dead again is updated); returns its id."""
        now = utcnow()
        event = letter.event
        row: dict[str, Any] = {
            "id": "dl_" + uuid.uuid4().hex, "consumer": letter.consumer, "event_id": letter.event_id,
            "event_type": event.type if event else None, "position": event.position if event else None,
            "event": msgspec.to_builtins(event) if event else None, "raw": letter.raw, "reason": letter.reason,
            "error": letter.error[:4000], "attempts": letter.attempts, "state": "dead", "lease_until": None,
            "dead_at": now, "updated_at": now, "redriven_at": None}
        async with self.uow() as uow:
            # RETURNING, not rowcount: PostgreSQL reports no rowcount for an insert returning its serial key.
            inserted = (await uow.conn.execute(self.db.insert_ignoring_conflicts(
                dead_letters, ["consumer", "event_id"]).values(**row).returning(dead_letters.c.id))).first()
            if inserted is not None:
                return str(inserted.id)
            # The same event dead again for this consumer (delivered again after a re-drive, say): one letter.
            await uow.conn.execute(dead_letters.update().where(
                dead_letters.c.consumer == letter.consumer, dead_letters.c.event_id == letter.event_id).values(
                state="dead", reason=letter.reason, error=row["error"], lease_until=None, updated_at=now,
                attempts=dead_letters.c.attempts + letter.attempts))
            return str((await uow.conn.execute(sa.select(dead_letters.c.id).where(
                dead_letters.c.consumer == letter.consumer,
                dead_letters.c.event_id == letter.event_id))).scalar_one())

    def keeping(self, consumer: str, handler: PageHandler) -> PageHandler:
        """``handler`` for a bus without retries (the in-process bus): an event it fails becomes a dead letter
        at once, and counts as handled; one that cannot be recorded stays failed (and logged by the bus)."""
        async def handle_page(events: Sequence[Event]) -> list[BaseException | None]:
            errors = list(await handler(events))
            for index, (event, error) in enumerate(zip(events, errors, strict=True)):
                if error is None:
                    continue
                try:
                    await self.record(DeadLetterRecord(consumer=consumer, event_id=event.id, event=event,
                                                       reason="handler_failed", error=describe(error), attempts=1))
                except Exception:
                    log.exception("could not keep a dead letter", extra={"event_id": event.id})
                else:
                    errors[index] = None
            return errors

        return handle_page

    async def page(self, *, state: DeadLetterState | None, consumer: str | None, event_type: str | None,
                   cursor: str | None, limit: int) -> DeadLetterPage:
        query = sa.select(dead_letters)
        if state is not None:
            query = query.where(dead_letters.c.state == state)
        if consumer is not None:
            query = query.where(dead_letters.c.consumer == consumer)
        if event_type is not None:
            query = query.where(dead_letters.c.event_type == event_type)
        if cursor:
            query = query.where(dead_letters.c.seq > decode_position(cursor, _Cursor).seq)
        async with self.db.read() as conn:
            rows = (await conn.execute(query.order_by(dead_letters.c.seq).limit(limit + 1))).all()
        items = [_summary(row) for row in rows[:limit]]
        more = len(rows) > limit
        return DeadLetterPage(items=items, next_cursor=encode_position(_Cursor(rows[limit - 1].seq)) if more else None)

    async def get(self, dead_letter_id: str) -> DeadLetter:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(dead_letters).where(dead_letters.c.id == dead_letter_id))).first()
        if row is None:
            raise NotFound(f"no dead letter {dead_letter_id!r}", slug="unknown-id")
        summary = msgspec.structs.asdict(_summary(row))
        event = msgspec.convert(row.event, Event, strict=False) if row.event is not None else None
        return DeadLetter(**summary, event=event, raw=row.raw)

    async def redrive(self, dead_letter_ids: Sequence[str]) -> list[RedriveOutcome]:
        """Re-drive each letter in turn (in the order given); each outcome says what happened to it."""
        return [await self._redrive_one(dead_letter_id) for dead_letter_id in dead_letter_ids]

    async def _redrive_one(self, dead_letter_id: str) -> RedriveOutcome:
        now = utcnow()
        async with self.uow() as uow:
            claimed = await uow.conn.execute(dead_letters.update().where(
                dead_letters.c.id == dead_letter_id, dead_letters.c.reason != "undecodable",
                sa.or_(dead_letters.c.state == "dead",
                       sa.and_(dead_letters.c.state == "redriving", dead_letters.c.lease_until < now)))
                .values(state="redriving", lease_until=now + REDRIVE_LEASE, updated_at=now))
            if claimed.rowcount != 1:
                row = (await uow.conn.execute(sa.select(dead_letters.c.state, dead_letters.c.reason).where(
                    dead_letters.c.id == dead_letter_id))).first()
        if claimed.rowcount != 1:
            return _not_claimed(dead_letter_id, row)
        letter = await self.get(dead_letter_id)
        assert letter.event is not None, "only a decodable letter is claimed"
        handler = self.consumers.get(letter.consumer)
        error: BaseException | None
        if handler is None:
            error = LookupError(f"no consumer {letter.consumer!r} runs in this tier")
        else:
            try:
                error = (await handler([letter.event]))[0]
            except Exception as exc:
                error = exc
        async with self.uow() as uow:
            settled = dead_letters.update().where(dead_letters.c.id == dead_letter_id,
                                                  dead_letters.c.state == "redriving")
            if error is None:
                await uow.conn.execute(settled.values(state="redriven", lease_until=None, updated_at=utcnow(),
                                                  redriven_at=utcnow(), attempts=dead_letters.c.attempts + 1))
                return RedriveOutcome(dead_letter_id=dead_letter_id, result="redriven")
            await uow.conn.execute(settled.values(state="dead", lease_until=None, updated_at=utcnow(),
                                              error=describe(error)[:4000], attempts=dead_letters.c.attempts + 1))
        return RedriveOutcome(dead_letter_id=dead_letter_id, result="failed", error=describe(error))


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _not_claimed(dead_letter_id: str, row: Any) -> RedriveOutcome:
    if row is None:
        return RedriveOutcome(dead_letter_id=dead_letter_id, result="not_found",
                              error=f"no dead letter {dead_letter_id!r}")
    if row.reason == "undecodable":
        return RedriveOutcome(dead_letter_id=dead_letter_id, result="not_redrivable",
                              error="the message could not be decoded: there is no event to deliver")
    if row.state == "redriven":
        return RedriveOutcome(dead_letter_id=dead_letter_id, result="already_redriven")
    return RedriveOutcome(dead_letter_id=dead_letter_id, result="in_progress",
                          error="another re-drive of this letter is under way")


def _summary(row: Any) -> DeadLetterSummary:
    return DeadLetterSummary(
        id=row.id, consumer=row.consumer, event_id=row.event_id, event_type=row.event_type, position=row.position,
        reason=row.reason, error=row.error, attempts=row.attempts, state=row.state, dead_at=row.dead_at,
        updated_at=row.updated_at, redriven_at=row.redriven_at)
