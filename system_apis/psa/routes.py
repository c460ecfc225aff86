"""PSA system API v1 routes: thin; the connector does the vendor work. Contract: contracts/system/psa/v1.yaml."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import Parameter

from contracts.canonical import Assignment, AssignmentStatus, Page, Project
from runtime.app import require_scopes
from runtime.tokens import Principal
from system_apis.psa.connectors import PsaConnector

Limit = Annotated[int, Parameter(ge=1, le=200)]


def connector(state: State) -> PsaConnector:
    return state.psa


class PsaV1(Controller):
    path = "/system/psa/v1"

    @get("/assignments", operation_id="listAssignments")
    async def list_assignments(
        self,
        state: State,
        principal: Principal,
        worker_id: str | None = None,
        project_id: str | None = None,
        status: AssignmentStatus | None = None,
        cursor: str | None = None,
        limit: Limit = 50,
    ) -> Page[Assignment]:
        require_scopes(principal, "psa:read")
        return await connector(state).list_assignments(
            worker_id=worker_id, project_id=project_id, status=status, cursor=cursor, limit=limit
        )

    @get("/projects/{project_id:str}", operation_id="getProject")
    async def get_project(self, state: State, principal: Principal, project_id: str) -> Project:
        require_scopes(principal, "psa:read")
        return await connector(state).get_project(project_id)
