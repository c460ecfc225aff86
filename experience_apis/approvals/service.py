"""The approvals inbox: submitted time on the manager's own projects, and their decisions on it.

The manager is the token's subject. The inbox lists only projects the PSA names them manager of; a decision is
sent to the timesheets process API with the manager as approver, so the process tier's own check (an approver
must manage the entry's project) refuses anything else, entry by entry. Nobody decides their own time: it is
not in their inbox, and the process tier refuses such a decision (403).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

import msgspec

from experience_apis.approvals.models import (
    Billing,
    CorrectionDecided,
    CorrectionRequestItem,
    CorrectionRequestPage,
    Decision,
    DecisionItem,
    SubmittedEntry,
    SubmittedEntryPage,
)
from experience_apis.process_calls import (
    HR,
    PSA,
    TIMESHEETS,
    HrWorker,
    ProcessApproval,
    ProcessCorrection,
    ProcessCorrectionOutcome,
    ProcessCorrectionPage,
    ProcessTimeEntry,
    ProcessTimeEntryPage,
    PsaProject,
    PsaProjectPage,
)
from runtime.cursors import decode_position, encode_position
from runtime.downstream import Downstream, found_or_none, segment
from runtime.problems import NotFound

CONCURRENCY = 8


class _Cursor(msgspec.Struct, array_like=True):
    work_date: str
    time_entry_id: str


class _CorrectionCursor(msgspec.Struct, array_like=True):
    correction_id: str


ItemT = TypeVar("ItemT", covariant=True)


class _Page(Protocol[ItemT]):
    @property
    def items(self) -> Sequence[ItemT]: ...
    @property
    def next_cursor(self) -> str | None: ...


async def _every_page(gateway: Downstream, path: str, page_type: type[_Page[ItemT]],
                      params: dict[str, Any] | None = None) -> list[ItemT]:
    """Every item of a process or system list, cursor after cursor."""
    found: list[ItemT] = []
    cursor: str | None = None
    while True:
        page = await gateway.get_json(path, page_type, params={**(params or {}), "cursor": cursor, "limit": 200})
        found.extend(page.items)
        cursor = page.next_cursor
        if not cursor:
            return found


class ApprovalsInbox:
    def __init__(self, gateway: Downstream, manager_id: str) -> None:
        self.gateway = gateway
        self.manager_id = manager_id

    async def my_projects(self) -> dict[str, PsaProject]:
        return {p.id: p for p in await _every_page(self.gateway, f"{PSA}/projects", PsaProjectPage)
                if p.manager_id == self.manager_id}

    async def submitted(self, *, project_id: str | None, cursor: str | None, limit: int) -> SubmittedEntryPage:
        after = decode_position(cursor, _Cursor) if cursor else None
        projects = await self.my_projects()
        if project_id is not None:
            if project_id not in projects:
                raise NotFound(f"no project {project_id!r} among the projects you manage", slug="unknown-id")
            projects = {project_id: projects[project_id]}
        gate = asyncio.Semaphore(CONCURRENCY)

        async def of(project: str) -> list[ProcessTimeEntry]:
            async with gate:
                return await _every_page(self.gateway, f"{TIMESHEETS}/time-entries", ProcessTimeEntryPage,
                                         {"project_id": project, "state": "submitted"})

        # Separation of duties: a manager's own time waits in someone else's inbox, never in their own.
        entries = [e for found in await asyncio.gather(*(of(p) for p in sorted(projects))) for e in found
                   if e.worker_id != self.manager_id]
        entries.sort(key=lambda e: (e.work_date.isoformat(), e.id))
        if after is not None:
            entries = [e for e in entries if (e.work_date.isoformat(), e.id) > (after.work_date, after.time_entry_id)]
        page_items, more = entries[:limit], len(entries) > limit
        names = await self._worker_names({e.worker_id for e in page_items})
        items = [SubmittedEntry(
            time_entry_id=e.id, worker_id=e.worker_id, worker_name=names.get(e.worker_id), project_id=e.project_id,
            project_name=projects[e.project_id].name, task_id=e.task_id, work_date=e.work_date, hours=e.hours,
            billable=e.billable, notes=e.notes, submitted_at=e.submitted_at) for e in page_items]
        last = page_items[-1] if more and page_items else None
        return SubmittedEntryPage(items=items, next_cursor=encode_position(_Cursor(last.work_date.isoformat(), last.id))
                                  if last else None)

    async def correction_requests(self, *, cursor: str | None, limit: int) -> CorrectionRequestPage:
        """Open correction requests on my projects, others' only (nobody decides their own time)."""
        after = decode_position(cursor, _CorrectionCursor).correction_id if cursor else None
        projects = await self.my_projects()
        gate = asyncio.Semaphore(CONCURRENCY)

        async def of(project: str) -> list[ProcessCorrection]:
            async with gate:
                return await _every_page(self.gateway, f"{TIMESHEETS}/corrections", ProcessCorrectionPage,
                                         {"project_id": project, "state": "requested"})

        requests = sorted((c for found in await asyncio.gather(*(of(p) for p in sorted(projects))) for c in found
                           if c.worker_id != self.manager_id and (after is None or c.id > after)),
                          key=lambda c: c.id)
        page_items, more = requests[:limit], len(requests) > limit
        entries = await asyncio.gather(*(self.gateway.get_json(
            f"{TIMESHEETS}/time-entries/{segment(c.time_entry_id)}", ProcessTimeEntry) for c in page_items))
        names = await self._worker_names({c.worker_id for c in page_items})
        items = [CorrectionRequestItem(
            correction_id=c.id, time_entry_id=c.time_entry_id, worker_id=c.worker_id,
            worker_name=names.get(c.worker_id), project_id=c.project_id, project_name=projects[c.project_id].name,
            work_date=e.work_date, hours=e.hours, corrected_hours=c.hours, corrected_work_date=c.work_date,
            corrected_notes=c.notes, reason=c.reason, requested_at=c.created_at)
            for c, e in zip(page_items, entries, strict=True)]
        return CorrectionRequestPage(items=items, next_cursor=encode_position(_CorrectionCursor(page_items[-1].id))
                                     if more and page_items else None)

    async def decide_correction(self, correction_id: str, decision: str, reason: str | None) -> CorrectionDecided:
        response = await self.gateway.request(
            "POST", f"{TIMESHEETS}/corrections/{segment(correction_id)}/decisions",
            json={"approver_id": self.manager_id, "decision": decision, "reason": reason})
        outcome = msgspec.json.decode(response.content, type=ProcessCorrectionOutcome)
        return CorrectionDecided(correction_id=outcome.correction.id, result=outcome.result,  # type: ignore[arg-type]
                                 state=outcome.correction.state,  # type: ignore[arg-type]
                                 new_time_entry_id=outcome.correction.new_time_entry_id)

    async def _worker_names(self, worker_ids: set[str]) -> dict[str, str]:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(worker_id: str) -> tuple[str, str | None]:
            async with gate:
                worker = await found_or_none(self.gateway.get_json(f"{HR}/workers/{segment(worker_id)}", HrWorker))
                return worker_id, worker.name if worker is not None else None

        return {w: n for w, n in await asyncio.gather(*(one(w) for w in sorted(worker_ids))) if n is not None}

    async def decide(self, time_entry_ids: Sequence[str], decision: str, reason: str | None,
                     idempotency_key: str | None) -> Decision:
        body = {"time_entry_ids": list(time_entry_ids), "approver_id": self.manager_id, "decision": decision,
                "reason": reason}
        response = await self.gateway.request("POST", f"{TIMESHEETS}/approvals", json=body,
                                              idempotency_key=idempotency_key)
        return _decision(msgspec.json.decode(response.content, type=ProcessApproval))

    async def decision(self, approval_id: str) -> Decision:
        """A decision I recorded, as it stands now; anyone else's is as unknown as a missing one."""
        approval = await found_or_none(
            self.gateway.get_json(f"{TIMESHEETS}/approvals/{segment(approval_id)}", ProcessApproval))
        if approval is None or approval.approver_id != self.manager_id:
            raise NotFound(f"no decision {approval_id!r}", slug="unknown-id")
        return _decision(approval)


def _decision(approval: ProcessApproval) -> Decision:
    items = [DecisionItem(
        time_entry_id=o.time_entry_id, result=o.result, state=o.state, detail=o.detail,
        billing=Billing(disposition=o.settlement.disposition, reasons=o.settlement.reasons,
                        amount=o.settlement.amount, currency=o.settlement.currency)
        if o.settlement is not None else None) for o in approval.entries]
    return Decision(
        approval_id=approval.id, decision=approval.decision,  # type: ignore[arg-type]
        reason=approval.reason, state="applied" if approval.state == "applied" else "recorded",
        approved=sum(1 for i in items if i.result == "approved"),
        rejected=sum(1 for i in items if i.result == "rejected"),
        not_decided=sum(1 for i in items if i.result not in ("approved", "rejected")), items=items)
