"""The CRM change feed: won opportunities start provisioning and amended contracts reach billing, with no call.

Each turn asks the CRM system API for the opportunities and the signed contracts changed at or after this tier's
high-water mark (the CRM's system modification stamp, Salesforce's ``SystemModstamp``), oldest first, and hands
each record to its handler: an opportunity at ``closed_won`` is provisioned (or, provisioned already, brought up
to date: its contract's terms amended, never a second project); a contract is amended when its terms differ
from the ERP's. After each record the mark moves to its stamp, in SQL, with the ids handled at exactly that
instant (the next turn's ``>=`` returns them again and they are skipped). A restart resumes from the mark; a
record handled twice is harmless (provisioning is one per opportunity, amendments one per change), so each win
provisions exactly once.

The first turn of a new database starts both marks at the current time (before it calls anything): deals won
before this tier followed the feed are provisioned on request (POST /provisionings), as before.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Literal

import sqlalchemy as sa

from process_apis.provisioning.amendments import ContractAmendments
from process_apis.provisioning.models import FeedMark, FeedState
from process_apis.provisioning.service import ProvisioningService
from process_apis.store import feed_marks
from process_apis.systems import Systems
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.downstream import found_or_none
from runtime.storage import utcnow

log = logging.getLogger("process_apis.provisioning.crm_feed")

FeedObject = Literal["opportunity", "contract"]
FEEDS: tuple[FeedObject, ...] = ("opportunity", "contract")


class CrmFeed:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        systems: Systems,
        provisioning: ProvisioningService,
        amendments: ContractAmendments,
    ) -> None:
        self.uow = uow
        self.db = uow.db
        self.systems = systems
        self.provisioning = provisioning
        self.amendments = amendments

    async def poll_once(self) -> int:
        """One turn over both feeds; returns how many changed records were handled."""
        handlers: dict[FeedObject, Callable[[str], Awaitable[None]]] = {
            "opportunity": self._opportunity_changed,
            "contract": self._contract_changed,
        }
        for object_ in FEEDS:  # every mark starts before the first call: a change made meanwhile is not skipped
            await self._mark(object_)
        handled = 0
        for object_ in FEEDS:
            handled += await self._follow(object_, handlers[object_])
        return handled

    async def state(self) -> FeedState:
        async with self.db.read() as conn:
            rows = {r.feed: r for r in (await conn.execute(sa.select(feed_marks))).all()}
        return FeedState(
            marks=[
                FeedMark(object=o, mark=rows[_name(o)].mark, seen_at_mark=sorted(rows[_name(o)].seen_at_mark))
                for o in FEEDS
                if _name(o) in rows
            ]
        )

    async def _follow(self, object_: FeedObject, handle: Callable[[str], Awaitable[None]]) -> int:
        mark, seen = await self._mark(object_)
        handled = 0
        for change in await self.systems.crm.changes(object_, mark):
            if change.modified_at < mark or (change.modified_at == mark and change.id in seen):
                continue
            await handle(change.id)
            if change.modified_at > mark:
                mark, seen = change.modified_at, set()
            seen.add(change.id)
            await self._save(object_, mark, seen)
            handled += 1
        return handled

    async def _mark(self, object_: FeedObject) -> tuple[dt.datetime, set[str]]:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(feed_marks).where(feed_marks.c.feed == _name(object_)))).first()
        if row is not None:
            return row.mark, set(row.seen_at_mark)
        now = utcnow()
        async with self.uow() as uow:  # a replica that started the feed first keeps its mark
            await uow.conn.execute(
                self.db.insert_ignoring_conflicts(feed_marks, ["feed"]).values(
                    feed=_name(object_), mark=now, seen_at_mark=[], updated_at=now
                )
            )
        return await self._mark(object_)

    async def _save(self, object_: FeedObject, mark: dt.datetime, seen: set[str]) -> None:
        async with self.uow() as uow:
            await uow.conn.execute(
                feed_marks.update()
                .where(feed_marks.c.feed == _name(object_))
                .values(mark=mark, seen_at_mark=sorted(seen), updated_at=utcnow())
            )

    async def _opportunity_changed(self, opportunity_id: str) -> None:
        opportunity = await found_or_none(self.systems.crm.opportunity(opportunity_id))
        if opportunity is None or opportunity.stage != "closed_won":
            return
        status, provisioning = await self.provisioning.start(opportunity_id, None)
        if status == 200 and provisioning.state == "completed" and opportunity.signed_contract_ref:
            # Provisioned already: the update path. The project stays; the contract takes the CRM's terms.
            await self.amendments.sync(opportunity.signed_contract_ref)
        log.info(
            "won opportunity from the CRM feed",
            extra={"opportunity_id": opportunity_id, "provisioning_id": provisioning.id, "state": provisioning.state},
        )

    async def _contract_changed(self, contract_id: str) -> None:
        await self.amendments.sync(contract_id)


def _name(object_: FeedObject) -> str:
    return f"crm:{object_}"
