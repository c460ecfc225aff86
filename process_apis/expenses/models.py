"""Payloads of the expenses process API v1 (contracts/process/expenses/v1.yaml)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

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
    # The PSA's record of it, once the posted expense is written there (null before).
    psa_expense_id: str | None = None
    invoice_id: str | None = None
    created_at: Instant


class ExpensePage(msgspec.Struct, kw_only=True):
    items: list[ExpenseRecord]
    next_cursor: str | None = None


# An offline phone's id for an expense: a re-sent item with the same client_ref is the same expense.
ClientRef = Annotated[str, msgspec.Meta(min_length=1, max_length=150)]
MAX_SYNC_ITEMS = 100


class ExpenseSyncItem(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One expense of an offline batch. Its fields are loosely typed on purpose: each is checked on its own
    (as ``NewExpense`` is), so a bad item answers for itself and the rest of the batch goes on."""

    client_ref: ClientRef
    worker_id: str | None = None
    project_id: str | None = None
    category: str | None = None
    amount: str | None = None
    currency: str | None = None
    expense_date: str | None = None
    country: str | None = None
    billable: bool = True
    receipt_ref: str | None = None
    description: str = ""


class ExpenseSyncRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    items: Annotated[list[ExpenseSyncItem], msgspec.Meta(min_length=1, max_length=MAX_SYNC_ITEMS)]


class ExpenseSyncResult(msgspec.Struct, kw_only=True):
    client_ref: str
    # created: captured now; existing: this client_ref was captured before (a re-sent batch); error: see problem
    status: Literal["created", "existing", "error"]
    expense: ExpenseRecord | None = None
    problem: dict[str, Any] | None = None


class ExpenseSyncResponse(msgspec.Struct, kw_only=True):
    items: list[ExpenseSyncResult]
