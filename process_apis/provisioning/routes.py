"""Provisioning process API v1 routes (contracts/process/provisioning/v1.yaml)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, RequestBody

from process_apis.provisioning.models import Provisioning, StartRequest
from runtime.app import require_scopes
from runtime.tokens import Principal

IdempotencyKey = Annotated[str | None, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=200)]


class ProvisioningV1(Controller):
    path = "/process/provisioning/v1"

    def _answer(self, status: int, provisioning: Provisioning) -> Response[Provisioning]:
        return Response(provisioning, status_code=status,
                        headers={"Location": f"{self.path}/provisionings/{provisioning.id}"})

    @post("/provisionings", operation_id="startProvisioning")
    async def start(self, state: State, principal: NamedDependency[Principal], data: RequestBody[StartRequest],
                    idempotency_key: IdempotencyKey = None) -> Response[Provisioning]:
        require_scopes(principal, "provisioning:write")
        status, provisioning = await state.services.provisioning.start(data.opportunity_id, idempotency_key)
        return self._answer(status, provisioning)

    @post("/opportunities/{opportunity_id:str}/provisioning", operation_id="provisionOpportunity")
    async def start_for(self, state: State, principal: NamedDependency[Principal], opportunity_id: FromPath[str],
                        idempotency_key: IdempotencyKey = None) -> Response[Provisioning]:
        require_scopes(principal, "provisioning:write")
        status, provisioning = await state.services.provisioning.start(opportunity_id, idempotency_key)
        return self._answer(status, provisioning)

    @get("/opportunities/{opportunity_id:str}/provisioning", operation_id="getOpportunityProvisioning")
    async def get_for(self, state: State, principal: NamedDependency[Principal],
                      opportunity_id: FromPath[str]) -> Provisioning:
        require_scopes(principal, "provisioning:read")
        return await state.services.provisioning.by_opportunity(opportunity_id)

    @get("/provisionings/{provisioning_id:str}", operation_id="getProvisioning")
    async def get_one(self, state: State, principal: NamedDependency[Principal],
                      provisioning_id: FromPath[str]) -> Provisioning:
        require_scopes(principal, "provisioning:read")
        return await state.services.provisioning.get(provisioning_id)

    @post("/provisionings/{provisioning_id:str}/resume", operation_id="resumeProvisioning", status_code=202)
    async def resume(self, state: State, principal: NamedDependency[Principal],
                     provisioning_id: FromPath[str]) -> Response[Provisioning]:
        require_scopes(principal, "provisioning:write")
        return self._answer(202, await state.services.provisioning.resume(provisioning_id))
