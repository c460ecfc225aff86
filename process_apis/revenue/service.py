"""Revenue schedules kept current from the contract's terms and recognised in the ERP, each period once.

The schedule is planned on every read from today's facts (revenue/schedule.py): the ERP contract's terms, what
the ERP has recognised, the time posted to the contract (time and materials) or the milestones of its projects.
Recognising writes each due period to SQL first (``pending``, its amount fixed), then posts it to the ERP under
an Idempotency-Key of the contract and period, then marks it ``posted`` with its ``revenue.recognized`` event in
one transaction; a call stopped half-way is finished by the next, with the same amount, and a period is never
recognised twice (the ERP refuses a second line for it too).

A fixed fee recognised by percent complete measures the cost of the contract's approved time (PSA) at each
worker's HR cost rate on the work date, stated in the contract currency with the planning exchange rates
(process_apis/insights/settings.py), against the contract's budgeted cost. Write-offs are recorded here (SQL) and
lower what the schedule recognises; a write-off larger than what is left to recognise is refused.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.canonical import TIME_ENTRY_APPROVED, Contract, Worker
from process_apis.billing.facts import lock_contracts
from process_apis.events.models import (
    RevenueRecognizedData,
    RevenueRecognizedSubject,
    RevenueWrittenOffData,
    RevenueWrittenOffSubject,
)
from process_apis.events.outbox import record_event
from process_apis.idempotency import complete, recorded_id, write_off_fingerprint, write_off_scope
from process_apis.insights.settings import InsightsSettings
from process_apis.revenue.models import (
    RecognitionV2,
    RevenueScheduleV2,
    ScheduleLine,
    WriteOff,
    WriteOffRecorded,
    WriteOffRequest,
)
from process_apis.revenue.schedule import CENT, ERP_METHODS, method_of, plan
from process_apis.store import revenue_recognitions, revenue_write_offs
from process_apis.systems import Systems
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.downstream import found_or_none
from runtime.idempotency import Claim, IdempotencyStore
from runtime.problems import Conflict, FieldError, NotFound, Unprocessable
from runtime.storage import utcnow

# A schedule planned against write-offs that changed before its decision was written is planned again.
ATTEMPTS = 3


def unmeasurable(detail: str, pointer: str) -> Unprocessable:
    return Unprocessable(detail, slug="percent-complete-unmeasurable", errors=[FieldError(pointer=pointer,
                                                                                         detail=detail)])


def write_off_of(row: sa.Row[tuple[object, ...]]) -> WriteOff:
    return WriteOff(id=row.id, contract_id=row.contract_id, project_id=row.project_id, amount=row.amount,
                    currency=row.currency, reason=row.reason, period=row.period, recorded_by=row.recorded_by,
                    recorded_at=row.recorded_at)


class RevenueService:
    def __init__(self, uow: UnitOfWorkFactory, systems: Systems, keys: IdempotencyStore,
                 fx_rates_to_usd: Mapping[str, Decimal] | None = None) -> None:
        self.uow = uow
        self.keys = keys
        self.db = uow.db
        self.systems = systems
        self.fx = dict(fx_rates_to_usd or InsightsSettings().fx_rates_to_usd)

    async def _contract(self, contract_id: str) -> Contract:
        contract = await found_or_none(self.systems.erp.contract(contract_id))
        if contract is None:
            raise NotFound(f"no contract {contract_id!r}", slug="unknown-id")
        return contract

    async def schedule(self, contract_id: str) -> RevenueScheduleV2:
        return await self._schedule(await self._contract(contract_id))

    async def _write_offs(self, conn: AsyncConnection, contract_id: str) -> list[WriteOff]:
        rows = await conn.execute(sa.select(revenue_write_offs).where(revenue_write_offs.c.contract_id == contract_id)
                                  .order_by(revenue_write_offs.c.recorded_at, revenue_write_offs.c.id))
        return [write_off_of(row) for row in rows]

    async def _schedule(self, contract: Contract, write_offs: list[WriteOff] | None = None) -> RevenueScheduleV2:
        current = f"{utcnow():%Y-%m}"
        if write_offs is None:
            async with self.db.read() as conn:
                write_offs = await self._write_offs(conn, contract.id)
        written_off = sum((w.amount for w in write_offs), Decimal(0))
        costs: dict[str, Decimal] = {}
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
        elif method_of(contract) == "percent_complete":
            costs = await self._costs(contract)
        lines = plan(contract, recognized=recognized, earned=earned, expected=expected, current=current, costs=costs,
                     written_off=written_off)
        return RevenueScheduleV2(
            contract_id=contract.id,
            billing_model=contract.billing_model,
            method=method_of(contract),
            currency=contract.currency,
            total_value=contract.total_value,
            recognized_to_date=sum((line.amount for line in lines if line.state == "recognized"), Decimal(0)),
            scheduled_total=sum((line.amount for line in lines), Decimal(0)),
            lines=lines,
            written_off=written_off,
            write_offs=write_offs,
        )

    async def _costs(self, contract: Contract) -> dict[str, Decimal]:
        """The cost of the contract's approved time (approved, posted or invoiced, corrections replacing what they
        correct) by work month, in its currency. A fixed fee's time is cost, never posted to the ERP (billing
        holds it BILLED_BY_MILESTONE), so the PSA's approved time is what percent complete measures."""
        if not contract.revenue_terms.budget_cost or contract.revenue_terms.budget_cost <= 0:
            raise unmeasurable(f"contract {contract.id} has no budgeted cost to measure percent complete against",
                               "/revenue_terms/budget_cost")
        projects = await self.systems.psa.projects(contract_id=contract.id)
        found = await asyncio.gather(*(self.systems.psa.time_entries(project_id=p.id) for p in projects))
        approved = [e for entries in found for e in entries
                    if e.state in TIME_ENTRY_APPROVED and e.superseded_by_id is None]
        worker_ids = sorted({e.worker_id for e in approved})
        workers: dict[str, Worker | None] = dict(zip(worker_ids, await asyncio.gather(
            *(found_or_none(self.systems.hr.worker(w)) for w in worker_ids)), strict=True))
        costs: dict[str, Decimal] = defaultdict(Decimal)
        for entry in approved:
            worker = workers.get(entry.worker_id)
            rate = next((r for r in (worker.cost_rates if worker else []) if r.valid_from <= entry.work_date
                         and (r.valid_to is None or entry.work_date <= r.valid_to)), None)
            if rate is None:
                raise unmeasurable(f"{entry.worker_id} has no HR cost rate on {entry.work_date} (time entry "
                                   f"{entry.id})", "/revenue_terms/budget_cost")
            cost = entry.hours * rate.hourly_cost
            if rate.currency != contract.currency:
                if rate.currency not in self.fx or contract.currency not in self.fx:
                    raise unmeasurable(f"no planning rate from {rate.currency} to {contract.currency}", "/currency")
                cost = cost * self.fx[rate.currency] / self.fx[contract.currency]
            costs[f"{entry.work_date:%Y-%m}"] += cost
        return dict(costs)

    async def recognize(self, contract_id: str, through_period: str) -> RecognitionV2:
        if through_period > f"{utcnow():%Y-%m}":
            raise Unprocessable(
                "revenue is recognised up to the current month, not ahead of it",
                slug="validation-error",
                errors=[FieldError(pointer="/through_period", detail="a period not after this one")],
            )
        contract = await self._contract(contract_id)
        for _ in range(ATTEMPTS):
            async with self.db.read() as conn:
                write_offs = await self._write_offs(conn, contract.id)
            before = await self._schedule(contract, write_offs)
            due = [line for line in before.lines if line.state == "due" and line.period <= through_period]
            now = utcnow()
            async with self.uow() as uow:  # one recogniser per contract at a time; amounts fixed before the ERP call
                await lock_contracts(self.db, uow.conn, [contract.id])
                if await self._write_offs(uow.conn, contract.id) != write_offs:
                    continue  # a write-off landed meanwhile: plan again with it
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
            break
        else:
            raise Conflict("the contract's write-offs kept changing; try again", slug="conflict")
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
        return RecognitionV2(
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

    async def record_write_off(self, contract_id: str, data: WriteOffRequest, recorded_by: str,
                               idempotency_key: str) -> tuple[bool, WriteOffRecorded]:
        """Record a write-off once per Idempotency-Key of its contract (process_apis/idempotency.py; a repeat answers
        the first, with the schedule as it is now), if the schedule has that much left to recognise: what is neither
        recognised in the ERP nor fixed for it by a recognition under way."""
        contract = await self._contract(contract_id)

        async def again(_status: int, body: bytes) -> tuple[bool, WriteOffRecorded]:
            return False, await self._recorded(contract, recorded_id(body))

        return await self.keys.once(scope=write_off_scope(contract.id), key=idempotency_key,
                                    request_fingerprint=write_off_fingerprint(contract.id, data),
                                    action=lambda claim: self._write_off(contract, data, recorded_by, claim),
                                    replay=again)

    async def _write_off(self, contract: Contract, data: WriteOffRequest, recorded_by: str,
                         claim: Claim | None) -> tuple[bool, WriteOffRecorded]:
        amount = data.amount
        if not amount.is_finite() or amount <= 0 or amount >= Decimal(10) ** 12 or amount != amount.quantize(CENT):
            raise Unprocessable("a write-off is a positive amount in cents, below 10^12", slug="validation-error",
                                errors=[FieldError(pointer="/amount", detail="a positive amount in cents")])
        if data.period > f"{utcnow():%Y-%m}":
            raise Unprocessable("a write-off is recorded in the current month or an earlier one",
                                slug="validation-error",
                                errors=[FieldError(pointer="/period", detail="a period not after this one")])
        project_id = await self._project_of(contract, data.project_id)
        for _ in range(ATTEMPTS):
            async with self.db.read() as conn:
                write_offs = await self._write_offs(conn, contract.id)
            schedule = await self._schedule(contract, write_offs)
            async with self.uow() as uow:
                await lock_contracts(self.db, uow.conn, [contract.id])
                if await self._write_offs(uow.conn, contract.id) != write_offs:
                    continue
                fixed = (await uow.conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(revenue_recognitions.c.amount), 0)).where(
                        revenue_recognitions.c.contract_id == contract.id,
                        revenue_recognitions.c.state == "pending"))).scalar_one()
                left = schedule.scheduled_total - schedule.recognized_to_date - Decimal(fixed)
                if data.amount > left:
                    raise Unprocessable(
                        f"{data.amount} {contract.currency} is more than the {max(left, Decimal(0))} "
                        f"{contract.currency} left to recognise on contract {contract.id}",
                        slug="write-off-exceeds-recognisable",
                        errors=[FieldError(pointer="/amount", detail=f"at most {max(left, Decimal(0))}")])
                write_off_id = f"wo_{uuid.uuid4().hex[:16]}"
                await uow.conn.execute(revenue_write_offs.insert().values(
                    id=write_off_id, contract_id=contract.id, project_id=project_id, amount=data.amount,
                    currency=contract.currency, reason=data.reason, period=data.period, recorded_by=recorded_by,
                    recorded_at=utcnow()))
                # announced with the row it reports, in its transaction: once (a repeat replays the key's answer)
                await record_event(
                    uow.conn, "revenue.written_off",
                    RevenueWrittenOffSubject(write_off_id=write_off_id, contract_id=contract.id,
                                             customer_id=contract.customer_id, project_id=project_id),
                    RevenueWrittenOffData(amount=data.amount, currency=contract.currency, period=data.period,
                                          reason=data.reason, recorded_by=recorded_by))
                await complete(claim, uow.conn, 201, write_off_id)
            return True, await self._recorded(contract, write_off_id)
        raise Conflict("the contract's write-offs kept changing; try again", slug="conflict")

    async def _recorded(self, contract: Contract, write_off_id: str) -> WriteOffRecorded:
        async with self.db.read() as conn:
            row = (await conn.execute(
                sa.select(revenue_write_offs).where(revenue_write_offs.c.id == write_off_id))).one()
        return WriteOffRecorded(write_off=write_off_of(row), schedule=await self._schedule(contract))

    async def _project_of(self, contract: Contract, project_id: str | None) -> str:
        projects = sorted(p.id for p in await self.systems.psa.projects(contract_id=contract.id))
        if project_id is not None and project_id in projects:
            return project_id
        if project_id is None and len(projects) == 1:
            return projects[0]
        detail = (f"{project_id!r} is not a project of contract {contract.id}" if project_id is not None
                  else f"contract {contract.id} has {len(projects)} projects: say which one")
        raise Unprocessable(detail, slug="validation-failed", errors=[FieldError(pointer="/project_id",
                                                                                 detail=detail)])

