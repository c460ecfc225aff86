"""Request payloads of the CRM system API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from contracts.canonical import Instant, InvoiceState, OpportunityStage
from system_apis.checks import NON_NEGATIVE, Checked

Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class OpportunityPatch(Checked, kw_only=True):
    """What flows back to the CRM: the provisioned project, the invoice state, stage and commercial updates."""

    stage: OpportunityStage | UnsetType = UNSET
    provisioned_project_id: Ref | UnsetType | None = UNSET
    invoice_status: InvoiceState | UnsetType | None = UNSET
    close_date: dt.date | UnsetType = UNSET
    amount: Decimal | UnsetType = UNSET
    signed_contract_ref: Ref | UnsetType | None = UNSET

    ranges = {"amount": NON_NEGATIVE}


ChangedObject = Literal["opportunity", "contract"]


class RecordChange(msgspec.Struct, kw_only=True):
    """One record of the CRM's change feed: which record, and the instant of its latest change (the CRM's system
    modification stamp). A record changed twice since the last read appears once, at its latest change."""

    object: ChangedObject
    id: str
    modified_at: Instant
