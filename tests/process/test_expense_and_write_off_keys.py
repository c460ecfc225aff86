"""Expense captures and write-offs on the tier's one Idempotency-Key store (process_apis/idempotency.py), in process
on both databases: the keys an earlier release kept in the tables' own columns (beside a digest of the request as
sent) are still answered after the upgrade, with the object they recorded, and refused for another request."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
import sqlalchemy as sa

from process_apis.expenses.models import NewExpense
from process_apis.expenses.service import ExpenseService, sync_key
from process_apis.expenses.store import expenses
from process_apis.idempotency import (
    adopt_earlier_keys,
    keyed_writes,
    recorded_id,
    write_off_fingerprint,
    write_off_scope,
)
from process_apis.jobs import JobRunner
from process_apis.revenue.models import WriteOffRequest
from process_apis.store import metadata, revenue_write_offs
from process_apis.systems import Systems
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.downstream import Downstream
from runtime.idempotency import Claim
from runtime.problems import Unprocessable
from runtime.storage import Database, database_url, utcnow
from tests.support.databases import fresh_postgres_database

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Where the tier's systems would be: nothing listens. A replay needs none of them.
NOWHERE = "http://127.0.0.1:9"


def earlier_digest(request: msgspec.Struct) -> str:
    """The ``request_digest`` the earlier release stored: SHA-256 of the request's JSON as decoded."""
    return hashlib.sha256(msgspec.json.encode(request)).hexdigest()


def earlier_metadata() -> sa.MetaData:
    """The tier's tables as the earlier release made them: expenses and write-offs with their own key columns."""
    earlier = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(earlier)
    earlier_expenses = earlier.tables[expenses.name]
    earlier_expenses.append_column(sa.Column("idempotency_key", sa.String(200), nullable=True, unique=True))
    earlier_expenses.append_column(sa.Column("request_digest", sa.String(64), nullable=False))
    earlier_write_offs = earlier.tables[revenue_write_offs.name]
    earlier_write_offs.append_column(sa.Column("idempotency_key", sa.String(200), nullable=False))
    earlier_write_offs.append_column(sa.Column("request_digest", sa.String(64), nullable=False))
    earlier_write_offs.append_constraint(
        sa.UniqueConstraint("contract_id", "idempotency_key", name="uq_process_revenue_write_offs_key")
    )
    return earlier


@pytest.fixture(params=["sqlite", "postgresql"])
async def earlier_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield database_url("", tmp_path, "earlier")
        return
    with fresh_postgres_database("psgw_earlier_captures") as url:
        yield database_url(url, tmp_path, "earlier")


def new_expense(**overrides: object) -> NewExpense:
    fields: dict[str, object] = dict(
        worker_id="wrk_e1001",
        project_id="prj_4001",
        category="lodging",
        amount=Decimal("189.00"),
        currency="USD",
        expense_date=dt.date(2026, 11, 24),
        country="US",
        billable=True,
        receipt_ref="rcpt-1",
        description="Hotel",
    )
    return msgspec.convert(fields | overrides, NewExpense)


# As sent: a lodging expense; a training course ticked billable (stored as cost: training is never billed); an
# expense without a key; one whose stored digest matches no request the row could have come from.
LODGING = new_expense()
TRAINING = new_expense(category="training", amount=Decimal("900.00"), billable=True)
UNKEYED = new_expense(receipt_ref="rcpt-3")
ODD = new_expense(receipt_ref="rcpt-4")
# As sent: a write-off without a project (stored with the contract's one project), and one naming its project.
WITHOUT_PROJECT = WriteOffRequest(amount=Decimal("450.00"), reason="scope cut", period="2026-11")
WITH_PROJECT = WriteOffRequest(amount=Decimal("120.00"), reason="goodwill", period="2026-10", project_id="prj_4002")


def expense_row(expense_id: str, sent: NewExpense, key: str | None, digest: str | None = None) -> dict[str, object]:
    now = utcnow()
    return dict(
        id=expense_id,
        idempotency_key=key,
        request_digest=digest or earlier_digest(sent),
        worker_id=sent.worker_id,
        project_id=sent.project_id,
        contract_id="ctr_2001",
        legal_entity_id="le_us",
        category=sent.category,
        amount=sent.amount,
        currency=sent.currency,
        expense_date=sent.expense_date,
        country=sent.country,
        billable=sent.billable and sent.category != "training",
        receipt_ref=sent.receipt_ref,
        description=sent.description,
        state="submitted",
        reason_codes=[],
        created_at=now,
        updated_at=now,
    )


def write_off_row(
    write_off_id: str, contract_id: str, sent: WriteOffRequest, stored_project: str, key: str
) -> dict[str, object]:
    return dict(
        id=write_off_id,
        contract_id=contract_id,
        project_id=stored_project,
        amount=sent.amount,
        currency="USD",
        reason=sent.reason,
        period=sent.period,
        recorded_by="cfo@firm",
        idempotency_key=key,
        request_digest=earlier_digest(sent),
        recorded_at=utcnow(),
    )


async def test_keys_of_earlier_expenses_and_write_offs_are_answered_after_the_upgrade(earlier_url: str) -> None:
    earlier = Database(earlier_url, earlier_metadata())
    await earlier.create_all()
    tables = earlier.metadata.tables
    async with earlier.transaction() as conn:
        await conn.execute(
            tables[expenses.name].insert(),
            [
                expense_row("exp_1", LODGING, "phone-1"),
                expense_row("exp_2", TRAINING, sync_key("offline-7")),
                expense_row("exp_3", UNKEYED, None),
                expense_row("exp_4", ODD, "odd-1", digest="0" * 64),
            ],
        )
        await conn.execute(
            tables[revenue_write_offs.name].insert(),
            [
                write_off_row("wo_1", "ctr_1", WITHOUT_PROJECT, "prj_4001", "cut-1"),
                write_off_row("wo_2", "ctr_2", WITH_PROJECT, "prj_4002", "cut-1"),
            ],
        )  # one key, another contract
    await earlier.dispose()

    upgraded = Database(earlier_url, metadata)
    try:
        await upgraded.create_all()
        assert sorted(await adopt_earlier_keys(upgraded)) == sorted(["idempotency_key", "request_digest"] * 2)
        assert await adopt_earlier_keys(upgraded) == []  # every start runs it: nothing the second time

        async with upgraded.read() as conn:
            columns = await conn.run_sync(
                lambda sync: {
                    name: {c["name"] for c in sa.inspect(sync).get_columns(name)}
                    for name in (expenses.name, revenue_write_offs.name)
                }
            )
            indexes = await conn.run_sync(lambda sync: {i["name"] for i in sa.inspect(sync).get_indexes(expenses.name)})
            kept = (await conn.execute(sa.select(expenses.c.id, expenses.c.billable).order_by(expenses.c.id))).all()
        assert not {"idempotency_key", "request_digest"} & set().union(*columns.values())
        assert "process_expenses_project_state" in indexes  # SQLite rebuilt the table: its index is made again
        assert [tuple(r) for r in kept] == [("exp_1", True), ("exp_2", False), ("exp_3", True), ("exp_4", True)]

        # The expense service answers the earlier keys with their expenses, as a phone retrying would see them.
        uow = UnitOfWorkFactory(upgraded)
        keys = keyed_writes(upgraded)
        service = ExpenseService(uow, Systems(Downstream("gateway", NOWHERE)), JobRunner(uow), keys)
        created, first = await service.capture(LODGING, "phone-1")
        assert (created, first.id) == (False, "exp_1")
        created, synced = await service.capture(TRAINING, sync_key("offline-7"))
        assert (created, synced.id, synced.billable) == (False, "exp_2", False)
        for sent, key in (
            (new_expense(amount=Decimal("12.00")), "phone-1"),
            (TRAINING, "phone-1"),
            (new_expense(category="training", amount=Decimal("900.00"), billable=False), sync_key("offline-7")),
            (ODD, "odd-1"),
        ):  # a digest matching nothing: refused, never captured twice
            with pytest.raises(Unprocessable) as refused:
                await service.capture(sent, key)
            assert refused.value.slug == "idempotency-key-reused"

        async def never(_claim: Claim | None) -> str:
            raise AssertionError("a carried key ran its write again")

        async def named(_status: int, body: bytes) -> str:
            return recorded_id(body)

        for contract_id, sent, expected in (("ctr_1", WITHOUT_PROJECT, "wo_1"), ("ctr_2", WITH_PROJECT, "wo_2")):
            assert (
                await keys.once(
                    scope=write_off_scope(contract_id),
                    key="cut-1",
                    action=never,
                    replay=named,
                    request_fingerprint=write_off_fingerprint(contract_id, sent),
                )
                == expected
            )
        # Sent naming the project this time: another request than the one the key recorded, as before.
        with pytest.raises(Unprocessable):
            await keys.once(
                scope=write_off_scope("ctr_1"),
                key="cut-1",
                action=never,
                replay=named,
                request_fingerprint=write_off_fingerprint(
                    "ctr_1", msgspec.structs.replace(WITHOUT_PROJECT, project_id="prj_4001")
                ),
            )
    finally:
        await upgraded.dispose()
