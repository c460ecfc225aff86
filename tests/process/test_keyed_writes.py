"""The process tier's keyed writes on the one Idempotency-Key store (process_apis/idempotency.py), in process on
both databases: one decision per key across replicas, and the keys of the earlier key columns carried over."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from process_apis.billing.service import BillingService
from process_apis.idempotency import (
    APPROVALS,
    CORRECTIONS,
    PROVISIONINGS,
    adopt_earlier_keys,
    approval_fingerprint,
    correction_fingerprint,
    keyed_writes,
    provisioning_fingerprint,
    recorded_id,
)
from process_apis.store import approvals, idempotency_records, metadata, provisionings, time_corrections
from process_apis.systems import Systems
from process_apis.timesheets.approvals import ApprovalService
from process_apis.timesheets.models import ApprovalRequest
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.downstream import Downstream
from runtime.idempotency import Claim
from runtime.problems import Unprocessable
from runtime.storage import Database, database_url, utcnow
from tests.support.databases import fresh_postgres_database

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Where the tier's systems would be: nothing listens, so every PSA call fails as a PSA that is down.
NOWHERE = "http://127.0.0.1:9"


def approval_service(db: Database) -> ApprovalService:
    uow = UnitOfWorkFactory(db)
    systems = Systems(Downstream("gateway", NOWHERE))
    return ApprovalService(uow, systems.psa, BillingService(uow, systems), keyed_writes(db))


async def test_one_key_sent_to_several_replicas_at_once_records_one_decision(db: Database) -> None:
    # Three replicas: each its own engine on the one database, as separate processes would have.
    replicas = [db, Database(db.url, metadata), Database(db.url, metadata)]
    request = ApprovalRequest(time_entry_ids=["te_1", "te_2", "te_1"], approver_id="wrk_e1004", decision="approve")
    key = f"week-{uuid.uuid4().hex[:8]}"
    try:
        answers = await asyncio.gather(*(approval_service(replicas[n % 3]).decide(request, key) for n in range(6)))
    finally:
        for replica in replicas[1:]:
            await replica.dispose()

    # The PSA is down: the decision is recorded (202 at the route) and every repeat answers with it.
    assert len({approval.id for _, approval in answers}) == 1
    assert sorted(new for new, _ in answers) == [False] * 5 + [True]
    assert {approval.state for _, approval in answers} == {"recorded"}
    async with db.read() as conn:
        recorded = (await conn.execute(sa.select(approvals.c.id, approvals.c.time_entry_ids))).all()
    assert [(r.id, r.time_entry_ids) for r in recorded] == [(answers[0][1].id, ["te_1", "te_2"])]

    other = ApprovalRequest(time_entry_ids=["te_1", "te_2"], approver_id="wrk_e1004", decision="reject", reason="no")
    with pytest.raises(Unprocessable) as refused:
        await approval_service(db).decide(other, key)
    assert refused.value.slug == "idempotency-key-reused"


async def test_a_refused_decision_leaves_its_key_free(db: Database) -> None:
    """A decision that fails before it is recorded keeps nothing under its key: the retry runs for real."""
    service = approval_service(db)
    key = f"week-{uuid.uuid4().hex[:8]}"

    async def broken(_claim: Claim | None) -> None:
        raise RuntimeError("the process stopped before recording")

    with pytest.raises(RuntimeError):
        await service.keys.once(scope=APPROVALS, key=key, request_fingerprint="f", action=broken,
                                replay=lambda *_: asyncio.sleep(0))
    request = ApprovalRequest(time_entry_ids=["te_9"], approver_id="wrk_e1004", decision="approve")
    new, approval = await service.decide(request, key)
    assert new and approval.state == "recorded"


# -- the earlier key columns --------------------------------------------------------------------------------------

def earlier_metadata() -> sa.MetaData:
    """The three tables as an earlier release made them: each with a UNIQUE key column of its own."""
    earlier = sa.MetaData()
    for table, column in ((approvals, "idempotency_key"), (time_corrections, "client_key"),
                          (provisionings, "idempotency_key")):
        table.to_metadata(earlier).append_column(sa.Column(column, sa.String(200), nullable=True, unique=True))
    return earlier


@pytest.fixture(params=["sqlite", "postgresql"])
async def earlier_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield database_url("", tmp_path, "earlier")
        return
    with fresh_postgres_database("psgw_earlier_keys") as url:  # its own database: it makes the tier's tables
        yield database_url(url, tmp_path, "earlier")


async def test_keys_of_the_earlier_key_columns_are_still_answered_after_the_upgrade(earlier_url: str) -> None:
    now = utcnow()
    earlier = Database(earlier_url, earlier_metadata())
    await earlier.create_all()
    tables = earlier.metadata.tables
    async with earlier.transaction() as conn:
        await conn.execute(tables[approvals.name].insert(), [
            dict(id=f"apr_{n}", approver_id="wrk_e1002", decision="approve", reason=None,
                 time_entry_ids=[f"te_{n}"], idempotency_key=key, state="applied", attempts=1, created_at=now)
            for n, key in ((1, "week-1"), (2, None))])
        await conn.execute(tables[time_corrections.name].insert().values(
            id="cor_1", time_entry_id="te_1", worker_id="wrk_e1001", project_id="prj_4001",
            changes={"hours": "6"}, reason="ended early", state="requested", open_for="te_1", client_key="fix-1",
            created_at=now))
        await conn.execute(tables[provisionings.name].insert().values(
            id="prv_1", opportunity_id="opp_1", idempotency_key="won-1", state="completed", steps=[], resources={},
            runs=1, created_at=now - dt.timedelta(days=30), updated_at=now))
    await earlier.dispose()

    upgraded = Database(earlier_url, metadata)
    try:
        await upgraded.create_all()
        assert sorted(await adopt_earlier_keys(upgraded)) == ["client_key", "idempotency_key", "idempotency_key"]
        assert await adopt_earlier_keys(upgraded) == []  # every start runs it: nothing the second time

        async with upgraded.read() as conn:
            columns = await conn.run_sync(lambda sync: {
                name: {c["name"] for c in sa.inspect(sync).get_columns(name)}
                for name in (approvals.name, time_corrections.name, provisionings.name)})
            indexes = await conn.run_sync(
                lambda sync: {i["name"] for i in sa.inspect(sync).get_indexes(approvals.name)})
            kept = (await conn.execute(sa.select(approvals.c.id, approvals.c.state).order_by(approvals.c.id))).all()
            carried = (await conn.execute(sa.select(idempotency_records.c.scope, idempotency_records.c.key)
                                          .order_by(idempotency_records.c.key))).all()
        assert not {"idempotency_key", "client_key"} & set().union(*columns.values())
        assert "process_approvals_state" in indexes  # SQLite rebuilt the table: its index is made again
        assert [tuple(r) for r in kept] == [("apr_1", "applied"), ("apr_2", "applied")]
        assert [tuple(r) for r in carried] == [(CORRECTIONS, "fix-1"), (APPROVALS, "week-1"), (PROVISIONINGS, "won-1")]

        # The rules the tables kept still hold: one open correction per entry.
        with pytest.raises(sa.exc.IntegrityError):
            async with upgraded.transaction() as conn:
                await conn.execute(time_corrections.insert().values(
                    id="cor_2", time_entry_id="te_1", worker_id="wrk_e1001", project_id="prj_4001",
                    changes={"hours": "5"}, reason="again", state="requested", open_for="te_1", created_at=now))

        keys = keyed_writes(upgraded)

        async def never(_claim: Claim | None) -> str:
            raise AssertionError("a carried key ran its write again")

        async def named(_status: int, body: bytes) -> str:
            return recorded_id(body)

        same = [(APPROVALS, "week-1", approval_fingerprint(["te_1"], "wrk_e1002", "approve", None)),
                (CORRECTIONS, "fix-1", correction_fingerprint("te_1", "wrk_e1001", {"hours": "6"}, "ended early")),
                (PROVISIONINGS, "won-1", provisioning_fingerprint("opp_1"))]
        answers = [await keys.once(scope=scope, key=key, request_fingerprint=fp, action=never, replay=named)
                   for scope, key, fp in same]
        assert answers == ["apr_1", "cor_1", "prv_1"]
        with pytest.raises(Unprocessable):
            await keys.once(scope=PROVISIONINGS, key="won-1", request_fingerprint=provisioning_fingerprint("opp_2"),
                            action=never, replay=named)
    finally:
        await upgraded.dispose()
