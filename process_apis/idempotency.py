"""The process tier's keyed writes on the one Idempotency-Key rule (runtime/idempotency.py, docs/ARCHITECTURE.md).

Decisions on time (``decideTime``), correction requests (``requestCorrection``), provisionings
(``startProvisioning`` and ``provisionOpportunity``: one scope, so a key names one opportunity whichever way it
came), expenses (``captureExpense``, and each item of ``syncExpenses`` under ``sync:<client_ref>``: one scope, as
the keys were one column before) and write-offs (``recordWriteOff``, a scope per contract: a key names one
write-off of its contract) each record a business object. The write completes its key in the transaction that
records the object (:func:`complete`), and the stored answer names the object, so a replay answers from the object
as it is now (a decision the recovery loop has since applied answers applied). Keys are kept as long as the objects they
name. A request arriving while another holds its key waits for that one's answer: these operations' contracts
have no 409 for it.

Before this store, each of those tables kept its key in a column of its own (expenses and write-offs beside it the
digest of the request, ``request_digest``); :func:`adopt_earlier_keys` moves those keys here once and drops the
columns, so a key sent before an upgrade is still answered after it. An earlier digest names the request as it was
sent, which the row does not always keep (an expense in a category never billed is stored not billable; a write-off
sent without a project is stored with the contract's one project): the request the digest matches is the one
carried. A row whose digest matches none is carried under that digest, so its key is refused (422), never run
twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, TypeVar

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from process_apis.expenses.models import NewExpense
from process_apis.expenses.store import expenses
from process_apis.revenue.models import WriteOffRequest
from process_apis.store import approvals, idempotency_records, provisionings, revenue_write_offs, time_corrections
from runtime.idempotency import Claim, IdempotencyStore, fingerprint
from runtime.storage import Database

APPROVALS = "decideTime"
CORRECTIONS = "requestCorrection"
PROVISIONINGS = "startProvisioning"
CAPTURES = "captureExpense"
WRITE_OFFS = "recordWriteOff"
# A holder that has not recorded its object within the lease has died; a request waiting for it takes over then.
LEASE_SECONDS = 60.0
S = TypeVar("S", bound=msgspec.Struct)


class _Recorded(msgspec.Struct):
    id: str


def keyed_writes(db: Database) -> IdempotencyStore:
    """The tier's store: its records in the tier's own database, beside what they name."""
    return IdempotencyStore(db, table=idempotency_records, lease_seconds=LEASE_SECONDS, retention_seconds=None,
                            wait_seconds=LEASE_SECONDS + 5)


async def complete(claim: Claim | None, conn: AsyncConnection, status: int, record_id: str) -> None:
    """Bind the request's key (if it sent one) to the object ``conn``'s transaction records."""
    if claim is not None:
        await claim.complete(conn, status, _Recorded(id=record_id))


def recorded_id(body: bytes) -> str:
    """The id of the object a key recorded, from its stored answer."""
    return msgspec.json.decode(body, type=_Recorded).id


def approval_fingerprint(time_entry_ids: Sequence[str], approver_id: str, decision: str, reason: str | None) -> str:
    """A decision as recorded: the entries once each, in the order sent."""
    return fingerprint(APPROVALS, {}, {"time_entry_ids": list(dict.fromkeys(time_entry_ids)),
                                       "approver_id": approver_id, "decision": decision, "reason": reason})


def correction_fingerprint(time_entry_id: str, worker_id: str, changes: dict[str, Any], reason: str) -> str:
    return fingerprint(CORRECTIONS, {}, {"time_entry_id": time_entry_id, "worker_id": worker_id,
                                         "changes": changes, "reason": reason})


def provisioning_fingerprint(opportunity_id: str) -> str:
    return fingerprint(PROVISIONINGS, {}, {"opportunity_id": opportunity_id})


def capture_fingerprint(data: NewExpense) -> str:
    return fingerprint(CAPTURES, {}, msgspec.to_builtins(data))


def write_off_scope(contract_id: str) -> str:
    return f"{WRITE_OFFS}:{contract_id}"


def write_off_fingerprint(contract_id: str, data: WriteOffRequest) -> str:
    return fingerprint(WRITE_OFFS, {"contract_id": contract_id}, msgspec.to_builtins(data))


def _as_sent(digest: str, candidates: Sequence[S]) -> S | None:
    """The request an earlier ``request_digest`` (SHA-256 of the request's JSON) was taken of, among those the row
    may have come from."""
    return next((c for c in candidates if hashlib.sha256(msgspec.json.encode(c)).hexdigest() == digest), None)


def _earlier_capture(row: Any) -> str:
    stored = NewExpense(worker_id=row.worker_id, project_id=row.project_id, category=row.category,
                        amount=Decimal(row.amount), currency=row.currency, expense_date=row.expense_date,
                        country=row.country, billable=row.billable, receipt_ref=row.receipt_ref,
                        description=row.description)
    sent = _as_sent(row.request_digest, [stored, msgspec.structs.replace(stored, billable=not stored.billable)])
    return row.request_digest if sent is None else fingerprint(CAPTURES, {}, msgspec.to_builtins(sent))


def _earlier_write_off(row: Any) -> str:
    stored = WriteOffRequest(amount=Decimal(row.amount), reason=row.reason, period=row.period,
                             project_id=row.project_id)
    sent = _as_sent(row.request_digest, [stored, msgspec.structs.replace(stored, project_id=None)])
    return row.request_digest if sent is None else write_off_fingerprint(row.contract_id, sent)


async def adopt_earlier_keys(db: Database) -> list[str]:
    """Move the keys of the earlier key columns into the store and drop the columns (once; every start runs it).
    Returns the columns dropped."""

    def carrying(column: str, scope: Any, status: int, fingerprint_of: Any, created: str = "created_at") -> Any:
        async def carry(conn: AsyncConnection, rows: Sequence[Any]) -> None:
            keyed = [row for row in rows if getattr(row, column)]
            if keyed:
                await conn.execute(db.insert_ignoring_conflicts(idempotency_records, ["scope", "key"]), [
                    {"scope": scope if isinstance(scope, str) else scope(row), "key": getattr(row, column),
                     "fingerprint": fingerprint_of(row), "state": "done", "status": status,
                     "body": msgspec.json.encode(_Recorded(id=row.id)), "created_at": _epoch(getattr(row, created))}
                    for row in keyed])
        return carry

    dropped = await db.retire_columns(approvals, ["idempotency_key"], carrying(
        "idempotency_key", APPROVALS, 201,
        lambda r: approval_fingerprint(r.time_entry_ids, r.approver_id, r.decision, r.reason)))
    dropped += await db.retire_columns(time_corrections, ["client_key"], carrying(
        "client_key", CORRECTIONS, 201,
        lambda r: correction_fingerprint(r.time_entry_id, r.worker_id, r.changes, r.reason)))
    dropped += await db.retire_columns(provisionings, ["idempotency_key"], carrying(
        "idempotency_key", PROVISIONINGS, 202, lambda r: provisioning_fingerprint(r.opportunity_id)))
    dropped += await db.retire_columns(expenses, ["idempotency_key", "request_digest"], carrying(
        "idempotency_key", CAPTURES, 201, _earlier_capture))
    dropped += await db.retire_columns(revenue_write_offs, ["idempotency_key", "request_digest"], carrying(
        "idempotency_key", lambda r: write_off_scope(r.contract_id), 201, _earlier_write_off, created="recorded_at"))
    return dropped


def _epoch(instant: dt.datetime) -> float:
    return instant.timestamp()
