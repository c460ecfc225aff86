"""The process tier's SQL store on SQLite and PostgreSQL: one code path, the same guarantees on both."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from contracts.canonical import Posting
from process_apis.billing.posting import PostingDispatcher
from process_apis.events.bus import InProcessBus
from process_apis.events.outbox import record_event
from process_apis.events.relay import EventRelay
from process_apis.events.service import events_after
from process_apis.exceptions.service import ExceptionQueue, raise_exception, resolve_open
from process_apis.invoicing.service import InvoicingService
from process_apis.jobs import JobRunner, enqueue_job
from process_apis.store import billing_postings, exceptions, invoice_drafts, invoice_sources, invoices
from process_apis.systems import BatchItemResult, BatchResult, Systems
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime import correlation
from runtime.downstream import Downstream, DownstreamProblem
from runtime.storage import Database, database_url, utcnow

pytestmark = pytest.mark.asyncio(loop_scope="session")


def posting_row(entry: str, **changes: object) -> dict[str, object]:
    now = utcnow()
    row: dict[str, object] = dict(
        time_entry_id=entry, entry_version=1, idempotency_key=f"posting:{entry}:v1", contract_id="ctr_1",
        project_id="prj_1", legal_entity_id="le_us", work_date=dt.date(2026, 10, 14), hours=Decimal("7.5"),
        amount=Decimal("1313.44"), currency="USD", state="queued", attempts=0, next_attempt_at=now, created_at=now,
        updated_at=now)
    row.update(changes)
    return row


async def test_values_round_trip_exactly(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute(billing_postings.insert().values(**posting_row("te_1")))
    async with db.read() as conn:
        row = (await conn.execute(sa.select(billing_postings))).one()
    assert row.amount == Decimal("1313.44") and isinstance(row.amount, Decimal)
    assert row.hours == Decimal("7.5")
    assert row.work_date == dt.date(2026, 10, 14)
    assert row.next_attempt_at.tzinfo is not None and row.next_attempt_at.utcoffset() == dt.timedelta(0)


async def test_a_failed_transaction_leaves_nothing(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await conn.execute(billing_postings.insert().values(**posting_row("te_1")))
            raise RuntimeError("crash between the decision and the commit")
    async with db.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(billing_postings))).scalar() == 0


async def test_the_outbox_takes_each_entry_version_once(db: Database) -> None:
    for _ in range(3):  # the same approval applied three times
        async with db.transaction() as conn:
            await conn.execute(db.insert_ignoring_conflicts(billing_postings, ["time_entry_id", "entry_version"])
                               .values(**posting_row("te_1")))
    async with db.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(billing_postings))).scalar() == 1


async def test_an_insert_tells_whether_it_was_new_on_both_engines(db: Database) -> None:
    """Invoicing reserves a milestone for one draft and provisioning announces a won deal once by whether their
    insert was new: on PostgreSQL an INSERT's rowcount is -1, so every draft was refused as \"draft-exists\"."""
    async with db.transaction() as conn:
        first = await db.insert_new(conn, invoice_sources, ["source_type", "source_id"], source_type="milestone",
                                    source_id="ms_1", invoice_id="inv_1", contract_id="ctr_1")
        again = await db.insert_new(conn, invoice_sources, ["source_type", "source_id"], source_type="milestone",
                                    source_id="ms_1", invoice_id="inv_2", contract_id="ctr_1")
    async with db.read() as conn:
        holder = (await conn.execute(sa.select(invoice_sources.c.invoice_id))).scalars().all()
    assert (first, again, holder) == (True, False, ["inv_1"])


async def test_concurrent_writers_all_commit(db: Database) -> None:
    async def write(n: int) -> None:
        async with db.transaction() as conn:
            await conn.execute(sa.select(billing_postings.c.id).where(billing_postings.c.contract_id == "ctr_1"))
            await conn.execute(billing_postings.insert().values(**posting_row(f"te_{n}")))

    await asyncio.gather(*(write(n) for n in range(20)))

    async with db.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(billing_postings))).scalar() == 20


async def test_two_dispatchers_never_claim_the_same_row(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute(billing_postings.insert(), [posting_row(f"te_{n}") for n in range(30)])
    unused = Systems(Downstream("gateway", "http://127.0.0.1:9"))
    first, second = (PostingDispatcher(UnitOfWorkFactory(db), unused, batch_size=10) for _ in range(2))

    claims = await asyncio.gather(first._claim(), second._claim(), first._claim(), second._claim())

    claimed = [row.time_entry_id for rows in claims for row in rows]
    assert len(claimed) == len(set(claimed)) == 30


async def test_one_open_exception_per_source_with_history(db: Database) -> None:
    async with db.transaction() as conn:
        first, new = await raise_exception(conn, kind="billing_hold", source_type="time_entry", source_id="te_1",
                                           reason_codes=["NO_RATE_FOR_ROLE"], payload={"hours": "8"})
        again, new_again = await raise_exception(conn, kind="billing_hold", source_type="time_entry",
                                                 source_id="te_1", reason_codes=["NO_RATE_FOR_ROLE", "PERIOD_CLOSED"],
                                                 payload={"hours": "8"})
    assert new and not new_again and first == again
    queue = ExceptionQueue(UnitOfWorkFactory(db))

    page = await queue.list(reason_code="PERIOD_CLOSED", state="open")
    assert [i.id for i in page.items] == [first]
    assert [h.action for h in page.items[0].history] == ["raised", "reasons_changed"]

    async with db.transaction() as conn:
        assert await resolve_open(conn, kind="billing_hold", source_type="time_entry", source_id="te_1",
                                  resolution="fixed") == first
        reopened, reopened_new = await raise_exception(conn, kind="billing_hold", source_type="time_entry",
                                                       source_id="te_1", reason_codes=["NOT_ASSIGNED"], payload={})
    assert reopened_new and reopened != first
    async with db.read() as conn:
        states = dict((await conn.execute(sa.select(exceptions.c.id, exceptions.c.state))).all())
    assert states == {first: "resolved", reopened: "open"}


async def test_an_exception_item_carries_the_trace_id_of_the_work_that_raised_it(db: Database) -> None:
    trace_id = uuid.uuid4().hex
    token = correlation.set_current(correlation.from_headers("order-42", f"00-{trace_id}-{'1' * 16}-01"))
    try:
        async with db.transaction() as conn:
            raised, _new = await raise_exception(conn, kind="billing_hold", source_type="time_entry",
                                                 source_id="te_1", reason_codes=["NO_RATE_FOR_ROLE"], payload={})
    finally:
        correlation.reset_current(token)
    async with db.transaction() as conn:  # outside any request or job
        untraced, _new = await raise_exception(conn, kind="billing_hold", source_type="time_entry",
                                               source_id="te_2", reason_codes=["NOT_ASSIGNED"], payload={})
    queue = ExceptionQueue(UnitOfWorkFactory(db))
    item = await queue.get(raised)
    assert (item.correlation_id, item.trace_id) == ("order-42", trace_id)
    assert (await queue.get(untraced)).trace_id is None


async def test_a_job_refused_later_raises_its_item_in_the_trace_of_the_request_that_queued_it(db: Database) -> None:
    trace_id = uuid.uuid4().hex
    token = correlation.set_current(correlation.from_headers("invoice-post-7", f"00-{trace_id}-{'2' * 16}-01"))
    try:
        async with db.transaction() as conn:
            await enqueue_job(db, conn, "psa.milestone.invoiced", "invoice:inv_1:ms_1", {"milestone_id": "ms_1"})
    finally:
        correlation.reset_current(token)
    runner = JobRunner(UnitOfWorkFactory(db))
    seen: list[str | None] = []

    async def refused(_payload: object) -> None:
        seen.append(correlation.current_trace_id())
        raise DownstreamProblem("milestone ms_1 is not completed", status=409, slug="invalid-transition")

    runner.handle("psa.milestone.invoiced", refused)
    # The runner works in a background turn's own trace; the job switches to the trace that queued it.
    token = correlation.set_current(correlation.from_headers(None, None))
    try:
        assert await runner.run_once() == 0
    finally:
        correlation.reset_current(token)
    (item,) = (await ExceptionQueue(UnitOfWorkFactory(db)).list(kind="flow_back")).items
    assert seen == [trace_id]
    assert (item.trace_id, item.correlation_id) == (trace_id, "invoice-post-7")


async def test_exception_pages_follow_the_cursor(db: Database) -> None:
    async with db.transaction() as conn:
        for n in range(5):
            await raise_exception(conn, kind="billing_hold", source_type="time_entry", source_id=f"te_{n}",
                                  reason_codes=["NOT_ASSIGNED"], payload={})
    queue = ExceptionQueue(UnitOfWorkFactory(db))
    seen: list[str] = []
    cursor = None
    while True:
        page = await queue.list(limit=2, cursor=cursor)
        seen.extend(i.source_id for i in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == [f"te_{n}" for n in range(5)] and len(seen) == 5


async def test_events_get_gap_free_positions_and_replay_from_an_offset(db: Database) -> None:
    bus = InProcessBus()
    relay = EventRelay(UnitOfWorkFactory(db), bus, batch_size=3)
    async with db.transaction() as conn:
        for n in range(7):
            await record_event(conn, "time.approved", {"time_entry_id": f"te_{n}"})
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await record_event(conn, "time.posted", {"time_entry_id": "te_rolled_back"})
            raise RuntimeError("rolled back: its event must never appear")

    published = await relay.relay_once()
    again = await relay.relay_once()

    assert (published, again) == (7, 0)
    assert [e.position for e in bus.events] == list(range(1, 8))
    page = await events_after(db, 4, None, 100)
    assert [e.subject["time_entry_id"] for e in page.items] == ["te_4", "te_5", "te_6"]
    assert page.last_position == 7


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_an_existing_table_gains_new_nullable_columns_and_keeps_its_rows(
        engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = database_url("" if engine == "sqlite" else request.getfixturevalue("postgres_url"), tmp_path, "old")
    name = f"probe_{uuid.uuid4().hex[:8]}"

    def probe(*extra: sa.Column[object]) -> sa.MetaData:
        metadata = sa.MetaData()
        sa.Table(name, metadata, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("correlation_id", sa.String(128), nullable=True), *extra)
        return metadata

    old = Database(url, probe())
    await old.create_all()
    async with old.transaction() as conn:
        await conn.execute(old.metadata.tables[name].insert(),
                           [{"id": 1, "correlation_id": "c-1"}, {"id": 2, "correlation_id": None}])
    await old.dispose()

    # Two replicas of the new release start at once against the old table.
    replicas = [Database(url, probe(sa.Column("trace_id", sa.String(32), nullable=True),
                                    sa.Column("note", sa.Text, nullable=True))) for _ in range(2)]
    try:
        added = await asyncio.gather(*(replica.create_all() for replica in replicas))
        assert all(set(columns) <= {f"{name}.trace_id", f"{name}.note"} for columns in added)
        assert f"{name}.trace_id" in added[0] + added[1]
        new = replicas[0]
        table = new.metadata.tables[name]
        async with new.transaction() as conn:
            rows = (await conn.execute(sa.select(table).order_by(table.c.id))).all()
            await conn.execute(table.update().where(table.c.id == 2).values(trace_id="a" * 32))
        assert [tuple(r) for r in rows] == [(1, "c-1", None, None), (2, None, None, None)]
        assert await new.create_all() == []  # nothing left to add: a restart changes nothing
        async with new.read() as conn:
            assert (await conn.execute(sa.select(table.c.trace_id).where(table.c.id == 2))).scalar() == "a" * 32

        required = Database(url, probe(sa.Column("must", sa.Integer, nullable=False)))
        with pytest.raises(RuntimeError, match="NOT NULL"):  # rows would have no value: refused, not guessed
            await required.create_all()
        await required.dispose()
    finally:
        async with replicas[0].transaction() as conn:
            await conn.execute(sa.text(f"DROP TABLE {name}"))
        for replica in replicas:
            await replica.dispose()


async def test_database_urls() -> None:
    assert database_url("postgresql://u@h:5432/d", "/x", "p") == "postgresql+psycopg://u@h:5432/d"
    assert database_url("", "/tmp/psgw-x", "process").startswith("sqlite+aiosqlite:////tmp/psgw-x/process.sqlite3")


async def test_invoices_of_an_earlier_release_are_adopted_once_with_the_sources_they_bill(db: Database) -> None:
    now = utcnow()
    invoice = {"id": "inv_1", "external_ids": {"erp": "1"}, "customer_id": "cus_1", "contract_id": "ctr_1",
               "legal_entity_id": "le_us", "currency": "USD", "period": "2026-10", "subtotal": "350.00",
               "tax": "0.00", "total": "350.00", "state": "draft", "issue_date": None, "lines": [
                   {"description": "Professional services", "quantity": "2", "unit_price": "175.00",
                    "amount": "350.00", "source_type": "time_entry", "source_ids": ["te_1"]}]}
    async with db.transaction() as conn:
        await conn.execute(invoice_drafts.insert().values(
            id="inv_1", contract_id="ctr_1", period="2026-10", billing_model="time_and_materials", state="draft",
            invoice=invoice, sources={"time_entry_ids": ["te_1"], "milestone_ids": []}, created_at=now,
            updated_at=now))
    uow = UnitOfWorkFactory(db)
    service = InvoicingService(uow, Systems(Downstream("gateway", "http://127.0.0.1:9")), JobRunner(uow))

    assert await service.adopt_earlier_drafts() == 1
    assert await service.adopt_earlier_drafts() == 0  # every start runs it: nothing twice

    adopted = await service.get("inv_1")
    assert (adopted.state, adopted.sequence, adopted.time_entry_ids) == ("draft", 1, ["te_1"])
    async with db.read() as conn:
        held = (await conn.execute(sa.select(invoice_sources.c.source_id, invoice_sources.c.invoice_id))).all()
        live = (await conn.execute(sa.select(invoices.c.live_key))).scalar()
    assert [tuple(r) for r in held] == [("te_1", "inv_1")] and live == "ctr_1:2026-10"


async def test_a_batch_answer_naming_another_sources_posting_never_marks_the_entry_posted(db: Database) -> None:
    """An ERP (or connector) answer that pairs an entry with another entry's posting must not settle that entry:
    it would be marked posted in the ERP while nothing of its own is, an approved hour lost."""
    async with db.transaction() as conn:
        await conn.execute(billing_postings.insert(), [posting_row("te_1"), posting_row("te_2")])
    systems = Systems(Downstream("gateway", "http://127.0.0.1:9"))
    dispatcher = PostingDispatcher(UnitOfWorkFactory(db), systems, batch_size=10)

    def posting(source_id: str, posting_id: str) -> Posting:
        return Posting(id=posting_id, source_type="time_entry", source_id=source_id, project_id="prj_1",
                       contract_id="ctr_1", legal_entity_id="le_us", work_date=dt.date(2026, 10, 14),
                       quantity=Decimal("7.5"), amount=Decimal("1313.44"), currency="USD")

    async def answer_with_te_1_twice(items: object, idempotency_key: str) -> BatchResult:
        return BatchResult(items=[
            BatchItemResult(source_id="te_1", status="created", posting=posting("te_1", "pst_1")),
            BatchItemResult(source_id="te_2", status="existing", posting=posting("te_1", "pst_1")),
        ])

    systems.erp.post_batch = answer_with_te_1_twice  # type: ignore[method-assign]
    claimed = await dispatcher._claim()

    in_erp = await dispatcher._send_to_erp(claimed)

    assert [(row.time_entry_id, row.erp_posting_id) for row in in_erp] == [("te_1", "pst_1")]
    async with db.read() as conn:
        te_2 = (await conn.execute(sa.select(billing_postings).where(
            billing_postings.c.time_entry_id == "te_2"))).one()
    assert te_2.state == "queued" and te_2.erp_posting_id is None  # sent again later, not lost
    assert "omitted" in (te_2.last_error or "")


async def test_a_single_answer_naming_another_sources_posting_never_marks_the_entry_posted(db: Database) -> None:
    """The one-row path keeps the same promise as the batch path above."""
    async with db.transaction() as conn:
        await conn.execute(billing_postings.insert().values(**posting_row("te_2")))
    systems = Systems(Downstream("gateway", "http://127.0.0.1:9"))
    dispatcher = PostingDispatcher(UnitOfWorkFactory(db), systems, batch_size=10)

    async def answer_with_te_1(body: object, idempotency_key: str) -> Posting:
        return Posting(id="pst_1", source_type="time_entry", source_id="te_1", project_id="prj_1",
                       contract_id="ctr_1", legal_entity_id="le_us", work_date=dt.date(2026, 10, 14),
                       quantity=Decimal("7.5"), amount=Decimal("1313.44"), currency="USD")

    systems.erp.post = answer_with_te_1  # type: ignore[method-assign]

    assert await dispatcher._send_to_erp(await dispatcher._claim()) == []
    async with db.read() as conn:
        te_2 = (await conn.execute(sa.select(billing_postings))).one()
    assert te_2.state == "queued" and te_2.erp_posting_id is None  # sent again later, not lost
    assert "te_1" in (te_2.last_error or "")
