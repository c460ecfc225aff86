"""Revenue process API routes: v1 (contracts/process/revenue/v1.yaml) and v2 (contracts/process/revenue/v2.yaml).

v2 adds percent-complete recognition and write-offs. v1's published method enum has no percent_complete, so v1
refuses such a contract with a problem that points at v2 rather than answer a value its clients cannot read.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import PathParameter, RequestBody

from process_apis.revenue.models import (
    Recognition,
    RecognitionRequest,
    RecognitionV2,
    RevenueSchedule,
    RevenueScheduleV2,
    WriteOffRecorded,
    WriteOffRequest,
)
from runtime.params import RequiredIdempotencyKey
from runtime.problems import Unprocessable
from runtime.tokens import Principal

ContractId = Annotated[str, PathParameter(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


def as_v1(schedule: RevenueScheduleV2) -> RevenueSchedule:
    if schedule.method == "percent_complete":
        raise Unprocessable(f"contract {schedule.contract_id} is recognised by percent complete, which revenue v1 "
                            "cannot show: read it at /process/revenue/v2", slug="not-supported")
    fields = {name: getattr(schedule, name) for name in RevenueSchedule.__struct_fields__}
    return RevenueSchedule(**fields)


class RevenueV1(Controller):
    path = "/process/revenue/v1"

    @get("/contracts/{contract_id:str}/schedule", operation_id="getRevenueSchedule")
    async def schedule(self, state: State, contract_id: ContractId) -> RevenueSchedule:
        return as_v1(await state.services.revenue.schedule(contract_id))

    @post("/contracts/{contract_id:str}/recognitions", operation_id="recognizeRevenue", status_code=200)
    async def recognize(self, state: State, contract_id: ContractId,
                        data: RequestBody[RecognitionRequest]) -> Recognition:
        as_v1(await state.services.revenue.schedule(contract_id))  # refused before anything is recognised
        done = await state.services.revenue.recognize(contract_id, data.through_period)
        return Recognition(contract_id=done.contract_id, through_period=done.through_period,
                           recognized=done.recognized, schedule=as_v1(done.schedule))


class RevenueV2(Controller):
    path = "/process/revenue/v2"

    @get("/contracts/{contract_id:str}/schedule", operation_id="getRevenueSchedule")
    async def schedule(self, state: State, contract_id: ContractId) -> RevenueScheduleV2:
        return await state.services.revenue.schedule(contract_id)

    @post("/contracts/{contract_id:str}/recognitions", operation_id="recognizeRevenue", status_code=200)
    async def recognize(self, state: State, contract_id: ContractId,
                        data: RequestBody[RecognitionRequest]) -> RecognitionV2:
        return await state.services.revenue.recognize(contract_id, data.through_period)

    @post("/contracts/{contract_id:str}/write-offs", operation_id="recordWriteOff")
    async def write_off(self, state: State, principal: NamedDependency[Principal], contract_id: ContractId,
                        data: RequestBody[WriteOffRequest],
                        idempotency_key: RequiredIdempotencyKey) -> Response[WriteOffRecorded]:
        created, recorded = await state.services.revenue.record_write_off(
            contract_id, data, principal.subject, idempotency_key)
        return Response(recorded, status_code=201 if created else 200)



