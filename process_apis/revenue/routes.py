"""Revenue process API v1 routes (contracts/process/revenue/v1.yaml)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import PathParameter, RequestBody

from process_apis.revenue.models import Recognition, RecognitionRequest, RevenueSchedule

ContractId = Annotated[str, PathParameter(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class RevenueV1(Controller):
    path = "/process/revenue/v1"

    @get("/contracts/{contract_id:str}/schedule", operation_id="getRevenueSchedule")
    async def schedule(
        self, state: State, contract_id: ContractId
    ) -> RevenueSchedule:
        return await state.services.revenue.schedule(contract_id)

    @post("/contracts/{contract_id:str}/recognitions", operation_id="recognizeRevenue", status_code=200)
    async def recognize(
        self,
        state: State,
        contract_id: ContractId,
        data: RequestBody[RecognitionRequest],
    ) -> Recognition:
        return await state.services.revenue.recognize(contract_id, data.through_period)
