"""Tax per invoice: the tax system API computes it, the ERP books it, the invoice keeps the answer.

The jurisdiction comes from the legal entity (its country and currency) and the customer (its billing address,
else its tax jurisdiction code, and its VAT number). When the region's tax service is unavailable, the draft is
not made: the contract's period waits in the exception queue (kind ``billing_hold``, source type
``invoice_draft``, reason TAX_SERVICE_UNAVAILABLE) with a durable job that drafts it again with back-off until
the service answers; other regions go on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec

from contracts.canonical import Contract, Customer, InvoiceLine, LegalEntity
from process_apis.exceptions.models import ExceptionItem
from process_apis.exceptions.service import RetryResult, raise_exception, resolve_open
from process_apis.invoicing.models import InvoiceTax, TaxHeld
from process_apis.jobs import JobRunner, enqueue_job, run_now
from process_apis.systems import Systems
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.downstream import DownstreamProblem
from runtime.problems import FieldError, Unprocessable

UNAVAILABLE = frozenset({502, 503, 504})
HOLD_KIND = "billing_hold"  # with its own source type: the exceptions contract's kinds are closed
HOLD_SOURCE = "invoice_draft"
DRAFT_JOB = "invoicing.draft_after_tax_hold"


class TaxServiceUnavailable(Exception):
    def __init__(self, problem: DownstreamProblem) -> None:
        super().__init__(problem.detail or "tax service unavailable")
        self.problem = problem


def buyer_of(customer: Customer) -> dict[str, Any]:
    """Where the customer is, from its billing address, else from its tax jurisdiction code ("US-NY", "GB")."""
    if customer.address is not None:
        country, region = customer.address.country, customer.address.region
    else:
        country, _, region = customer.tax_jurisdiction.partition("-")
    return {
        "customer_id": customer.id,
        "country": country,
        "region": region,
        **({"vat_number": customer.vat_number} if customer.vat_number else {}),
    }


class InvoiceTaxes:
    def __init__(self, uow: UnitOfWorkFactory, systems: Systems, runner: JobRunner) -> None:
        self.uow = uow
        self.db = uow.db
        self.systems = systems
        self.runner = runner

    async def legal_entity(self, legal_entity_id: str) -> LegalEntity:
        entities = {e.id: e for e in await self.systems.erp.legal_entities()}
        if legal_entity_id not in entities:
            raise Unprocessable(
                f"the contract's legal entity {legal_entity_id!r} is unknown to the ERP",
                slug="unknown-legal-entity",
                errors=[FieldError(pointer="/contract_id", detail="its legal entity is unknown")],
            )
        return entities[legal_entity_id]

    async def calculate(self, contract: Contract, document_ref: str, lines: Sequence[InvoiceLine]) -> InvoiceTax:
        """The tax of these lines; a refusal of the data (a malformed VAT number, a country no engine serves, the
        contract's currency not the legal entity's) is a 422 on the draft naming the tax API's pointers."""
        seller = await self.legal_entity(contract.legal_entity_id)
        customer = await self.systems.erp.customer(contract.customer_id)
        body = {
            "document_ref": document_ref[:64],
            "currency": contract.currency,
            "seller": {"legal_entity_id": seller.id, "country": seller.country, "currency": seller.functional_currency},
            "buyer": buyer_of(customer),
            "lines": [{"amount": format(line.amount, "f"), "description": line.description[:500]} for line in lines],
        }
        try:
            return await self.systems.tax.calculate(body, InvoiceTax)
        except DownstreamProblem as exc:
            if exc.status in UNAVAILABLE:
                raise TaxServiceUnavailable(exc) from exc
            if 400 <= exc.status < 500 and exc.status not in (401, 403, 429):
                pointers = [e.pointer for e in exc.errors or []]
                raise Unprocessable(
                    f"the tax of contract {contract.id} cannot be computed: {exc.detail}",
                    slug="tax-refused",
                    reason="TAX_DATA_INVALID",
                    tax_problem=exc.slug,
                    tax_pointers=pointers,
                    errors=[
                        FieldError(
                            pointer="/contract_id",
                            detail=f"customer {customer.id} or legal entity {seller.id}: "
                            + "; ".join(f"{e.pointer} {e.detail}" for e in exc.errors or [])
                            or str(exc.detail),
                        )
                    ],
                ) from exc
            raise

    async def hold(self, contract: Contract, period: str, unavailable: TaxServiceUnavailable) -> TaxHeld:
        """The period waits for its region's tax service: one open item per contract and period, one job."""
        extensions = unavailable.problem.extensions
        engine = extensions.get("engine") if isinstance(extensions.get("engine"), str) else None
        async with self.uow() as uow:
            exception_id, _ = await raise_exception(
                uow.conn,
                kind=HOLD_KIND,
                source_type=HOLD_SOURCE,
                source_id=f"{contract.id}:{period}",
                reason_codes=["TAX_SERVICE_UNAVAILABLE"],
                detail=unavailable.problem.detail,
                payload={
                    "contract_id": contract.id,
                    "period": period,
                    "customer_id": contract.customer_id,
                    "legal_entity_id": contract.legal_entity_id,
                    "engine": engine,
                    "region": extensions.get("region"),
                },
            )
            await enqueue_job(
                self.db,
                uow.conn,
                DRAFT_JOB,
                f"tax-hold:{exception_id}",
                {"contract_id": contract.id, "period": period, "exception_id": exception_id},
            )
        return TaxHeld(
            contract_id=contract.id,
            period=period,
            exception_id=exception_id,
            engine=engine,
            detail=f"the tax service for this invoice is unavailable ({unavailable.problem.detail}); "
            "the draft is made when it answers again",
        )

    async def released(self, conn: Any, contract_id: str, period: str, resolution: str) -> None:
        """The period is drafted: its hold (if any) resolves in the same transaction."""
        await resolve_open(
            conn, kind=HOLD_KIND, source_type=HOLD_SOURCE, source_id=f"{contract_id}:{period}", resolution=resolution
        )

    def drafts_with(self, draft: Callable[[str, str], Awaitable[Any]]) -> None:
        """The job that drafts a held period again: still unavailable, it fails transiently (back-off retry)."""

        async def run(payload: Any) -> None:
            try:
                await draft(payload["contract_id"], payload["period"])
            except TaxServiceUnavailable as exc:
                raise exc.problem from exc
            async with self.uow() as uow:
                await self.released(
                    uow.conn, payload["contract_id"], payload["period"], "drafted once the tax service answered"
                )

        self.runner.handle(DRAFT_JOB, run)

    async def retry_hold(self, item: ExceptionItem, actor_id: str | None) -> RetryResult:
        """An operator's retry: the held draft is tried now rather than at its next back-off turn."""
        async with self.uow() as uow:
            await run_now(uow.conn, f"tax-hold:{item.id}")
        return "in_progress", "the draft is tried again now; the item resolves when the tax service answers"


def tax_lines_body(tax: InvoiceTax) -> list[Any]:
    return list(msgspec.to_builtins(tax.tax_lines))
