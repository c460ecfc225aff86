"""E-invoicing network system API v1 routes. Contract: contracts/system/einvoice/v1.yaml."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import PathParameter, RequestBody

from system_apis.einvoice.connectors import EinvoiceConnector
from system_apis.einvoice.models import Delivery, DeliveryRequest


def connector(state: State) -> EinvoiceConnector:
    return state.einvoice


class EinvoiceV1(Controller):
    path = "/system/einvoice/v1"

    @post("/deliveries", operation_id="deliverDocument", status_code=202)
    async def deliver(
        self, state: State, data: RequestBody[DeliveryRequest]
    ) -> Delivery:
        return await connector(state).deliver(data)

    @get("/deliveries/{delivery_id:str}", operation_id="getDelivery")
    async def get_delivery(
        self,
        state: State,
        delivery_id: Annotated[str, PathParameter(max_length=64)],
    ) -> Delivery:
        return await connector(state).delivery(delivery_id)
