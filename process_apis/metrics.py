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

import sqlalchemy as sa
from prometheus_client.core import REGISTRY, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from process_apis.store import billing_postings, events, exceptions, invoices, jobs, provisionings
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
            rows = (await conn.execute(
                sa.select(events.c.position, events.c.type, events.c.occurred_at, events.c.subject, events.c.data)
                .where(events.c.position > self._position,
                       events.c.type.in_(("time.submitted", *_DECISIONS)))
                .order_by(events.c.position).limit(_PAGE))).all()
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
        drafted = {(r.contract_id, r.period) for r in (await conn.execute(
            sa.select(invoices.c.contract_id, invoices.c.period).where(invoices.c.state != "void"))).all()}
        rows = (await conn.execute(
            sa.select(billing_postings.c.contract_id, billing_postings.c.currency, billing_postings.c.work_date,
                      sa.func.count().label("n"),
                      sa.func.sum(sa.cast(billing_postings.c.amount, sa.Numeric(18, 2))).label("amount"))
            .where(billing_postings.c.state == "done")
            .group_by(billing_postings.c.contract_id, billing_postings.c.currency,
                      billing_postings.c.work_date))).all()
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
        for name, table, pending, given_up in (
                ("postings", billing_postings, ("queued", "in_erp"), ("rejected",)),
                ("jobs", jobs, ("pending",), ("failed",))):
            row = (await conn.execute(sa.select(
                sa.func.count(), sa.func.sum(sa.case((table.c.attempts > 0, 1), else_=0)),
                sa.func.max(table.c.attempts), sa.func.min(table.c.created_at))
                .where(table.c.state.in_(pending)))).one()
            oldest = _aware(row[3])
            due[name] = (int(row[0] or 0), int(row[1] or 0), int(row[2] or 0),
                         (now - oldest).total_seconds() if oldest else 0.0)
            snapshot.outbox_given_up[name] = int((await conn.execute(
                sa.select(sa.func.count()).where(table.c.state.in_(given_up)))).scalar_one())
        row = (await conn.execute(sa.select(
            sa.func.count(), sa.func.sum(sa.case((provisionings.c.runs > 1, 1), else_=0)),
            sa.func.max(provisionings.c.runs), sa.func.min(provisionings.c.created_at))
            .where(provisionings.c.state.in_(("pending", "running", "failed"))))).one()
        oldest = _aware(row[3])
        due["provisionings"] = (int(row[0] or 0), int(row[1] or 0), int(row[2] or 0),
                                (now - oldest).total_seconds() if oldest else 0.0)
        snapshot.outbox_given_up["provisionings"] = int((await conn.execute(
            sa.select(sa.func.count()).where(provisionings.c.state == "failed"))).scalar_one())
        snapshot.outbox_due = due
        snapshot.events_unpublished = int((await conn.execute(
            sa.select(sa.func.count()).where(events.c.position.is_(None)))).scalar_one())

    @staticmethod
    async def _exceptions(conn: Any, snapshot: Snapshot) -> None:
        rows = (await conn.execute(sa.select(exceptions.c.business_unit_id, exceptions.c.kind,
                                             exceptions.c.reason_codes)
                                   .where(exceptions.c.state.in_(("open", "assigned"))))).all()
        for row in rows:
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
