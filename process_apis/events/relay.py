"""The relay: gives committed outbox events their public position, then publishes them to the bus.

Positions are assigned under a lock row, in the order transactions became visible, so a consumer reading
"after position N" never misses an event that committed late. Publishing starts from the bus's own top, so a
crash between publishing and anything else repeats nothing, and a bus that lost its data is refilled.
"""

from __future__ import annotations

import msgspec
import sqlalchemy as sa

from process_apis.events.bus import EventBus
from process_apis.events.models import Event
from process_apis.store import event_sequence, events
from process_apis.unit_of_work import UnitOfWorkFactory

SEQUENCER = "events"


def row_to_event(row: sa.Row[tuple[object, ...]]) -> Event:
    return msgspec.convert({
        "id": row.id, "type": row.type, "version": row.version, "occurred_at": row.occurred_at,
        "correlation_id": row.correlation_id, "subject": row.subject, "data": row.data, "position": row.position,
    }, Event, from_attributes=False)


class EventRelay:
    def __init__(self, uow: UnitOfWorkFactory, bus: EventBus, *, batch_size: int = 500) -> None:
        self.uow = uow
        self.db = uow.db
        self.bus = bus
        self.batch_size = batch_size

    async def sequence(self) -> int:
        """Assign positions to every committed event that has none yet; returns how many."""
        async with self.uow() as uow:
            await uow.conn.execute(self.db.insert_ignoring_conflicts(event_sequence, ["name"]).values(
                name=SEQUENCER, last_position=0))
            last = (await uow.conn.execute(
                sa.select(event_sequence.c.last_position).where(event_sequence.c.name == SEQUENCER)
                .with_for_update())).scalar_one()
            seqs = (await uow.conn.execute(
                sa.select(events.c.seq).where(events.c.position.is_(None)).order_by(events.c.seq)
                .limit(self.batch_size * 4))).scalars().all()
            if not seqs:
                return 0
            await uow.conn.execute(
                events.update().where(events.c.seq == sa.bindparam("s")).values(position=sa.bindparam("p")),
                [{"s": seq, "p": last + offset} for offset, seq in enumerate(seqs, start=1)],
            )
            await uow.conn.execute(event_sequence.update().where(event_sequence.c.name == SEQUENCER)
                               .values(last_position=last + len(seqs)))
            return len(seqs)

    async def relay_once(self) -> int:
        """Sequence, then publish everything above the bus's top; returns how many events were published."""
        while await self.sequence() >= self.batch_size * 4:
            pass
        published = 0
        top = await self.bus.published_position()
        while True:
            async with self.db.read() as conn:
                rows = (await conn.execute(
                    sa.select(events).where(events.c.position > top).order_by(events.c.position)
                    .limit(self.batch_size))).all()
            if not rows:
                return published
            batch = [row_to_event(row) for row in rows]
            await self.bus.publish(batch)
            published += len(batch)
            top = batch[-1].position
