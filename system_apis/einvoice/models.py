"""Payloads of the e-invoicing network system API v1 (contracts/system/einvoice/v1.yaml)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from system_apis.checks import Checked

# Peppol participant ids: an ISO 6523 / EAS scheme code and the identifier (9930:de136457882).
ParticipantId = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}:[A-Za-z0-9._-]{1,50}$")]
DocumentFormat = Literal["factur-x", "peppol-bis-billing-3"]
DeliveryState = Literal["queued", "delivered", "rejected"]
# A Factur-X PDF of a long invoice stays well under this (base64 of about 700 kB).
MAX_CONTENT_CHARS = 950_000


class DeliveryRequest(Checked, kw_only=True):
    # The invoice the document renders: one delivery per invoice, format and attempt (a repeat answers the first).
    invoice_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    # Delivering again after a rejection is the next attempt: a new network document.
    attempt: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1
    sender_id: ParticipantId
    receiver_id: ParticipantId
    format: DocumentFormat
    content_base64: Annotated[
        str, msgspec.Meta(min_length=4, max_length=MAX_CONTENT_CHARS, pattern=r"^[A-Za-z0-9+/]+={0,2}$")
    ]


class DeliveryError(msgspec.Struct, kw_only=True):
    code: str
    detail: str


class Delivery(msgspec.Struct, kw_only=True):
    """One document handed to the network: queued until the receiver's access point answers."""

    id: str
    invoice_id: str
    attempt: int
    receiver_id: str
    format: DocumentFormat
    state: DeliveryState
    errors: list[DeliveryError] = []
