"""Events process API routes (contracts/process/events/v1.yaml, v2.yaml): replay over HTTP from an offset, the
posted-time projection the tier's own consumer keeps, and the operators' dead letters (list, inspect, re-drive).

v1 and v2 are the same operations; v1 serves only the event types its closed EventType enum lists (a client of v1
never receives a type it was not promised), v2 every type, its EventType extensible."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter, RequestBody

from process_apis.events.models import (
    EVENT_TYPES,
    V1_EVENT_TYPES,
    DeadLetter,
    DeadLetterPage,
    DeadLetterState,
    Event,
    EventPage,
    EventType,
    PostedTimePage,
    RedriveOutcome,
    RedriveRequest,
    RedriveResults,
)
from process_apis.events.service import event_by_id, events_after
from runtime.problems import Conflict, NotFound


class EventsV1(Controller):
    path = "/process/events/v1"
    served_types: tuple[EventType, ...] = V1_EVENT_TYPES

    @get("/events", operation_id="listEvents")
    async def list_events(
        self, state: State, after: Annotated[int, QueryParameter(ge=0)] = 0,
        event_type: Annotated[list[EventType] | None, QueryParameter(name="type")] = None,
        cursor: Annotated[str | None, QueryParameter(pattern=r"^\d{1,18}$")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> EventPage:
        # The cursor is a position, like ``after``: a consumer may keep either.
        start = int(cursor) if cursor is not None else after
        types = [t for t in event_type if t in self.served_types] if event_type else list(self.served_types)
        if not types:  # only types this version does not serve: none of its events
            return EventPage(items=[], next_cursor=None, last_position=start)
        return await events_after(state.services.db, start, types, limit)

    @get("/events/{event_id:str}", operation_id="getEvent")
    async def get_event(self, state: State, event_id: FromPath[str]) -> Event:
        event = await event_by_id(state.services.db, event_id)
        if event.type not in self.served_types:
            raise NotFound(f"no event {event_id!r} in this version: {event.type} events are served from v2",
                           slug="unknown-id")
        return event

    @get("/posted-time/projects", operation_id="listPostedTimeByProject")
    async def posted_time_by_project(
        self, state: State, project_id: Annotated[str | None, QueryParameter(min_length=1, max_length=64)] = None,
        contract_id: Annotated[str | None, QueryParameter(min_length=1, max_length=64)] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> PostedTimePage:
        return await state.services.posted_time.projects(project_id=project_id, contract_id=contract_id,
                                                         cursor=cursor, limit=limit)

    # -- dead letters: operators only (events:operate) ------------------------------------------------------

    @get("/dead-letters", operation_id="listDeadLetters")
    async def list_dead_letters(
        self, state: State, letter_state: Annotated[DeadLetterState | None, QueryParameter(name="state")] = None,
        consumer: Annotated[str | None, QueryParameter(min_length=1, max_length=64)] = None,
        event_type: Annotated[EventType | None, QueryParameter(name="type")] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> DeadLetterPage:
        return await state.services.dead_letters.page(state=letter_state, consumer=consumer, event_type=event_type,
                                                      cursor=cursor, limit=limit)

    @get("/dead-letters/{dead_letter_id:str}", operation_id="getDeadLetter")
    async def get_dead_letter(self, state: State, dead_letter_id: FromPath[str]) -> DeadLetter:
        return await state.services.dead_letters.get(dead_letter_id)

    @post("/dead-letters/{dead_letter_id:str}/redrive", operation_id="redriveDeadLetter", status_code=200)
    async def redrive_dead_letter(self, state: State, dead_letter_id: FromPath[str]) -> RedriveOutcome:
        """200 once the re-drive ran (``redriven``, or ``failed`` again); 404 and 409 when it did not run."""
        [outcome] = await state.services.dead_letters.redrive([dead_letter_id])
        if outcome.result == "not_found":
            raise NotFound(outcome.error, slug="unknown-id")
        if outcome.result in ("already_redriven", "in_progress", "not_redrivable"):
            raise Conflict(outcome.error or f"dead letter {dead_letter_id!r} was re-driven already",
                           slug="invalid-transition", result=outcome.result)
        return outcome

    @post("/dead-letters/redrive", operation_id="redriveDeadLetters", status_code=200)
    async def redrive_dead_letters(self, state: State, data: RequestBody[RedriveRequest]) -> RedriveResults:
        return RedriveResults(items=await state.services.dead_letters.redrive(data.dead_letter_ids))


class EventsV2(EventsV1):
    path = "/process/events/v2"
    served_types = EVENT_TYPES
