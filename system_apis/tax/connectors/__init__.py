"""The tax port: what the tax system API needs from the regional tax engines, in canonical terms."""

from __future__ import annotations

from typing import Protocol

from system_apis.tax.models import TaxCalculation, TaxCalculationRequest


class TaxConnector(Protocol):
    async def calculate(self, request: TaxCalculationRequest) -> TaxCalculation: ...

    async def aclose(self) -> None: ...
