"""Settings of the process tier process."""

from __future__ import annotations

from typing import Annotated

import msgspec

from runtime.settings import TierSettings


class ProcessSettings(TierSettings, kw_only=True):
    port: int = 8102
    client_id: str = "process-tier"
    # Durable state: empty -> a SQLite file under data_dir; postgresql://... -> PostgreSQL (one code path).
    database_url: str = ""
    # Events: empty -> the in-process bus (single node); redis://... -> Redis Streams.
    redis_url: str = ""
    event_stream: str = "psgw:events"
    event_stream_maxlen: int = 1_000_000
    # How often the PSA is read for newly confirmed assignments and completed milestones (events/psa_watch.py);
    # 0 turns the watch off.
    psa_watch_interval_seconds: float = 5.0
    # How often the CRM's change feed is polled for won opportunities and amended contracts
    # (provisioning/crm_feed.py); 0 turns it off.
    crm_feed_interval_seconds: float = 5.0
    # How often HR's workers are read for terminations and leaves of absence (staffing/hr_feed.py); 0 turns it off.
    hr_feed_interval_seconds: float = 5.0
    # Outboxes: how many rows per ERP call, how long a claimed row is leased, retry backoff (+ jitter).
    posting_batch_size: int = 500  # the ERP's batch limit (billing.posting.ERP_BATCH_LIMIT)
    outbox_lease_seconds: float = 120.0
    retry_base_seconds: float = 0.5
    retry_max_seconds: float = 60.0
    dispatch_interval_seconds: float = 1.0
    relay_interval_seconds: float = 0.5
    # Work dates a time entry may carry, around today (UTC): late entries up to a year, planned ones up to 60 days.
    work_date_days_back: int = 366
    work_date_days_ahead: int = 60
    # Every time entry is whole minutes in steps of this many (1: any minute; 15: quarter hours).
    minute_granularity: Annotated[int, msgspec.Meta(ge=1, le=1440)] = 1
    # Decisions left half-applied (a system was down, or the process stopped) are completed after this long.
    recovery_after_seconds: float = 30.0
    recovery_interval_seconds: float = 15.0
    # The scheduled reconciliation of every active project; 0 turns the schedule off.
    reconciliation_interval_seconds: float = 86400.0
