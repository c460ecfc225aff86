"""Tax system API v1 routes. Contract: contracts/system/tax/v1.yaml."""

from __future__ import annotations

from litestar import Controller, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import RequestBody

from runtime.app import require_scopes
from runtime.tokens import Principal
from system_apis.tax.connectors import TaxConnector
from system_apis.tax.models import TaxCalculation, TaxCalculationRequest


def connector(state: State) -> TaxConnector:
    return state.tax


class TaxV1(Controller):
    path = "/system/tax/v1"

    @post("/tax-calculations", operation_id="calculateTax", status_code=200)
    async def calculate(
        self, state: State, principal: NamedDependency[Principal], data: RequestBody[TaxCalculationRequest]
    ) -> TaxCalculation:
        require_scopes(principal, "tax:read")
        return await connector(state).calculate(data)
