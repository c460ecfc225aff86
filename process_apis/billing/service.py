"""Time to bill: evaluate eligibility, then queue eligible entries for posting and hold the rest as exceptions.

:meth:`BillingService.settle` is the one place an evaluation turns into effects. It runs in one transaction:
posting outbox rows for eligible entries, exception items (with every reason) for held ones, resolution of
an entry's earlier hold once it is eligible, and the events for all of it.
"""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.canonical import TimeEntry
from process_apis.billing.eligibility import BillingContext, Eligibility, evaluate_batch, v1_reasons
from process_apis.billing.facts import load_context, with_local_ledger
from process_apis.billing.models import (
    CurrencyTotal,
    EligibleItem,
    Evaluation,
    EvaluationRequest,
    EvaluationSummary,
    HeldItem,
    PostingItem,
    PostingPage,
    Settlement,
    SettlementRequest,
    SettlementRun,
    SettlementSummary,
)
from process_apis.billing.posting import idempotency_key
from process_apis.exceptions.models import ExceptionItem
from process_apis.exceptions.service import RetryResult, open_items, open_sources, raise_exception, resolve_open
from process_apis.store import billing_postings
from process_apis.systems import Systems
from process_apis.unit_of_work import Outbox, UnitOfWorkFactory
from runtime.downstream import found_or_none
from runtime.problems import BadRequest, FieldError
from runtime.storage import utcnow

AlsoInTransaction = Callable[[AsyncConnection, "dict[str, Settlement]"], Awaitable[None]]

# Rows per executemany (well under SQLite's bound-parameter limit).
CHUNK = 500
DISPOSITIONS = {"post": "queued_for_posting", "hold": "held", "cost_only": "cost_only",
                "already_posted": "already_posted"}


class BillingService:
    def __init__(self, uow: UnitOfWorkFactory, systems: Systems) -> None:
        self.uow = uow
        self.db = uow.db
        self.systems = systems

    # -- read-only evaluation -------------------------------------------------------------------------------

    async def entries_for(self, request: EvaluationRequest) -> list[TimeEntry]:
        chosen = [name for name in ("time_entry_ids", "project_id", "period") if getattr(request, name) is not None]
        if len(chosen) != 1:
            raise BadRequest("select the entries with exactly one of time_entry_ids, project_id or period",
                             slug="validation-error",
                             errors=[FieldError(pointer="/" + (chosen[1] if len(chosen) > 1 else "time_entry_ids"),
                                                detail="give exactly one selector")])
        if request.time_entry_ids is not None:
            return await self.fetch_entries(request.time_entry_ids)
        if request.project_id is not None:
            return await self.systems.psa.time_entries(project_id=request.project_id, state=request.state)
        assert request.period is not None
        year, month = int(request.period[:4]), int(request.period[5:])
        first = dt.date(year, month, 1)
        last = dt.date(year, month, calendar.monthrange(year, month)[1])
        return await self.systems.psa.time_entries(state=request.state, from_date=first, to_date=last)

    async def fetch_entries(self, ids: Sequence[str]) -> list[TimeEntry]:
        limit = asyncio.Semaphore(16)

        async def one(entry_id: str) -> TimeEntry | None:
            async with limit:
                return await found_or_none(self.systems.psa.time_entry(entry_id))

        found = await asyncio.gather(*(one(i) for i in dict.fromkeys(ids)))
        missing = [i for i, e in zip(dict.fromkeys(ids), found, strict=True) if e is None]
        if missing:
            raise BadRequest(f"no time entry {missing[0]!r}", slug="unknown-id", unknown_ids=missing,
                             errors=[FieldError(pointer=f"/time_entry_ids/{list(ids).index(m)}",
                                                detail="no such time entry") for m in missing])
        return [e for e in found if e is not None]

    async def evaluate(self, request: EvaluationRequest) -> Evaluation:
        entries = await self.entries_for(request)
        context = await load_context(self.systems, entries)
        async with self.db.read() as conn:
            context = await with_local_ledger(self.db, conn, context, lock=False)
        return report(entries, evaluate_batch(entries, context), context)

    # -- settling: the effects of an evaluation --------------------------------------------------------------

    async def settle(self, entries: Sequence[TimeEntry], *, approval_id: str | None = None,
                     actor_id: str | None = None, also: AlsoInTransaction | None = None) -> dict[str, Settlement]:
        """Evaluate and act, in one transaction (with ``also``, the caller's own writes join it)."""
        if not entries:
            return {}
        context = await load_context(self.systems, entries)
        async with self.uow() as uow:
            context = await with_local_ledger(self.db, uow.conn, context)
            verdicts = evaluate_batch(list(entries), context)
            settlements = await self._record(uow.conn, entries, verdicts, context, approval_id, actor_id)
            if also is not None:
                await also(uow.conn, settlements)
            uow.queued(Outbox.POSTINGS)  # eligible entries' postings, and whatever reversals ``also`` queued
        return settlements

    async def _record(self, conn: AsyncConnection, entries: Sequence[TimeEntry], verdicts: Sequence[Eligibility],
                      context: BillingContext, approval_id: str | None, actor_id: str | None
                      ) -> dict[str, Settlement]:
        now = utcnow()
        out: dict[str, Settlement] = {}
        queued: list[dict[str, Any]] = []
        # An entry that is not held resolves its earlier hold; at month end almost none has one, so the holds
        # are looked up once for the batch instead of once per entry.
        with_hold = await open_sources(conn, kind="billing_hold", source_type="time_entry", source_ids=[
            e.id for e, v in zip(entries, verdicts, strict=True) if v.disposition != "hold"])
        for entry, verdict in zip(entries, verdicts, strict=True):
            disposition = verdict.disposition
            project = context.projects.get(entry.project_id)
            exception_id = None
            if disposition == "post":
                assert project is not None and verdict.amount is not None and verdict.currency is not None
                queued.append(dict(
                    time_entry_id=entry.id, entry_version=entry.version,
                    idempotency_key=idempotency_key(entry.id, entry.version), contract_id=project.contract_id,
                    project_id=entry.project_id, legal_entity_id=project.legal_entity_id, work_date=entry.work_date,
                    hours=entry.hours, minutes=entry.minutes, rate=verdict.rate, amount=verdict.amount,
                    currency=verdict.currency,
                    state="queued", attempts=0,
                    next_attempt_at=now, approval_id=approval_id, created_at=now, updated_at=now,
                    correlation_id=None))
                if entry.id in with_hold:
                    await resolve_open(conn, kind="billing_hold", source_type="time_entry", source_id=entry.id,
                                       resolution="now eligible: queued for posting", actor_id=actor_id)
            elif disposition == "hold":
                exception_id, _new = await raise_exception(
                    conn, kind="billing_hold", source_type="time_entry", source_id=entry.id,
                    reason_codes=list(verdict.reasons), project_id=entry.project_id,
                    business_unit_id=project.business_unit_id if project else None,
                    payload={"time_entry": msgspec.to_builtins(entry), "evaluation": msgspec.to_builtins(verdict),
                             "contract_id": project.contract_id if project else None,
                             "approval_id": approval_id})
            elif entry.id in with_hold:
                await resolve_open(conn, kind="billing_hold", source_type="time_entry", source_id=entry.id,
                                   resolution=f"no longer billable revenue ({', '.join(verdict.reasons)})",
                                   actor_id=actor_id)
            out[entry.id] = Settlement(time_entry_id=entry.id, disposition=DISPOSITIONS[disposition],  # type: ignore[arg-type]
                                       reasons=list(verdict.reasons), amount=verdict.amount,
                                       currency=verdict.currency, exception_id=exception_id)
        # One executemany per chunk, not a statement per entry; an entry queued before (same version) stays.
        insert = self.db.insert_ignoring_conflicts(billing_postings, ["time_entry_id", "entry_version"])
        for start in range(0, len(queued), CHUNK):
            await conn.execute(insert, queued[start:start + CHUNK])
        return out

    async def settle_selection(self, request: SettlementRequest) -> SettlementRun:
        """Settle the approved entries a request selects (a month end: every approved entry of a period)."""
        entries = await self.entries_for(EvaluationRequest(
            time_entry_ids=request.time_entry_ids, project_id=request.project_id, period=request.period,
            state="approved"))
        settled = await self.settle(entries)
        counts = Counter(s.disposition for s in settled.values())
        totals: dict[str, Decimal] = defaultdict(Decimal)
        reasons: Counter[str] = Counter()
        for settlement in settled.values():
            if settlement.disposition == "queued_for_posting":
                assert settlement.currency is not None and settlement.amount is not None
                totals[settlement.currency] += settlement.amount
            elif settlement.disposition == "held":
                reasons.update(settlement.reasons)
        return SettlementRun(settled_at=utcnow(), summary=SettlementSummary(
            settled=len(settled), queued_for_posting=counts["queued_for_posting"], held=counts["held"],
            cost_only=counts["cost_only"], already_posted=counts["already_posted"],
            queued_totals=[CurrencyTotal(currency=c, amount=a) for c, a in sorted(totals.items())],
            held_by_reason=dict(sorted(reasons.items()))))

    # -- exception retries ------------------------------------------------------------------------------------

    async def retry_hold(self, item: ExceptionItem, actor_id: str | None) -> RetryResult:
        """Re-evaluate a held entry with today's facts; post it when it is eligible now."""
        entry = await self.systems.psa.time_entry(item.source_id)
        settled = (await self.settle([entry], actor_id=actor_id))[entry.id]
        if settled.disposition == "queued_for_posting":
            return "resolved", f"eligible now: {settled.amount} {settled.currency} queued for posting"
        if settled.disposition == "held":
            return "still_failing", "still held: " + ", ".join(settled.reasons)
        return "resolved", f"{settled.disposition.replace('_', ' ')}: " + ", ".join(settled.reasons)

    async def retry_posting(self, item: ExceptionItem, actor_id: str | None) -> RetryResult:
        """Send a rejected posting again (or re-try the PSA side of one the ERP has)."""
        async with self.uow() as uow:
            row = (await uow.conn.execute(sa.select(billing_postings).where(
                billing_postings.c.time_entry_id == item.source_id,
                billing_postings.c.state.in_(("rejected", "psa_refused"))).order_by(billing_postings.c.id.desc())
                .with_for_update())).first()
            if row is None:
                await resolve_open(uow.conn, kind="posting", source_type="time_entry", source_id=item.source_id,
                                   resolution="nothing left to retry", actor_id=actor_id)
                return "resolved", "the posting is no longer failing"
            await uow.conn.execute(billing_postings.update().where(billing_postings.c.id == row.id).values(
                state="queued" if row.state == "rejected" else "in_erp", next_attempt_at=utcnow(),
                lease_until=None, updated_at=utcnow()))
            uow.queued(Outbox.POSTINGS)
            await resolve_open(uow.conn, kind="posting", source_type="time_entry", source_id=item.source_id,
                               resolution="requeued for posting", actor_id=actor_id)
        return "in_progress", "requeued: the dispatcher posts it (a new exception opens if it fails again)"

    # -- the posting queue ------------------------------------------------------------------------------------

    async def postings(self, *, state: str | None, time_entry_id: str | None, contract_id: str | None,
                       project_id: str | None, cursor: str | None, limit: int) -> PostingPage:
        query = sa.select(billing_postings)
        for column, value in ((billing_postings.c.state, state), (billing_postings.c.time_entry_id, time_entry_id),
                              (billing_postings.c.contract_id, contract_id),
                              (billing_postings.c.project_id, project_id)):
            if value is not None:
                query = query.where(column == value)
        if cursor:
            if not cursor.isdigit():
                raise BadRequest("the cursor is not one this API gave out", slug="validation-error",
                                 errors=[FieldError(pointer="/cursor", detail="unknown cursor", location="query")])
            query = query.where(billing_postings.c.id > int(cursor))
        async with self.db.read() as conn:
            rows = (await conn.execute(query.order_by(billing_postings.c.id).limit(limit + 1))).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return PostingPage(items=[_posting_item(r) for r in rows], next_cursor=str(rows[-1].id) if more else None)

    async def open_holds(self, entry_ids: Sequence[str]) -> dict[str, str]:
        async with self.db.read() as conn:
            return await open_items(conn, kind="billing_hold", source_ids=list(entry_ids))


async def postings_by_entry(conn: AsyncConnection, entry_ids: Sequence[str]) -> dict[str, tuple[Decimal, str]]:
    """The posting outbox's amount and state for each of these time entries that has a posting."""
    out: dict[str, tuple[Decimal, str]] = {}
    for start in range(0, len(entry_ids), 500):
        rows = (await conn.execute(sa.select(
            billing_postings.c.time_entry_id, billing_postings.c.amount, billing_postings.c.state).where(
            billing_postings.c.time_entry_id.in_(list(entry_ids[start:start + 500]))))).all()
        out.update({r.time_entry_id: (r.amount, r.state) for r in rows})
    return out


def _posting_item(row: Any) -> PostingItem:
    return PostingItem(
        time_entry_id=row.time_entry_id, entry_version=row.entry_version, state=row.state,
        contract_id=row.contract_id, project_id=row.project_id, work_date=row.work_date, hours=row.hours,
        amount=row.amount, currency=row.currency, attempts=row.attempts, next_attempt_at=row.next_attempt_at,
        last_error=row.last_error, erp_posting_id=row.erp_posting_id, idempotency_key=row.idempotency_key,
        created_at=row.created_at, updated_at=row.updated_at)


def report(entries: Sequence[TimeEntry], verdicts: Sequence[Eligibility], context: BillingContext) -> Evaluation:
    eligible: list[EligibleItem] = []
    held: list[HeldItem] = []
    totals: dict[str, Decimal] = defaultdict(Decimal)
    reasons: Counter[str] = Counter()
    for entry, verdict in zip(entries, verdicts, strict=True):
        project = context.projects.get(entry.project_id)
        contract_id = project.contract_id if project else None
        if verdict.eligible:
            assert contract_id and verdict.rate is not None and verdict.amount is not None and verdict.currency
            eligible.append(EligibleItem(
                time_entry_id=entry.id, worker_id=entry.worker_id, project_id=entry.project_id,
                contract_id=contract_id, work_date=entry.work_date, hours=entry.hours, role=verdict.role,
                rate=verdict.rate, amount=verdict.amount, currency=verdict.currency))
            totals[verdict.currency] += verdict.amount
        else:
            held.append(HeldItem(
                time_entry_id=entry.id, worker_id=entry.worker_id, project_id=entry.project_id,
                contract_id=contract_id, work_date=entry.work_date, hours=entry.hours, role=verdict.role,
                reasons=list(v1_reasons(verdict.reasons)), reason_codes=list(verdict.reasons), amount=verdict.amount,
                currency=verdict.currency))
            reasons.update(verdict.reasons)
    return Evaluation(
        evaluated_at=utcnow(), eligible=eligible, held=held,
        summary=EvaluationSummary(
            evaluated=len(entries), eligible=len(eligible), held=len(held),
            eligible_totals=[CurrencyTotal(currency=c, amount=a) for c, a in sorted(totals.items())],
            held_by_reason=dict(sorted(reasons.items()))))
