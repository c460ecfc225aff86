"""Mobile time entry routes, v1, v2 and v3 side by side. The caller is the consultant: the token's subject.

Every version shares :mod:`experience_apis.mobile_time.service`; they differ only in payload shape (v1 decimal
hours + billable flag, v2 minutes + work type, v3 v2's with a travel work type). v2 and v3 are one controller
parameterised by the version's work types (``work_types``). v1 and v2 are deprecated: the
gateway's lifecycle policy (policies/lifecycle) adds their Deprecation, Sunset and successor Link headers from
the contract.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter, RequestBody

from experience_apis.etags import respond_with_etag
from experience_apis.mobile_time import shapes
from experience_apis.mobile_time.models import (
    CorrectionRequestV2,
    EntryChanges,
    EntryChangesV1,
    EntryChangesV2,
    EntryChangesV3,
    MyAssignment,
    MyAssignments,
    MyCorrectionV2,
    MyEntry,
    MyEntryV1,
    NewEntry,
    NewEntryV1,
    NewEntryV2,
    NewEntryV3,
    SyncRequestV1,
    SyncRequestV2,
    SyncResponse,
    SyncResponseV1,
    WeekSubmission,
)
from experience_apis.mobile_time.service import MobileTime
from experience_apis.people import worker_of
from experience_apis.process_calls import STAFFING, StaffedPage
from runtime.downstream import segment
from runtime.params import IdempotencyKey
from runtime.tokens import Principal

__all__ = ["MobileTimeV1", "MobileTimeV2", "MobileTimeV3", "worker_of"]

Limit = Annotated[int, QueryParameter(ge=1, le=100)]


def mobile(state: State, principal: Principal) -> MobileTime:
    return MobileTime(state.downstreams["gateway"], worker_of(principal))


async def my_assignments(request: Request[Any, Any, Any], state: State, principal: Principal, cursor: str | None,
                         limit: int) -> Response[bytes]:
    worker_id = worker_of(principal)
    page = await state.downstreams["gateway"].get_json(
        f"{STAFFING}/workers/{segment(worker_id)}/assignments", StaffedPage, params={"cursor": cursor, "limit": limit})
    payload = MyAssignments(
        items=[
            MyAssignment(
                assignment_id=a.id, project_id=a.project.id, project_name=a.project.name, role=a.role,
                planned_hours_per_week=a.planned_hours_per_week, start_date=a.start_date, end_date=a.end_date,
                # A phone shows every assignment but only offers time entry where the PSA will take it.
                can_log_time=a.status == "confirmed" and a.project.status == "active",
            )
            for a in page.items
        ],
        next_cursor=page.next_cursor,
    )
    return respond_with_etag(request, payload)


class MobileTimeEveryVersion(Controller):
    """The operations every version serves alike (their payloads name neither hours nor minutes)."""

    @get("/me/assignments", operation_id="listMyAssignments")
    async def my_assignments(self, request: Request[Any, Any, Any], state: State, principal: NamedDependency[Principal],
                             cursor: FromQuery[str | None] = None, limit: Limit = 50) -> Response[bytes]:
        return await my_assignments(request, state, principal, cursor, limit)

    @delete("/me/time-entries/{time_entry_id:str}", operation_id="deleteMyTimeEntry", status_code=204)
    async def remove(self, state: State, principal: NamedDependency[Principal], time_entry_id: FromPath[str]) -> None:
        await mobile(state, principal).delete(time_entry_id)

    @post("/me/weeks/{week_start:date}/submissions", operation_id="submitMyWeek", status_code=200)
    async def submit(self, state: State, principal: NamedDependency[Principal],
                     week_start: FromPath[dt.date]) -> WeekSubmission:
        return await mobile(state, principal).submit(week_start)


class MobileTimeV1(MobileTimeEveryVersion):
    path = "/experience/mobile-time/v1"

    @get("/me/weeks/{week_start:date}", operation_id="getMyWeek")
    async def my_week(self, request: Request[Any, Any, Any], state: State, principal: NamedDependency[Principal],
                      week_start: FromPath[dt.date]) -> Response[bytes]:
        service = mobile(state, principal)
        return respond_with_etag(request, shapes.week_v1(service, await service.week(week_start)))

    @post("/me/time-entries", operation_id="createMyTimeEntry")
    async def create(self, state: State, principal: NamedDependency[Principal],
                     data: RequestBody[NewEntryV1]) -> Response[MyEntryV1]:
        service = mobile(state, principal)
        created, entry = await service.create(shapes.new_entry_v1(data), data.client_ref)
        return Response(shapes.entry_v1(service, entry), status_code=201 if created else 200)

    @patch("/me/time-entries/{time_entry_id:str}", operation_id="updateMyTimeEntry")
    async def update(self, state: State, principal: NamedDependency[Principal], time_entry_id: FromPath[str],
                     data: RequestBody[EntryChangesV1]) -> MyEntryV1:
        service = mobile(state, principal)
        return shapes.entry_v1(service, await service.update(time_entry_id, shapes.changes_v1(data)))

    @post("/me/time-entry-syncs", operation_id="syncMyTimeEntries", status_code=200)
    async def sync(self, state: State, principal: NamedDependency[Principal],
                   data: RequestBody[SyncRequestV1]) -> SyncResponseV1:
        service = mobile(state, principal)
        commands = [shapes.sync_command_v1(i, item) for i, item in enumerate(data.items)]
        return shapes.sync_response_v1(service, await service.sync(commands))


class MobileTimeV2(MobileTimeEveryVersion):
    """v2's operations; v3 (:class:`MobileTimeV3`) serves them all with its own work types (``work_types``)."""

    path = "/experience/mobile-time/v2"
    work_types: ClassVar[shapes.WorkTypes] = shapes.WORK_TYPES

    @get("/me/weeks/{week_start:date}", operation_id="getMyWeek")
    async def my_week(self, request: Request[Any, Any, Any], state: State, principal: NamedDependency[Principal],
                      week_start: FromPath[dt.date]) -> Response[bytes]:
        service = mobile(state, principal)
        return respond_with_etag(request, shapes.week_minutes(service, await service.week(week_start),
                                                              self.work_types))

    @post("/me/time-entries", operation_id="createMyTimeEntry")
    async def create(self, state: State, principal: NamedDependency[Principal],
                     data: RequestBody[NewEntryV2]) -> Response[MyEntry[Any]]:
        return await self._create(state, principal, data)

    async def _create(self, state: State, principal: Principal, data: NewEntry[Any]) -> Response[MyEntry[Any]]:
        service = mobile(state, principal)
        with shapes.pointing_v2():
            created, entry = await service.create(shapes.new_entry_v2(data, self.work_types), data.client_ref)
        return Response(shapes.entry_minutes(service, entry, self.work_types), status_code=201 if created else 200)

    @patch("/me/time-entries/{time_entry_id:str}", operation_id="updateMyTimeEntry")
    async def update(self, state: State, principal: NamedDependency[Principal], time_entry_id: FromPath[str],
                     data: RequestBody[EntryChangesV2]) -> MyEntry[Any]:
        return await self._update(state, principal, time_entry_id, data)

    async def _update(self, state: State, principal: Principal, time_entry_id: str,
                      data: EntryChanges[Any]) -> MyEntry[Any]:
        service = mobile(state, principal)
        with shapes.pointing_v2():
            return shapes.entry_minutes(service, await service.update(
                time_entry_id, shapes.changes_v2(data, self.work_types)), self.work_types)

    @post("/me/time-entry-syncs", operation_id="syncMyTimeEntries", status_code=200)
    async def sync(self, state: State, principal: NamedDependency[Principal],
                   data: RequestBody[SyncRequestV2]) -> SyncResponse[Any]:
        service = mobile(state, principal)
        commands = [shapes.sync_command_v2(i, item, self.work_types) for i, item in enumerate(data.items)]
        return shapes.sync_response_minutes(service, await service.sync(commands), self.work_types)

    @post("/me/time-entries/{time_entry_id:str}/corrections", operation_id="requestMyCorrection")
    async def request_correction(self, state: State, principal: NamedDependency[Principal],
                                 time_entry_id: FromPath[str],
                                 data: RequestBody[CorrectionRequestV2],
                                 idempotency_key: IdempotencyKey = None) -> Response[MyCorrectionV2]:
        service = mobile(state, principal)
        with shapes.pointing_v2():
            created, correction = await service.request_correction(
                time_entry_id, shapes.correction_v2(data), data.reason, idempotency_key)
        return Response(shapes.my_correction_v2(correction), status_code=201 if created else 200)


class MobileTimeV3(MobileTimeV2):
    """v2's operations with v3's work types (travel). Only the writes whose body names a work type are declared
    again, for the body's closed set; they do what v2's do."""

    path = "/experience/mobile-time/v3"
    work_types = shapes.WORK_TYPES_V3

    @post("/me/time-entries", operation_id="createMyTimeEntry")
    async def create(self, state: State, principal: NamedDependency[Principal],
                     data: RequestBody[NewEntryV3]) -> Response[MyEntry[Any]]:
        return await self._create(state, principal, data)

    @patch("/me/time-entries/{time_entry_id:str}", operation_id="updateMyTimeEntry")
    async def update(self, state: State, principal: NamedDependency[Principal],
                     time_entry_id: FromPath[str], data: RequestBody[EntryChangesV3]) -> MyEntry[Any]:
        return await self._update(state, principal, time_entry_id, data)
