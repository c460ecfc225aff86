"""Payloads of the expenses process API v1 (contracts/process/expenses/v1.yaml)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from contracts.canonical import Currency, ExpenseReasonCode, Instant

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
Country = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
ReceiptRef = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=500)]
# captured -> approved -> posted -> invoiced; held (by policy) and rejected end the way.
ExpenseState = Literal["held", "submitted", "approved", "rejected", "posted", "invoiced"]


class NewExpense(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    worker_id: Id
    project_id: Id
    category: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    # msgspec cannot bound Decimals: the service checks 0 < amount <= MAX_AMOUNT with cents, pointing at /amount.
    amount: Decimal
    currency: Currency
    expense_date: dt.date
    country: Country
    billable: bool = True
    receipt_ref: ReceiptRef | None = None
    description: Description = ""


class ExpenseDecision(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    approver_id: Id
    decision: Literal["approve", "reject"]
    reason: Description | None = None


class ExpenseRecord(msgspec.Struct, kw_only=True):
    id: str
    worker_id: str
    project_id: str
    contract_id: str
    category: str
    amount: Decimal
    currency: str
    expense_date: dt.date
    country: str
    billable: bool
    receipt_ref: str | None
    description: str
    state: ExpenseState
    reason_codes: list[ExpenseReasonCode]
    approver_id: str | None = None
    decision_reason: str | None = None
    erp_posting_id: str | None = None
    invoice_id: str | None = None
    created_at: Instant


class ExpensePage(msgspec.Struct, kw_only=True):
    items: list[ExpenseRecord]
    next_cursor: str | None = None
