"""ERP rules that hold whatever the vendor: contract lifecycle, consistent dates, batch limits."""

from __future__ import annotations

import datetime as dt

from contracts.canonical import Contract
from runtime.problems import Conflict, FieldError, Unprocessable
from system_apis.erp.connectors import ErpConnector
from system_apis.erp.models import ContractCreate, ContractPatch

CONTRACT_TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"active", "closed"}),
    "active": frozenset({"amendment_pending", "closed"}),
    "amendment_pending": frozenset({"active", "closed"}),
    "closed": frozenset(),
}


def check_dates(start: object, end: object) -> None:
    if isinstance(start, dt.date) and isinstance(end, dt.date) and end < start:
        raise Unprocessable("end_date is before start_date", slug="validation-failed",
                            errors=[FieldError(pointer="/end_date", detail="must not be before start_date")])


class ErpService:
    def __init__(self, connector: ErpConnector) -> None:
        self.connector = connector

    async def upsert_contract(self, data: ContractCreate, idempotency_key: str | None) -> tuple[Contract, bool]:
        check_dates(data.start_date, data.end_date)
        return await self.connector.upsert_contract(data, idempotency_key)

    async def update_contract(self, contract_id: str, patch: ContractPatch) -> Contract:
        current = await self.connector.get_contract(contract_id)
        changes = patch.changes()
        status = changes.get("status")
        if status is not None and status != current.status and status not in CONTRACT_TRANSITIONS[current.status]:
            raise Conflict(f"a {current.status} contract cannot become {status}", slug="invalid-transition",
                           from_state=current.status, to_state=status)
        check_dates(changes.get("start_date", current.start_date), changes.get("end_date", current.end_date))
        if not changes:
            return current
        return await self.connector.update_contract(contract_id, changes)
