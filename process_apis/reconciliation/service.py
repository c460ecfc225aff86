"""Reconciliation: PSA actuals against ERP postings and invoices, per project.

For each project: every posted or invoiced PSA entry must have exactly one ERP posting with the same quantity
(and, when this tier posted it, the amount it queued); every ERP posting must name a PSA entry that is posted
or invoiced; every invoiced entry must be on an issued ERP invoice and every entry on an issued invoice
invoiced in the PSA (a draft is not an issued invoice). Approved entries without a posting are counted as
awaiting posting, not as differences.

For each contract of those projects, the money (reconciliation/billing.py): late time not invoiced, milestones
billed twice or not at all, billing above the contract's value or outside its term, postings outside the term,
superseded versions still posted; each with its amounts and the action to take.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any, Literal

import msgspec
import sqlalchemy as sa

from contracts.canonical import INVOICE_ISSUED, Expense, Invoice, Milestone, Posting, Project, TimeEntry
from process_apis.billing.service import postings_by_entry
from process_apis.expenses.billing import billable_expenses, unwritten_to_psa
from process_apis.reconciliation.billing import ContractFacts, check_contract, within
from process_apis.reconciliation.models import (
    ContractReport,
    Difference,
    ProjectReport,
    Reconciliation,
    ReconciliationPage,
    ReconciliationRequest,
    Summary,
)
from process_apis.store import reconciliations
from process_apis.systems import Systems
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime import correlation
from runtime.downstream import found_or_none
from runtime.problems import BadRequest, FieldError, NotFound
from runtime.storage import utcnow


class ReconciliationService:
    def __init__(self, uow: UnitOfWorkFactory, systems: Systems) -> None:
        self.uow = uow
        self.db = uow.db
        self.systems = systems

    async def run(self, request: ReconciliationRequest, trigger: Literal["request", "schedule"] = "request"
                  ) -> Reconciliation:
        if request.from_date and request.to_date and request.to_date < request.from_date:
            raise BadRequest("to_date is before from_date", slug="validation-error",
                             errors=[FieldError(pointer="/to_date", detail="before from_date")])
        reconciliation_id = "rec_" + uuid.uuid4().hex[:24]
        scope = msgspec.to_builtins(request)
        async with self.uow() as uow:
            await uow.conn.execute(reconciliations.insert().values(
                id=reconciliation_id, state="running", trigger=trigger, scope=scope, started_at=utcnow(),
                correlation_id=correlation.current_correlation_id()))
        try:
            projects = await self._projects(request)
            limit = asyncio.Semaphore(4)

            async def one(contract_id: str, of: list[Project]) -> tuple[list[ProjectReport], ContractReport | None]:
                async with limit:
                    return await self._contract(contract_id, of, request)

            by_contract: dict[str, list[Project]] = defaultdict(list)
            for project in projects:
                by_contract[project.contract_id].append(project)
            results = await asyncio.gather(*(one(c, of) for c, of in by_contract.items()))
            order = {p.id: index for index, p in enumerate(projects)}
            reports = sorted((r for project_reports, _ in results for r in project_reports),
                             key=lambda r: order[r.project_id])
            contracts = sorted((c for _, c in results if c is not None), key=lambda c: c.contract_id)
        except Exception as exc:
            async with self.uow() as uow:
                await uow.conn.execute(reconciliations.update().where(reconciliations.c.id == reconciliation_id).values(
                    state="failed", error=f"{type(exc).__name__}: {exc}", finished_at=utcnow()))
            raise
        by_type: Counter[str] = Counter(d.type for r in reports for d in r.differences)
        by_type.update(d.type for c in contracts for d in c.differences)
        summary = Summary(projects=len(reports), projects_with_differences=sum(1 for r in reports if r.differences),
                          differences=sum(by_type.values()), by_type=dict(sorted(by_type.items())))
        async with self.uow() as uow:
            await uow.conn.execute(reconciliations.update().where(reconciliations.c.id == reconciliation_id).values(
                state="completed", summary=summary, projects=reports, contracts=contracts, finished_at=utcnow()))
        return await self.get(reconciliation_id)

    async def _contract(self, contract_id: str, projects: list[Project], request: ReconciliationRequest
                        ) -> tuple[list[ProjectReport], ContractReport | None]:
        """The facts of a contract's projects, read once: each project's report, and the contract's money."""
        (contract, postings, invoices), project_entries, project_milestones = await asyncio.gather(
            asyncio.gather(found_or_none(self.systems.erp.contract(contract_id)),
                           self.systems.erp.postings(contract_id=contract_id),
                           self.systems.erp.invoices(contract_id=contract_id)),
            asyncio.gather(*(self.systems.psa.time_entries(project_id=p.id) for p in projects)),
            asyncio.gather(*(self.systems.psa.milestones(project_id=p.id) for p in projects)))
        project_expenses = await asyncio.gather(*(self.systems.psa.expenses(project_id=p.id) for p in projects))
        psa_expenses: list[Expense] = [e for each in project_expenses for e in each]
        entries: list[TimeEntry] = [e for each in project_entries for e in each]
        milestones: list[Milestone] = [m for each in project_milestones for m in each]

        def in_window(day: dt.date) -> bool:
            return within(day, request.from_date, request.to_date)

        queued = await self._queued_amounts([e.id for e in entries if in_window(e.work_date)])
        reports = [reconcile(project, [e for e in entries if e.project_id == project.id and in_window(e.work_date)],
                             [p for p in postings if p.project_id == project.id and in_window(p.work_date)],
                             invoices, queued) for project in projects]
        pending = await unwritten_to_psa(self.db, contract_id)
        for report in reports:
            report.differences.extend(expense_differences(
                [e for e in psa_expenses if e.project_id == report.project_id and in_window(e.expense_date)],
                [p for p in postings if p.project_id == report.project_id and in_window(p.work_date)], pending))
        if contract is None:
            return reports, None  # a project without its contract: its report says what it can
        facts = ContractFacts(contract=contract, entries=entries, postings=postings, invoices=invoices,
                              milestones=milestones, from_date=request.from_date, to_date=request.to_date,
                              billable_expenses=await billable_expenses(self.db, contract_id))
        return reports, ContractReport(
            contract_id=contract_id, currency=contract.currency, total_value=contract.total_value,
            invoiced_amount=sum((i.subtotal for i in facts.issued), Decimal(0)),
            draft_amount=sum((i.subtotal for i in facts.drafts), Decimal(0)), differences=check_contract(facts))

    async def _projects(self, request: ReconciliationRequest) -> list[Project]:
        if request.project_ids is None:
            return await self.systems.psa.projects(status="active")
        found: list[Project] = []
        for index, project_id in enumerate(request.project_ids):
            project = await found_or_none(self.systems.psa.project(project_id))
            if project is None:
                raise BadRequest(f"no project {project_id!r}", slug="unknown-id",
                                 errors=[FieldError(pointer=f"/project_ids/{index}", detail="no such project")])
            found.append(project)
        return found

    async def _queued_amounts(self, entry_ids: list[str]) -> dict[str, tuple[Decimal, str]]:
        if not entry_ids:
            return {}
        async with self.db.read() as conn:
            return await postings_by_entry(conn, entry_ids)

    async def get(self, reconciliation_id: str) -> Reconciliation:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(reconciliations).where(
                reconciliations.c.id == reconciliation_id))).first()
        if row is None:
            raise NotFound(f"no reconciliation {reconciliation_id!r}", slug="unknown-id")
        return _view(row)

    async def list(self, *, cursor: str | None, limit: int) -> ReconciliationPage:
        query = sa.select(reconciliations).order_by(reconciliations.c.started_at.desc(), reconciliations.c.id.desc())
        if cursor:
            async with self.db.read() as conn:
                anchor = (await conn.execute(sa.select(reconciliations.c.started_at).where(
                    reconciliations.c.id == cursor))).scalar()
            if anchor is None:
                raise BadRequest("the cursor is not one this API gave out", slug="validation-error",
                                 errors=[FieldError(pointer="/cursor", detail="unknown cursor", location="query")])
            query = query.where(sa.or_(reconciliations.c.started_at < anchor, sa.and_(
                reconciliations.c.started_at == anchor, reconciliations.c.id < cursor)))
        async with self.db.read() as conn:
            rows = (await conn.execute(query.limit(limit + 1))).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return ReconciliationPage(items=[_view(r) for r in rows], next_cursor=rows[-1].id if more else None)


def reconcile(project: Project, entries: list[TimeEntry], postings: list[Posting], invoices: list[Invoice],
              queued: dict[str, tuple[Decimal, str]]) -> ProjectReport:
    """The differences for one project (pure: the facts in, the report out)."""
    by_source: dict[str, list[Posting]] = defaultdict(list)
    for posting in postings:
        if posting.source_type == "time_entry":
            by_source[posting.source_id].append(posting)
    on_invoice: dict[str, str] = {}
    for invoice in invoices:
        if invoice.state not in INVOICE_ISSUED:  # a draft is not an issued invoice, a void one is nothing
            continue
        for line in invoice.lines:
            if line.source_type == "time_entry":
                for source in line.source_ids:
                    on_invoice[source] = invoice.id
    entry_by_id = {e.id: e for e in entries}
    differences: list[Difference] = []
    approved = posted = invoiced = awaiting = 0
    posted_hours = Decimal(0)
    issued = any(i.state in INVOICE_ISSUED for i in invoices)
    for entry in entries:
        if entry.superseded_by_id is not None:
            # A corrected version: its posting and the reversal of it net to zero, which the contract-level check
            # (superseded_entry_posted) verifies; it is neither awaited, posted nor duplicated.
            continue
        found = by_source.get(entry.id, [])
        if entry.state == "approved":
            approved += 1
            if found:
                differences.append(Difference(
                    type="posted_in_erp_not_in_psa", time_entry_id=entry.id, posting_ids=[p.id for p in found],
                    psa_state=entry.state, detail="the ERP has the posting; the PSA still says approved"))
            else:
                awaiting += 1
            continue
        if entry.state not in ("posted", "invoiced"):
            continue
        posted += 1
        posted_hours += entry.hours
        if entry.state == "invoiced":
            invoiced += 1
            if issued and entry.id not in on_invoice:
                differences.append(Difference(type="invoiced_in_psa_not_on_invoice", time_entry_id=entry.id,
                                              psa_state=entry.state, detail="no ERP invoice line names this entry"))
        if not entry.billable:
            continue
        if not found:
            differences.append(Difference(type="missing_in_erp", time_entry_id=entry.id, psa_state=entry.state,
                                          psa_hours=entry.hours, detail="posted in the PSA, no ERP posting"))
            continue
        if len(found) > 1:
            differences.append(Difference(type="duplicated_in_erp", time_entry_id=entry.id,
                                          posting_ids=[p.id for p in found], psa_state=entry.state,
                                          detail=f"{len(found)} ERP postings for one entry"))
        posting = found[0]
        if entry.minutes is not None and posting.posted_minutes != entry.minutes:  # minutes, never rounded hours
            differences.append(Difference(type="quantity_mismatch", time_entry_id=entry.id,
                                          posting_ids=[posting.id], psa_hours=entry.hours,
                                          erp_quantity=posting.quantity,
                                          detail=f"minutes differ: {entry.minutes} in the PSA, "
                                                 f"{posting.posted_minutes.normalize():f} in the ERP"))
        expected = queued.get(entry.id)
        if expected is not None and expected[0] != posting.amount:
            differences.append(Difference(type="amount_mismatch", time_entry_id=entry.id, posting_ids=[posting.id],
                                          erp_amount=posting.amount, expected_amount=expected[0],
                                          detail="the ERP booked another amount than was queued"))
    for source_id, found in by_source.items():
        if source_id not in entry_by_id:
            differences.append(Difference(type="unknown_source_in_erp", time_entry_id=source_id,
                                          posting_ids=[p.id for p in found],
                                          detail="no PSA entry on this project matches the posting's source"))
    for source_id, invoice_id in on_invoice.items():
        listed = entry_by_id.get(source_id)
        if listed is not None and listed.state != "invoiced":
            differences.append(Difference(type="on_invoice_not_invoiced_in_psa", time_entry_id=source_id,
                                          invoice_id=invoice_id, psa_state=listed.state,
                                          detail="on an ERP invoice; the PSA does not say invoiced"))
    currency = postings[0].currency if postings else None
    return ProjectReport(
        project_id=project.id, contract_id=project.contract_id, psa_approved_entries=approved,
        psa_posted_entries=posted, psa_invoiced_entries=invoiced, psa_posted_hours=posted_hours,
        erp_postings=len(postings), erp_posted_amount=sum((p.amount for p in postings), Decimal(0)),
        currency=currency, approved_awaiting_posting=awaiting, differences=differences)


def expense_differences(psa: list[Expense], postings: list[Posting], pending: frozenset[str]) -> list[Difference]:
    """The expenses the expenses process wrote to the PSA (``source_ref``) against the ERP's expense postings: each
    posted one booked once, for the PSA's amount; each ERP expense posting held by the PSA. An expense posted whose
    PSA write is still queued (``pending``) is awaited, not a difference."""
    booked: dict[str, list[Posting]] = defaultdict(list)
    for posting in postings:
        if posting.source_type == "expense" and posting.reverses_posting_id is None:
            booked[posting.source_id].append(posting)
    held = {e.source_ref: e for e in psa if e.source_ref is not None}
    differences = []
    for ref, expense in held.items():
        found = booked.get(ref, [])
        if not found:
            if expense.state in ("posted", "invoiced"):
                differences.append(Difference(type="missing_in_erp", expense_id=ref, psa_state=expense.state,
                                              expected_amount=expense.amount,
                                              detail="the PSA holds the expense as posted; the ERP has no posting"))
            continue
        if len(found) > 1:
            differences.append(Difference(type="duplicated_in_erp", expense_id=ref, posting_ids=[p.id for p in found],
                                          psa_state=expense.state, detail=f"{len(found)} ERP postings for one expense"))
        if found[0].amount != expense.amount:
            differences.append(Difference(type="amount_mismatch", expense_id=ref, posting_ids=[found[0].id],
                                          erp_amount=found[0].amount, expected_amount=expense.amount,
                                          detail="the ERP booked another amount than the PSA holds"))
    for ref, found in booked.items():
        if ref not in held and ref not in pending:
            differences.append(Difference(type="posted_in_erp_not_in_psa", expense_id=ref,
                                          posting_ids=[p.id for p in found], erp_amount=found[0].amount,
                                          detail="the ERP has the expense's posting; the PSA does not hold it"))
    return differences


def _view(row: Any) -> Reconciliation:
    scope = msgspec.convert(row.scope or {}, ReconciliationRequest)
    return Reconciliation(
        id=row.id, state=row.state, trigger=row.trigger, project_ids=scope.project_ids,
        from_date=scope.from_date, to_date=scope.to_date, started_at=row.started_at,
        finished_at=row.finished_at,
        summary=msgspec.convert(row.summary, Summary) if row.summary else None,
        projects=msgspec.convert(row.projects or [], list[ProjectReport]), error=row.error,
        contracts=msgspec.convert(row.contracts or [], list[ContractReport]))

