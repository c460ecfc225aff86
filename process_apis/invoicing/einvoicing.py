"""E-invoices of posted invoices: rendered, validated, delivered on the e-invoicing network, status flowed back.

Posting enqueues ``einvoice.deliver`` in the posting's transaction. The job renders the document
(:mod:`process_apis.invoicing.documents`), keeps it with what it was validated against, and hands it to the
e-invoicing system API (one network document per invoice, format and attempt: a retried job never sends twice).
``einvoice.status`` then follows the delivery until the network answers: delivered, or rejected, which opens a
``flow_back`` item (source type ``invoice``) in the exception queue (reason EINVOICE_REJECTED). A document that
breaks its schema or a business rule is never sent (EINVOICE_INVALID), nor one whose customer has no network
address (EINVOICE_NO_ENDPOINT). Retrying the item delivers again as the next attempt.
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec
import sqlalchemy as sa

from contracts.canonical import Invoice
from process_apis.exceptions.models import ExceptionItem
from process_apis.exceptions.service import RetryResult, raise_exception, resolve_open
from process_apis.invoicing.documents import DocumentInvalid, Parties, format_for, render
from process_apis.invoicing.models import Delivery, EInvoice, EInvoiceError
from process_apis.invoicing.tax import InvoiceTaxes
from process_apis.jobs import JobRunner, enqueue_job
from process_apis.store import e_invoices, invoices
from process_apis.systems import Systems
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.problems import NotFound
from runtime.storage import utcnow

KIND = "flow_back"  # the network's answer flowing back; source type ``invoice`` (job flow-backs use ``job``)
DELIVER_JOB = "einvoice.deliver"
STATUS_JOB = "einvoice.status"


class StillQueued(Exception):
    """The network has not answered yet: the status job runs again after its back-off."""


async def enqueue_delivery(uow: UnitOfWorkFactory, conn: Any, invoice_id: str, attempt: int) -> None:
    await enqueue_job(
        uow.db, conn, DELIVER_JOB, f"einvoice:{invoice_id}:{attempt}", {"invoice_id": invoice_id, "attempt": attempt}
    )


class EInvoicing:
    def __init__(self, uow: UnitOfWorkFactory, systems: Systems, runner: JobRunner, taxes: InvoiceTaxes) -> None:
        self.uow = uow
        self.db = uow.db
        self.systems = systems
        self.taxes = taxes
        runner.handle(DELIVER_JOB, self._deliver)
        runner.handle(STATUS_JOB, self._follow)

    async def _deliver(self, payload: Any) -> None:
        invoice_id, attempt = str(payload["invoice_id"]), int(payload["attempt"])
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(invoices.c.invoice).where(invoices.c.id == invoice_id))).first()
            known = (
                await conn.execute(
                    sa.select(e_invoices.c.attempt, e_invoices.c.state).where(e_invoices.c.invoice_id == invoice_id)
                )
            ).first()
        if row is None or (
            known is not None
            and (known.attempt > attempt or (known.attempt == attempt and known.state not in ("rendered",)))
        ):
            return  # a later attempt superseded this one, or this attempt was handed over already
        invoice = msgspec.convert(row.invoice, Invoice)
        parties = Parties(
            await self.taxes.legal_entity(invoice.legal_entity_id), await self.systems.erp.customer(invoice.customer_id)
        )
        try:
            document = render(invoice, parties, invoice.contract_id)
        except DocumentInvalid as exc:
            await self._refused(
                invoice_id,
                format_for(parties.buyer_country),
                attempt,
                "invalid",
                "EINVOICE_INVALID",
                [EInvoiceError(code="INVALID", detail=e) for e in exc.errors],
            )
            return
        receiver = parties.buyer.einvoice_endpoint_id
        sender = parties.seller.einvoice_endpoint_id
        await self._store(
            invoice_id,
            document.format,
            document.media_type,
            document.content,
            document.validated_against,
            "rendered",
            attempt,
        )
        if not receiver or not sender:
            await self._refused(
                invoice_id,
                document.format,
                attempt,
                "no_endpoint",
                "EINVOICE_NO_ENDPOINT",
                [
                    EInvoiceError(
                        code="NO_ENDPOINT",
                        detail=f"{'customer' if not receiver else 'legal entity'} has no e-invoicing network address",
                    )
                ],
            )
            return
        delivery = await self.systems.einvoice.deliver(
            {
                "invoice_id": invoice_id,
                "attempt": attempt,
                "sender_id": sender,
                "receiver_id": receiver,
                "format": document.format,
                "content_base64": base64.b64encode(document.content).decode(),
            },
            Delivery,
        )
        async with self.uow() as uow:
            await uow.conn.execute(
                e_invoices.update()
                .where(e_invoices.c.invoice_id == invoice_id, e_invoices.c.attempt == attempt)
                .values(state="queued", delivery_id=delivery.id, updated_at=utcnow())
            )
            await enqueue_job(
                self.db,
                uow.conn,
                STATUS_JOB,
                f"einvoice-status:{delivery.id}",
                {"invoice_id": invoice_id, "delivery_id": delivery.id, "attempt": attempt},
            )

    async def _follow(self, payload: Any) -> None:
        delivery = await self.systems.einvoice.delivery(str(payload["delivery_id"]), Delivery)
        if delivery.state == "queued":
            raise StillQueued(f"delivery {delivery.id} is queued on the network")
        invoice_id = str(payload["invoice_id"])
        async with self.uow() as uow:
            await uow.conn.execute(
                e_invoices.update()
                .where(e_invoices.c.invoice_id == invoice_id, e_invoices.c.delivery_id == delivery.id)
                .values(state=delivery.state, errors=msgspec.to_builtins(delivery.errors), updated_at=utcnow())
            )
            if delivery.state == "rejected":
                await raise_exception(
                    uow.conn,
                    kind=KIND,
                    source_type="invoice",
                    source_id=invoice_id,
                    reason_codes=["EINVOICE_REJECTED"],
                    detail="; ".join(f"{e.code}: {e.detail}" for e in delivery.errors),
                    payload={
                        "invoice_id": invoice_id,
                        "delivery_id": delivery.id,
                        "format": delivery.format,
                        "receiver_id": delivery.receiver_id,
                        "errors": msgspec.to_builtins(delivery.errors),
                    },
                )
            else:
                await resolve_open(
                    uow.conn,
                    kind=KIND,
                    source_type="invoice",
                    source_id=invoice_id,
                    resolution=f"delivered as {delivery.id}",
                )

    async def _store(
        self,
        invoice_id: str,
        format_name: str,
        media_type: str,
        content: bytes | None,
        validated_against: list[str],
        state: str,
        attempt: int,
    ) -> None:
        values = {
            "format": format_name,
            "media_type": media_type,
            "content": content,
            "validated_against": validated_against,
            "state": state,
            "attempt": attempt,
            "delivery_id": None,
            "errors": [],
            "updated_at": utcnow(),
        }
        async with self.uow() as uow:
            updated = await uow.conn.execute(
                e_invoices.update().where(e_invoices.c.invoice_id == invoice_id).values(**values)
            )
            if updated.rowcount == 0:
                await uow.conn.execute(
                    self.db.insert_ignoring_conflicts(e_invoices, ["invoice_id"]).values(
                        invoice_id=invoice_id, **values
                    )
                )

    async def _refused(
        self, invoice_id: str, format_name: str, attempt: int, state: str, reason: str, errors: list[EInvoiceError]
    ) -> None:
        async with self.uow() as uow:
            await uow.conn.execute(
                self.db.insert_ignoring_conflicts(e_invoices, ["invoice_id"]).values(
                    invoice_id=invoice_id,
                    format=format_name,
                    media_type="",
                    content=None,
                    validated_against=[],
                    state=state,
                    attempt=attempt,
                    delivery_id=None,
                    errors=[],
                    updated_at=utcnow(),
                )
            )
            await uow.conn.execute(
                e_invoices.update()
                .where(e_invoices.c.invoice_id == invoice_id)
                .values(state=state, errors=msgspec.to_builtins(errors), updated_at=utcnow())
            )
            await raise_exception(
                uow.conn,
                kind=KIND,
                source_type="invoice",
                source_id=invoice_id,
                reason_codes=[reason],
                detail="; ".join(e.detail for e in errors),
                payload={"invoice_id": invoice_id, "errors": msgspec.to_builtins(errors)},
            )

    async def retry_exception(self, item: ExceptionItem, actor_id: str | None) -> RetryResult:
        """Deliver again as the next attempt (after the customer's data or directory entry was fixed)."""
        async with self.uow() as uow:
            attempt = (
                await uow.conn.execute(sa.select(e_invoices.c.attempt).where(e_invoices.c.invoice_id == item.source_id))
            ).scalar() or 0
            await enqueue_delivery(self.uow, uow.conn, item.source_id, attempt + 1)
            await resolve_open(
                uow.conn,
                kind=KIND,
                source_type="invoice",
                source_id=item.source_id,
                resolution=f"delivering again (attempt {attempt + 1})",
                actor_id=actor_id,
            )
        return "in_progress", f"rendering and delivering again as attempt {attempt + 1} (a new item opens if refused)"

    async def statuses(self, invoice_ids: list[str]) -> dict[str, EInvoice]:
        columns = [c for c in e_invoices.c if c.name != "content"]
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(*columns).where(e_invoices.c.invoice_id.in_(invoice_ids)))).all()
        return {
            row.invoice_id: EInvoice(
                format=row.format,
                media_type=row.media_type,
                state=row.state,
                attempt=row.attempt,
                validated_against=list(row.validated_against),
                delivery_id=row.delivery_id,
                errors=msgspec.convert(row.errors or [], list[EInvoiceError]),
            )
            for row in rows
        }

    async def document(self, invoice_id: str) -> tuple[bytes, str, str]:
        """The rendered document: content, media type and a file name."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(e_invoices.c.content, e_invoices.c.media_type, e_invoices.c.format).where(
                        e_invoices.c.invoice_id == invoice_id
                    )
                )
            ).first()
        if row is None or row.content is None:
            raise NotFound(
                f"invoice {invoice_id} has no e-invoice (it is rendered once the invoice is posted)",
                slug="no-e-invoice",
            )
        suffix = "pdf" if row.format == "factur-x" else "xml"
        return bytes(row.content), str(row.media_type), f"{invoice_id}.{suffix}"
