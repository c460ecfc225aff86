"""The process tier's durable state: every table, on one ``MetaData`` (SQLite by default, PostgreSQL by URL).

Outboxes live here so that a decision and its side effects commit together: the posting outbox
(``billing_postings``), the follow-up jobs outbox (``jobs``) and the event outbox (``events``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.idempotency import record_table
from runtime.storage import JSONDocument, Money, UTCDateTime, autoincrement_id

# Table names carry the tier's prefix: PSGW_DATABASE_URL may point every process at one database.
metadata = sa.MetaData()

# A manager's decision on submitted time, recorded before anything is changed anywhere.
approvals = sa.Table(
    "process_approvals", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("approver_id", sa.String(64), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("time_entry_ids", JSONDocument, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # recorded -> applied
    sa.Column("outcome", JSONDocument, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("correlation_id", sa.String(128), nullable=True),
    sa.Column("trace_id", sa.String(32), nullable=True),  # a recovered decision continues the deciding trace
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("applied_at", UTCDateTime, nullable=True),
    sa.Column("applying_until", UTCDateTime, nullable=True),  # set while one call applies it (its lease)
    sa.Index("process_approvals_state", "state", "created_at"),
)

# The posting outbox: one row per time entry version to post to the ERP, exactly once.
billing_postings = sa.Table(
    "process_billing_postings", metadata,
    sa.Column("id", autoincrement_id(), primary_key=True),
    sa.Column("time_entry_id", sa.String(64), nullable=False),
    sa.Column("entry_version", sa.Integer, nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("contract_id", sa.String(64), nullable=False),
    sa.Column("project_id", sa.String(64), nullable=False),
    sa.Column("legal_entity_id", sa.String(64), nullable=False),
    sa.Column("work_date", sa.Date, nullable=False),
    sa.Column("hours", Money, nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    # queued -> in_erp (the ERP has it) -> done (the PSA says posted); rejected when the ERP refuses it
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("lease_until", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("erp_posting_id", sa.String(64), nullable=True),
    sa.Column("approval_id", sa.String(40), nullable=True),
    sa.Column("correlation_id", sa.String(128), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Additive (issue 18): the entry's whole minutes, what the ERP posting carries, and the hourly rate its amount
    # was computed at (minutes x rate / 60, rounded once), which invoices show as the unit price (null before).
    sa.Column("minutes", sa.Integer, nullable=True),
    sa.Column("rate", Money, nullable=True),
    sa.UniqueConstraint("time_entry_id", "entry_version", name="process_billing_postings_entry_version"),
    sa.Index("process_billing_postings_due", "state", "next_attempt_at"),
    sa.Index("process_billing_postings_contract", "contract_id", "state"),
)

# A consultant's request to correct approved or posted time, decided by the approver, carried out by this tier.
time_corrections = sa.Table(
    "process_time_corrections", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("time_entry_id", sa.String(64), nullable=False),
    sa.Column("worker_id", sa.String(64), nullable=False),
    sa.Column("project_id", sa.String(64), nullable=False),
    sa.Column("changes", JSONDocument, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    # requested -> rejected | approved -> applied (the new version approved and settled, the old one reversed)
    sa.Column("state", sa.String(16), nullable=False),
    # The entry while a request on it is open (requested or approved), else NULL: one open request per entry.
    sa.Column("open_for", sa.String(64), nullable=True, unique=True),
    sa.Column("approver_id", sa.String(64), nullable=True),
    sa.Column("decision_reason", sa.Text, nullable=True),
    sa.Column("new_time_entry_id", sa.String(64), nullable=True),
    sa.Column("settlement", JSONDocument, nullable=True),
    sa.Column("correlation_id", sa.String(128), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("decided_at", UTCDateTime, nullable=True),
    sa.Column("applied_at", UTCDateTime, nullable=True),
    sa.Index("process_time_corrections_state", "state", "project_id"),
)

# One row per worker and work date that time was written for: held (on PostgreSQL) by the short transaction that
# checks the 24-hours-a-day rule and claims minutes on the day, across replicas (process_apis/timesheets/days.py).
worker_days = sa.Table(
    "process_worker_days", metadata,
    sa.Column("worker_id", sa.String(64), primary_key=True),
    sa.Column("work_date", sa.Date, primary_key=True),
)

# Minutes claimed on a worker's day by a write to the PSA in flight or just made: counted by every check of the day
# until it expires (a write whose outcome is unknown: the claim's time to live; a confirmed one: a short grace).
worker_day_claims = sa.Table(
    "process_worker_day_claims", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("worker_id", sa.String(64), nullable=False),
    sa.Column("work_date", sa.Date, nullable=False),
    sa.Column("minutes", sa.Integer, nullable=False),
    sa.Column("time_entry_id", sa.String(64), nullable=True),  # the entry edited, or the one created once confirmed
    sa.Column("client_ref", sa.String(200), nullable=True),  # the create's client_ref (a re-sent create is the same)
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("confirmed_at", UTCDateTime, nullable=True),  # the write was made (else in flight or outcome unknown)
    sa.Index("process_worker_day_claims_day", "worker_id", "work_date"),
    sa.Index("process_worker_day_claims_expiry", "expires_at"),
)

# The reversal outbox: the ERP posting of a superseded version is taken back exactly once (after it is booked).
billing_reversals = sa.Table(
    "process_billing_reversals", metadata,
    sa.Column("id", autoincrement_id(), primary_key=True),
    sa.Column("time_entry_id", sa.String(64), nullable=False, unique=True),
    sa.Column("correction_id", sa.String(40), nullable=False),
    sa.Column("project_id", sa.String(64), nullable=False),
    # waiting (for the ERP) -> done (reversed, or nothing was ever booked) | rejected (in the exception queue)
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("erp_reversal_ids", JSONDocument, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("lease_until", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("process_billing_reversals_due", "state", "next_attempt_at"),
)

# Follow-up side effects on other systems (flow-backs after an invoice is posted, ...), retried until done.
jobs = sa.Table(
    "process_jobs", metadata,
    sa.Column("id", autoincrement_id(), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("dedupe_key", sa.String(250), nullable=False, unique=True),
    sa.Column("payload", JSONDocument, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending -> done | failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("lease_until", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("correlation_id", sa.String(128), nullable=True),
    sa.Column("trace_id", sa.String(32), nullable=True),  # the job runs in the trace of the request that queued it
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("process_jobs_due", "state", "next_attempt_at"),
)

# Serializes the "billed so far" check per contract (NTE) across concurrent approvals and replicas.
contract_locks = sa.Table(
    "process_contract_locks", metadata,
    sa.Column("contract_id", sa.String(64), primary_key=True),
)

# The governed remediation queue.
exceptions = sa.Table(
    "process_exceptions", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),  # billing_hold | posting_rejected | provisioning
    sa.Column("source_type", sa.String(32), nullable=False),
    sa.Column("source_id", sa.String(64), nullable=False),
    # set while the item is open: at most one open item per source and kind
    sa.Column("open_key", sa.String(200), nullable=True, unique=True),
    sa.Column("state", sa.String(16), nullable=False),  # open | assigned | resolved
    sa.Column("reason_codes", JSONDocument, nullable=False),
    # "|CODE_A|CODE_B|": filterable with LIKE on both engines (JSON containment differs between them)
    sa.Column("reason_index", sa.String(500), nullable=False),
    sa.Column("business_unit_id", sa.String(64), nullable=True),
    sa.Column("project_id", sa.String(64), nullable=True),
    sa.Column("owner_id", sa.String(64), nullable=True),
    sa.Column("payload", JSONDocument, nullable=False),
    sa.Column("correlation_id", sa.String(128), nullable=True),
    sa.Column("trace_id", sa.String(32), nullable=True),  # W3C trace id of the request (or work) that raised it
    sa.Column("resolution", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
    sa.Index("process_exceptions_state", "state", "created_at"),
    sa.Index("process_exceptions_source", "source_type", "source_id"),
)

exception_history = sa.Table(
    "process_exception_history", metadata,
    sa.Column("id", autoincrement_id(), primary_key=True),
    sa.Column("exception_id", sa.String(40), sa.ForeignKey("process_exceptions.id"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("actor_id", sa.String(64), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("reason_codes", JSONDocument, nullable=True),
    sa.Column("correlation_id", sa.String(128), nullable=True),
    sa.Index("process_exception_history_item", "exception_id", "id"),
)

# The event outbox: written in the transaction of the change it reports; ``position`` is the public,
# gap-free offset, assigned by the relay in commit order (``seq`` is only the insertion order).
events = sa.Table(
    "process_events", metadata,
    sa.Column("seq", autoincrement_id(), primary_key=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("correlation_id", sa.String(128), nullable=True),
    sa.Column("subject", JSONDocument, nullable=False),
    sa.Column("data", JSONDocument, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=True, unique=True),
    sa.Index("process_events_unpositioned", "position", "seq"),
)

event_sequence = sa.Table(
    "process_event_sequence", metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("last_position", sa.BigInteger, nullable=False),
)

provisionings = sa.Table(
    "process_provisionings", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("opportunity_id", sa.String(64), nullable=False, unique=True),
    # pending -> running -> completed | failed (resumable) | rejected (validation) | compensated
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("steps", JSONDocument, nullable=False),
    sa.Column("resources", JSONDocument, nullable=False),
    sa.Column("error", JSONDocument, nullable=True),
    sa.Column("runs", sa.Integer, nullable=False, default=0),
    sa.Column("lease_until", UTCDateTime, nullable=True),
    sa.Column("correlation_id", sa.String(128), nullable=True),
    sa.Column("trace_id", sa.String(32), nullable=True),  # resumed runs continue the requesting trace
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Before invoices could be voided or supplemented: one row per contract and period. Kept only so that
# InvoicingService.adopt_earlier_drafts can copy its rows into ``invoices`` once.
invoice_drafts = sa.Table(
    "process_invoice_drafts", metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # the ERP invoice id
    sa.Column("contract_id", sa.String(64), nullable=False),
    sa.Column("period", sa.String(7), nullable=False),
    sa.Column("billing_model", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # draft -> posted
    sa.Column("invoice", JSONDocument, nullable=False),
    sa.Column("sources", JSONDocument, nullable=False),
    sa.Column("correlation_id", sa.String(128), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("contract_id", "period", name="process_invoice_drafts_contract_period"),
)

# Every invoice this tier drafted in the ERP: draft -> posted, or draft -> void. A period's first invoice has
# sequence 1; time or milestones that arrive after it was posted go on a supplementary invoice (sequence 2, ...),
# and a voided draft is followed by a new one. ``live_key`` (contract:period) is set while a row is a draft:
# at most one draft per contract and period.
invoices = sa.Table(
    "process_invoices", metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # the ERP invoice id
    sa.Column("contract_id", sa.String(64), nullable=False),
    sa.Column("period", sa.String(7), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("billing_model", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # draft -> posted | void
    sa.Column("live_key", sa.String(80), nullable=True, unique=True),
    sa.Column("supplements_id", sa.String(64), nullable=True),  # the posted invoice of the period it adds to
    # Set under the contract's lock when posting begins: until the draft is posted or voided, posting another
    # invoice of the contract counts it as issued (two invoices posted at once never pass the value together).
    sa.Column("posting_claimed_at", UTCDateTime, nullable=True),
    sa.Column("subtotal", Money, nullable=False),
    sa.Column("invoice", JSONDocument, nullable=False),
    sa.Column("sources", JSONDocument, nullable=False),
    sa.Column("correlation_id", sa.String(128), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("contract_id", "period", "sequence", name="process_invoices_contract_period_sequence"),
    sa.Index("process_invoices_contract_state", "contract_id", "state"),
)

# What each draft or posted invoice bills (time entries, milestones, fixed-fee instalments, retainer fees): the
# primary key holds a source on one invoice at a time. A draft reserves its sources; voiding it releases them;
# a posted invoice keeps them for good.
invoice_sources = sa.Table(
    "process_invoice_sources", metadata,
    sa.Column("source_type", sa.String(16), primary_key=True),
    sa.Column("source_id", sa.String(100), primary_key=True),
    sa.Column("invoice_id", sa.String(64), nullable=False),
    sa.Column("contract_id", sa.String(64), nullable=False),
    sa.Index("process_invoice_sources_invoice", "invoice_id"),
)

# The tax system API's answer for an invoice (issue 19): where it is taxed, by which engine, its reference.
invoice_taxes = sa.Table(
    "process_invoice_taxes", metadata,
    sa.Column("invoice_id", sa.String(64), primary_key=True),
    sa.Column("calculation", JSONDocument, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# A posted invoice's e-invoice: the rendered document, what it was validated against, and its delivery on the
# e-invoicing network (rendered -> queued -> delivered | rejected; invalid or no_endpoint: never sent).
e_invoices = sa.Table(
    "process_e_invoices", metadata,
    sa.Column("invoice_id", sa.String(64), primary_key=True),
    sa.Column("format", sa.String(32), nullable=False),
    sa.Column("media_type", sa.String(64), nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=True),
    sa.Column("validated_against", JSONDocument, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("delivery_id", sa.String(64), nullable=True),
    sa.Column("errors", JSONDocument, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

reconciliations = sa.Table(
    "process_reconciliations", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),  # running -> completed | failed
    sa.Column("trigger", sa.String(16), nullable=False),  # request | schedule
    sa.Column("scope", JSONDocument, nullable=False),
    sa.Column("summary", JSONDocument, nullable=True),
    sa.Column("projects", JSONDocument, nullable=True),
    sa.Column("contracts", JSONDocument, nullable=True),  # the money, per contract
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("correlation_id", sa.String(128), nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Index("process_reconciliations_started", "started_at"),
)

# Event consumers of this tier (events/projection.py). One row per consumer: its lock (applying is serialized
# across replicas) and how much it has applied, for readers to judge freshness.
event_consumers = sa.Table(
    "process_event_consumers", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("applied_events", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Every event a consumer has handled, written in the transaction of its effect: a redelivery is recognized by id.
consumed_events = sa.Table(
    "process_consumed_events", metadata,
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.String(40), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),  # applied | stale (an older version than the one held)
    sa.Column("consumed_at", UTCDateTime, nullable=False),
)

# The posted-time projection (from ``time.posted``): the latest posted version of each time entry ...
posted_time_entries = sa.Table(
    "process_posted_time_entries", metadata,
    sa.Column("time_entry_id", sa.String(64), primary_key=True),
    sa.Column("entry_version", sa.Integer, nullable=False),
    sa.Column("project_id", sa.String(64), nullable=False),
    sa.Column("contract_id", sa.String(64), nullable=False),
    sa.Column("posting_id", sa.String(64), nullable=False),
    sa.Column("work_date", sa.Date, nullable=False),
    sa.Column("hours", Money, nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("event_id", sa.String(40), nullable=False),
    sa.Column("posted_at", UTCDateTime, nullable=False),
    sa.Index("process_posted_time_entries_project", "project_id"),
)

# ... and their totals per project and currency, kept in step in the same transaction.
posted_time_projects = sa.Table(
    "process_posted_time_projects", metadata,
    sa.Column("project_id", sa.String(64), primary_key=True),
    sa.Column("currency", sa.String(3), primary_key=True),
    sa.Column("contract_id", sa.String(64), nullable=False),
    sa.Column("entries", sa.Integer, nullable=False),
    sa.Column("hours", Money, nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("last_posted_at", UTCDateTime, nullable=False),
    sa.Index("process_posted_time_projects_contract", "contract_id"),
)

# Events a consumer of this tier gave up on (events/dead_letters.py): listed, inspected and re-driven by operators.
# One row per consumer and event; ``state`` dead -> redriving (claimed, with a lease) -> redriven, or back to dead.
dead_letters = sa.Table(
    "process_dead_letters", metadata,
    sa.Column("seq", autoincrement_id(), primary_key=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("consumer", sa.String(64), nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=True),
    sa.Column("position", sa.BigInteger, nullable=True),
    sa.Column("event", JSONDocument, nullable=True),  # the event as delivered; null when it could not be decoded
    sa.Column("raw", sa.Text, nullable=True),  # what was delivered, when it could not be decoded
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("lease_until", UTCDateTime, nullable=True),
    sa.Column("dead_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("redriven_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("consumer", "event_id", name="process_dead_letters_event"),
    sa.Index("process_dead_letters_state", "state", "seq"),
)

# PSA records the tier has reported an event for (events/psa_watch.py): each confirmed assignment, each completed
# milestone once. Written in the transaction of the event; the key makes a second report (a replica) a no-op.
reported_records = sa.Table(
    "process_reported_records", metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("record_id", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reported_at", UTCDateTime, nullable=False),
)

# High-water marks of the change feeds this tier polls (provisioning/crm_feed.py): the latest change handled and
# the records handled at exactly that instant (a feed answers ``>= mark``, so those come again). Advanced in the
# transaction that records the handling, so a restart resumes where the last turn stopped.
feed_marks = sa.Table(
    "process_feed_marks", metadata,
    sa.Column("feed", sa.String(64), primary_key=True),
    sa.Column("mark", UTCDateTime, nullable=False),
    sa.Column("seen_at_mark", JSONDocument, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Contract amendments the tier has carried from the CRM to the ERP (provisioning/amendments.py): one row per
# change of terms (its key hashes the contract, its version and the terms before and after), so a change seen
# again is applied and announced (contract.amended) once. ``pending`` until the ERP has the new terms.
contract_amendments = sa.Table(
    "process_contract_amendments", metadata,
    sa.Column("contract_id", sa.String(64), primary_key=True),
    sa.Column("amendment_key", sa.String(64), primary_key=True),
    sa.Column("changes", JSONDocument, nullable=False),
    sa.Column("effective_date", sa.Date, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | applied | refused
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Revenue this tier recognised in the ERP (revenue/service.py), one row per contract and period: written
# ``pending`` with its amount before the ERP call (so a retry posts the same amount under the same
# Idempotency-Key), ``posted`` in the transaction of its revenue.recognized event.
revenue_recognitions = sa.Table(
    "process_revenue_recognitions", metadata,
    sa.Column("contract_id", sa.String(64), primary_key=True),
    sa.Column("period", sa.String(7), primary_key=True),
    sa.Column("amount", Money, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | posted
    sa.Column("erp_schedule_id", sa.String(64), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Revenue a contract will not earn (revenue/v2 write-offs): inputs to its schedule and to the project margin.
# A request's Idempotency-Key (one per contract) is kept by the tier's keyed writes (process_apis/idempotency.py).
revenue_write_offs = sa.Table(
    "process_revenue_write_offs", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("contract_id", sa.String(64), nullable=False, index=True),
    sa.Column("project_id", sa.String(64), nullable=False, index=True),
    sa.Column("amount", Money, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("period", sa.String(7), nullable=False),
    sa.Column("recorded_by", sa.String(200), nullable=False),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
)

# The Idempotency-Key records of the tier's keyed writes (approvals, correction requests, provisionings, expenses,
# write-offs), kept by runtime/idempotency.py: each names what its key recorded (process_apis/idempotency.py).
idempotency_records = record_table("process_idempotency", metadata)

# What the process tier last saw of each worker's employment in HR (process_apis/staffing/hr_feed.py): the last
# day worked and the leaves of absence. The HR change feed compares HR with it to find terminations and new leaves
# (announced once: the row and its events commit together, ``revision`` guards a replica that raced); the
# timesheet rule that refuses time after termination and staffing availability read it.
hr_workers = sa.Table(
    "process_hr_workers", metadata,
    sa.Column("worker_id", sa.String(64), primary_key=True),
    sa.Column("termination_date", sa.Date, nullable=True),
    sa.Column("leaves", JSONDocument, nullable=False),  # [{"first_day", "last_day", "leave_type"}], ordered
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)


# -- outbox gauges (process_apis/metrics.py) ------------------------------------------------------------------------

class OutboxGauge(NamedTuple):
    due: int  # rows not yet done
    retrying: int  # of those, rows tried and failed at least once
    most_tries: int
    oldest_created_at: dt.datetime | None
    given_up: int


async def outbox_gauge(conn: AsyncConnection, table: sa.Table, *, pending: tuple[str, ...],
                       given_up: tuple[str, ...], tries: sa.Column[Any],
                       retrying: sa.ColumnElement[bool]) -> OutboxGauge:
    """How an outbox table stands: the owner of each outbox offers it by calling this with its own table."""
    row = (await conn.execute(sa.select(
        sa.func.count(), sa.func.sum(sa.case((retrying, 1), else_=0)), sa.func.max(tries),
        sa.func.min(table.c.created_at)).where(table.c.state.in_(pending)))).one()
    stopped = (await conn.execute(sa.select(sa.func.count()).where(table.c.state.in_(given_up)))).scalar_one()
    return OutboxGauge(int(row[0] or 0), int(row[1] or 0), int(row[2] or 0), row[3], int(stopped))


# -- ownership -----------------------------------------------------------------------------------------------------
# Each table belongs to one part of the tier (issue 14 item 8): only its owner reads or writes it; the others call
# the queries and commands the owner offers (``<package>/queries.py`` and the owner's services), on the caller's
# connection, so a use from elsewhere costs no extra round trip. A part is a package of process_apis (``timesheets``)
# or a top-level module (``jobs.py``, ``idempotency.py``). The tables stay on the one ``metadata`` above (and
# process_apis/expenses/store.py) so that create_all and the migrations see them all, on SQLite and PostgreSQL.
# tests/process/test_table_ownership.py reads the tier's imports and names any table imported by another part.
OWNERS: dict[str, tuple[str, ...]] = {
    "timesheets": ("approvals", "time_corrections", "worker_days", "worker_day_claims"),
    "billing": ("billing_postings", "billing_reversals", "contract_locks"),
    "jobs.py": ("jobs",),
    "exceptions": ("exceptions", "exception_history"),
    "events": ("events", "event_sequence", "event_consumers", "consumed_events", "posted_time_entries",
               "posted_time_projects", "dead_letters", "reported_records"),
    "provisioning": ("provisionings", "feed_marks", "contract_amendments"),
    "invoicing": ("invoice_drafts", "invoices", "invoice_sources", "invoice_taxes", "e_invoices"),
    "reconciliation": ("reconciliations",),
    "revenue": ("revenue_recognitions", "revenue_write_offs"),
    "idempotency.py": ("idempotency_records",),
    "staffing": ("hr_workers",),
    "expenses": ("expenses",),  # declared in process_apis/expenses/store.py
}

# Infrastructure allowed to touch a table it does not own, for that purpose only: (part, table) -> why.
INFRASTRUCTURE_USES: dict[tuple[str, str], str] = {
    **{("idempotency.py", table): "start-up adoption: carries the table's retired key columns into the tier's "
                                  "Idempotency-Key records, then drops them (Database.retire_columns)"
       for table in ("approvals", "time_corrections", "provisionings", "expenses", "revenue_write_offs")},
}

