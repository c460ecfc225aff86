"""Provisioning process API v1 routes (contracts/process/provisioning/v1.yaml)."""

from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, RequestBody

from process_apis.provisioning.models import FeedPoll, FeedState, Provisioning, StartRequest
from runtime.params import IdempotencyKey


class ProvisioningV1(Controller):
    path = "/process/provisioning/v1"

    def _answer(self, status: int, provisioning: Provisioning) -> Response[Provisioning]:
        return Response(provisioning, status_code=status,
                        headers={"Location": f"{self.path}/provisionings/{provisioning.id}"})

    @post("/provisionings", operation_id="startProvisioning")
    async def start(self, state: State, data: RequestBody[StartRequest],
                    idempotency_key: IdempotencyKey = None) -> Response[Provisioning]:
        status, provisioning = await state.services.provisioning.start(data.opportunity_id, idempotency_key)
        return self._answer(status, provisioning)

    @post("/opportunities/{opportunity_id:str}/provisioning", operation_id="provisionOpportunity")
    async def start_for(self, state: State, opportunity_id: FromPath[str],
                        idempotency_key: IdempotencyKey = None) -> Response[Provisioning]:
        status, provisioning = await state.services.provisioning.start(opportunity_id, idempotency_key)
        return self._answer(status, provisioning)

    @get("/opportunities/{opportunity_id:str}/provisioning", operation_id="getOpportunityProvisioning")
    async def get_for(self, state: State, opportunity_id: FromPath[str]) -> Provisioning:
        return await state.services.provisioning.by_opportunity(opportunity_id)

    @get("/provisionings/{provisioning_id:str}", operation_id="getProvisioning")
    async def get_one(self, state: State, provisioning_id: FromPath[str]) -> Provisioning:
        return await state.services.provisioning.get(provisioning_id)

    @post("/provisionings/{provisioning_id:str}/resume", operation_id="resumeProvisioning", status_code=202)
    async def resume(self, state: State, provisioning_id: FromPath[str]) -> Response[Provisioning]:
        return self._answer(202, await state.services.provisioning.resume(provisioning_id))

    @get("/crm-feed", operation_id="getCrmFeed")
    async def crm_feed(self, state: State) -> FeedState:
        return await state.services.crm_feed.state()

    @post("/crm-feed/polls", operation_id="pollCrmFeed", status_code=200)
    async def poll_crm_feed(self, state: State) -> FeedPoll:
        """Run a turn of the feed now (the background loop runs one every few seconds anyway)."""
        handled = await state.services.crm_feed.poll_once()
        return FeedPoll(handled=handled, marks=(await state.services.crm_feed.state()).marks)
