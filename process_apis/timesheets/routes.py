"""Timesheets process API v1 routes (contracts/process/timesheets/v1.yaml)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from litestar import Controller, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, QueryParameter, RequestBody

from contracts.canonical import TimeEntry, TimeEntryState
from process_apis.timesheets.models import (
    Approval,
    ApprovalRequest,
    Correction,
    CorrectionDecision,
    CorrectionOutcome,
    CorrectionPage,
    CorrectionRequest,
    NewTimeEntry,
    SubmissionRequest,
    SubmissionResult,
    SyncRequest,
    SyncResponse,
    TimeEntryChanges,
    TimeEntryPage,
)
from runtime.params import IdempotencyKey, Limit


class TimesheetsV1(Controller):
    path = "/process/timesheets/v1"

    @get("/time-entries", operation_id="listTimeEntries")
    async def list_entries(
        self, state: State, worker_id: FromQuery[str | None] = None,
        project_id: FromQuery[str | None] = None,
        entry_state: Annotated[TimeEntryState | None, QueryParameter(name="state")] = None,
        from_date: FromQuery[dt.date | None] = None, to_date: FromQuery[dt.date | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 50,
    ) -> TimeEntryPage:
        return await state.services.timesheets.list_entries(
            worker_id=worker_id, project_id=project_id, state=entry_state, from_date=from_date, to_date=to_date,
            cursor=cursor, limit=limit)

    @get("/time-entries/{time_entry_id:str}", operation_id="getTimeEntry")
    async def get_entry(self, state: State, time_entry_id: FromPath[str]) -> TimeEntry:
        return await state.services.timesheets.get_entry(time_entry_id)

    @post("/time-entries", operation_id="createTimeEntry")
    async def create_entry(self, state: State, data: RequestBody[NewTimeEntry]) -> Response[TimeEntry]:
        created, entry = await state.services.timesheets.create_entry(data)
        return Response(entry, status_code=201 if created else 200)

    @patch("/time-entries/{time_entry_id:str}", operation_id="updateTimeEntry")
    async def update_entry(self, state: State, time_entry_id: FromPath[str],
                           data: RequestBody[TimeEntryChanges]) -> TimeEntry:
        return await state.services.timesheets.update_entry(time_entry_id, data)

    @delete("/time-entries/{time_entry_id:str}", operation_id="deleteTimeEntry", status_code=204)
    async def delete_entry(self, state: State, time_entry_id: FromPath[str]) -> None:
        await state.services.timesheets.delete_entry(time_entry_id)

    @post("/time-entry-syncs", operation_id="syncTimeEntries", status_code=200)
    async def sync(self, state: State, data: RequestBody[SyncRequest]) -> SyncResponse:
        return await state.services.timesheets.sync(data)

    @post("/submissions", operation_id="submitWeek", status_code=200)
    async def submit(self, state: State, data: RequestBody[SubmissionRequest]) -> SubmissionResult:
        return await state.services.timesheets.submit(data)

    @post("/approvals", operation_id="decideTime")
    async def decide(self, state: State, data: RequestBody[ApprovalRequest],
                     idempotency_key: IdempotencyKey = None) -> Response[Approval]:
        new, approval = await state.services.approvals.decide(data, idempotency_key)
        status = 202 if approval.state == "recorded" else 201 if new else 200
        return Response(approval, status_code=status,
                        headers={"Location": f"{self.path}/approvals/{approval.id}"})

    @get("/approvals/{approval_id:str}", operation_id="getApproval")
    async def get_approval(self, state: State, approval_id: FromPath[str]) -> Approval:
        return await state.services.approvals.get_approval(approval_id)

    @post("/corrections", operation_id="requestCorrection")
    async def request_correction(self, state: State, data: RequestBody[CorrectionRequest],
                                 idempotency_key: IdempotencyKey = None) -> Response[Correction]:
        created, correction = await state.services.corrections.request(data, idempotency_key)
        return Response(correction, status_code=201 if created else 200,
                        headers={"Location": f"{self.path}/corrections/{correction.id}"})

    @get("/corrections", operation_id="listCorrections")
    async def list_corrections(
        self, state: State, project_id: FromQuery[str | None] = None,
        worker_id: FromQuery[str | None] = None,
        correction_state: Annotated[Literal["requested", "rejected", "approved", "applied"] | None,
                                    QueryParameter(name="state")] = None,
        cursor: FromQuery[str | None] = None, limit: Limit = 50,
    ) -> CorrectionPage:
        return await state.services.corrections.list(
            project_ids=[project_id] if project_id is not None else None, worker_id=worker_id,
            state=correction_state, cursor=cursor, limit=limit)

    @get("/corrections/{correction_id:str}", operation_id="getCorrection")
    async def get_correction(self, state: State, correction_id: FromPath[str]) -> Correction:
        return await state.services.corrections.get(correction_id)

    @post("/corrections/{correction_id:str}/decisions", operation_id="decideCorrection")
    async def decide_correction(self, state: State, correction_id: FromPath[str],
                                data: RequestBody[CorrectionDecision]) -> Response[CorrectionOutcome]:
        changed, correction = await state.services.corrections.decide(correction_id, data)
        result = ("approved" if data.decision == "approve" else "rejected") if changed else "unchanged"
        # 202: approved, and carried out by the recovery loop once the PSA answers again.
        return Response(CorrectionOutcome(result=result, correction=correction),  # type: ignore[arg-type]
                        status_code=202 if correction.state == "approved" else 200)
