"""Invoicing: a draft invoice per contract and period, by the contract's billing model, every line traceable.

- time and materials: posted time of the period (amounts as the ERP booked them), a line per project and rate;
- milestone: every accepted milestone, a line each;
- fixed fee: the period's scheduled amount;
- retainer: the period's retainer, drawn down by posted time, any overage as time lines.

One draft per contract and period (unique in SQL, Idempotency-Key towards the ERP). Posting an invoice flows
the status back: entries and milestones -> ``invoiced`` in the PSA and the invoice status to the CRM, as
durable jobs enqueued in the same transaction that records the posting.
"""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

import msgspec
import sqlalchemy as sa

from contracts.canonical import Contract, Invoice, InvoiceLine, Milestone, Posting, TimeEntry
from process_apis.billing.eligibility import CENT
from process_apis.events.outbox import record_event
from process_apis.invoicing.models import Drawdown, FlowBack, InvoiceDraft, InvoiceDraftPage
from process_apis.jobs import JobRunner, enqueue_job
from process_apis.store import invoice_drafts, provisionings
from process_apis.systems import Systems
from runtime.downstream import DownstreamProblem
from runtime.problems import BadRequest, FieldError, NotFound, Unprocessable
from runtime.storage import Database, utcnow


def period_bounds(period: str) -> tuple[dt.date, dt.date]:
    year, month = int(period[:4]), int(period[5:])
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


class InvoicingService:
    def __init__(self, db: Database, systems: Systems, jobs: JobRunner, *,
                 on_jobs: Any = lambda: None, on_events: Any = lambda: None) -> None:
        self.db = db
        self.systems = systems
        self.jobs = jobs
        self.on_jobs = on_jobs
        self.on_events = on_events
        jobs.handle("psa.time_entry.invoiced", self._entry_invoiced)
        jobs.handle("psa.milestone.invoiced", self._milestone_invoiced)
        jobs.handle("crm.opportunity.invoice_status", self._crm_invoice_status)

    # -- drafting ----------------------------------------------------------------------------------------------

    async def draft(self, contract_id: str, period: str) -> tuple[bool, InvoiceDraft]:
        async with self.db.read() as conn:
            existing = (await conn.execute(sa.select(invoice_drafts.c.id).where(
                invoice_drafts.c.contract_id == contract_id, invoice_drafts.c.period == period))).scalar()
        if existing is not None:
            return False, await self.get(existing)
        try:
            contract = await self.systems.erp.contract(contract_id)
        except DownstreamProblem as exc:
            if exc.status == 404:
                raise BadRequest(f"no contract {contract_id!r}", slug="unknown-id",
                                 errors=[FieldError(pointer="/contract_id", detail="no such contract")]) from exc
            raise
        lines, entry_ids, milestone_ids, drawdown = await self._lines(contract, period)
        if not lines:
            raise Unprocessable(f"contract {contract_id} has nothing to invoice for {period}",
                                slug="nothing-to-invoice")
        subtotal = sum((line.amount for line in lines), Decimal(0))
        invoice = await self.systems.erp.create_invoice({
            "customer_id": contract.customer_id, "contract_id": contract.id,
            "legal_entity_id": contract.legal_entity_id, "currency": contract.currency, "period": period,
            "lines": [msgspec.to_builtins(line) for line in lines],
        }, f"invoice:{contract.id}:{period}")
        now = utcnow()
        async with self.db.transaction() as conn:
            inserted = await conn.execute(self.db.insert_ignoring_conflicts(invoice_drafts, ["contract_id", "period"])
                                          .values(
                id=invoice.id, contract_id=contract.id, period=period, billing_model=contract.billing_model,
                state="draft", invoice=invoice,
                sources={"time_entry_ids": entry_ids, "milestone_ids": milestone_ids,
                         "drawdown": msgspec.to_builtins(drawdown) if drawdown else None},
                created_at=now, updated_at=now))
            if inserted.rowcount == 1:
                await record_event(conn, "invoice.drafted", {
                    "invoice_id": invoice.id, "contract_id": contract.id, "customer_id": contract.customer_id},
                    {"period": period, "subtotal": str(subtotal), "total": str(invoice.total),
                     "currency": contract.currency, "lines": len(lines)})
        self.on_events()
        return inserted.rowcount == 1, await self.get(invoice.id)

    async def _lines(self, contract: Contract, period: str
                     ) -> tuple[list[InvoiceLine], list[str], list[str], Drawdown | None]:
        first, last = period_bounds(period)
        projects = await self.systems.psa.projects(contract_id=contract.id)
        model = contract.billing_model
        lines: list[InvoiceLine] = []
        entry_ids: list[str] = []
        milestone_ids: list[str] = []
        drawdown = None
        if model in ("time_and_materials", "retainer"):
            time_lines, entry_ids = await self._time_lines(contract, [p.id for p in projects], first, last)
            drawn = sum((line.amount for line in time_lines), Decimal(0))
            if model == "time_and_materials":
                lines.extend(time_lines)
            else:
                retainer = contract.billing_profile.scheduled_amount or Decimal(0)
                lines.append(InvoiceLine(description=f"Retainer {period}", quantity=Decimal(1),
                                         unit_price=retainer, amount=retainer, source_type="retainer",
                                         source_ids=[f"{contract.id}:{period}"]))
                overage = max(Decimal(0), drawn - retainer)
                if overage > 0:
                    lines.append(InvoiceLine(description=f"Time beyond the retainer, {period}", quantity=Decimal(1),
                                             unit_price=overage, amount=overage, source_type="time_entry",
                                             source_ids=entry_ids))
                drawdown = Drawdown(retainer_amount=retainer, drawn_amount=drawn,
                                    remaining_amount=max(Decimal(0), retainer - drawn), overage_amount=overage)
        elif model == "milestone":
            milestones: list[Milestone] = [m for ms in await asyncio.gather(
                *(self.systems.psa.milestones(project_id=p.id, state="accepted") for p in projects)) for m in ms]
            for milestone in sorted(milestones, key=lambda m: (m.due_date, m.id)):
                lines.append(InvoiceLine(description=milestone.name, quantity=Decimal(1), unit_price=milestone.amount,
                                         amount=milestone.amount, source_type="milestone",
                                         source_ids=[milestone.id]))
                milestone_ids.append(milestone.id)
        else:
            fee = contract.billing_profile.scheduled_amount
            if fee:
                lines.append(InvoiceLine(description=f"Fixed fee {period}", quantity=Decimal(1), unit_price=fee,
                                         amount=fee, source_type="fixed_fee", source_ids=[f"{contract.id}:{period}"]))
        return lines, entry_ids, milestone_ids, drawdown

    async def _time_lines(self, contract: Contract, project_ids: list[str], first: dt.date, last: dt.date
                          ) -> tuple[list[InvoiceLine], list[str]]:
        """Posted time of the period, at the amounts the ERP booked, a line per project and unit price."""
        entries: list[TimeEntry] = [e for es in await asyncio.gather(
            *(self.systems.psa.time_entries(project_id=p, state="posted", from_date=first, to_date=last)
              for p in project_ids)) for e in es]
        postings: dict[str, Posting] = {p.source_id: p for p in await self.systems.erp.postings(
            contract_id=contract.id, from_date=first, to_date=last) if p.reverses_posting_id is None}
        groups: dict[tuple[str, Decimal], list[tuple[TimeEntry, Posting]]] = defaultdict(list)
        for entry in sorted(entries, key=lambda e: (e.work_date, e.id)):
            posting = postings.get(entry.id)
            if posting is None or posting.quantity == 0:
                continue  # not booked in the ERP: reconciliation reports it; it is not invoiced unbooked
            if entry.superseded_by_id is not None:
                continue  # a corrected version: its posting is reversed, the new version is billed instead
            unit = (posting.amount / posting.quantity).quantize(CENT)
            groups[(entry.project_id, unit)].append((entry, posting))
        lines = []
        ids: list[str] = []
        for (project_id, unit), items in sorted(groups.items()):
            quantity = sum((p.quantity for _, p in items), Decimal(0))
            amount = sum((p.amount for _, p in items), Decimal(0))
            sources = [e.id for e, _ in items]
            ids.extend(sources)
            lines.append(InvoiceLine(description=f"Professional services, {project_id}, {len(items)} entries",
                                     quantity=quantity, unit_price=unit, amount=amount, source_type="time_entry",
                                     source_ids=sources))
        return lines, ids

    # -- posting and flow-back -----------------------------------------------------------------------------------

    async def post(self, invoice_id: str) -> InvoiceDraft:
        draft = await self.get(invoice_id)
        if draft.state == "posted":
            return draft
        invoice = await self.systems.erp.post_invoice(invoice_id, f"invoice-post:{invoice_id}")
        opportunity_id = await self._opportunity_of(draft.contract_id)
        async with self.db.transaction() as conn:
            updated = await conn.execute(invoice_drafts.update().where(
                invoice_drafts.c.id == invoice_id, invoice_drafts.c.state == "draft").values(
                state="posted", invoice=invoice, updated_at=utcnow()))
            if updated.rowcount == 1:
                for entry_id in draft.time_entry_ids:
                    await enqueue_job(self.db, conn, "psa.time_entry.invoiced", f"invoice:{invoice_id}:{entry_id}",
                                      {"time_entry_id": entry_id, "invoice_id": invoice_id})
                for milestone_id in draft.milestone_ids:
                    await enqueue_job(self.db, conn, "psa.milestone.invoiced", f"invoice:{invoice_id}:{milestone_id}",
                                      {"milestone_id": milestone_id, "invoice_id": invoice_id})
                if opportunity_id:
                    await enqueue_job(self.db, conn, "crm.opportunity.invoice_status",
                                      f"invoice:{invoice_id}:{opportunity_id}",
                                      {"opportunity_id": opportunity_id, "invoice_status": invoice.state,
                                       "invoice_id": invoice_id})
                await record_event(conn, "invoice.posted", {
                    "invoice_id": invoice_id, "contract_id": draft.contract_id,
                    "customer_id": invoice.customer_id},
                    {"period": draft.period, "total": str(invoice.total), "currency": invoice.currency,
                     "time_entries": len(draft.time_entry_ids), "milestones": len(draft.milestone_ids)})
        self.on_jobs()
        self.on_events()
        return await self.get(invoice_id)

    async def _opportunity_of(self, contract_id: str) -> str | None:
        """The won opportunity behind a contract: the one this tier provisioned it from, else the CRM's link."""
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(provisionings.c.opportunity_id, provisionings.c.resources))).all()
        for row in rows:
            if (row.resources or {}).get("contract_id") == contract_id:
                return str(row.opportunity_id)
        won = await self.systems.crm.opportunities(stage="closed_won")
        return next((o.id for o in won if o.signed_contract_ref == contract_id), None)

    async def _entry_invoiced(self, payload: Any) -> None:
        try:
            await self.systems.psa.transition_time_entry(payload["time_entry_id"], "invoiced")
        except DownstreamProblem as exc:
            if exc.status != 409 or (await self.systems.psa.time_entry(payload["time_entry_id"])).state != "invoiced":
                raise

    async def _milestone_invoiced(self, payload: Any) -> None:
        try:
            await self.systems.psa.transition_milestone(payload["milestone_id"], "invoiced")
        except DownstreamProblem as exc:
            if exc.status != 409:
                raise

    async def _crm_invoice_status(self, payload: Any) -> None:
        await self.systems.crm.update_opportunity(payload["opportunity_id"],
                                                  {"invoice_status": payload["invoice_status"]})

    # -- reading -----------------------------------------------------------------------------------------------

    async def get(self, invoice_id: str) -> InvoiceDraft:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(invoice_drafts).where(invoice_drafts.c.id == invoice_id))).first()
        if row is None:
            raise NotFound(f"no invoice {invoice_id!r} was drafted here", slug="unknown-id")
        flow_back = FlowBack(jobs=await self.jobs.progress(f"invoice:{invoice_id}:")) if row.state == "posted" else None
        return _view(row, flow_back)

    async def list(self, *, contract_id: str | None, period: str | None, state: str | None, cursor: str | None,
                   limit: int) -> InvoiceDraftPage:
        query = sa.select(invoice_drafts)
        for column, value in ((invoice_drafts.c.contract_id, contract_id), (invoice_drafts.c.period, period),
                              (invoice_drafts.c.state, state)):
            if value is not None:
                query = query.where(column == value)
        if cursor:
            query = query.where(invoice_drafts.c.id > cursor)
        async with self.db.read() as conn:
            rows = (await conn.execute(query.order_by(invoice_drafts.c.id).limit(limit + 1))).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return InvoiceDraftPage(items=[_view(r, None) for r in rows], next_cursor=rows[-1].id if more else None)


def _view(row: Any, flow_back: FlowBack | None) -> InvoiceDraft:
    sources = row.sources or {}
    drawdown = msgspec.convert(sources["drawdown"], Drawdown) if sources.get("drawdown") else None
    return InvoiceDraft(
        id=row.id, contract_id=row.contract_id, period=row.period, billing_model=row.billing_model, state=row.state,
        invoice=msgspec.convert(row.invoice, Invoice), time_entry_ids=list(sources.get("time_entry_ids", [])),
        milestone_ids=list(sources.get("milestone_ids", [])), drawdown=drawdown, flow_back=flow_back,
        created_at=row.created_at, updated_at=row.updated_at)
