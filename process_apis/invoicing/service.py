"""Invoicing: invoices per contract and period, by the contract's billing terms, every line traceable.

What a period bills (README, "Billing policies"):
- time and materials: posted time of the period (current versions only), at the amounts the ERP booked, a line
  per project and unit price;
- milestone: each accepted milestone, in the period it was accepted (never before the contract starts nor
  after it ends), in the contract's currency;
- fixed fee: the schedule's instalments of the period;
- retainer: the period's fee; posted time is drawn against it (by hours when the contract has an hours
  allowance, else by amount) and what is beyond is billed as overage at the amounts the ERP booked;
- whatever the model: the period's posted billable expenses, at cost or with the contract's markup
  (process_apis/expenses/billing.py), each billed once (a retainer's fee does not cover them).

Time is counted in whole minutes (issue 18): a time line's amount is the sum of the postings it bills, each computed
once from its minutes; the hours it shows are its minutes rounded half-even to the hundredth (``time_figures``).

Only active contracts, only periods inside the term, and the contract's cumulative billing (issued invoices and
drafts) never above its total value: a refusal is a 422 problem with a reason. Each source (time entry,
milestone, instalment, retainer fee) is reserved by the draft that bills it (``invoice_sources``): another draft
cannot take it, voiding the draft releases it, posting checks again and keeps it for good.

Late items: drafting a period whose invoice is posted bills what the period still has unbilled (time posted
after the invoice, a milestone accepted since) on a supplementary invoice for that period, naming the invoice it
supplements; with nothing unbilled it answers the posted invoice, as before. Posting flows the status back:
entries and milestones -> ``invoiced`` in the PSA and the invoice status to the CRM, as durable jobs enqueued in
the same transaction that records the posting.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec
import sqlalchemy as sa

from contracts.canonical import (
    INVOICE_ISSUED,
    Contract,
    Invoice,
    InvoiceLine,
    Milestone,
    Posting,
    TimeEntry,
    display_hours,
    plain_decimal,
)
from process_apis.billing.eligibility import CENT, time_amount
from process_apis.billing.facts import lock_contracts
from process_apis.billing.posting import booked_rates
from process_apis.events.outbox import record_event
from process_apis.expenses.billing import expense_lines
from process_apis.invoicing.einvoicing import EInvoicing, enqueue_delivery
from process_apis.invoicing.models import (
    Drawdown,
    FlowBack,
    InvoiceDraft,
    InvoiceDraftPage,
    InvoiceHold,
    InvoiceTax,
    Released,
    TaxHeld,
    ValueHold,
    VoidedInvoice,
)
from process_apis.invoicing.tax import InvoiceTaxes, TaxServiceUnavailable, tax_lines_body
from process_apis.invoicing.terms import (
    in_term,
    milestone_period,
    next_period,
    period_bounds,
    period_of,
    previous_period,
)
from process_apis.jobs import JobRunner, enqueue_job
from process_apis.provisioning.service import provisioned_opportunity
from process_apis.store import invoice_drafts, invoice_sources, invoice_taxes, invoices
from process_apis.systems import Systems
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime import correlation
from runtime.downstream import DownstreamProblem, found_or_none
from runtime.problems import BadRequest, Conflict, FieldError, NotFound, ProblemError, Unprocessable
from runtime.storage import utcnow

ZERO = Decimal(0)
# How many times a draft is computed again when other requests keep invoicing the contract meanwhile.
DRAFT_ATTEMPTS = 5
IN_USE_PAUSE_SECONDS = 0.2
Source = tuple[str, str]  # (source_type, source_id)


def schedule_source(contract_id: str, line_no: int) -> str:
    return f"{contract_id}:line:{line_no}"


def retainer_source(contract_id: str, period: str) -> str:
    return f"{contract_id}:{period}"


class TermsRefused(Unprocessable):
    """The contract's terms do not allow this invoice; ``reason`` says which term."""

    def __init__(self, detail: str, *, slug: str, reason: str, **extensions: Any) -> None:
        super().__init__(detail, slug=slug, reason=reason, **extensions)


@dataclass
class Bill:
    """What one invoice bills: its lines, the sources they reserve, what was left out and why."""

    lines: list[InvoiceLine] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    time_entry_ids: list[str] = field(default_factory=list)
    milestone_ids: list[str] = field(default_factory=list)
    drawdown: Drawdown | None = None
    holds: list[InvoiceHold] = field(default_factory=list)
    value_holds: list[ValueHold] = field(default_factory=list)

    @property
    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)


@dataclass
class Billed:
    """What the contract has billed so far: sources on issued ERP invoices or reserved by this tier's drafts,
    and the money of issued invoices this tier did not draft (the history before it, or by hand)."""

    sources: set[Source]
    untracked_total: Decimal
    periods: set[str] = field(default_factory=set)  # periods with an issued invoice or a draft of this tier
    # This tier's invoices of the contract, (id, state), as the bill was computed from them: the draft is recorded
    # only if they are the same under the contract's lock (``_record_draft``), else it is computed again.
    seen: frozenset[tuple[str, str]] = frozenset()


class BillingMoved(Exception):
    """Another draft, voiding or posting of the contract was recorded while this bill was computed."""


class InvoicingService:
    def __init__(self, uow: UnitOfWorkFactory, systems: Systems, jobs: JobRunner) -> None:
        self.uow = uow
        self.db = uow.db
        self.systems = systems
        self.jobs = jobs
        jobs.handle("psa.time_entry.invoiced", self._entry_invoiced)
        jobs.handle("psa.milestone.invoiced", self._milestone_invoiced)
        jobs.handle("crm.opportunity.invoice_status", self._crm_invoice_status)
        self.taxes = InvoiceTaxes(uow, systems, jobs)
        self.taxes.drafts_with(self.draft)
        self.einvoicing = EInvoicing(uow, systems, jobs, self.taxes)

    async def adopt_earlier_drafts(self) -> int:
        """Copy the invoices an earlier release recorded (one per contract and period) into ``invoices``,
        with the sources they bill; idempotent, so every start may run it."""
        async with self.uow() as uow:
            rows = (await uow.conn.execute(sa.select(invoice_drafts).where(
                invoice_drafts.c.id.not_in(sa.select(invoices.c.id))))).all()
            for row in rows:
                invoice = msgspec.convert(row.invoice, Invoice)
                await uow.conn.execute(self.db.insert_ignoring_conflicts(invoices, ["id"]).values(
                    id=row.id, contract_id=row.contract_id, period=row.period, sequence=1,
                    billing_model=row.billing_model, state=row.state,
                    live_key=f"{row.contract_id}:{row.period}" if row.state == "draft" else None,
                    subtotal=invoice.subtotal, invoice=row.invoice, sources=row.sources,
                    correlation_id=row.correlation_id, created_at=row.created_at, updated_at=row.updated_at))
                await self._reserve(uow.conn, row.id, row.contract_id, _line_sources(invoice))
        return len(rows)

    # -- drafting ----------------------------------------------------------------------------------------------

    async def request_draft(self, contract_id: str, period: str) -> tuple[bool, InvoiceDraft] | TaxHeld:
        """Draft the period, or hold it when its region's tax service is unavailable (drafted later by itself)."""
        try:
            return await self.draft(contract_id, period)
        except TaxServiceUnavailable as unavailable:
            return await self.taxes.hold(await self._contract(contract_id), period, unavailable)

    async def draft(self, contract_id: str, period: str) -> tuple[bool, InvoiceDraft]:
        """Draft the period. What a bill may take (the value left, the room for expenses, the sources) depends on
        the contract's other invoices: computed without a lock (it calls the ERP and the PSA), it is recorded only
        if they did not change meanwhile, and computed again if they did (two periods drafted at once)."""
        for _ in range(DRAFT_ATTEMPTS):
            try:
                return await self._draft(contract_id, period)
            except BillingMoved:
                continue
        raise Conflict(f"contract {contract_id} was invoiced by other requests throughout; draft again",
                       slug="draft-exists")

    async def _draft(self, contract_id: str, period: str) -> tuple[bool, InvoiceDraft]:
        live = await self._live(contract_id, period)
        if live is not None:
            return False, await self.get(live)
        contract = await self._contract(contract_id)
        check_billable(contract, period)
        billed = await self._billed(contract)
        bill = await self._bill(contract, period, billed)
        posted = await self._posted_of(contract.id, period)
        if not bill.lines:
            # A request for the same period recorded its draft while this one computed: what it took is why
            # nothing is left here, so its draft is the answer (200), not "nothing to invoice".
            live = await self._live(contract_id, period)
            if live is not None:
                return False, await self.get(live)
            if posted and not bill.value_holds:
                return False, await self.get(posted[-1])  # the period is invoiced and nothing arrived since
            raise Unprocessable(f"contract {contract_id} has nothing to invoice for {period}",
                                slug="nothing-to-invoice", holds=msgspec.to_builtins(bill.holds),
                                value_holds=msgspec.to_builtins(bill.value_holds))
        if contract.total_value is not None:  # checked before the ERP drafts anything, and again under the lock
            async with self.db.read() as conn:
                check_value(contract, billed.untracked_total + await self._tracked_total(
                    conn, contract.id, ("draft", "posted")), bill.subtotal)
        sequence = await self._next_sequence(contract.id, period)
        tax = await self.taxes.calculate(contract, f"{contract.id}:{period}:{sequence}", bill.lines)
        lines = [msgspec.to_builtins(line) for line in bill.lines]
        # The tax is part of what the ERP books: a different answer is a different ERP draft. So are the contract's
        # invoices the bill was computed from: a bill computed again after they moved is never the voided one.
        digest = hashlib.sha256(msgspec.json.encode([lines, tax_lines_body(tax), sorted(billed.seen)])).hexdigest()[:16]
        try:
            invoice = await self.systems.erp.create_invoice({
                "customer_id": contract.customer_id, "contract_id": contract.id,
                "legal_entity_id": contract.legal_entity_id, "currency": contract.currency, "period": period,
                "lines": lines, "tax_lines": tax_lines_body(tax),
            }, f"invoice:{contract.id}:{period}:{sequence}:{digest}")
        except DownstreamProblem as exc:
            if exc.slug != "idempotency-key-in-use":
                raise
            # The same draft, requested at the same moment by someone else, is being made: once it is recorded,
            # the next attempt answers it (200), as a later request would.
            await asyncio.sleep(IN_USE_PAUSE_SECONDS)
            raise BillingMoved(contract.id) from exc
        try:
            created = await self._record_draft(contract, period, sequence, posted[-1] if posted else None, invoice,
                                               bill, billed, tax)
        except (ProblemError, BillingMoved):
            # Another draft took the period or a source, or changed what this one may bill: this ERP draft is not
            # needed (after BillingMoved, ``draft`` computes the bill again).
            await self._discard(invoice.id)
            live = await self._live(contract_id, period)
            if live is not None:
                return False, await self.get(live)
            raise
        return created, await self.get(invoice.id)

    async def _discard(self, invoice_id: str) -> None:
        """Void an ERP draft no invoice of this tier records. Requests that computed the same bill at once share
        it (one Idempotency-Key): another of them voiding it meanwhile, or having voided it, is the same end."""
        try:
            await self.systems.erp.void_invoice(invoice_id, f"invoice-void:{invoice_id}")
        except DownstreamProblem as exc:
            if exc.slug not in ("idempotency-key-in-use", "invalid-transition"):
                raise

    async def _record_draft(self, contract: Contract, period: str, sequence: int, supplements_id: str | None,
                            invoice: Invoice, bill: Bill, billed: Billed, tax: InvoiceTax) -> bool:
        now = utcnow()
        async with self.uow() as uow:
            await lock_contracts(self.db, uow.conn, [contract.id])
            known = (await uow.conn.execute(sa.select(invoices.c.id).where(invoices.c.id == invoice.id))).scalar()
            if known is not None:
                return False  # a retry of this very draft
            taken_sequence = (await uow.conn.execute(sa.select(invoices.c.id).where(
                invoices.c.contract_id == contract.id, invoices.c.period == period,
                invoices.c.sequence == sequence))).scalar()
            if taken_sequence is not None:  # another draft of the period was recorded meanwhile
                raise Conflict(f"contract {contract.id} has a newer invoice for {period}; draft again",
                               slug="draft-exists")
            if await self._seen(uow.conn, contract.id) != billed.seen:
                raise BillingMoved(contract.id)
            if contract.total_value is not None:
                tracked = await self._tracked_total(uow.conn, contract.id, ("draft", "posted"))
                check_value(contract, billed.untracked_total + tracked, bill.subtotal)
            inserted = await self.db.insert_new(
                uow.conn, invoices, ["live_key"], id=invoice.id, contract_id=contract.id, period=period,
                sequence=sequence, billing_model=contract.billing_model, state="draft",
                live_key=f"{contract.id}:{period}", supplements_id=supplements_id, subtotal=invoice.subtotal,
                invoice=invoice,
                sources={"time_entry_ids": bill.time_entry_ids, "milestone_ids": bill.milestone_ids,
                         "drawdown": msgspec.to_builtins(bill.drawdown) if bill.drawdown else None,
                         "holds": msgspec.to_builtins(bill.holds),
                         "value_holds": msgspec.to_builtins(bill.value_holds)},
                correlation_id=correlation.current_correlation_id(), created_at=now, updated_at=now)
            if not inserted:
                raise Conflict(f"contract {contract.id} has a draft for {period} already", slug="draft-exists")
            taken = await self._reserve(uow.conn, invoice.id, contract.id, bill.sources)
            if taken:
                raise Conflict(f"another invoice holds {', '.join(s for _, s in taken)}", slug="sources-reserved",
                               sources=[{"source_type": t, "source_id": s} for t, s in taken])
            await uow.conn.execute(invoice_taxes.insert().values(
                invoice_id=invoice.id, calculation=msgspec.to_builtins(tax), created_at=now))
            await self.taxes.released(uow.conn, contract.id, period,
                                      f"drafted as {invoice.id}, taxed by {tax.engine} ({tax.reference})")
            await record_event(uow.conn, "invoice.drafted", {
                "invoice_id": invoice.id, "contract_id": contract.id, "customer_id": contract.customer_id},
                {"period": period, "subtotal": str(bill.subtotal), "total": str(invoice.total),
                 "currency": contract.currency, "lines": len(bill.lines), "sequence": sequence,
                 "supplements_id": supplements_id})
        return True

    async def _reserve(self, conn: Any, invoice_id: str, contract_id: str, sources: Iterable[Source]) -> list[Source]:
        """Hold each source for this invoice; returns the ones another invoice holds already."""
        taken = []
        for source_type, source_id in sources:
            if not await self.db.insert_new(conn, invoice_sources, ["source_type", "source_id"],
                                            source_type=source_type, source_id=source_id, invoice_id=invoice_id,
                                            contract_id=contract_id):
                holder = (await conn.execute(sa.select(invoice_sources.c.invoice_id).where(
                    invoice_sources.c.source_type == source_type,
                    invoice_sources.c.source_id == source_id))).scalar()
                if holder != invoice_id:
                    taken.append((source_type, source_id))
        return taken

    async def _tracked_total(self, conn: Any, contract_id: str, states: Sequence[str],
                             *where: sa.ColumnElement[bool]) -> Decimal:
        amounts = (await conn.execute(sa.select(invoices.c.subtotal).where(
            invoices.c.contract_id == contract_id, invoices.c.state.in_(states), *where))).scalars().all()
        return sum(amounts, ZERO)

    async def _contract(self, contract_id: str) -> Contract:
        contract = await found_or_none(self.systems.erp.contract(contract_id))
        if contract is None:
            raise BadRequest(f"no contract {contract_id!r}", slug="unknown-id",
                             errors=[FieldError(pointer="/contract_id", detail="no such contract")])
        return contract

    async def _billed(self, contract: Contract) -> Billed:
        erp_invoices = await self.systems.erp.invoices(contract_id=contract.id)
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(invoices.c.id, invoices.c.period, invoices.c.state).where(
                invoices.c.contract_id == contract.id))).all()
            ours = {r.id for r in rows}
            reserved = {(r.source_type, r.source_id) for r in (await conn.execute(sa.select(
                invoice_sources.c.source_type, invoice_sources.c.source_id).where(
                invoice_sources.c.contract_id == contract.id))).all()}
        issued = [i for i in erp_invoices if i.state in INVOICE_ISSUED]
        return Billed(sources=reserved | {s for i in issued for s in _line_sources(i)},
                      untracked_total=sum((i.subtotal for i in issued if i.id not in ours), ZERO),
                      periods={i.period for i in issued if i.period} | {r.period for r in rows if r.state != "void"},
                      seen=frozenset((r.id, r.state) for r in rows))

    async def _seen(self, conn: Any, contract_id: str) -> frozenset[tuple[str, str]]:
        return frozenset((r.id, r.state) for r in (await conn.execute(sa.select(invoices.c.id, invoices.c.state).where(
            invoices.c.contract_id == contract_id))).all())

    async def _bill(self, contract: Contract, period: str, billed: Billed) -> Bill:
        first, last = period_bounds(period)
        window = (max(first, contract.start_date), min(last, contract.end_date) if contract.end_date else last)
        model = contract.billing_model
        if model == "time_and_materials":
            bill = await self._time_and_materials(contract, window, billed)
        elif model == "retainer":
            bill = await self._retainer(contract, period, window, billed)
        elif model == "milestone":
            bill = await self._milestones(contract, period, billed)
        else:
            bill = self._fixed_fee(contract, period, billed)
        # Whatever the model, the period's posted billable expenses are billed with it, by the one rule of
        # process_apis/expenses/billing.py (at cost or with the contract's markup, each reserved by this invoice).
        lines, sources = await expense_lines(self.db, contract.id, window, billed.sources,
                                             contract.expense_markup_percent)
        if lines and contract.total_value is not None:
            room = contract.total_value - await self._billed_total(contract, billed) - bill.subtotal \
                - await self._committed(contract, billed, bill)
            lines, sources, held = within_value(contract, lines, sources, room)
            bill.value_holds.extend(held)
        bill.lines.extend(lines)
        bill.sources.extend(sources)
        return bill

    async def _billed_total(self, contract: Contract, billed: Billed) -> Decimal:
        async with self.db.read() as conn:
            return billed.untracked_total + await self._tracked_total(conn, contract.id, ("draft", "posted"))

    async def _committed(self, contract: Contract, billed: Billed, bill: Bill) -> Decimal:
        """What the contract's own terms still have to bill beyond ``bill`` and what is billed: the instalments and
        retainer fees of periods in its term not invoiced yet, its milestones in its currency, time and materials'
        posted time not billed yet. An expense is billed only out of the value these leave (``within_value``),
        never out of theirs."""
        taken = billed.sources | set(bill.sources)
        schedule = contract.billing_schedule
        committed = sum((line.amount for line in schedule.lines
                         if ("fixed_fee", schedule_source(contract.id, line.line_no)) not in taken
                         and line.billing_period is not None and line.billing_period not in billed.periods
                         and in_term(line.billing_period, contract)), ZERO)
        if contract.billing_model == "retainer" and contract.end_date is not None:
            fee = schedule.period_fee if schedule.period_fee is not None else (
                contract.billing_profile.scheduled_amount or ZERO)
            period, last = period_of(contract.start_date), period_of(contract.end_date)
            while period <= last:
                if ("retainer", retainer_source(contract.id, period)) not in taken and period not in billed.periods:
                    committed += fee
                period = next_period(period)
        if contract.billing_model == "milestone":
            projects = await self.systems.psa.projects(contract_id=contract.id)
            milestones = [m for ms in await asyncio.gather(
                *(self.systems.psa.milestones(project_id=p.id) for p in projects)) for m in ms]
            committed += sum((m.amount for m in milestones if m.state != "invoiced"
                              and m.currency == contract.currency and ("milestone", m.id) not in taken), ZERO)
        if contract.billing_model == "time_and_materials":  # a retainer's fee covers its time (the overage aside)
            unbilled: dict[str, Decimal] = defaultdict(Decimal)
            for posting in await self.systems.erp.postings(contract_id=contract.id):
                if posting.source_type == "time_entry" and ("time_entry", posting.source_id) not in taken:
                    unbilled[posting.source_id] += posting.amount  # a reversal nets its original out
            committed += sum((amount for amount in unbilled.values() if amount > 0), ZERO)
        return committed

    async def _booked_time(self, contract: Contract, window: tuple[dt.date, dt.date], states: Sequence[str],
                           bill: Bill) -> list[tuple[TimeEntry, Posting]]:
        """The contract's current (never superseded) time in the window, in the given PSA states, with the ERP
        posting of each; time the ERP has not booked is left out, as a hold (reconciliation reports it too)."""
        projects = await self.systems.psa.projects(contract_id=contract.id)
        first, last = period_bounds(period_of(window[0]))
        found: list[TimeEntry] = [e for es in await asyncio.gather(
            *(self.systems.psa.time_entries(project_id=p.id, state=state, from_date=first, to_date=last)
              for p in projects for state in states)) for e in es]
        postings: dict[str, Posting] = {p.source_id: p for p in await self.systems.erp.postings(
            contract_id=contract.id, from_date=first, to_date=last) if p.source_type == "time_entry"
            and p.reverses_posting_id is None}
        booked = []
        for entry in sorted(found, key=lambda e: (e.work_date, e.id)):
            if entry.superseded_by_id is not None:
                continue  # a corrected entry: only its current version is ever billed
            if not window[0] <= entry.work_date <= window[1]:
                bill.holds.append(InvoiceHold(source_type="time_entry", source_id=entry.id,
                                              reason="OUTSIDE_CONTRACT_TERM",
                                              detail=f"worked on {entry.work_date}, outside the contract's term"))
                continue
            posting = postings.get(entry.id)
            if posting is None or posting.posted_minutes == 0:
                if entry.billable:
                    bill.holds.append(InvoiceHold(source_type="time_entry", source_id=entry.id,
                                                  reason="NOT_BOOKED_IN_ERP",
                                                  detail="posted in the PSA, no ERP posting to bill"))
                continue
            booked.append((entry, posting))
        return booked

    async def _time_and_materials(self, contract: Contract, window: tuple[dt.date, dt.date], billed: Billed) -> Bill:
        bill = Bill()
        booked = await self._booked_time(contract, window, ("posted",), bill)
        fresh = [(e, p) for e, p in booked if ("time_entry", e.id) not in billed.sources]
        bill.lines.extend(time_lines(fresh, await booked_rates(self.db, [e.id for e, _ in fresh])))
        bill.time_entry_ids = [e.id for e, _ in fresh]
        bill.sources = [("time_entry", e.id) for e, _ in fresh]
        return bill

    async def _retainer(self, contract: Contract, period: str, window: tuple[dt.date, dt.date],
                        billed: Billed) -> Bill:
        bill = Bill()
        schedule = contract.billing_schedule
        fee = schedule.period_fee if schedule.period_fee is not None else (
            contract.billing_profile.scheduled_amount or ZERO)
        fee_source = ("retainer", retainer_source(contract.id, period))
        if fee_source not in billed.sources:
            bill.lines.append(InvoiceLine(description=f"Retainer {period}", quantity=Decimal(1), unit_price=fee,
                                          amount=fee, source_type="retainer", source_ids=[fee_source[1]]))
            bill.sources.append(fee_source)
        booked = await self._booked_time(contract, window, ("posted", "invoiced"), bill)
        earlier = [(e, p) for e, p in booked if ("time_entry", e.id) in billed.sources]
        fresh = [(e, p) for e, p in booked if ("time_entry", e.id) not in billed.sources and e.state == "posted"]
        if schedule.hours_allowance is not None:  # counted in minutes, shown in hours (time_figures)
            carried = await self._carried_minutes(contract, period) if (
                schedule.unused_hours == "carry_forward") else ZERO
            allowance = schedule.hours_allowance * 60 + carried
            left = max(ZERO, allowance - sum((p.posted_minutes for _, p in earlier), ZERO))
            covered: list[tuple[TimeEntry, Decimal]] = []
            over: list[tuple[TimeEntry, Posting, Decimal]] = []
            for entry, posting in fresh:  # in work-date order: the allowance covers the earliest minutes
                used = min(left, posting.posted_minutes)
                left -= used
                if used:
                    covered.append((entry, used))
                if posting.posted_minutes > used:
                    over.append((entry, posting, posting.posted_minutes - used))
            bill.lines.extend(covered_lines(period, covered))
            bill.lines.extend(overage_lines(period, over, await booked_rates(self.db, [e.id for e, _, _ in over])))
            used_minutes = sum((p.posted_minutes for _, p in [*earlier, *fresh]), ZERO)
            overage_minutes = sum((minutes for _, _, minutes in over), ZERO)
            drawn = sum((p.amount for _, p in [*earlier, *fresh]), ZERO)
            overage = sum((line.amount for line in bill.lines if line.unit_price and line.source_type == "time_entry"),
                          ZERO)
            bill.drawdown = Drawdown(
                retainer_amount=fee, drawn_amount=drawn, remaining_amount=max(ZERO, fee - drawn),
                overage_amount=overage, allowance_hours=schedule.hours_allowance,
                carried_in_hours=time_figures(carried)[0], used_hours=time_figures(used_minutes)[0],
                unused_hours=time_figures(max(ZERO, allowance - used_minutes))[0],
                overage_hours=time_figures(overage_minutes)[0])
        else:  # drawn down by amount: what the period's time adds beyond the fee is the overage
            drawn_before = sum((p.amount for _, p in earlier), ZERO)
            drawn_now = sum((p.amount for _, p in fresh), ZERO)
            overage = max(ZERO, drawn_now - max(ZERO, fee - drawn_before))
            if overage > 0:
                bill.lines.append(InvoiceLine(description=f"Time beyond the retainer, {period}", quantity=Decimal(1),
                                              unit_price=overage, amount=overage, source_type="time_entry",
                                              source_ids=[e.id for e, _ in fresh]))
            else:
                bill.lines.extend(covered_lines(period, [(e, p.posted_minutes) for e, p in fresh]))
            drawn = drawn_before + drawn_now
            bill.drawdown = Drawdown(retainer_amount=fee, drawn_amount=drawn,
                                     remaining_amount=max(ZERO, fee - drawn), overage_amount=overage)
        bill.time_entry_ids = [e.id for e, _ in fresh]
        bill.sources.extend(("time_entry", e.id) for e, _ in fresh)
        return bill

    async def _carried_minutes(self, contract: Contract, period: str) -> Decimal:
        """Minutes the previous period left unused, when it is inside the term (one period only, never more)."""
        allowance = (contract.billing_schedule.hours_allowance or ZERO) * 60
        previous = previous_period(period)
        if not in_term(previous, contract):
            return ZERO
        first, last = period_bounds(previous)
        projects = await self.systems.psa.projects(contract_id=contract.id)
        current = {e.id for es in await asyncio.gather(
            *(self.systems.psa.time_entries(project_id=p.id, from_date=first, to_date=last) for p in projects))
            for e in es if e.superseded_by_id is None and e.state in ("posted", "invoiced")}
        used = sum((p.posted_minutes for p in await self.systems.erp.postings(
            contract_id=contract.id, from_date=max(first, contract.start_date), to_date=last)
            if p.source_type == "time_entry" and p.source_id in current), ZERO)
        return max(ZERO, allowance - used)

    async def _milestones(self, contract: Contract, period: str, billed: Billed) -> Bill:
        bill = Bill()
        projects = await self.systems.psa.projects(contract_id=contract.id)
        accepted: list[Milestone] = [m for ms in await asyncio.gather(
            *(self.systems.psa.milestones(project_id=p.id, state="accepted") for p in projects)) for m in ms]
        for milestone in sorted(accepted, key=lambda m: (m.accepted_on or m.due_date, m.id)):
            if milestone_period(milestone, contract) != period or ("milestone", milestone.id) in billed.sources:
                continue
            if milestone.currency != contract.currency:
                bill.holds.append(InvoiceHold(
                    source_type="milestone", source_id=milestone.id, reason="CURRENCY_MISMATCH",
                    detail=f"the milestone is in {milestone.currency}, the contract bills in {contract.currency}"))
                continue
            bill.lines.append(InvoiceLine(description=milestone.name, quantity=Decimal(1), unit_price=milestone.amount,
                                          amount=milestone.amount, source_type="milestone", source_ids=[milestone.id]))
            bill.milestone_ids.append(milestone.id)
            bill.sources.append(("milestone", milestone.id))
        return bill

    def _fixed_fee(self, contract: Contract, period: str, billed: Billed) -> Bill:
        bill = Bill()
        lines = contract.billing_schedule.lines
        if not lines:
            bill.holds.append(InvoiceHold(source_type="fixed_fee", source_id=contract.id, reason="NO_BILLING_SCHEDULE",
                                          detail="a fixed fee is billed by its schedule's instalments; it has none"))
        for line in sorted(lines, key=lambda line: line.line_no):
            source = ("fixed_fee", schedule_source(contract.id, line.line_no))
            if line.billing_period != period or source in billed.sources:
                continue
            complete = f" ({line.percent_complete}% complete)" if line.percent_complete is not None else ""
            bill.lines.append(InvoiceLine(
                description=f"{line.description or f'Fixed fee instalment {line.line_no}'}{complete}",
                quantity=Decimal(1), unit_price=line.amount, amount=line.amount, source_type="fixed_fee",
                source_ids=[source[1]]))
            bill.sources.append(source)
        return bill

    async def _live(self, contract_id: str, period: str) -> str | None:
        async with self.db.read() as conn:
            return (await conn.execute(sa.select(invoices.c.id).where(
                invoices.c.live_key == f"{contract_id}:{period}"))).scalar()

    async def _posted_of(self, contract_id: str, period: str) -> list[str]:
        async with self.db.read() as conn:
            return list((await conn.execute(sa.select(invoices.c.id).where(
                invoices.c.contract_id == contract_id, invoices.c.period == period,
                invoices.c.state == "posted").order_by(invoices.c.sequence))).scalars().all())

    async def _next_sequence(self, contract_id: str, period: str) -> int:
        async with self.db.read() as conn:
            highest = (await conn.execute(sa.select(sa.func.max(invoices.c.sequence)).where(
                invoices.c.contract_id == contract_id, invoices.c.period == period))).scalar()
        return int(highest or 0) + 1

    # -- voiding -----------------------------------------------------------------------------------------------

    async def void(self, invoice_id: str) -> VoidedInvoice:
        row = await self._row(invoice_id)
        if row.state == "posted":
            raise Conflict(f"invoice {invoice_id} is posted: a credit note corrects it, voiding cannot",
                           slug="invalid-transition", from_state="posted", to_state="void")
        invoice = msgspec.convert(row.invoice, Invoice)
        if row.state == "draft":
            invoice = await self.systems.erp.void_invoice(invoice_id, f"invoice-void:{invoice_id}")
        async with self.uow() as uow:
            released = (await uow.conn.execute(sa.select(invoice_sources.c.source_type, invoice_sources.c.source_id)
                                           .where(invoice_sources.c.invoice_id == invoice_id))).all()
            await uow.conn.execute(invoice_sources.delete().where(invoice_sources.c.invoice_id == invoice_id))
            await uow.conn.execute(invoices.update().where(invoices.c.id == invoice_id, invoices.c.state == "draft")
                               .values(state="void", live_key=None, invoice=invoice, updated_at=utcnow()))
            voided_at = (await uow.conn.execute(sa.select(invoices.c.updated_at).where(
                invoices.c.id == invoice_id))).scalar_one()
        by_type: dict[str, list[str]] = defaultdict(list)
        for source_type, source_id in released:
            by_type[source_type].append(source_id)
        return VoidedInvoice(
            id=invoice_id, contract_id=row.contract_id, period=row.period, invoice=invoice, voided_at=voided_at,
            released=Released(time_entry_ids=sorted(by_type["time_entry"]), milestone_ids=sorted(by_type["milestone"]),
                              schedule_sources=sorted(by_type["fixed_fee"] + by_type["retainer"]),
                              expense_ids=sorted(by_type["expense"])))

    # -- posting and flow-back -----------------------------------------------------------------------------------

    async def post(self, invoice_id: str) -> InvoiceDraft:
        row = await self._row(invoice_id)
        if row.state == "posted":
            return await self.get(invoice_id)
        if row.state == "void":
            raise Conflict(f"invoice {invoice_id} was voided", slug="invalid-transition", from_state="void",
                           to_state="posted")
        draft = _view(row, None)
        contract = await self._contract(row.contract_id)
        check_billable(contract, row.period)
        await self._check_milestones_unbilled(draft)
        await self._check_time_current(draft, contract)
        billed = await self._billed(contract)
        if contract.total_value is not None:
            async with self.uow() as uow:
                await lock_contracts(self.db, uow.conn, [contract.id])
                issued = await self._tracked_total(uow.conn, contract.id, ("posted",))
                claimed = await self._tracked_total(uow.conn, contract.id, ("draft",), invoices.c.id != invoice_id,
                                                    invoices.c.posting_claimed_at.is_not(None))
                check_value(contract, billed.untracked_total + issued + claimed, draft.invoice.subtotal)
                # Claimed for good (a failed ERP call may have posted it): posted or voided, it no longer counts.
                await uow.conn.execute(invoices.update().where(
                    invoices.c.id == invoice_id, invoices.c.state == "draft").values(posting_claimed_at=utcnow()))
        invoice = await self.systems.erp.post_invoice(invoice_id, f"invoice-post:{invoice_id}")
        opportunity_id = await self._opportunity_of(draft.contract_id)
        async with self.uow() as uow:
            updated = await uow.conn.execute(invoices.update().where(
                invoices.c.id == invoice_id, invoices.c.state == "draft").values(
                state="posted", live_key=None, invoice=invoice, updated_at=utcnow()))
            if updated.rowcount == 1:
                for entry_id in draft.time_entry_ids:
                    await enqueue_job(self.db, uow.conn, "psa.time_entry.invoiced", f"invoice:{invoice_id}:{entry_id}",
                                      {"time_entry_id": entry_id, "invoice_id": invoice_id})
                for milestone_id in draft.milestone_ids:
                    await enqueue_job(self.db, uow.conn, "psa.milestone.invoiced",
                                      f"invoice:{invoice_id}:{milestone_id}",
                                      {"milestone_id": milestone_id, "invoice_id": invoice_id})
                await enqueue_delivery(self.uow, uow.conn, invoice_id, 1)
                if opportunity_id:
                    await enqueue_job(self.db, uow.conn, "crm.opportunity.invoice_status",
                                      f"invoice:{invoice_id}:{opportunity_id}",
                                      {"opportunity_id": opportunity_id, "invoice_status": invoice.state,
                                       "invoice_id": invoice_id})
                await record_event(uow.conn, "invoice.posted", {
                    "invoice_id": invoice_id, "contract_id": draft.contract_id,
                    "customer_id": invoice.customer_id},
                    {"period": draft.period, "total": str(invoice.total), "currency": invoice.currency,
                     "time_entries": len(draft.time_entry_ids), "milestones": len(draft.milestone_ids)})
        return await self.get(invoice_id)

    async def _check_time_current(self, draft: InvoiceDraft, contract: Contract) -> None:
        """Posting checks again that each time entry the draft bills is still its current version: a correction
        decided after drafting replaces it, and an invoice never bills a superseded version (its posting is
        reversed). The draft is refused; voiding it and drafting again bills the corrected version."""
        if not draft.time_entry_ids:
            return
        first, last = period_bounds(draft.period)
        projects = await self.systems.psa.projects(contract_id=contract.id)
        current = {e.id for es in await asyncio.gather(
            *(self.systems.psa.time_entries(project_id=p.id, from_date=first, to_date=last) for p in projects))
            for e in es if e.superseded_by_id is None}
        replaced = sorted(set(draft.time_entry_ids) - current)
        if replaced:
            raise Conflict(f"time on invoice {draft.id} was corrected after it was drafted ({', '.join(replaced)}); "
                           "void the draft and draft the period again", slug="draft-outdated",
                           time_entry_ids=replaced)

    async def _check_milestones_unbilled(self, draft: InvoiceDraft) -> None:
        """Posting checks again that no other invoice billed this draft's milestones (in the ERP or the PSA)."""
        if not draft.milestone_ids:
            return
        others = [i for i in await self.systems.erp.invoices(contract_id=draft.contract_id)
                  if i.id != draft.id and i.state in INVOICE_ISSUED]
        elsewhere = {s for i in others for t, s in _line_sources(i) if t == "milestone"}
        states = await asyncio.gather(*(self.systems.psa.milestone(m) for m in draft.milestone_ids))
        twice = sorted({m for m in draft.milestone_ids if m in elsewhere}
                       | {m.id for m in states if m.state == "invoiced"})
        if twice:
            raise Conflict(f"milestones billed already: {', '.join(twice)}", slug="milestone-already-billed",
                           reason="MILESTONE_ALREADY_BILLED", milestone_ids=twice)

    async def _opportunity_of(self, contract_id: str) -> str | None:
        """The won opportunity behind a contract: the one this tier provisioned it from, else the CRM's link."""
        async with self.db.read() as conn:
            provisioned = await provisioned_opportunity(conn, contract_id)
        if provisioned is not None:
            return provisioned
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

    async def _row(self, invoice_id: str) -> Any:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(invoices).where(invoices.c.id == invoice_id))).first()
        if row is None:
            raise NotFound(f"no invoice {invoice_id!r} was drafted here", slug="unknown-id")
        return row

    async def get(self, invoice_id: str) -> InvoiceDraft:
        row = await self._row(invoice_id)
        if row.state == "void":
            raise ProblemError(f"invoice {invoice_id} was voided; the ERP keeps it as void", status=410,
                               slug="invoice-voided", title="Gone", invoice_id=invoice_id)
        flow_back = FlowBack(jobs=await self.jobs.progress(f"invoice:{invoice_id}:")) if row.state == "posted" else None
        return (await self._with_tax_and_e_invoice([_view(row, flow_back)]))[0]

    async def _with_tax_and_e_invoice(self, views: list[InvoiceDraft]) -> list[InvoiceDraft]:
        """Each invoice with the tax API's answer kept for it and its e-invoice's status."""
        ids = [view.id for view in views]
        async with self.db.read() as conn:
            calculations = {r.invoice_id: r.calculation for r in (await conn.execute(sa.select(
                invoice_taxes.c.invoice_id, invoice_taxes.c.calculation).where(
                invoice_taxes.c.invoice_id.in_(ids)))).all()}
        e_invoices = await self.einvoicing.statuses(ids)
        for view in views:
            calculation = calculations.get(view.id)
            view.tax = msgspec.convert(calculation, InvoiceTax) if calculation is not None else None
            view.e_invoice = e_invoices.get(view.id)
        return views

    async def list(self, *, contract_id: str | None, period: str | None, state: str | None, cursor: str | None,
                   limit: int) -> InvoiceDraftPage:
        query = sa.select(invoices).where(invoices.c.state != "void")
        for column, value in ((invoices.c.contract_id, contract_id), (invoices.c.period, period),
                              (invoices.c.state, state)):
            if value is not None:
                query = query.where(column == value)
        if cursor:
            query = query.where(invoices.c.id > cursor)
        async with self.db.read() as conn:
            rows = (await conn.execute(query.order_by(invoices.c.id).limit(limit + 1))).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return InvoiceDraftPage(items=await self._with_tax_and_e_invoice([_view(r, None) for r in rows]),
                                next_cursor=rows[-1].id if more else None)


def check_billable(contract: Contract, period: str) -> None:
    """Only active contracts bill, and only periods their term touches."""
    if contract.status != "active":
        reason = "AMENDMENT_PENDING" if contract.status == "amendment_pending" else "CONTRACT_NOT_ACTIVE"
        raise TermsRefused(f"contract {contract.id} is {contract.status}: only an active contract is invoiced",
                           slug="contract-not-active", reason=reason, contract_status=contract.status)
    if not in_term(period, contract):
        raise TermsRefused(
            f"{period} is outside the term of contract {contract.id} ({contract.start_date} to "
            f"{contract.end_date or 'open-ended'})", slug="outside-contract-term", reason="OUTSIDE_CONTRACT_TERM",
            term_start=str(contract.start_date), term_end=str(contract.end_date) if contract.end_date else None)


def check_value(contract: Contract, billed: Decimal, amount: Decimal) -> None:
    """Cumulative billing never above the contract's total value."""
    if contract.total_value is not None and billed + amount > contract.total_value:
        raise TermsRefused(
            f"contract {contract.id} is worth {contract.total_value} {contract.currency}: {billed} is billed, "
            f"{amount} more would exceed it", slug="contract-value-exceeded", reason="CONTRACT_VALUE_EXCEEDED",
            contract_value=str(contract.total_value), billed=str(billed), amount=str(amount),
            remaining=str(max(ZERO, contract.total_value - billed)))


def within_value(contract: Contract, lines: list[InvoiceLine], sources: list[Source], room: Decimal
                 ) -> tuple[list[InvoiceLine], list[Source], list[ValueHold]]:
    """The expense lines that fit in ``room`` (the contract's value less what is billed, this bill and what its
    terms still have to bill), in date order; each one beyond is held with ``CONTRACT_VALUE_EXCEEDED``, unbilled
    and unreserved, so that a draft after an amendment of the value bills it."""
    kept: list[InvoiceLine] = []
    kept_sources: list[Source] = []
    held: list[ValueHold] = []
    for line, source in zip(lines, sources, strict=True):
        if line.amount <= room:
            room -= line.amount
            kept.append(line)
            kept_sources.append(source)
            continue
        held.append(ValueHold(source_type="expense", source_id=source[1], amount=line.amount,
                              remaining=max(ZERO, room),
                              detail=f"{line.amount} {contract.currency} would take billing past the contract's "
                                     f"value of {contract.total_value} {contract.currency}, what its own terms still "
                                     f"bill counted; {max(ZERO, room)} is left for expenses"))
    return kept, kept_sources, held


def time_figures(minutes: Decimal) -> tuple[Decimal, int | None]:
    """A time line's hours for the reader and its whole minutes. The one rounding rule for hours an invoice shows
    (``contracts.canonical.display_hours``): minutes / 60 rounded half-even to the hundredth (20 minutes: 0.33).
    Those hours are never priced; amounts come from the minutes. Minutes that are not whole (an allowance in
    odd hours) keep no ``minutes`` and show their hours to the hundredth all the same."""
    if minutes == minutes.to_integral_value():
        whole = int(minutes)
        return (-display_hours(-whole) if whole < 0 else display_hours(whole)), whole
    return plain_decimal((minutes / 60).quantize(CENT)), None


def booked_rate(posting: Posting, rates: Mapping[str, Decimal]) -> Decimal:
    """The hourly rate a time posting was booked at: the rate billing computed its amount at (``rates``, from
    ``booked_rates``) when that rate gives exactly the booked amount from the minutes; else (time booked before
    rates were kept) its amount over its minutes, per hour, to the cent. Never over its rounded hours (50.00 for
    20 minutes is 150.00 an hour, where 50.00 / 0.33 would be 151.52)."""
    minutes = posting.posted_minutes
    known = rates.get(posting.source_id)
    if known is not None and minutes and time_amount(minutes, known) == posting.amount:
        return known
    return (posting.amount * 60 / minutes).quantize(CENT) if minutes else posting.amount


def time_line(description: str, minutes: Decimal, unit_price: Decimal, amount: Decimal,
              source_ids: list[str]) -> InvoiceLine:
    quantity, whole = time_figures(minutes)
    return InvoiceLine(description=description, quantity=quantity, unit_price=unit_price, amount=amount,
                       source_type="time_entry", source_ids=source_ids, minutes=whole)


def time_lines(items: Sequence[tuple[TimeEntry, Posting]], rates: Mapping[str, Decimal]) -> list[InvoiceLine]:
    """Posted time at the amounts the ERP booked (each computed once from its minutes), a line per project and
    booked hourly rate."""
    groups: dict[tuple[str, Decimal], list[tuple[TimeEntry, Posting]]] = defaultdict(list)
    for entry, posting in items:
        groups[(entry.project_id, booked_rate(posting, rates))].append((entry, posting))
    return [time_line(f"Professional services, {project_id}, {len(group)} entries",
                      sum((p.posted_minutes for _, p in group), ZERO), unit,
                      sum((p.amount for _, p in group), ZERO), [e.id for e, _ in group])
            for (project_id, unit), group in sorted(groups.items())]


def covered_lines(period: str, items: Sequence[tuple[TimeEntry, Decimal]]) -> list[InvoiceLine]:
    """Minutes the retainer's fee covers: listed at no charge (every entry an invoice bills is on a line)."""
    if not items:
        return []
    return [time_line(f"Time covered by the retainer, {period}", sum((minutes for _, minutes in items), ZERO), ZERO,
                      ZERO.quantize(CENT), [e.id for e, _ in items])]


def overage_lines(period: str, items: Sequence[tuple[TimeEntry, Posting, Decimal]],
                  rates: Mapping[str, Decimal]) -> list[InvoiceLine]:
    """Minutes beyond the allowance at each entry's booked hourly rate, a line per rate, priced once per line
    (minutes x rate / 60, rounded half-even to the cent: ``time_amount``); an entry partly covered bills only its
    minutes beyond."""
    groups: dict[Decimal, list[tuple[TimeEntry, Decimal]]] = defaultdict(list)
    for entry, posting, minutes in items:
        groups[booked_rate(posting, rates)].append((entry, minutes))
    lines = []
    for unit, group in sorted(groups.items()):
        minutes = sum((m for _, m in group), ZERO)
        lines.append(time_line(f"Hours beyond the retainer's allowance, {period}", minutes, unit,
                               time_amount(minutes, unit), [e.id for e, _ in group]))
    return lines


def _line_sources(invoice: Invoice) -> set[Source]:
    return {(line.source_type, source) for line in invoice.lines for source in line.source_ids}


def _view(row: Any, flow_back: FlowBack | None) -> InvoiceDraft:
    sources = row.sources or {}
    drawdown = msgspec.convert(sources["drawdown"], Drawdown) if sources.get("drawdown") else None
    return InvoiceDraft(
        id=row.id, contract_id=row.contract_id, period=row.period, billing_model=row.billing_model, state=row.state,
        invoice=msgspec.convert(row.invoice, Invoice), time_entry_ids=list(sources.get("time_entry_ids", [])),
        milestone_ids=list(sources.get("milestone_ids", [])), drawdown=drawdown, flow_back=flow_back,
        created_at=row.created_at, updated_at=row.updated_at, sequence=row.sequence,
        supplements_id=row.supplements_id, holds=msgspec.convert(sources.get("holds") or [], list[InvoiceHold]),
        value_holds=msgspec.convert(sources.get("value_holds") or [], list[ValueHold]))
