"""Mobile time entry v1 routes. The caller is the consultant: the token's subject is their worker id."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.params import Parameter

from experience_apis.etags import respond_with_etag
from experience_apis.mobile_time.models import MyAssignment, MyAssignments
from runtime.app import require_scopes
from runtime.problems import Forbidden
from runtime.tokens import Principal

STAFFING = "/process/staffing/v1"


class _Project(msgspec.Struct):
    id: str
    name: str
    status: str


class _StaffedAssignment(msgspec.Struct):
    id: str
    role: str
    planned_hours_per_week: Any
    start_date: Any
    end_date: Any
    status: str
    project: _Project


class _StaffedPage(msgspec.Struct):
    items: list[_StaffedAssignment]
    next_cursor: str | None = None


def worker_of(principal: Principal) -> str:
    """The worker a user token speaks for; client-only tokens (no person behind them) are refused."""
    if not principal.subject.startswith("wrk_"):
        raise Forbidden("this API serves a person: use a user token whose subject is a worker id",
                        slug="user-token-required")
    return principal.subject


class MobileTimeV1(Controller):
    path = "/experience/mobile-time/v1"

    @get("/me/assignments", operation_id="listMyAssignments")
    async def my_assignments(
        self,
        request: Request[Any, Any, Any],
        state: State,
        principal: Principal,
        cursor: str | None = None,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 50,
    ) -> Response[bytes]:
        require_scopes(principal, "time:read")
        worker_id = worker_of(principal)
        page = await state.downstreams["gateway"].get_json(
            f"{STAFFING}/workers/{worker_id}/assignments", _StaffedPage,
            params={"cursor": cursor, "limit": limit},
        )
        payload = MyAssignments(
            items=[
                MyAssignment(
                    assignment_id=a.id,
                    project_id=a.project.id,
                    project_name=a.project.name,
                    role=a.role,
                    planned_hours_per_week=a.planned_hours_per_week,
                    start_date=a.start_date,
                    end_date=a.end_date,
                    # A phone shows every assignment but only offers time entry where the PSA will take it.
                    can_log_time=a.status == "confirmed" and a.project.status == "active",
                )
                for a in page.items
            ],
            next_cursor=page.next_cursor,
        )
        return respond_with_etag(request, payload)
