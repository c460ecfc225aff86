"""Revenue schedules kept current from the contract's terms and recognised in the ERP, each period once.

The schedule is planned on every read from today's facts (revenue/schedule.py): the ERP contract's terms, what
the ERP has recognised, the time posted to the contract (time and materials) or the milestones of its projects.
Recognising writes each due period to SQL first (``pending``, its amount fixed), then posts it to the ERP under
an Idempotency-Key of the contract and period, then marks it ``posted`` with its ``revenue.recognized`` event in
one transaction; a call stopped half-way is finished by the next, with the same amount, and a period is never
recognised twice (the ERP refuses a second line for it too).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from decimal import Decimal

import sqlalchemy as sa

from contracts.canonical import Contract
from process_apis.billing.facts import lock_contracts
from process_apis.events.models import RevenueRecognizedData, RevenueRecognizedSubject
from process_apis.events.outbox import record_event
from process_apis.revenue.models import Recognition, RevenueSchedule, ScheduleLine
from process_apis.revenue.schedule import ERP_METHODS, METHODS, plan
from process_apis.store import revenue_recognitions
from process_apis.systems import Systems
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.downstream import found_or_none
from runtime.problems import FieldError, NotFound, Unprocessable
from runtime.storage import utcnow


class RevenueService:
    def __init__(self, uow: UnitOfWorkFactory, systems: Systems) -> None:
        self.uow = uow
        self.db = uow.db
        self.systems = systems

    async def _contract(self, contract_id: str) -> Contract:
        contract = await found_or_none(self.systems.erp.contract(contract_id))
        if contract is None:
            raise NotFound(f"no contract {contract_id!r}", slug="unknown-id")
        return contract

    async def schedule(self, contract_id: str) -> RevenueSchedule:
        return await self._schedule(await self._contract(contract_id))

    async def _schedule(self, contract: Contract) -> RevenueSchedule:
        current = f"{utcnow():%Y-%m}"
        recorded = await self.systems.erp.revenue_schedules(contract.id)
        recognized: dict[str, tuple[Decimal, str | None]] = {}
        for line in recorded:
            amount, _ = recognized.get(line.period, (Decimal(0), None))
            recognized[line.period] = (amount + line.recognized_amount, line.id)
        earned: dict[str, Decimal] = defaultdict(Decimal)
        expected: dict[str, Decimal] = defaultdict(Decimal)
        if contract.billing_model == "time_and_materials":
            for posting in await self.systems.erp.postings(contract_id=contract.id):
                earned[f"{posting.work_date:%Y-%m}"] += posting.amount
        elif contract.billing_model == "milestone":
            projects = await self.systems.psa.projects(contract_id=contract.id)
            found = await asyncio.gather(*(self.systems.psa.milestones(project_id=p.id) for p in projects))
            for milestone in (m for ms in found for m in ms):
                if milestone.state in ("accepted", "invoiced"):
                    earned[f"{milestone.accepted_on or milestone.due_date:%Y-%m}"] += milestone.amount
                else:
                    expected[f"{milestone.due_date:%Y-%m}"] += milestone.amount
        lines = plan(contract, recognized=recognized, earned=earned, expected=expected, current=current)
        return RevenueSchedule(
            contract_id=contract.id,
            billing_model=contract.billing_model,
            method=METHODS[contract.billing_model],
            currency=contract.currency,
            total_value=contract.total_value,
            recognized_to_date=sum((line.amount for line in lines if line.state == "recognized"), Decimal(0)),
            scheduled_total=sum((line.amount for line in lines), Decimal(0)),
            lines=lines,
        )

    async def recognize(self, contract_id: str, through_period: str) -> Recognition:
        if through_period > f"{utcnow():%Y-%m}":
            raise Unprocessable(
                "revenue is recognised up to the current month, not ahead of it",
                slug="validation-error",
                errors=[FieldError(pointer="/through_period", detail="a period not after this one")],
            )
        contract = await self._contract(contract_id)
        before = await self._schedule(contract)
        due = [line for line in before.lines if line.state == "due" and line.period <= through_period]
        now = utcnow()
        async with self.uow() as uow:  # one recogniser per contract at a time; amounts fixed before the ERP call
            await lock_contracts(self.db, uow.conn, [contract.id])
            for line in due:
                await uow.conn.execute(
                    self.db.insert_ignoring_conflicts(revenue_recognitions, ["contract_id", "period"]).values(
                        contract_id=contract.id,
                        period=line.period,
                        amount=line.amount,
                        currency=contract.currency,
                        method=before.method,
                        state="pending",
                        erp_schedule_id=None,
                        created_at=now,
                        updated_at=now,
                    )
                )
        async with self.db.read() as conn:
            pending = (
                await conn.execute(
                    sa.select(revenue_recognitions)
                    .where(
                        revenue_recognitions.c.contract_id == contract.id,
                        revenue_recognitions.c.state == "pending",
                        revenue_recognitions.c.period <= through_period,
                    )
                    .order_by(revenue_recognitions.c.period)
                )
            ).all()
        recognized = [await self._post(contract, row) for row in pending]
        return Recognition(
            contract_id=contract.id,
            through_period=through_period,
            recognized=[line for line in recognized if line is not None],
            schedule=await self._schedule(contract),
        )

    async def _post(self, contract: Contract, row: sa.Row[tuple[object, ...]]) -> ScheduleLine | None:
        schedule = await self.systems.erp.recognize(
            {
                "contract_id": contract.id,
                "period": row.period,
                "recognized_amount": str(row.amount),
                "currency": row.currency,
                "method": ERP_METHODS[row.method],
            },
            idempotency_key=f"revenue:{contract.id}:{row.period}",
        )
        async with self.uow() as uow:
            updated = await uow.conn.execute(
                revenue_recognitions.update()
                .where(
                    revenue_recognitions.c.contract_id == contract.id,
                    revenue_recognitions.c.period == row.period,
                    revenue_recognitions.c.state == "pending",
                )
                .values(state="posted", erp_schedule_id=schedule.id, updated_at=utcnow())
            )
            if updated.rowcount != 1:  # a concurrent call posted and announced it
                return None
            await record_event(
                uow.conn,
                "revenue.recognized",
                RevenueRecognizedSubject(contract_id=contract.id, customer_id=contract.customer_id),
                RevenueRecognizedData(
                    period=row.period,
                    amount=row.amount,
                    currency=row.currency,
                    method=row.method,
                    erp_schedule_id=schedule.id,
                ),
            )
        return ScheduleLine(period=row.period, amount=row.amount, state="recognized", erp_schedule_id=schedule.id)
