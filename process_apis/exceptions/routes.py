"""Exception queue process API v1 routes (contracts/process/exceptions/v1.yaml)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, QueryParameter, RequestBody

from process_apis.exceptions.models import (
    AssignRequest,
    ExceptionItem,
    ExceptionKind,
    ExceptionPage,
    ExceptionState,
    ResolveRequest,
    RetryOutcome,
    RetryRequest,
)
from runtime.params import Limit


class ExceptionsV1(Controller):
    path = "/process/exceptions/v1"

    @get("/exceptions", operation_id="listExceptions")
    async def list_exceptions(
        self, state: State, item_state: Annotated[ExceptionState | None, QueryParameter(name="state")] = None,
        kind: FromQuery[ExceptionKind | None] = None,
        reason_code: Annotated[str | None, QueryParameter(max_length=64, pattern=r"^[A-Z_]+$")] = None,
        business_unit_id: FromQuery[str | None] = None, owner_id: FromQuery[str | None] = None,
        project_id: FromQuery[str | None] = None,
        source_id: FromQuery[str | None] = None,
        min_age_days: Annotated[int | None, QueryParameter(ge=0, le=3650)] = None,
        max_age_days: Annotated[int | None, QueryParameter(ge=0, le=3650)] = None,
        cursor: FromQuery[str | None] = None, limit: Limit = 50,
    ) -> ExceptionPage:
        return await state.services.exceptions.list(
            state=item_state, kind=kind, reason_code=reason_code, business_unit_id=business_unit_id,
            owner_id=owner_id, project_id=project_id, source_id=source_id, min_age_days=min_age_days,
            max_age_days=max_age_days, cursor=cursor, limit=limit)

    @get("/exceptions/{exception_id:str}", operation_id="getException")
    async def get_exception(self, state: State, exception_id: FromPath[str]) -> ExceptionItem:
        return await state.services.exceptions.get(exception_id)

    @post("/exceptions/{exception_id:str}/assignments", operation_id="assignException", status_code=200)
    async def assign(self, state: State, exception_id: FromPath[str],
                     data: RequestBody[AssignRequest]) -> ExceptionItem:
        return await state.services.exceptions.assign(exception_id, data.owner_id, data.actor_id)

    @post("/exceptions/{exception_id:str}/resolutions", operation_id="resolveException", status_code=200)
    async def resolve(self, state: State, exception_id: FromPath[str],
                      data: RequestBody[ResolveRequest]) -> ExceptionItem:
        return await state.services.exceptions.resolve(exception_id, data.actor_id, data.resolution)

    @post("/exceptions/{exception_id:str}/retries", operation_id="retryException", status_code=200)
    async def retry(self, state: State, exception_id: FromPath[str],
                    data: RequestBody[RetryRequest | None] = None) -> RetryOutcome:
        return await state.services.exceptions.retry(exception_id, data.actor_id if data else None)

