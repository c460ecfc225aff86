"""Credit notes for corrected time that was invoiced already.

A correction of invoiced time queues (in the transaction that applies it) one ``erp.credit_note`` job. The job
credits, on the posted invoice that billed the old version, that version's line in full, at the amount the ERP
booked for it; the corrected version is posted anew and billed by the next invoice like any time posted after
its period was invoiced. Exactly once: the job is unique per correction, the ERP call carries an
Idempotency-Key per correction, and the ERP never credits a source beyond what the invoice billed for it.
"""

from __future__ import annotations

from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from process_apis.billing.posting import booked_rates
from process_apis.invoicing.service import booked_rate, time_line
from process_apis.jobs import JobRunner, enqueue_job
from process_apis.store import invoice_sources, invoices
from process_apis.systems import Systems
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.storage import Database

JOB = "erp.credit_note"


async def queue_credit_note(db: Database, conn: AsyncConnection, *, correction_id: str, time_entry_id: str,
                            new_time_entry_id: str) -> None:
    """In the caller's transaction: credit the invoiced line of ``time_entry_id`` (once per correction)."""
    await enqueue_job(db, conn, JOB, f"credit-note:{correction_id}", {
        "correction_id": correction_id, "time_entry_id": time_entry_id, "new_time_entry_id": new_time_entry_id})


class CreditNotes:
    def __init__(self, uow: UnitOfWorkFactory, systems: Systems, jobs: JobRunner) -> None:
        self.uow = uow
        self.db = uow.db
        self.systems = systems
        jobs.handle(JOB, self._credit)

    async def _credit(self, payload: Any) -> None:
        old, correction_id = str(payload["time_entry_id"]), str(payload["correction_id"])
        invoice_id = await self.invoice_of(old)
        if invoice_id is None:
            raise LookupError(f"no posted invoice billed {old}: nothing to credit yet")
        booked = [p for p in await self.systems.erp.postings(source_id=old) if p.reverses_posting_id is None]
        if not booked:
            raise LookupError(f"the ERP holds no posting of {old} to credit")
        posting = booked[0]
        # The line credits exactly what the posting booked: its amount, its minutes (hours shown by the one rule
        # of time_figures), at the hourly rate it was booked at (from its minutes, never a rounded quantity).
        line = time_line(f"Credit: {old} corrected by {payload['new_time_entry_id']}", posting.posted_minutes,
                         booked_rate(posting, await booked_rates(self.db, [old])), posting.amount, [old])
        await self.systems.erp.credit(invoice_id, [msgspec.to_builtins(line)], f"credit-note:{correction_id}")

    async def invoice_of(self, time_entry_id: str) -> str | None:
        """The posted invoice that billed this entry: the one its reservation names (a void releases it)."""
        async with self.db.read() as conn:
            found = await conn.execute(sa.select(invoices.c.id).join(
                invoice_sources, invoice_sources.c.invoice_id == invoices.c.id).where(
                invoice_sources.c.source_type == "time_entry", invoice_sources.c.source_id == time_entry_id,
                invoices.c.state == "posted"))
            invoice_id = found.scalar()
        return None if invoice_id is None else str(invoice_id)
