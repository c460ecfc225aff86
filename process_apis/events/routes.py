"""Events process API v1 routes (contracts/process/events/v1.yaml): replay over HTTP from an offset, and the
posted-time projection the tier's own consumer keeps."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import Parameter

from process_apis.events.models import Event, EventPage, EventType, PostedTimePage
from process_apis.events.service import event_by_id, events_after
from runtime.app import require_scopes
from runtime.tokens import Principal


class EventsV1(Controller):
    path = "/process/events/v1"

    @get("/events", operation_id="listEvents")
    async def list_events(
        self, state: State, principal: Principal,
        after: Annotated[int, Parameter(ge=0)] = 0,
        event_type: Annotated[list[EventType] | None, Parameter(query="type")] = None,
        cursor: Annotated[str | None, Parameter(pattern=r"^\d{1,18}$")] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    ) -> EventPage:
        require_scopes(principal, "events:read")
        # The cursor is a position, like ``after``: a consumer may keep either.
        start = int(cursor) if cursor is not None else after
        return await events_after(state.services.db, start, event_type, limit)

    @get("/events/{event_id:str}", operation_id="getEvent")
    async def get_event(self, state: State, principal: Principal, event_id: str) -> Event:
        require_scopes(principal, "events:read")
        return await event_by_id(state.services.db, event_id)

    @get("/posted-time/projects", operation_id="listPostedTimeByProject")
    async def posted_time_by_project(
        self, state: State, principal: Principal,
        project_id: Annotated[str | None, Parameter(min_length=1, max_length=64)] = None,
        contract_id: Annotated[str | None, Parameter(min_length=1, max_length=64)] = None,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    ) -> PostedTimePage:
        require_scopes(principal, "events:read")
        return await state.services.posted_time.projects(project_id=project_id, contract_id=contract_id,
                                                         cursor=cursor, limit=limit)
