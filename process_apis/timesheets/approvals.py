"""Approvals: a manager's decision on submitted time, the start of time to bill.

A decision is recorded in SQL before anything else changes; applying it moves each entry in the PSA (an
idempotent transition), then settles approved entries for billing in one transaction with the approval's
completion and its events. A decision that could not be fully applied (the PSA was down) stays ``recorded`` and
is completed by the recovery loop, so nothing approved is lost.

The rules of deciding time live here: only the project's manager decides an entry, nobody decides their own
time (:func:`own_time`, also applied to corrections in process_apis/timesheets/corrections.py), and a decision
already taken is not taken again (:func:`decided_already`). Writing and submitting time is
process_apis/timesheets/service.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.canonical import TIME_ENTRY_APPROVED, Project, TimeEntry, decimal_text
from process_apis.backoff import describe, is_transient
from process_apis.billing.models import Settlement
from process_apis.billing.service import BillingService
from process_apis.events.outbox import record_event
from process_apis.idempotency import APPROVALS, approval_fingerprint, complete, recorded_id
from process_apis.store import approvals
from process_apis.systems import Psa
from process_apis.timesheets.models import Approval, ApprovalRequest, EntryOutcome, entry_subject
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime import correlation
from runtime.downstream import DownstreamProblem, found_or_none
from runtime.idempotency import Claim, IdempotencyStore
from runtime.problems import BadRequest, FieldError, Forbidden, NotFound
from runtime.storage import utcnow

CONCURRENCY = 16
OWN_TIME = "nobody approves or rejects their own time"
# How long one call may apply a decision before another may take over (its PSA calls have timeouts well within).
APPLY_LEASE_SECONDS = 60.0


class ApprovalService:
    """Decisions on submitted time: it reads and moves entries in the PSA, settles approved ones for billing and
    answers a retried decision once (``keys``: process_apis/idempotency.py)."""

    def __init__(self, uow: UnitOfWorkFactory, psa: Psa, billing: BillingService, keys: IdempotencyStore) -> None:
        self.uow = uow
        self.db = uow.db
        self.psa = psa
        self.billing = billing
        self.keys = keys

    async def decide(self, request: ApprovalRequest, idempotency_key: str | None) -> tuple[bool, Approval]:
        """Record the decision (once per Idempotency-Key), then apply it; returns (new, approval)."""
        if request.decision == "reject" and not (request.reason or "").strip():
            raise BadRequest("a rejection needs a reason the worker can act on", slug="validation-error",
                             errors=[FieldError(pointer="/reason", detail="required when rejecting")])

        async def first(claim: Claim | None) -> tuple[bool, Approval]:
            repeated = await self._repeated_decision(request)
            if repeated is not None:
                return False, repeated  # the key stays free: nothing was recorded under it
            return True, await self._applied(await self.record_decision(request, claim))

        async def again(_status: int, body: bytes) -> tuple[bool, Approval]:
            # The decision this key recorded, applied as far as it can be now (a retry after a 202 completes it).
            return False, await self._applied(recorded_id(body))

        return await self.keys.once(
            scope=APPROVALS, key=idempotency_key, action=first, replay=again,
            request_fingerprint=approval_fingerprint(request.time_entry_ids, request.approver_id, request.decision,
                                                     request.reason))

    async def _applied(self, approval_id: str) -> Approval:
        try:
            return await self.apply(approval_id)
        except DownstreamProblem as exc:
            if not is_transient(exc):
                raise
            # A system is down: the decision is recorded and the recovery loop completes it (202).
            return await self.get_approval(approval_id)

    async def _repeated_decision(self, request: ApprovalRequest) -> Approval | None:
        """Refuse a decision on one's own time (403, nothing recorded); answer a decision already taken on every
        entry with the approval that took it, each entry ``unchanged`` (no new approval, nothing settled again).

        Looks at the PSA first; when the PSA cannot answer, the decision is recorded as usual and the same rules
        apply entry by entry when it is applied (:func:`decided_already`, :func:`own_time`)."""
        ids = list(dict.fromkeys(request.time_entry_ids))
        try:
            entries = await self._known_entries(ids)
        except DownstreamProblem as exc:
            if is_transient(exc):
                return None
            raise
        own = [index for index, entry_id in enumerate(ids)
               if entry_id in entries and own_time(entries[entry_id].worker_id, request.approver_id)]
        if own:
            raise Forbidden(OWN_TIME, slug="own-time", errors=[
                FieldError(pointer=f"/time_entry_ids/{i}", detail="the approver's own entry") for i in own])
        if len(entries) < len(ids) or not all(decided_already(entries[i], request.decision) for i in ids):
            return None
        deciding = await self._deciding_approval(ids, request.decision)
        if deciding is None:
            return None
        return msgspec.structs.replace(deciding, entries=[
            EntryOutcome(time_entry_id=i, result="unchanged", state=entries[i].state,
                         detail=f"{entries[i].state} already") for i in ids])

    async def _known_entries(self, ids: list[str]) -> dict[str, TimeEntry]:
        """The entries that exist among ``ids`` (an unknown one is answered ``not_found`` when applied)."""
        limit = asyncio.Semaphore(CONCURRENCY)

        async def one(entry_id: str) -> TimeEntry | None:
            async with limit:
                return await found_or_none(self.psa.time_entry(entry_id))

        return {e.id: e for e in await asyncio.gather(*(one(i) for i in ids)) if e is not None}

    async def _deciding_approval(self, ids: list[str], decision: str) -> Approval | None:
        """The one applied approval that decided every entry of ``ids`` this way, if there is one."""
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(approvals).where(
                approvals.c.decision == decision, approvals.c.state == "applied",
                sa.cast(approvals.c.time_entry_ids, sa.Text).like(f'%"{ids[0]}"%'))
                .order_by(approvals.c.created_at.desc()).limit(20))).all()
        target = "approved" if decision == "approve" else "rejected"
        for row in rows:
            decided = {o["time_entry_id"] for o in (row.outcome or []) if o.get("result") == target}
            if set(ids) <= decided:
                return _approval(row)
        return None

    async def record_decision(self, request: ApprovalRequest, claim: Claim | None) -> str:
        """Record the decision, its Idempotency-Key (if sent) in the same transaction; returns its id."""
        approval_id = "apr_" + uuid.uuid4().hex[:24]
        async with self.uow() as uow:
            await uow.conn.execute(approvals.insert().values(
                id=approval_id, approver_id=request.approver_id, decision=request.decision, reason=request.reason,
                time_entry_ids=list(dict.fromkeys(request.time_entry_ids)), state="recorded", attempts=0,
                correlation_id=correlation.current_correlation_id(), trace_id=correlation.current_trace_id(),
                created_at=utcnow()))
            await complete(claim, uow.conn, 201, approval_id)
        return approval_id

    async def get_approval(self, approval_id: str) -> Approval:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(approvals).where(approvals.c.id == approval_id))).first()
        if row is None:
            raise NotFound(f"no approval {approval_id!r}", slug="unknown-id")
        return _approval(row)

    async def apply(self, approval_id: str) -> Approval:
        """Apply a recorded decision; safe to repeat (every step is idempotent)."""
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(approvals).where(approvals.c.id == approval_id))).one()
        if row.state == "applied":
            return _approval(row)
        if not await self._take(approval_id):
            return await self._applied_by_another(approval_id)
        try:
            return await self._apply(row)
        finally:
            async with self.uow() as uow:
                await uow.conn.execute(approvals.update().where(approvals.c.id == approval_id)
                                       .values(applying_until=None))

    async def _take(self, approval_id: str) -> bool:
        """Whether this call now applies the decision: two at once (a retry beside the first request, the
        recovery loop) would each move the entries and report each move."""
        now = utcnow()
        async with self.uow() as uow:
            taken = await uow.conn.execute(approvals.update().where(
                approvals.c.id == approval_id, approvals.c.state == "recorded",
                sa.or_(approvals.c.applying_until.is_(None), approvals.c.applying_until < now),
            ).values(applying_until=now + dt.timedelta(seconds=APPLY_LEASE_SECONDS)))
        return bool(taken.rowcount == 1)

    async def _applied_by_another(self, approval_id: str) -> Approval:
        """The decision as the call applying it leaves it (or as it stands when that call's lease runs out)."""
        deadline = asyncio.get_running_loop().time() + APPLY_LEASE_SECONDS
        while True:
            async with self.db.read() as conn:
                row = (await conn.execute(sa.select(approvals).where(approvals.c.id == approval_id))).one()
            if row.state == "applied" or row.applying_until is None or asyncio.get_running_loop().time() > deadline:
                return _approval(row)
            await asyncio.sleep(0.1)

    async def _apply(self, row: Any) -> Approval:
        approval_id = row.id
        outcomes, decided = await self._decide_in_psa(row)
        approved = [e for e in decided if e.state == "approved"]
        pending = any(o.result == "pending" for o in outcomes.values())

        async def finish(conn: AsyncConnection, settlements: dict[str, Settlement]) -> None:
            for entry_id, settlement in settlements.items():
                outcomes[entry_id].settlement = settlement
            for entry in decided:
                await record_event(conn, "time.approved" if row.decision == "approve" else "time.rejected",
                                   entry_subject(entry),
                                   {"approval_id": row.id, "approver_id": row.approver_id, "reason": row.reason,
                                    "hours": decimal_text(entry.hours), "work_date": entry.work_date.isoformat(),
                                    "version": entry.version})
            items = [outcomes[i] for i in row.time_entry_ids]
            await conn.execute(approvals.update().where(approvals.c.id == row.id).values(
                state="recorded" if pending else "applied", applied_at=None if pending else utcnow(),
                attempts=row.attempts + 1, outcome=msgspec.to_builtins(items)))

        if approved:
            await self.billing.settle(approved, approval_id=row.id, actor_id=row.approver_id, also=finish)
        else:
            async with self.uow() as uow:
                await finish(uow.conn, {})
        return await self.get_approval(approval_id)

    async def _decide_in_psa(self, row: Any) -> tuple[dict[str, EntryOutcome], list[TimeEntry]]:
        target = "approved" if row.decision == "approve" else "rejected"
        limit = asyncio.Semaphore(CONCURRENCY)
        projects: dict[str, Project | None] = {}

        async def manager_of(project_id: str) -> str | None:
            if project_id not in projects:
                try:
                    projects[project_id] = await self.psa.project(project_id)
                except DownstreamProblem as exc:
                    if exc.status != 404:
                        raise
                    projects[project_id] = None
            project = projects[project_id]
            return project.manager_id if project else None

        async def one(entry_id: str) -> tuple[EntryOutcome, TimeEntry | None]:
            async with limit:
                try:
                    entry = await self.psa.time_entry(entry_id)
                    if await manager_of(entry.project_id) != row.approver_id:
                        return EntryOutcome(time_entry_id=entry_id, result="refused", state=entry.state,
                                            detail=f"{row.approver_id} does not manage {entry.project_id}"), None
                    if own_time(entry.worker_id, row.approver_id):
                        return EntryOutcome(time_entry_id=entry_id, result="refused", state=entry.state,
                                            detail=OWN_TIME), None
                    if decided_already(entry, row.decision):
                        return EntryOutcome(time_entry_id=entry_id, result="unchanged", state=entry.state,
                                            detail=f"{entry.state} already"), None
                    moved = await self.psa.transition_time_entry(
                        entry_id, target, actor_id=row.approver_id, reason=row.reason)
                except DownstreamProblem as exc:
                    if exc.status == 404:
                        return EntryOutcome(time_entry_id=entry_id, result="not_found", detail=describe(exc)), None
                    if is_transient(exc):
                        return EntryOutcome(time_entry_id=entry_id, result="pending", detail=describe(exc)), None
                    return EntryOutcome(time_entry_id=entry_id, result="refused", detail=describe(exc)), None
                return EntryOutcome(time_entry_id=entry_id, result=target, state=moved.state), moved  # type: ignore[arg-type]

        results = await asyncio.gather(*(one(i) for i in row.time_entry_ids))
        outcomes = {outcome.time_entry_id: outcome for outcome, _ in results}
        return outcomes, [moved for _, moved in results if moved is not None]

    async def recover(self, older_than_seconds: float) -> int:
        """Complete decisions left ``recorded`` (the PSA was down, or the process stopped mid-way)."""
        cutoff = utcnow() - dt.timedelta(seconds=older_than_seconds)
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(approvals.c.id, approvals.c.correlation_id, approvals.c.trace_id)
                                       .where(approvals.c.state == "recorded", approvals.c.created_at < cutoff)
                                       .order_by(approvals.c.created_at).limit(50))).all()
        for row in rows:
            # Completed in the trace of the request that decided it (holds it raises carry that trace id).
            token = correlation.set_current(correlation.resume(row.correlation_id, row.trace_id))
            try:
                await self.apply(row.id)
            finally:
                correlation.reset_current(token)
        return len(rows)


def own_time(worker_id: str, approver_id: str) -> bool:
    """Separation of duties: nobody decides their own time (entries and corrections alike)."""
    return worker_id == approver_id


def decided_already(entry: TimeEntry, decision: str) -> bool:
    """The entry is where this decision would take it (approved time moves on to posted and invoiced)."""
    if decision == "approve":
        return entry.state in TIME_ENTRY_APPROVED
    return entry.state == "rejected"


def _approval(row: Any) -> Approval:
    entries = msgspec.convert(row.outcome or [], list[EntryOutcome])
    if not entries:
        entries = [EntryOutcome(time_entry_id=i, result="pending") for i in row.time_entry_ids]
    return Approval(id=row.id, approver_id=row.approver_id, decision=row.decision, reason=row.reason,
                    state=row.state, created_at=row.created_at, applied_at=row.applied_at, entries=entries)
