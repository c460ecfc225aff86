"""Business gauges of the process tier, computed from its own store when Prometheus scrapes ``/metrics``.

- unapproved time: entries submitted through the process tier and not yet approved or rejected, by age. Kept as a
  projection of the event outbox (``time.submitted`` minus ``time.approved``/``time.rejected``), read forward from
  the last position seen, so each scrape reads only the events since the previous one;
- the invoice-ready backlog: postings done (in the ERP and the PSA) for a contract and month with no invoice
  drafted yet, by currency;
- failing syncs: outbox rows still due (postings, follow-up jobs, provisionings) with how many are retrying, their
  attempts and the oldest one's age; rows given up (rejected, failed); events not yet published to the bus;
- open exceptions by business unit, kind and reason code.

Queries use the tables' state indexes and run at most once per ``refresh_seconds`` (several Prometheus servers
scraping, or one scraping often, cost one refresh); a failed refresh keeps the previous values.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from prometheus_client.core import REGISTRY, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from process_apis.billing.queries import done_postings_by_day, postings_outbox
from process_apis.events.queries import sequenced_after, unpublished
from process_apis.exceptions.queries import open_or_assigned
from process_apis.invoicing.queries import drafted_periods
from process_apis.jobs import jobs_outbox
from process_apis.provisioning.queries import provisionings_outbox
from runtime.storage import Database, utcnow

# Upper bounds (days) of the age buckets of unapproved time; the last bucket is open-ended.
AGE_BUCKETS: tuple[tuple[str, float], ...] = (("lt_1d", 1), ("1d_3d", 3), ("3d_7d", 7), ("7d_14d", 14),
                                               ("ge_14d", float("inf")))
_DECISIONS = ("time.approved", "time.rejected")
_PAGE = 5000


def age_bucket(age: dt.timedelta) -> str:
    days = age.total_seconds() / 86400
    return next(name for name, upper in AGE_BUCKETS if days < upper)


@dataclass
class Snapshot:
    unapproved: dict[str, tuple[int, Decimal]] = field(default_factory=dict)  # bucket -> entries, hours
    unapproved_oldest_seconds: float = 0.0
    invoice_ready: dict[str, tuple[int, Decimal]] = field(default_factory=dict)  # currency -> postings, amount
    outbox_due: dict[str, tuple[int, int, int, float]] = field(default_factory=dict)  # outbox -> due, retrying,
    # max attempts, oldest age (s)
    outbox_given_up: dict[str, int] = field(default_factory=dict)
    events_unpublished: int = 0
    open_exceptions: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # unit, kind, reason
    refreshed_at: float = 0.0


class BusinessMetrics(Collector):
    """A Prometheus collector serving the last snapshot; :meth:`refresh` computes a new one from the store."""

    def __init__(self, refresh_seconds: float = 15.0) -> None:
        self.refresh_seconds = refresh_seconds
        self.snapshot = Snapshot()
        self._submitted: dict[str, tuple[dt.datetime, Decimal]] = {}
        self._position = 0
        self._db: Database | None = None
        self._lock = asyncio.Lock()

    async def refresh(self, db: Database) -> None:
        async with self._lock:
            if db is not self._db:  # a new store (tests create apps anew): start the projection over
                self._db, self._submitted, self._position = db, {}, 0
            elif time.monotonic() - self.snapshot.refreshed_at < self.refresh_seconds:
                return
            snapshot = Snapshot()
            async with db.read() as conn:
                await self._follow_submissions(conn)
                self._unapproved(snapshot)
                await self._invoice_ready(conn, snapshot)
                await self._outboxes(conn, snapshot)
                await self._exceptions(conn, snapshot)
            snapshot.refreshed_at = time.monotonic()
            self.snapshot = snapshot

    async def _follow_submissions(self, conn: Any) -> None:
        while True:
            rows = await sequenced_after(conn, self._position, ("time.submitted", *_DECISIONS), _PAGE)
            for row in rows:
                entry_id = (row.subject or {}).get("time_entry_id")
                if not entry_id:
                    continue
                if row.type == "time.submitted":
                    self._submitted[entry_id] = (row.occurred_at, Decimal(str((row.data or {}).get("hours", "0"))))
                else:
                    self._submitted.pop(entry_id, None)
            if rows:
                self._position = rows[-1].position
            if len(rows) < _PAGE:
                return

    def _unapproved(self, snapshot: Snapshot) -> None:
        now = utcnow()
        counts: Counter[str] = Counter()
        hours: dict[str, Decimal] = defaultdict(Decimal)
        oldest = 0.0
        for submitted_at, entry_hours in self._submitted.values():
            age = now - submitted_at
            bucket = age_bucket(age)
            counts[bucket] += 1
            hours[bucket] += entry_hours
            oldest = max(oldest, age.total_seconds())
        snapshot.unapproved = {name: (counts[name], hours[name]) for name, _upper in AGE_BUCKETS}
        snapshot.unapproved_oldest_seconds = oldest

    @staticmethod
    async def _invoice_ready(conn: Any, snapshot: Snapshot) -> None:
        drafted = await drafted_periods(conn)
        rows = await done_postings_by_day(conn)
        totals: dict[str, tuple[int, Decimal]] = {}
        for row in rows:
            if (row.contract_id, row.work_date.strftime("%Y-%m")) in drafted:
                continue
            count, amount = totals.get(row.currency, (0, Decimal(0)))
            totals[row.currency] = (count + row.n, amount + Decimal(str(row.amount or 0)))
        snapshot.invoice_ready = totals

    @staticmethod
    async def _outboxes(conn: Any, snapshot: Snapshot) -> None:
        now = utcnow()
        due: dict[str, tuple[int, int, int, float]] = {}
        for name, gauge in (("postings", postings_outbox), ("jobs", jobs_outbox),
                            ("provisionings", provisionings_outbox)):
            stands = await gauge(conn)
            oldest = _aware(stands.oldest_created_at)
            due[name] = (stands.due, stands.retrying, stands.most_tries,
                         (now - oldest).total_seconds() if oldest else 0.0)
            snapshot.outbox_given_up[name] = stands.given_up
        snapshot.outbox_due = due
        snapshot.events_unpublished = await unpublished(conn)

    @staticmethod
    async def _exceptions(conn: Any, snapshot: Snapshot) -> None:
        for row in await open_or_assigned(conn):
            for reason in dict.fromkeys(row.reason_codes or ["-"]):
                snapshot.open_exceptions[(row.business_unit_id or "unassigned", row.kind, str(reason))] += 1

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        entries = GaugeMetricFamily("psgw_unapproved_time_entries",
                                    "Time entries submitted through the process tier and not yet decided, by age",
                                    labels=["age"])
        hours = GaugeMetricFamily("psgw_unapproved_time_hours", "Hours submitted and not yet decided, by age",
                                  labels=["age"])
        for bucket, (count, total) in s.unapproved.items():
            entries.add_metric([bucket], count)
            hours.add_metric([bucket], float(total))
        yield entries
        yield hours
        yield GaugeMetricFamily("psgw_unapproved_time_oldest_age_seconds",
                                "Age of the oldest submitted entry not yet decided", value=s.unapproved_oldest_seconds)
        ready = GaugeMetricFamily("psgw_invoice_ready_postings",
                                  "Postings done for a contract and month with no invoice drafted yet",
                                  labels=["currency"])
        ready_amount = GaugeMetricFamily("psgw_invoice_ready_amount",
                                         "Amount of the postings ready to invoice", labels=["currency"])
        for currency, (count, amount) in s.invoice_ready.items():
            ready.add_metric([currency], count)
            ready_amount.add_metric([currency], float(amount))
        yield ready
        yield ready_amount
        yield from self._outbox_families(s.outbox_due.items(), s.outbox_given_up.items())
        yield GaugeMetricFamily("psgw_events_unpublished", "Events committed but not yet sequenced for the bus",
                                value=s.events_unpublished)
        open_items = GaugeMetricFamily("psgw_open_exceptions",
                                       "Open exception-queue items by business unit, kind and reason code",
                                       labels=["business_unit", "kind", "reason"])
        for (unit, kind, reason), count in sorted(s.open_exceptions.items()):
            open_items.add_metric([unit, kind, reason], count)
        yield open_items

    @staticmethod
    def _outbox_families(due: Iterable[tuple[str, tuple[int, int, int, float]]],
                         given_up: Iterable[tuple[str, int]]) -> Iterator[Metric]:
        pending = GaugeMetricFamily("psgw_outbox_due_rows", "Outbox rows not yet done", labels=["outbox"])
        retrying = GaugeMetricFamily("psgw_outbox_retrying_rows", "Outbox rows that failed at least once and are "
                                     "being retried (failing syncs)", labels=["outbox"])
        attempts = GaugeMetricFamily("psgw_outbox_max_attempts", "Most attempts of a row not yet done",
                                     labels=["outbox"])
        oldest = GaugeMetricFamily("psgw_outbox_oldest_due_age_seconds", "Age of the oldest row not yet done",
                                   labels=["outbox"])
        for name, (count, failing, most, age) in due:
            pending.add_metric([name], count)
            retrying.add_metric([name], failing)
            attempts.add_metric([name], most)
            oldest.add_metric([name], age)
        stopped = GaugeMetricFamily("psgw_outbox_given_up_rows", "Outbox rows given up (rejected or failed), "
                                    "waiting in the exception queue", labels=["outbox"])
        for name, count in given_up:
            stopped.add_metric([name], count)
        yield from (pending, retrying, attempts, oldest, stopped)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


BUSINESS_METRICS = BusinessMetrics()
REGISTRY.register(BUSINESS_METRICS)


async def refresh_business_metrics(state: Any) -> None:
    """The process tier's scrape hook (``create_tier_app(on_scrape=...)``)."""
    services = getattr(state, "services", None)
    if services is not None:
        await BUSINESS_METRICS.refresh(services.db)
