"""Tax system API v1 routes. Contract: contracts/system/tax/v1.yaml."""

from __future__ import annotations

from litestar import Controller, post
from litestar.datastructures import State
from litestar.params import RequestBody

from system_apis.tax.connectors import TaxConnector
from system_apis.tax.models import TaxCalculation, TaxCalculationRequest


def connector(state: State) -> TaxConnector:
    return state.tax


class TaxV1(Controller):
    path = "/system/tax/v1"

    @post("/tax-calculations", operation_id="calculateTax", status_code=200)
    async def calculate(
        self, state: State, data: RequestBody[TaxCalculationRequest]
    ) -> TaxCalculation:
        return await connector(state).calculate(data)
