"""ERP rules that hold whatever the vendor: contract lifecycle, consistent dates and billing terms, batch limits."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import msgspec

from contracts.canonical import BillingProfile, Contract, Invoice, RevenueTerms
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


def billing_terms(model: str, profile: BillingProfile, schedule: Any) -> tuple[BillingProfile, Any]:
    """The retainer's fee in one place: ``billing_schedule.period_fee``, mirrored (deprecated) in
    ``billing_profile.scheduled_amount``; a fee sent only in the old field is taken from there."""
    if model != "retainer":
        return profile, schedule
    fee = schedule.period_fee if schedule.period_fee is not None else profile.scheduled_amount
    return (msgspec.structs.replace(profile, scheduled_amount=fee),
            msgspec.structs.replace(schedule, period_fee=fee))


def check_terms(model: str, start: dt.date, end: dt.date | None, total_value: Decimal | None,
                profile: BillingProfile, schedule: Any) -> None:
    """Billing terms that make sense for the billing model, inside the term and within the contract's value."""
    errors: list[FieldError] = []
    lines = list(schedule.lines)
    if model == "fixed_fee":
        if profile.scheduled_amount is not None:
            errors.append(FieldError(pointer="/billing_profile/scheduled_amount",
                                     detail="a fixed fee is billed by billing_schedule.lines, not per period"))
    elif lines:
        errors.append(FieldError(pointer="/billing_schedule/lines", detail="only a fixed fee has instalments"))
    if model != "retainer":
        for name in ("period_fee", "hours_allowance"):
            if getattr(schedule, name) is not None:
                errors.append(FieldError(pointer=f"/billing_schedule/{name}", detail="only a retainer has one"))
    elif profile.scheduled_amount is not None and schedule.period_fee is not None \
            and profile.scheduled_amount != schedule.period_fee:
        errors.append(FieldError(pointer="/billing_profile/scheduled_amount",
                                 detail="differs from billing_schedule.period_fee (the retainer's fee)"))
    first, last = f"{start:%Y-%m}", f"{end:%Y-%m}" if end else None
    seen: set[int] = set()
    for index, line in enumerate(lines):
        pointer = f"/billing_schedule/lines/{index}"
        if (line.period is None) == (line.date is None):
            errors.append(FieldError(pointer=f"{pointer}/period", detail="give exactly one of period and date"))
            continue
        period = line.period or f"{line.date:%Y-%m}"
        if period < first or (last is not None and period > last):
            errors.append(FieldError(pointer=f"{pointer}/{'period' if line.period else 'date'}",
                                     detail="outside the contract's term"))
        if line.line_no in seen:
            errors.append(FieldError(pointer=f"{pointer}/line_no", detail="is used by another line"))
        seen.add(line.line_no)
    scheduled = sum((line.amount for line in lines), Decimal(0))
    if total_value is not None and scheduled > total_value:
        errors.append(FieldError(pointer="/billing_schedule/lines",
                                 detail=f"the instalments add up to {scheduled}, more than total_value {total_value}"))
    if errors:
        raise Unprocessable("the billing terms do not fit the contract", slug="validation-failed", errors=errors)


def check_revenue_terms(model: str, terms: RevenueTerms) -> None:
    """Percent complete is a fixed fee's choice and measures cost against a budget, so it needs one above zero."""
    errors: list[FieldError] = []
    if terms.fixed_fee_method == "percent_complete":
        if model != "fixed_fee":
            errors.append(FieldError(pointer="/revenue_terms/fixed_fee_method", detail="only a fixed fee has a choice"))
        if terms.budget_cost is None or terms.budget_cost <= 0:
            errors.append(FieldError(pointer="/revenue_terms/budget_cost",
                                     detail="percent complete needs a budgeted cost above zero"))
    if terms.budget_cost is not None and not (0 <= terms.budget_cost < Decimal(10) ** 12):
        errors.append(FieldError(pointer="/revenue_terms/budget_cost", detail="must be 0..10^12"))
    if errors:
        raise Unprocessable("the revenue terms do not fit the contract", slug="validation-failed", errors=errors)


class ErpService:
    def __init__(self, connector: ErpConnector) -> None:
        self.connector = connector

    async def upsert_contract(self, data: ContractCreate, idempotency_key: str | None) -> tuple[Contract, bool]:
        check_dates(data.start_date, data.end_date)
        profile, schedule = billing_terms(data.billing_model, data.billing_profile, data.billing_schedule)
        check_terms(data.billing_model, data.start_date, data.end_date, data.total_value, profile, schedule)
        check_revenue_terms(data.billing_model, data.revenue_terms)
        data = msgspec.structs.replace(data, billing_profile=profile, billing_schedule=schedule)
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
        terms = {"billing_model", "start_date", "end_date", "total_value", "billing_profile", "billing_schedule"}
        if terms & changes.keys():
            model = str(changes.get("billing_model", current.billing_model))
            profile, schedule = billing_terms(
                model, changes.get("billing_profile", current.billing_profile),  # type: ignore[arg-type]
                changes.get("billing_schedule", current.billing_schedule))
            end = changes.get("end_date", current.end_date)
            check_terms(model, changes.get("start_date", current.start_date),  # type: ignore[arg-type]
                        end if isinstance(end, dt.date) else None,
                        changes.get("total_value", current.total_value),  # type: ignore[arg-type]
                        profile, schedule)
            if "billing_profile" in changes or "billing_schedule" in changes:
                changes["billing_profile"], changes["billing_schedule"] = profile, schedule
        if "billing_model" in changes or "revenue_terms" in changes:
            check_revenue_terms(str(changes.get("billing_model", current.billing_model)),
                                changes.get("revenue_terms", current.revenue_terms))  # type: ignore[arg-type]
        return await self.connector.update_contract(contract_id, changes)

    async def void_invoice(self, invoice_id: str) -> Invoice:
        current = await self.connector.get_invoice(invoice_id)
        if current.state == "void":
            return current
        if current.state != "draft":
            raise Conflict(f"a {current.state} invoice cannot be voided (a credit note corrects it)",
                           slug="invalid-transition", from_state=current.state, to_state="void")
        return await self.connector.void_invoice(invoice_id)

