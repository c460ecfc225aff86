"""The expenses this tier captured, on the tier's one ``MetaData`` (process_apis/store.py).

A capture's Idempotency-Key is kept by the tier's keyed writes (process_apis/idempotency.py), which retired the
table's earlier ``idempotency_key`` and ``request_digest`` columns."""

from __future__ import annotations

import sqlalchemy as sa

from process_apis.store import metadata
from runtime.storage import JSONDocument, Money, UTCDateTime, autoincrement_id

expenses = sa.Table(
    "process_expenses",
    metadata,
    sa.Column("seq", autoincrement_id(), primary_key=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("worker_id", sa.String(64), nullable=False),
    sa.Column("project_id", sa.String(64), nullable=False),
    sa.Column("contract_id", sa.String(64), nullable=False),
    sa.Column("legal_entity_id", sa.String(64), nullable=False),
    sa.Column("category", sa.String(40), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("expense_date", sa.Date, nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("billable", sa.Boolean, nullable=False),
    sa.Column("receipt_ref", sa.String(200), nullable=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason_codes", JSONDocument, nullable=False),
    sa.Column("approver_id", sa.String(64), nullable=True),
    sa.Column("decision_reason", sa.Text, nullable=True),
    sa.Column("erp_posting_id", sa.String(64), nullable=True),
    sa.Column("invoice_id", sa.String(64), nullable=True),
    # The PSA's record of the expense once written there (README, "Expenses": the PSA holds what the ERP books).
    sa.Column("psa_expense_id", sa.String(64), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("process_expenses_project_state", "project_id", "state", "expense_date"),
)
