"""The e-invoicing port: what the e-invoicing system API needs from an access point, in canonical terms."""

from __future__ import annotations

from typing import Protocol

from system_apis.einvoice.models import Delivery, DeliveryRequest


class EinvoiceConnector(Protocol):
    async def deliver(self, request: DeliveryRequest) -> Delivery: ...

    async def delivery(self, delivery_id: str) -> Delivery: ...

    async def aclose(self) -> None: ...
