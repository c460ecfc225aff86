"""The process tier's keyed writes on the one Idempotency-Key rule (runtime/idempotency.py, docs/ARCHITECTURE.md).

Decisions on time (``decideTime``), correction requests (``requestCorrection``) and provisionings
(``startProvisioning`` and ``provisionOpportunity``: one scope, so a key names one opportunity whichever way it
came) each record a business object. The write completes its key in the transaction that records the object
(:func:`complete`), and the stored answer names the object, so a replay answers from the object as it is now
(a decision the recovery loop has since applied answers applied). Keys are kept as long as the objects they
name. A request arriving while another holds its key waits for that one's answer: these operations' contracts
have no 409 for it.

Before this store, each of those tables kept its key in a column of its own; :func:`adopt_earlier_keys` moves
those keys here once and drops the columns, so a key sent before an upgrade is still answered after it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from process_apis.store import approvals, idempotency_records, provisionings, time_corrections
from runtime.idempotency import Claim, IdempotencyStore, fingerprint
from runtime.storage import Database

APPROVALS = "decideTime"
CORRECTIONS = "requestCorrection"
PROVISIONINGS = "startProvisioning"
# A holder that has not recorded its object within the lease has died; a request waiting for it takes over then.
LEASE_SECONDS = 60.0


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


async def adopt_earlier_keys(db: Database) -> list[str]:
    """Move the keys of the earlier key columns into the store and drop the columns (once; every start runs it).
    Returns the columns dropped."""

    def carrying(column: str, scope: str, status: int, fingerprint_of: Any) -> Any:
        async def carry(conn: AsyncConnection, rows: Sequence[Any]) -> None:
            keyed = [row for row in rows if getattr(row, column)]
            if keyed:
                await conn.execute(db.insert_ignoring_conflicts(idempotency_records, ["scope", "key"]), [
                    {"scope": scope, "key": getattr(row, column), "fingerprint": fingerprint_of(row), "state": "done",
                     "status": status, "body": msgspec.json.encode(_Recorded(id=row.id)),
                     "created_at": _epoch(row.created_at)} for row in keyed])
        return carry

    dropped = await db.retire_columns(approvals, ["idempotency_key"], carrying(
        "idempotency_key", APPROVALS, 201,
        lambda r: approval_fingerprint(r.time_entry_ids, r.approver_id, r.decision, r.reason)))
    dropped += await db.retire_columns(time_corrections, ["client_key"], carrying(
        "client_key", CORRECTIONS, 201,
        lambda r: correction_fingerprint(r.time_entry_id, r.worker_id, r.changes, r.reason)))
    dropped += await db.retire_columns(provisionings, ["idempotency_key"], carrying(
        "idempotency_key", PROVISIONINGS, 202, lambda r: provisioning_fingerprint(r.opportunity_id)))
    return dropped


def _epoch(instant: dt.datetime) -> float:
    return instant.timestamp()
