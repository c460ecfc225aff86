"""Payloads of the events process API v1 (contracts/process/events/v1.yaml), the event envelope, and the typed
payload of each event type (contracts/process/events/asyncapi.yaml documents them; tests hold the two together).

An event is ``subject`` (the canonical ids it is about, strings) plus ``data`` (the facts of the change). Each
type has one Struct for each; :func:`payload` turns a typed payload into the envelope's two mappings, so a
producer that uses the Structs publishes what the AsyncAPI document says.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, TypeAlias

import msgspec

from contracts.canonical import Instant, LeaveType

EventType = Literal[
    "opportunity.closed_won", "project.provisioned", "assignment.confirmed", "time.submitted", "time.approved",
    "time.rejected", "time.posted", "milestone.completed", "contract.amended", "invoice.drafted",
    "invoice.posted", "exception.raised", "exception.resolved", "revenue.recognized", "revenue.written_off",
    "worker.terminated", "worker.leave_recorded",
]
EVENT_TYPES: Final[tuple[EventType, ...]] = (
    "opportunity.closed_won", "project.provisioned", "assignment.confirmed", "time.submitted", "time.approved",
    "time.rejected", "time.posted", "milestone.completed", "contract.amended", "invoice.drafted",
    "invoice.posted", "exception.raised", "exception.resolved", "revenue.recognized", "revenue.written_off",
    "worker.terminated", "worker.leave_recorded",
)
# The types events API v1 (contracts/process/events/v1.yaml) lists in its closed EventType enum, and so serves:
# a type added later is served from v2, whose EventType is extensible (contracts/README.md, "Events").
V1_EVENT_TYPES: Final[tuple[EventType, ...]] = EVENT_TYPES[:14]
# The schema version of each event type's ``data``; bumped (and documented) when a type changes.
SCHEMA_VERSION: Final = 1


class Event(msgspec.Struct, kw_only=True):
    """One domain event. ``position`` is its offset in the stream (gap-free, in commit order)."""

    id: str
    type: EventType
    version: int
    occurred_at: Instant
    correlation_id: str | None
    subject: dict[str, str]
    data: dict[str, Any]
    position: int


class EventPage(msgspec.Struct, kw_only=True):
    """``last_position`` is where to continue from (``after``); ``next_cursor`` is null once caught up."""

    items: list[Event]
    next_cursor: str | None
    last_position: int


class ProjectPostedTime(msgspec.Struct, kw_only=True):
    """Time posted to the ERP on one project, in one currency: each entry counted once, at its latest version."""

    project_id: str
    contract_id: str
    currency: str
    entries: int
    hours: Decimal
    amount: Decimal
    last_posted_at: Instant


class PostedTimePage(msgspec.Struct, kw_only=True):
    """``applied_events`` and ``updated_at`` say how far the projection has got (null: nothing applied yet)."""

    items: list[ProjectPostedTime]
    next_cursor: str | None
    applied_events: int
    updated_at: Instant | None


# -- typed payloads, one pair (subject, data) per event type ----------------------------------------------------
# Field names and types are the AsyncAPI document's; Decimals travel as strings, dates as ISO 8601.

class OpportunityClosedWonSubject(msgspec.Struct, kw_only=True):
    opportunity_id: str


class OpportunityClosedWonData(msgspec.Struct, kw_only=True):
    provisioning_id: str


class ProjectProvisionedSubject(msgspec.Struct, kw_only=True):
    opportunity_id: str
    customer_id: str
    contract_id: str
    project_id: str


class ProjectProvisionedData(msgspec.Struct, kw_only=True):
    provisioning_id: str
    task_ids: list[str]
    project_dimension_id: str | None
    assignment_id: str | None


class AssignmentConfirmedSubject(msgspec.Struct, kw_only=True):
    assignment_id: str
    worker_id: str
    project_id: str


class AssignmentConfirmedData(msgspec.Struct, kw_only=True):
    role: str
    planned_hours_per_week: Decimal
    start_date: dt.date
    end_date: dt.date | None


class TimeEntrySubject(msgspec.Struct, kw_only=True):
    """The subject of time.submitted, time.approved and time.rejected."""

    time_entry_id: str
    worker_id: str
    project_id: str


class TimeSubmittedData(msgspec.Struct, kw_only=True):
    work_date: dt.date
    hours: Decimal
    version: int


class TimeDecidedData(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The data of time.approved and time.rejected: ``approval_id`` for an approver's decision; ``correction_id``
    and ``supersedes_id`` (the entry version it replaces) for an approved correction."""

    approver_id: str
    reason: str | None
    hours: Decimal
    work_date: dt.date
    version: int
    approval_id: str | None = None
    correction_id: str | None = None
    supersedes_id: str | None = None


class TimePostedSubject(msgspec.Struct, kw_only=True):
    time_entry_id: str
    project_id: str
    contract_id: str
    posting_id: str


class TimePostedData(msgspec.Struct, kw_only=True):
    amount: Decimal
    currency: str
    hours: Decimal
    work_date: dt.date
    entry_version: int
    psa_state: str


class MilestoneCompletedSubject(msgspec.Struct, kw_only=True):
    milestone_id: str
    project_id: str


class MilestoneCompletedData(msgspec.Struct, kw_only=True):
    """``state`` is the milestone's state when the process tier learnt of it: completed, or accepted when the
    PSA moved it on before the tier looked."""

    name: str
    amount: Decimal
    currency: str
    due_date: dt.date
    state: Literal["completed", "accepted"]


class ContractAmendedSubject(msgspec.Struct, kw_only=True):
    contract_id: str
    customer_id: str


class ContractTerms(msgspec.Struct, kw_only=True):
    """A contract's amendable terms after the change (amounts as decimal strings; null: none)."""

    rate_card_id: str | None
    nte_amount: str | None
    end_date: str | None
    total_value: str | None


class ContractAmendedData(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``changed_fields`` name the terms that changed; ``terms`` are all of them after the change."""

    changed_fields: list[str]
    effective_date: dt.date
    contract_version: int | None = None
    terms: ContractTerms | None = None


class RevenueRecognizedSubject(msgspec.Struct, kw_only=True):
    contract_id: str
    customer_id: str


class RevenueRecognizedData(msgspec.Struct, kw_only=True):
    """One period of a contract's revenue recognised in the ERP."""

    period: str
    amount: Decimal
    currency: str
    method: str
    erp_schedule_id: str


class RevenueWrittenOffSubject(msgspec.Struct, kw_only=True):
    write_off_id: str
    contract_id: str
    customer_id: str
    project_id: str


class RevenueWrittenOffData(msgspec.Struct, kw_only=True):
    """Revenue that will not be earned: it came off what the contract's schedule has left to recognise."""

    amount: Decimal
    currency: str
    period: str
    reason: str
    recorded_by: str


class WorkerSubject(msgspec.Struct, kw_only=True):
    """The subject of worker.terminated and worker.leave_recorded."""

    worker_id: str


class WorkerTerminatedData(msgspec.Struct, kw_only=True):
    """``termination_date`` is the last day worked; ``ended_assignment_ids`` the PSA assignments that started
    after it, ended by the process tier (an assignment running through the day stays: it covers time worked)."""

    termination_date: dt.date
    ended_assignment_ids: list[str]


class WorkerLeaveRecordedData(msgspec.Struct, kw_only=True):
    """A leave of absence HR recorded, first and last day inclusive."""

    first_day: dt.date
    last_day: dt.date
    leave_type: LeaveType


class InvoiceSubject(msgspec.Struct, kw_only=True):
    """The subject of invoice.drafted and invoice.posted."""

    invoice_id: str
    contract_id: str
    customer_id: str


class InvoiceDraftedData(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``sequence`` numbers the period's invoices of the contract (2 and up: a supplementary invoice for late
    time, ``supplements_id`` the one before)."""

    period: str
    subtotal: Decimal
    total: Decimal
    currency: str
    lines: int
    sequence: int | None = None
    supplements_id: str | None = None


class InvoicePostedData(msgspec.Struct, kw_only=True):
    period: str
    total: Decimal
    currency: str
    time_entries: int
    milestones: int


class ExceptionRaisedData(msgspec.Struct, kw_only=True):
    kind: str
    reason_codes: list[str]
    business_unit_id: str | None
    project_id: str | None


class ExceptionResolvedData(msgspec.Struct, kw_only=True):
    kind: str
    resolution: str
    actor_id: str | None


# An exception's subject is its id plus ``<source type>_id`` (opportunity_id, time_entry_id, ...): a mapping.
ExceptionSubject: TypeAlias = dict[str, str]

PAYLOAD_TYPES: Final[dict[EventType, tuple[Any, type[msgspec.Struct]]]] = {
    "opportunity.closed_won": (OpportunityClosedWonSubject, OpportunityClosedWonData),
    "project.provisioned": (ProjectProvisionedSubject, ProjectProvisionedData),
    "assignment.confirmed": (AssignmentConfirmedSubject, AssignmentConfirmedData),
    "time.submitted": (TimeEntrySubject, TimeSubmittedData),
    "time.approved": (TimeEntrySubject, TimeDecidedData),
    "time.rejected": (TimeEntrySubject, TimeDecidedData),
    "time.posted": (TimePostedSubject, TimePostedData),
    "milestone.completed": (MilestoneCompletedSubject, MilestoneCompletedData),
    "contract.amended": (ContractAmendedSubject, ContractAmendedData),
    "revenue.recognized": (RevenueRecognizedSubject, RevenueRecognizedData),
    "revenue.written_off": (RevenueWrittenOffSubject, RevenueWrittenOffData),
    "worker.terminated": (WorkerSubject, WorkerTerminatedData),
    "worker.leave_recorded": (WorkerSubject, WorkerLeaveRecordedData),
    "invoice.drafted": (InvoiceSubject, InvoiceDraftedData),
    "invoice.posted": (InvoiceSubject, InvoicePostedData),
    "exception.raised": (ExceptionSubject, ExceptionRaisedData),
    "exception.resolved": (ExceptionSubject, ExceptionResolvedData),
}


def typed_payload(event: Event) -> tuple[Any, msgspec.Struct]:
    """The event's subject and data as its type's Structs; raises ``msgspec.ValidationError`` on a drift."""
    subject_type, data_type = PAYLOAD_TYPES[event.type]
    return (msgspec.convert(event.subject, subject_type, strict=False),
            msgspec.convert(event.data, data_type, strict=False))


# -- dead letters (the operator API) -------------------------------------------------------------------------

DeadLetterState = Literal["dead", "redriving", "redriven"]
DeadLetterReason = Literal["handler_failed", "max_deliveries", "undecodable"]
RedriveResult = Literal["redriven", "failed", "already_redriven", "in_progress", "not_redrivable", "not_found"]


class DeadLetterRecord(msgspec.Struct, kw_only=True):
    """What a consumer hands over when it gives up on an event (``event`` None: it could not be decoded)."""

    consumer: str
    event_id: str
    event: Event | None
    raw: str | None = None
    reason: DeadLetterReason
    error: str
    attempts: int


class DeadLetterSummary(msgspec.Struct, kw_only=True):
    id: str
    consumer: str
    event_id: str
    event_type: str | None
    position: int | None
    reason: DeadLetterReason
    error: str
    attempts: int
    state: DeadLetterState
    dead_at: Instant
    updated_at: Instant
    redriven_at: Instant | None


class DeadLetter(DeadLetterSummary, kw_only=True):
    """One dead letter with the event as it was delivered (``raw`` instead when it could not be decoded)."""

    event: Event | None
    raw: str | None


class DeadLetterPage(msgspec.Struct, kw_only=True):
    items: list[DeadLetterSummary]
    next_cursor: str | None


DEAD_LETTER_ID_PATTERN: Final = r"^dl_[0-9a-f]{32}$"
DeadLetterId = Annotated[str, msgspec.Meta(pattern=DEAD_LETTER_ID_PATTERN)]


class RedriveRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Re-drive these letters, in this order (at most 100 a call)."""

    dead_letter_ids: Annotated[list[DeadLetterId], msgspec.Meta(min_length=1, max_length=100)]


class RedriveOutcome(msgspec.Struct, kw_only=True):
    """``error``: why the consumer failed the event again, or why it was not re-driven."""

    dead_letter_id: str
    result: RedriveResult
    error: str | None = None


class RedriveResults(msgspec.Struct, kw_only=True):
    items: list[RedriveOutcome]
