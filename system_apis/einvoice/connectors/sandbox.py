"""E-invoicing adapter for the sandbox access point (``sandbox/peppol.py``): outbound documents and their status."""

from __future__ import annotations

from typing import Any

import msgspec

from runtime.downstream import Downstream
from runtime.problems import NotFound
from system_apis.einvoice.models import Delivery, DeliveryError, DeliveryRequest, DeliveryState, DocumentFormat
from system_apis.ids import is_canonical, to_business_key, to_canonical
from system_apis.vendor_errors import vendor_problem

VENDOR = "sandbox-einvoice"
BASE = "/api/v1/outbound-documents"
DOCUMENT_TYPES: dict[DocumentFormat, tuple[str, str]] = {
    "factur-x": ("urn:factur-x.eu:1p0:en16931", "application/pdf"),
    "peppol-bis-billing-3": (
        "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##urn:cen.eu:en16931:2017#compliant"
        "#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1",
        "application/xml",
    ),
}
FORMATS = {document_type: name for name, (document_type, _) in DOCUMENT_TYPES.items()}
STATES: dict[str, DeliveryState] = {"QUEUED": "queued", "DELIVERED": "delivered", "REJECTED": "rejected"}
FIELDS = {
    "receiver": "/receiver_id",
    "sender": "/sender_id",
    "payload": "/content_base64",
    "mimeType": "/format",
    "documentType": "/format",
}


class SandboxAccessPoint:
    def __init__(self, base_url: str, timeout_seconds: float) -> None:
        self._vendor = Downstream(VENDOR, base_url, timeout_seconds=timeout_seconds)

    async def aclose(self) -> None:
        await self._vendor.aclose()

    async def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        reply = await self._vendor.request(method, path, json=body, allow_statuses=frozenset(range(400, 500)))
        decoded = msgspec.json.decode(reply.content) if reply.content else {}
        if reply.status_code >= 400:
            message = str(decoded.get("text", "")) if isinstance(decoded, dict) else ""
            field = "payload" if isinstance(decoded, dict) and decoded.get("code") == "INVALID_PAYLOAD" else None
            raise vendor_problem(VENDOR, reply.status_code, message, [(field, message)], FIELDS, what="delivery")
        return dict(decoded)

    async def deliver(self, request: DeliveryRequest) -> Delivery:
        request.check()
        document_type, mime_type = DOCUMENT_TYPES[request.format]
        answer = await self._call(
            "POST",
            BASE,
            {
                "sender": request.sender_id,
                "receiver": request.receiver_id,
                "documentType": document_type,
                "mimeType": mime_type,
                "payload": request.content_base64,
                # One network document per invoice, format and attempt: a retry of this call never sends a second.
                "clientReference": f"{request.invoice_id}:{request.format}:{request.attempt}",
            },
        )
        return await self.delivery(to_canonical("delivery", answer["documentId"]))

    async def delivery(self, delivery_id: str) -> Delivery:
        if not is_canonical("delivery", delivery_id):
            raise NotFound(f"no delivery {delivery_id!r}", slug="unknown-id")
        answer = await self._call("GET", f"{BASE}/{to_business_key('delivery', delivery_id)}")
        invoice_id, format_name, attempt = str(answer["clientReference"]).rsplit(":", 2)
        return Delivery(
            id=delivery_id,
            invoice_id=invoice_id,
            attempt=int(attempt),
            receiver_id=str(answer.get("receiver", "")),
            format="factur-x" if format_name == "factur-x" else "peppol-bis-billing-3",
            state=STATES[answer["state"]],
            errors=[DeliveryError(code=e["code"], detail=e["text"]) for e in answer.get("errors", [])],
        )
