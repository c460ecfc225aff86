"""The audit log's SQL store: SQLite under the data dir by default, PostgreSQL by URL, one code path; on a SQLite
file the call rows go in through a connection of their own (runtime.storage.connect_sqlite_file), one thread
hop per batch."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import operator
import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.storage import connect_sqlite_file

metadata = MetaData()
_json = msgspec.json.Encoder()

_Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only

audit_calls = Table(
    "audit_calls", metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("correlation_id", String(128), nullable=False, index=True),
    Column("trace_id", String(32), nullable=False),
    Column("client_id", String(128), index=True),
    Column("subject", String(256)),
    # Who vouched for the caller: the gateway's own issuer, an external IdP, or the API-key marker.
    Column("issuer", String(512)),
    Column("api", String(128), index=True),
    Column("version", Integer),
    Column("route", String(512)),
    Column("method", String(16), nullable=False),
    Column("path", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("outcome", JSON, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("upstream", String(64)),
    Column("upstream_ms", Float),
    Column("retries", Integer),
    Column("client_addr", String(64)),
    Column("instance", String(64)),
)

admin_changes = Table(
    "audit_admin_changes", metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor_client", String(128), nullable=False),
    Column("actor_subject", String(256), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target_kind", String(64), nullable=False),
    Column("target_id", String(256), nullable=False, index=True),
    Column("before", JSON),
    Column("after", JSON),
    Column("correlation_id", String(128)),
)


# gc=False: entries hold only scalars (never a cycle), and thousands wait in the audit queue at once, which
# would otherwise make the collector's full passes frequent.
class CallEntry(msgspec.Struct, kw_only=True, gc=False):
    at: dt.datetime
    correlation_id: str
    trace_id: str
    method: str
    path: str
    status: int
    outcome: dict[str, str]
    latency_ms: float
    client_id: str | None = None
    subject: str | None = None
    issuer: str | None = None
    api: str | None = None
    version: int | None = None
    route: str | None = None
    upstream: str | None = None
    upstream_ms: float | None = None
    retries: int | None = None
    client_addr: str | None = None
    instance: str | None = None
    id: int | None = None


class ChangeEntry(msgspec.Struct, kw_only=True):
    at: dt.datetime
    actor_client: str
    actor_subject: str
    action: str  # e.g. client.create, client.rotate_secret, client.revoke, sla_tier.update, policy.apply
    target_kind: str
    target_id: str
    before: Any = None
    after: Any = None
    correlation_id: str | None = None
    id: int | None = None


class CallQuery(msgspec.Struct, kw_only=True):
    client_id: str | None = None
    api: str | None = None
    status: int | None = None
    correlation_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    before_id: int | None = None  # cursor: entries older than this id
    limit: int = 100


class ChangeQuery(msgspec.Struct, kw_only=True):
    target_kind: str | None = None
    target_id: str | None = None
    actor_client: str | None = None
    since: dt.datetime | None = None
    before_id: int | None = None
    limit: int = 100


class AuditStore(Protocol):
    async def create_schema(self) -> None: ...

    async def write_calls(self, entries: Sequence[CallEntry]) -> None: ...

    async def write_changes(self, entries: Sequence[ChangeEntry]) -> None: ...

    async def calls(self, query: CallQuery) -> list[CallEntry]: ...

    async def changes(self, query: ChangeQuery) -> list[ChangeEntry]: ...


def _row(entry: msgspec.Struct) -> dict[str, Any]:
    row = msgspec.structs.asdict(entry)
    row.pop("id", None)
    return row


# Encoding a row costs ~3 us of the event loop's CPU: a 500-row batch is encoded in slices of ~0.08 ms, one per
# loop turn, so that a call in flight (at -c32 it lives through a handful of turns) meets little of it. Slices of
# 100 rows (~0.3 ms) put up to ~1.5 ms of audit work into the turns of the calls that met a batch.
_ENCODE_SLICE = 25
_CALL_COLUMNS = tuple(column.name for column in audit_calls.columns if column.name != "id")
_call_columns_of = operator.attrgetter(*_CALL_COLUMNS)
_AT = _CALL_COLUMNS.index("at")
_OUTCOME = _CALL_COLUMNS.index("outcome")


class SqlAuditStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        # On a SQLite file, call rows go in through a connection of their own on a thread of their own: a batch is
        # one hop to that thread (BEGIN IMMEDIATE, executemany, COMMIT) where the engine's aiosqlite path made
        # several (checkout, cursor, execute, commit, the pool's rollback) and ran SQLAlchemy's machinery for each
        # on the event loop (0.30 ms of the loop's CPU per batch, 0.05 ms this way).
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        self._file: sqlite3.Connection | None = None
        if self._sqlite:
            self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="audit-writer")
        marker = "?" if self._sqlite else "%s"
        # Call entries are the hot write (one per proxied call): a plain driver-level executemany with values
        # encoded here, instead of SQLAlchemy's per-row parameter processing, which cost more than the insert.
        # Table and column names come from the Table above, never from input.
        columns = ", ".join(_CALL_COLUMNS)
        markers = ", ".join([marker] * len(_CALL_COLUMNS))
        self._insert_calls = f"INSERT INTO {audit_calls.name} ({columns}) VALUES ({markers})"  # noqa: S608

    def _call_values(self, entry: CallEntry) -> tuple[Any, ...]:
        # One C-level attrgetter for every column, then the two that need encoding: a loop over the columns
        # with getattr cost twice as much per row.
        values = list(_call_columns_of(entry))
        at = entry.at
        if self._sqlite:
            # The proxy stamps calls in UTC: its ISO text less the "+00:00" is the naive UTC text stored here.
            values[_AT] = (at.isoformat(" ", "microseconds")[:26] if at.tzinfo is dt.UTC
                           else at.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds"))
        else:
            values[_AT] = at.astimezone(dt.UTC)
        values[_OUTCOME] = _json.encode(entry.outcome).decode()
        return tuple(values)

    async def create_schema(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.run_sync(_add_missing_columns)

    async def write_calls(self, entries: Sequence[CallEntry]) -> None:
        if entries:
            rows: list[tuple[Any, ...]] = []
            for start in range(0, len(entries), _ENCODE_SLICE):
                if start:
                    await asyncio.sleep(0)  # let calls in flight run between slices
                rows.extend(self._call_values(e) for e in entries[start:start + _ENCODE_SLICE])
            if self._writer is not None:
                if await asyncio.get_running_loop().run_in_executor(self._writer, self._insert_into_file, rows):
                    return
                self._writer.shutdown(wait=False)  # not a file another connection can open: the engine's path
                self._writer = None
            async with self.engine.begin() as conn:
                await conn.exec_driver_sql(self._insert_calls, rows)

    def _insert_into_file(self, rows: list[tuple[Any, ...]]) -> bool:
        """On the writer thread: one transaction for the batch; False (nothing written) when the engine's database
        is not a file this connection can share."""
        if self._file is None:
            self._file = connect_sqlite_file(self.engine)
            if self._file is None:
                return False
        connection = self._file
        connection.execute("BEGIN IMMEDIATE")  # as runtime/storage.py's writers: queue on the file lock
        try:
            connection.executemany(self._insert_calls, rows)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return True

    async def aclose(self) -> None:
        """Close the writer thread and its connection (the engine is its owner's to dispose of)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            await asyncio.get_running_loop().run_in_executor(writer, self._close_file)
            writer.shutdown(wait=False)

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    async def write_changes(self, entries: Sequence[ChangeEntry]) -> None:
        if entries:
            async with self.engine.begin() as conn:
                await conn.execute(admin_changes.insert(), [_row(e) for e in entries])

    async def calls(self, query: CallQuery) -> list[CallEntry]:
        table = audit_calls
        statement = select(table).order_by(table.c.id.desc()).limit(query.limit)
        if query.client_id is not None:
            statement = statement.where(table.c.client_id == query.client_id)
        if query.api is not None:
            statement = statement.where(table.c.api == query.api)
        if query.status is not None:
            statement = statement.where(table.c.status == query.status)
        if query.correlation_id is not None:
            statement = statement.where(table.c.correlation_id == query.correlation_id)
        if query.since is not None:
            statement = statement.where(table.c.at >= query.since)
        if query.until is not None:
            statement = statement.where(table.c.at < query.until)
        if query.before_id is not None:
            statement = statement.where(table.c.id < query.before_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [msgspec.convert(_aware(row._asdict()), CallEntry) for row in rows]

    async def changes(self, query: ChangeQuery) -> list[ChangeEntry]:
        table = admin_changes
        statement = select(table).order_by(table.c.id.desc()).limit(query.limit)
        if query.target_kind is not None:
            statement = statement.where(table.c.target_kind == query.target_kind)
        if query.target_id is not None:
            statement = statement.where(table.c.target_id == query.target_id)
        if query.actor_client is not None:
            statement = statement.where(table.c.actor_client == query.actor_client)
        if query.since is not None:
            statement = statement.where(table.c.at >= query.since)
        if query.before_id is not None:
            statement = statement.where(table.c.id < query.before_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [msgspec.convert(_aware(row._asdict()), ChangeEntry) for row in rows]


def _add_missing_columns(connection: Connection) -> None:
    """Columns added since a database was created (create_all makes tables, never columns): additive only."""
    present = {column["name"] for column in inspect(connection).get_columns(audit_calls.name)}
    for column in audit_calls.columns:
        if column.name not in present:
            kind = column.type.compile(dialect=connection.dialect)
            connection.exec_driver_sql(f"ALTER TABLE {audit_calls.name} ADD COLUMN {column.name} {kind}")


def _aware(mapping: dict[str, Any]) -> dict[str, Any]:
    # Column names come back as SQLAlchemy's str subclass (msgspec wants str); SQLite hands back naive
    # datetimes, and everything here is stored in UTC.
    row = {str(key): value for key, value in mapping.items()}
    at = row.get("at")
    if isinstance(at, dt.datetime) and at.tzinfo is None:
        row["at"] = at.replace(tzinfo=dt.UTC)
    return row
