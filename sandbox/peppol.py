"""Sandbox e-invoicing access point: a Peppol-like network that takes delivery of documents and reports back.

Dialect (imitates an access-point provider's REST API): ``POST /api/v1/outbound-documents`` with
``{"sender", "receiver", "documentType", "mimeType", "payload" (base64), "clientReference"}`` answers 202
``{"documentId", "state": "QUEUED"}``; the same ``clientReference`` again answers the same document (a retry
never sends twice). ``GET /api/v1/outbound-documents/{documentId}`` reports ``QUEUED`` once, then the outcome:
``DELIVERED``, or ``REJECTED`` with ``errors: [{"code", "text"}]``. Errors: ``{"code", "text"}``.

What the access point checks before delivering: the receiver is registered in its participant directory (an SMP
lookup: the demo customers, plus whoever ``POST /_sandbox/participants`` registers), an XML payload is well
formed and its CustomizationID is Peppol BIS Billing 3.0, a PDF payload carries an embedded ``factur-x.xml``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import facturx
from litestar import Litestar, Request, delete, get, post
from litestar.exceptions import HTTPException
from litestar.response import Response
from lxml import etree

from sandbox.store import DocumentStore
from sandbox.vendor_http import VendorError, json_object, utc_now, vendor_error_response

PEPPOL_BIS_BILLING = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
MIME_TYPES = {"application/xml", "application/pdf"}
MAX_PAYLOAD_BYTES = 5_000_000
# The demo customers' participant ids (scheme:identifier; 9930 German VAT, 9932 UK VAT, 9959 US EIN).
DEMO_PARTICIPANTS = [
    "9959:131234567",
    "9959:943214321",
    "9959:752345678",
    "9932:980061039",
    "9932:456321905",
    "9932:214783016",
    "9930:de136457882",
    "9930:de812345673",
    "9930:de273487658",
    "9930:de112233446",
    "9959:911234560",
]


def _error(status: int, code: str, text: str) -> VendorError:
    return VendorError(status, {"code": code, "text": text})


def seed(store: DocumentStore, _firm: Any) -> None:
    store.put_many("participant", [(p, {"participantId": p}) for p in DEMO_PARTICIPANTS])


def _embedded_xml_name(pdf: bytes) -> str | None:
    try:
        name, _xml = facturx.get_facturx_xml_from_pdf(pdf, check_xsd=False)
    except Exception:  # an unreadable PDF is simply not a Factur-X
        return None
    return str(name) if name else None


def _outcome(store: DocumentStore, body: dict[str, Any], payload: bytes) -> list[dict[str, str]]:
    errors = []
    if store.get("participant", body["receiver"].lower()) is None:
        errors.append({"code": "RECEIVER_NOT_FOUND", "text": f"{body['receiver']} is not registered in the SMP"})
    if body["mimeType"] == "application/xml":
        try:
            root = etree.fromstring(payload, etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError as exc:
            return [*errors, {"code": "MALFORMED_XML", "text": str(exc)}]
        customization = root.findtext(
            "{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}CustomizationID"
        )
        if customization != PEPPOL_BIS_BILLING:
            errors.append(
                {
                    "code": "UNSUPPORTED_DOCUMENT",
                    "text": f"CustomizationID {customization!r} is not Peppol BIS Billing 3.0",
                }
            )
    elif not payload.startswith(b"%PDF") or _embedded_xml_name(payload) != "factur-x.xml":
        errors.append({"code": "NOT_FACTURX", "text": "the PDF carries no embedded factur-x.xml"})
    return errors


def create_app(store: DocumentStore) -> Litestar:
    @post("/api/v1/outbound-documents", status_code=202)
    async def submit(request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await json_object(request, lambda m: _error(400, "MALFORMED_REQUEST", m))
        for field in ("sender", "receiver", "documentType", "mimeType", "payload", "clientReference"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise _error(400, "MISSING_FIELD", f"{field} is required")
        if body["mimeType"] not in MIME_TYPES:
            raise _error(400, "UNSUPPORTED_MIME_TYPE", f"mimeType must be one of {sorted(MIME_TYPES)}")
        known = store.list("document", where={"clientReference": body["clientReference"]}, limit=1)
        if known:
            return {"documentId": known[0][1]["documentId"], "state": known[0][1]["reported"]}
        try:
            payload = base64.b64decode(body["payload"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _error(400, "INVALID_PAYLOAD", "payload must be base64") from exc
        if not payload or len(payload) > MAX_PAYLOAD_BYTES:
            raise _error(413 if payload else 400, "INVALID_PAYLOAD", f"payload must be 1..{MAX_PAYLOAD_BYTES} bytes")
        errors = _outcome(store, body, payload)
        document_id = f"AP-{store.next_number('documentId', 100001)}"
        store.put(
            "document",
            document_id,
            {
                "documentId": document_id,
                "clientReference": body["clientReference"],
                "sender": body["sender"],
                "receiver": body["receiver"],
                "documentType": body["documentType"],
                "mimeType": body["mimeType"],
                "bytes": len(payload),
                "reported": "QUEUED",
                "outcome": "REJECTED" if errors else "DELIVERED",
                "errors": errors,
                "receivedAt": utc_now().isoformat(),
            },
        )
        return {"documentId": document_id, "state": "QUEUED"}

    @get("/api/v1/outbound-documents/{document_id:str}")
    async def status(document_id: str) -> dict[str, Any]:
        document = store.get("document", document_id)
        if document is None:
            raise _error(404, "NOT_FOUND", f"no document {document_id}")
        reported = document["reported"]
        if reported == "QUEUED":  # the network answers asynchronously: the outcome shows from the next look on
            store.put("document", document_id, {**document, "reported": document["outcome"]})
        return {
            "documentId": document_id,
            "clientReference": document["clientReference"],
            "receiver": document["receiver"],
            "state": reported,
            "errors": document["errors"] if reported == "REJECTED" else [],
        }

    @post("/_sandbox/participants", status_code=201)
    async def register(request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await json_object(request, lambda m: _error(400, "MALFORMED_REQUEST", m))
        participant = body.get("participantId")
        if not isinstance(participant, str) or ":" not in participant:
            raise _error(400, "INVALID_PARTICIPANT", "participantId is scheme:identifier")
        store.put("participant", participant.lower(), {"participantId": participant.lower()})
        return {"participantId": participant.lower()}

    @delete("/_sandbox/participants/{participant_id:str}", status_code=204)
    async def deregister(participant_id: str) -> None:
        store.delete("participant", participant_id.lower())

    def framework_error(_request: Any, exc: HTTPException) -> Response[Any]:
        return Response({"code": "HTTP_ERROR", "text": str(exc.detail)}, status_code=exc.status_code)

    return Litestar(
        [submit, status, register, deregister],
        openapi_config=None,
        exception_handlers={HTTPException: framework_error, VendorError: vendor_error_response},
    )
