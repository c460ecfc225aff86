"""Loading a :class:`BillingContext` for a batch of time entries: each fact fetched once, concurrently.

Projects and tasks and assignments come from the PSA, contracts, accounting periods and postings from the ERP,
rate cards from the CRM, roles from HR. What the process tier itself has queued for posting is added from SQL
inside the transaction that enqueues (:func:`with_local_ledger`), under a lock per contract, so two approvals
racing for the last of a contract's NTE cannot both win.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.canonical import Contract, Project, TimeEntry
from process_apis.billing.eligibility import (
    AssignmentSpan,
    BillingContext,
    ContractTerms,
    ProjectTerms,
    RateLine,
    RateSchedule,
)
from process_apis.store import billing_postings, contract_locks
from process_apis.systems import Systems
from runtime.downstream import found_or_none
from runtime.storage import Database

T = TypeVar("T")

CONCURRENCY = 16


async def _bounded(limit: asyncio.Semaphore, call: Awaitable[T]) -> T:
    async with limit:
        return await call


async def load_context(systems: Systems, entries: Iterable[TimeEntry]) -> BillingContext:
    entries = list(entries)
    limit = asyncio.Semaphore(CONCURRENCY)
    project_ids = sorted({e.project_id for e in entries})
    projects = [p for p in await asyncio.gather(
        *(_bounded(limit, found_or_none(systems.psa.project(pid))) for pid in project_ids)) if p is not None]
    contract_ids = sorted({p.contract_id for p in projects})
    contracts = [c for c in await asyncio.gather(
        *(_bounded(limit, found_or_none(systems.erp.contract(cid))) for cid in contract_ids)) if c is not None]
    return await _context_for(systems, entries, projects, contracts, limit)


async def _context_for(systems: Systems, entries: list[TimeEntry], projects: list[Project],
                       contracts: list[Contract], limit: asyncio.Semaphore) -> BillingContext:
    rate_card_ids = sorted({c.rate_card_id for c in contracts if c.rate_card_id})
    legal_entities = sorted({p.legal_entity_id for p in projects})
    project_ids = [p.id for p in projects]
    rate_cards, periods, assignments, tasks, postings = await asyncio.gather(
        asyncio.gather(*(_bounded(limit, found_or_none(systems.crm.rate_card(rc))) for rc in rate_card_ids)),
        asyncio.gather(*(_bounded(limit, systems.erp.accounting_periods(le)) for le in legal_entities)),
        asyncio.gather(*(_bounded(limit, systems.psa.assignments(project_id=pid, status="confirmed"))
                         for pid in project_ids)),
        asyncio.gather(*(_bounded(limit, systems.psa.tasks(pid)) for pid in project_ids)),
        asyncio.gather(*(_bounded(limit, systems.erp.postings(contract_id=c.id)) for c in contracts)),
    )
    spans: dict[tuple[str, str], list[AssignmentSpan]] = defaultdict(list)
    for project_assignments in assignments:
        for a in project_assignments:
            spans[(a.worker_id, a.project_id)].append(AssignmentSpan(a.start_date, a.end_date, a.role))
    unassigned_workers = sorted({e.worker_id for e in entries if (e.worker_id, e.project_id) not in spans})
    workers = await asyncio.gather(
        *(_bounded(limit, found_or_none(systems.hr.worker(w))) for w in unassigned_workers))
    rates: dict[tuple[str, str], list[RateLine]] = defaultdict(list)
    card_currencies: dict[str, str] = {}
    for card in rate_cards:
        if card is None:
            continue
        card_currencies[card.id] = card.currency
        for line in card.lines:
            rates[(card.id, line.role)].append(RateLine(line.valid_from, line.valid_to, line.hourly_rate))
    billed: dict[str, Decimal] = defaultdict(Decimal)
    posted: set[str] = set()
    for contract_postings in postings:
        for posting in contract_postings:
            billed[posting.contract_id] += posting.amount
            posted.add(posting.source_id)
    return BillingContext(
        projects={p.id: ProjectTerms(p.id, p.status, p.contract_id, p.legal_entity_id, p.business_unit_id)
                  for p in projects},
        contracts={c.id: ContractTerms(c.id, c.status, c.billing_model, c.currency, c.start_date, c.end_date,
                                       c.nte_amount, c.rate_card_id) for c in contracts},
        rates={key: RateSchedule.of(lines) for key, lines in rates.items()},
        rate_card_currencies=card_currencies,
        closed_periods=frozenset(
            (p.legal_entity_id, int(p.period[:4]), int(p.period[5:7]))
            for entity_periods in periods for p in entity_periods if p.status == "closed"),
        assignments={key: tuple(value) for key, value in spans.items()},
        worker_roles={w.id: w.role for w in workers if w is not None},
        non_billable_tasks=frozenset(t.id for project_tasks in tasks for t in project_tasks if not t.billable),
        posted_sources=frozenset(posted),
        billed=dict(billed),
    )


async def with_local_ledger(db: Database, conn: AsyncConnection, context: BillingContext, *,
                            lock: bool = True) -> BillingContext:
    """The context plus what this tier has queued but the ERP does not show yet. With ``lock`` (a write
    transaction that will enqueue), the contracts are locked first so concurrent approvals take turns."""
    contract_ids = sorted(context.contracts)
    if not contract_ids:
        return context
    if lock:
        await lock_contracts(db, conn, contract_ids)
    rows = (await conn.execute(
        sa.select(billing_postings.c.time_entry_id, billing_postings.c.contract_id, billing_postings.c.amount)
        .where(billing_postings.c.contract_id.in_(contract_ids), billing_postings.c.state != "rejected"))).all()
    billed = dict(context.billed)
    posted = set(context.posted_sources)
    for row in rows:
        if row.time_entry_id not in context.posted_sources:  # not yet in the ERP's sum
            billed[row.contract_id] = billed.get(row.contract_id, Decimal(0)) + row.amount
        posted.add(row.time_entry_id)
    return replace(context, billed=billed, posted_sources=frozenset(posted))


async def lock_contracts(db: Database, conn: AsyncConnection, contract_ids: Sequence[str]) -> None:
    """Serialize money decisions on these contracts (NTE, contract value) across requests and replicas, until
    the transaction ends. Always in sorted order, so two lockers never wait on each other in a cycle."""
    ordered = sorted(set(contract_ids))
    for contract_id in ordered:
        await conn.execute(db.insert_ignoring_conflicts(contract_locks, ["contract_id"]).values(
            contract_id=contract_id))
    await conn.execute(sa.select(contract_locks.c.contract_id)
                       .where(contract_locks.c.contract_id.in_(ordered)).with_for_update())
