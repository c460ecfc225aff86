"""Contract amendments: the terms signed in the CRM carried to the ERP, the billing they change re-evaluated.

The CRM is the system of record for what was sold: a contract's rate card, not-to-exceed amount, end date and
value. When one of them differs from the ERP contract that billing reads, the amendment is recorded (SQL, keyed
by the contract, its version and the terms before and after), the ERP contract is updated (an Idempotency-Key
from the same key), ``contract.amended`` is published with the new terms, and every entry this tier holds on the
contract's projects (an open ``billing_hold``) is evaluated again under the new terms: re-priced and queued for
posting when it is eligible now, still held (with today's reasons) when not. Entries approved later price with
the new terms anyway: billing reads the contract when it decides.

Each step is safe to repeat: a turn stopped half-way (the ERP down, the process stopped) leaves the amendment
``pending``, and the next look at the contract finishes it; the event is written with the ``applied`` state, so
it is published once. An ERP that refuses the new terms (4xx) leaves the amendment ``refused`` and opens a
``provisioning`` exception on the contract for someone to settle in the CRM or the ERP.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from contracts.canonical import Contract
from process_apis.backoff import describe, is_transient
from process_apis.billing.service import BillingService
from process_apis.events.models import ContractAmendedData, ContractAmendedSubject, ContractTerms
from process_apis.events.outbox import record_event
from process_apis.exceptions.queries import held_entries
from process_apis.exceptions.service import raise_exception, resolve_open
from process_apis.store import contract_amendments
from process_apis.systems import Systems
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.downstream import DownstreamProblem, found_or_none
from runtime.storage import utcnow

log = logging.getLogger("process_apis.provisioning.amendments")

# The terms an amendment carries: the ERP contract's field, and its name in contract.amended's changed_fields.
TERMS = {"rate_card_id": "rate_card_id", "nte_amount": "not_to_exceed", "end_date": "end_date", "total_value": "value"}


def terms_of(contract: Contract) -> dict[str, str | None]:
    """The amendable terms as JSON values (amounts and dates as strings, as the ERP system API takes them)."""
    values: dict[str, Any] = {name: getattr(contract, name) for name in TERMS}
    return {name: None if value is None else str(value) for name, value in values.items()}


def term_changes(signed: Contract, booked: Contract) -> dict[str, str | None]:
    """What the CRM's contract says that the ERP's does not (amounts compared as numbers: 100 == 100.00)."""
    wanted, have = terms_of(signed), terms_of(booked)
    changes = {}
    for name in TERMS:
        a, b = wanted[name], have[name]
        same = a == b or (
            a is not None and b is not None and name in ("nte_amount", "total_value") and Decimal(a) == Decimal(b)
        )
        if not same:
            changes[name] = a
    return changes


def amendment_key(contract_id: str, version: int, before: Mapping[str, Any], changes: Mapping[str, Any]) -> str:
    text = json.dumps([contract_id, version, dict(before), dict(changes)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class ContractAmendments:
    def __init__(self, uow: UnitOfWorkFactory, systems: Systems, billing: BillingService) -> None:
        self.uow = uow
        self.db = uow.db
        self.systems = systems
        self.billing = billing

    async def sync(self, contract_id: str, effective_date: dt.date | None = None) -> list[str]:
        """Bring the ERP contract to the CRM's terms; returns the changed field names (empty: nothing to do).
        A contract the ERP does not have yet (signed, not provisioned) is provisioning's to create."""
        await self._finish_pending(contract_id)
        signed = await found_or_none(self.systems.crm.contract(contract_id))
        booked = await found_or_none(self.systems.erp.contract(contract_id))
        if signed is None or booked is None:
            return []
        changes = term_changes(signed, booked)
        if not changes:
            return []
        key = amendment_key(contract_id, signed.version, terms_of(booked), changes)
        now = utcnow()
        async with self.uow() as uow:
            await uow.conn.execute(
                self.db.insert_ignoring_conflicts(contract_amendments, ["contract_id", "amendment_key"]).values(
                    contract_id=contract_id,
                    amendment_key=key,
                    changes=changes,
                    effective_date=effective_date or now.date(),
                    state="pending",
                    detail=None,
                    created_at=now,
                    updated_at=now,
                )
            )
        await self._finish_pending(contract_id)
        return [TERMS[name] for name in changes]

    async def _finish_pending(self, contract_id: str) -> None:
        async with self.db.read() as conn:
            pending = (
                await conn.execute(
                    sa.select(contract_amendments)
                    .where(contract_amendments.c.contract_id == contract_id, contract_amendments.c.state == "pending")
                    .order_by(contract_amendments.c.created_at)
                )
            ).all()
        for row in pending:
            await self._apply(row)

    async def _apply(self, row: Any) -> None:
        try:
            contract = await self.systems.erp.update_contract(
                row.contract_id, dict(row.changes), idempotency_key=f"amend-{row.amendment_key}"
            )
        except DownstreamProblem as exc:
            if is_transient(exc):
                raise  # the turn stops; the next one finishes it
            await self._refuse(row, describe(exc))
            return
        now = utcnow()
        async with self.uow() as uow:
            updated = await uow.conn.execute(
                contract_amendments.update()
                .where(
                    contract_amendments.c.contract_id == row.contract_id,
                    contract_amendments.c.amendment_key == row.amendment_key,
                    contract_amendments.c.state == "pending",
                )
                .values(state="applied", updated_at=now)
            )
            if updated.rowcount == 1:  # of two replicas finishing it, one announces it
                terms = terms_of(contract)
                await record_event(
                    uow.conn,
                    "contract.amended",
                    ContractAmendedSubject(contract_id=contract.id, customer_id=contract.customer_id),
                    ContractAmendedData(
                        changed_fields=[TERMS[name] for name in row.changes],
                        effective_date=row.effective_date,
                        contract_version=contract.version,
                        terms=ContractTerms(
                            rate_card_id=terms["rate_card_id"],
                            nte_amount=terms["nte_amount"],
                            end_date=terms["end_date"],
                            total_value=terms["total_value"],
                        ),
                    ),
                )
                await resolve_open(
                    uow.conn,
                    kind="provisioning",
                    source_type="contract",
                    source_id=row.contract_id,
                    resolution="amendment applied",
                )
        await self.reevaluate_holds(row.contract_id)

    async def _refuse(self, row: Any, detail: str) -> None:
        now = utcnow()
        async with self.uow() as uow:
            await uow.conn.execute(
                contract_amendments.update()
                .where(
                    contract_amendments.c.contract_id == row.contract_id,
                    contract_amendments.c.amendment_key == row.amendment_key,
                )
                .values(state="refused", detail=detail, updated_at=now)
            )
            await raise_exception(
                uow.conn,
                kind="provisioning",
                source_type="contract",
                source_id=row.contract_id,
                reason_codes=["AMENDMENT_REJECTED"],
                detail=f"the ERP refused the CRM's new terms: {detail}",
                payload={"contract_id": row.contract_id, "changes": dict(row.changes)},
            )
        log.warning("contract amendment refused", extra={"contract_id": row.contract_id, "detail": detail})

    async def reevaluate_holds(self, contract_id: str) -> int:
        """Evaluate again every entry held on the contract's projects; returns how many were evaluated."""
        projects = await self.systems.psa.projects(contract_id=contract_id)
        if not projects:
            return 0
        async with self.db.read() as conn:
            held = await held_entries(conn, [p.id for p in projects])
        if not held:
            return 0
        found = await asyncio.gather(*(found_or_none(self.systems.psa.time_entry(i)) for i in held))
        entries = [entry for entry in found if entry is not None]
        await self.billing.settle(entries)
        return len(entries)
