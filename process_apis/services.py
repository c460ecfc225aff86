"""The process tier's services, built once at start-up and shared by every route (``state.services``)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from process_apis.background import Loops, Wakeup
from process_apis.billing.posting import PostingDispatcher
from process_apis.billing.service import BillingService
from process_apis.events.bus import EventBus, InProcessBus, RedisStreamBus
from process_apis.events.consumer import StreamConsumer
from process_apis.events.dead_letters import DeadLetters
from process_apis.events.projection import CONSUMER as POSTED_TIME
from process_apis.events.projection import PostedTimeProjection
from process_apis.events.psa_watch import PsaWatch
from process_apis.events.relay import EventRelay
from process_apis.exceptions.service import ExceptionQueue, by_source_type
from process_apis.expenses.service import ExpenseService
from process_apis.idempotency import adopt_earlier_keys, keyed_writes
from process_apis.invoicing.credit_notes import CreditNotes
from process_apis.invoicing.service import InvoicingService
from process_apis.invoicing.tax import HOLD_SOURCE
from process_apis.jobs import JobRunner
from process_apis.provisioning.amendments import ContractAmendments
from process_apis.provisioning.crm_feed import CrmFeed
from process_apis.provisioning.service import ProvisioningService
from process_apis.reconciliation.models import ReconciliationRequest
from process_apis.reconciliation.service import ReconciliationService
from process_apis.revenue.service import RevenueService
from process_apis.settings import ProcessSettings
from process_apis.staffing.hr_feed import HrChangeFeed
from process_apis.store import metadata
from process_apis.systems import Systems
from process_apis.timesheets.approvals import ApprovalService
from process_apis.timesheets.corrections import CorrectionService
from process_apis.timesheets.employment import Employment
from process_apis.timesheets.entry_rules import MinuteGrid, WorkDateWindow
from process_apis.timesheets.service import TimesheetService
from process_apis.unit_of_work import UnitOfWorkFactory, Workers
from runtime.downstream import Downstream
from runtime.storage import Database, database_url


@dataclass
class Services:
    settings: ProcessSettings
    db: Database
    uow: UnitOfWorkFactory
    systems: Systems
    bus: EventBus
    relay: EventRelay
    dispatcher: PostingDispatcher
    jobs: JobRunner
    billing: BillingService
    timesheets: TimesheetService
    approvals: ApprovalService
    corrections: CorrectionService
    credit_notes: CreditNotes
    exceptions: ExceptionQueue
    provisioning: ProvisioningService
    crm_feed: CrmFeed
    hr_feed: HrChangeFeed
    invoicing: InvoicingService
    reconciliation: ReconciliationService
    revenue: RevenueService
    expenses: ExpenseService
    posted_time: PostedTimeProjection
    dead_letters: DeadLetters
    loops: Loops
    wake_relay: Wakeup
    wake_dispatcher: Wakeup
    wake_jobs: Wakeup


async def start_services(settings: ProcessSettings, gateway: Downstream) -> Services:
    db = Database(database_url(settings.database_url, settings.data_dir, "process"), metadata)
    await db.create_all()
    await adopt_earlier_keys(db)
    keys = keyed_writes(db)
    systems = Systems(gateway)
    bus: EventBus
    if settings.redis_url:
        bus = RedisStreamBus.from_url(settings.redis_url, settings.event_stream, maxlen=settings.event_stream_maxlen)
    else:
        bus = InProcessBus()
    wake_relay, wake_dispatcher, wake_jobs = Wakeup(), Wakeup(), Wakeup()
    # The one place that says which worker a commit wakes: every service writes through these units of work.
    uow = UnitOfWorkFactory(db, Workers(relay=wake_relay.kick, jobs=wake_jobs.kick, dispatcher=wake_dispatcher.kick))
    relay = EventRelay(uow, bus)
    posted_time = PostedTimeProjection(uow)
    dispatcher = PostingDispatcher(
        uow, systems, batch_size=settings.posting_batch_size,
        lease_seconds=settings.outbox_lease_seconds, retry_base_seconds=settings.retry_base_seconds,
        retry_max_seconds=settings.retry_max_seconds)
    jobs = JobRunner(uow, lease_seconds=settings.outbox_lease_seconds,
                     retry_base_seconds=settings.retry_base_seconds, retry_max_seconds=settings.retry_max_seconds)
    billing = BillingService(uow, systems)
    exceptions = ExceptionQueue(uow)
    provisioning = ProvisioningService(uow, systems, keys, lease_seconds=settings.outbox_lease_seconds)
    invoicing = InvoicingService(uow, systems, jobs)
    window = WorkDateWindow(settings.work_date_days_back, settings.work_date_days_ahead)
    grid = MinuteGrid(settings.minute_granularity)
    employment = Employment(db)  # the last days the timesheet rule checks, renewed by the HR feed's turns
    await invoicing.adopt_earlier_drafts()
    services = Services(
        settings=settings, db=db, uow=uow, systems=systems, bus=bus, relay=relay, dispatcher=dispatcher, jobs=jobs,
        billing=billing, exceptions=exceptions,
        timesheets=TimesheetService(uow, systems, billing, window, grid, employment),
        approvals=ApprovalService(uow, systems.psa, billing, keys),
        corrections=CorrectionService(uow, systems, billing, window, grid, keys),
        credit_notes=CreditNotes(uow, systems, jobs),
        provisioning=provisioning, crm_feed=CrmFeed(uow, systems, provisioning,
                                                    ContractAmendments(uow, systems, billing)),
        hr_feed=HrChangeFeed(uow, systems, employment),
        invoicing=invoicing, reconciliation=ReconciliationService(uow, systems),
        revenue=RevenueService(uow, systems, keys), expenses=ExpenseService(uow, systems, jobs, keys),
        posted_time=posted_time, dead_letters=DeadLetters(uow, {POSTED_TIME: posted_time.handle_many}),
        loops=Loops(), wake_relay=wake_relay, wake_dispatcher=wake_dispatcher,
        wake_jobs=wake_jobs)
    exceptions.on_retry("billing_hold", by_source_type({HOLD_SOURCE: invoicing.taxes.retry_hold}, billing.retry_hold))
    exceptions.on_retry("posting", billing.retry_posting)
    exceptions.on_retry("provisioning", provisioning.retry_exception)
    exceptions.on_retry("flow_back", by_source_type({"invoice": invoicing.einvoicing.retry_exception},
                                                    jobs.retry_exception))
    _start_loops(services)
    return services


def _start_loops(s: Services) -> None:
    settings = s.settings

    def backoff(interval: float) -> Callable[[bool], float]:
        # A loop whose database or bus failed waits longer before its next turn.
        return lambda failed: min(settings.retry_max_seconds, interval * 4) if failed else interval

    wake_consumers = Wakeup()

    async def relay() -> None:
        if await s.relay.relay_once():
            wake_consumers.kick()

    s.loops.start("event-relay", relay, wakeup=s.wake_relay, interval=backoff(settings.relay_interval_seconds))
    if isinstance(s.bus, RedisStreamBus):
        # The tier consumes its own stream like any consumer: a group shared by the replicas, at least once.
        consumer = StreamConsumer(s.bus.client, s.bus.stream, POSTED_TIME, f"{socket.gethostname()}-{os.getpid()}",
                                  on_dead_letter=s.dead_letters.record)
        # A page read is applied in one transaction: the projection keeps pace with a month end's postings.
        s.loops.start("posted-time", lambda: consumer.drain_pages(s.posted_time.handle_many,
                                                                  count=s.relay.batch_size),
                      wakeup=wake_consumers, interval=backoff(settings.relay_interval_seconds))
    elif isinstance(s.bus, InProcessBus):
        # Single node: the relay hands over each batch it publishes, applied in one transaction.
        # No retries here: an event the projection fails is a dead letter at once, for an operator to re-drive.
        s.bus.subscribe_pages(s.dead_letters.keeping(POSTED_TIME, s.posted_time.handle_many))
    if settings.psa_watch_interval_seconds > 0:
        watch = PsaWatch(s.uow, s.systems.psa)
        s.loops.start("psa-watch", watch.watch_once, interval=backoff(settings.psa_watch_interval_seconds))
    if settings.crm_feed_interval_seconds > 0:
        s.loops.start("crm-feed", s.crm_feed.poll_once, interval=backoff(settings.crm_feed_interval_seconds))
    if settings.hr_feed_interval_seconds > 0:
        s.loops.start("hr-feed", s.hr_feed.poll_once, interval=backoff(settings.hr_feed_interval_seconds))
    s.loops.start("posting-dispatcher", s.dispatcher.dispatch_once, wakeup=s.wake_dispatcher,
                  interval=backoff(settings.dispatch_interval_seconds))
    s.loops.start("jobs", s.jobs.run_once, wakeup=s.wake_jobs, interval=backoff(settings.dispatch_interval_seconds))

    async def recover() -> None:
        await s.approvals.recover(settings.recovery_after_seconds)
        await s.corrections.recover(settings.recovery_after_seconds)
        await s.provisioning.recover()

    s.loops.start("recovery", recover, interval=lambda _failed: settings.recovery_interval_seconds)
    if settings.reconciliation_interval_seconds > 0:
        first = [True]

        async def reconcile() -> None:
            if first[0]:  # not at start-up: the first run waits one interval
                first[0] = False
                return
            await s.reconciliation.run(ReconciliationRequest(), trigger="schedule")

        s.loops.start("reconciliation", reconcile,
                      interval=lambda _failed: settings.reconciliation_interval_seconds)


async def stop_services(services: Services) -> None:
    await services.loops.shutdown()
    await services.bus.aclose()
    await services.db.dispose()
