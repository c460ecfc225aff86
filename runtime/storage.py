"""Durable state in SQL: one code path for SQLite (the embedded default) and PostgreSQL (at scale).

Every process sets its database up here: the gateway's admin overrides and audit, the system tier's idempotency
records, the process tier's state (:func:`database_url`, :func:`create_engine`, :class:`Database`).

SQLAlchemy Core, async: ``sqlite+aiosqlite`` or ``postgresql+psycopg``. Tables are declared on a ``MetaData``
by each tier and created with ``create_all`` at start-up. Migrations are additive only: new tables (with their
indexes), and new nullable columns added to tables that exist already (rows keep their values, the column is NULL);
a column a table no longer declares is retired explicitly (:meth:`Database.retire_columns`: its values handed on,
then dropped, on SQLite by rebuilding the table).

Transactions: :meth:`Database.transaction` is a write transaction. On SQLite it starts with ``BEGIN IMMEDIATE``
so two writers queue on the file lock instead of failing when a read lock cannot be upgraded; on PostgreSQL it
is a normal READ COMMITTED transaction and code that must serialize takes row locks (``with_for_update``,
a no-op on SQLite where the whole transaction is already serialized). :meth:`Database.read` is a read-only
snapshot.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.schema import CreateColumn, CreateTable

_READ_ONLY = "psgw_read_only"

log = logging.getLogger("runtime.storage")


def database_url(url: str | None, data_dir: str | Path, name: str, *, suffix: str = ".sqlite3") -> str:
    """The SQLAlchemy async URL of every process's database: ``url`` when given (``postgresql://`` gets the psycopg
    driver, ``sqlite://`` the aiosqlite one), else the SQLite file ``<data_dir>/<name><suffix>``."""
    url = (url or "").strip()
    if not url:
        path = Path(data_dir).resolve() / f"{name}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{path}"
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://"):]
    return url


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """The one engine set-up: a pool of ``pool_size`` connections (as many again on overflow); on SQLite a 30 s busy
    wait and WAL (readers never block the writer; several processes may share the file); on PostgreSQL each
    connection is checked before use."""
    if not url.startswith("sqlite"):
        return create_async_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)
    # No ping on SQLite: a connection to a local file does not go stale, and each ping is a round trip through
    # aiosqlite's thread on every checkout. The pool is sized as on PostgreSQL: SQLAlchemy's default for SQLite
    # (5, overflow 10) closed the overflow connections at every checkin, so under load each checkout could open
    # a new connection (a thread, the file, the pragmas) only to close it again.
    pooled: dict[str, Any] = {} if ":memory:" in url or "mode=memory" in url else {
        "pool_size": pool_size, "max_overflow": pool_size}
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS}, **pooled)

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        sqlite_pragmas(dbapi_connection)

    return engine


SQLITE_BUSY_SECONDS = 30


def sqlite_pragmas(dbapi_connection: Any) -> None:
    """WAL (readers never block the writer; several processes may share the file), NORMAL sync."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def connect_sqlite_file(engine: AsyncEngine) -> sqlite3.Connection | None:
    """A blocking stdlib connection to the SQLite file of ``engine``, set up as the engine's own connections are
    (busy wait, pragmas; transactions left to the caller: ``isolation_level=None``), for one thread that writes in
    bulk, where each statement through aiosqlite would be a hop to its thread and back. None when the engine is
    not on a SQLite file (PostgreSQL, or an in-memory database another connection would not see)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" or "mode=memory" in str(engine.url):
        return None
    connection = sqlite3.connect(database, timeout=SQLITE_BUSY_SECONDS, isolation_level=None, check_same_thread=False)
    sqlite_pragmas(connection)
    return connection


class JSONDocument(sa.types.TypeDecorator[Any]):
    """A JSON column on both engines (JSONB on PostgreSQL); msgspec Structs, Decimals and dates go in as JSON."""

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSONB())
        return dialect.type_descriptor(sa.JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return msgspec.to_builtins(value)


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """Timezone-aware UTC instants on both engines (SQLite keeps no zone, so it is restored on the way out)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: give an aware UTC instant")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Money(sa.types.TypeDecorator[Decimal]):
    """Exact decimal amounts stored as text: identical on both engines, never a float in between."""

    impl = sa.String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


def autoincrement_id() -> sa.types.TypeEngine[int]:
    """A 64-bit counter on PostgreSQL that is still SQLite's rowid alias (only INTEGER autoincrements there)."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Database:
    """An async engine plus the tables it serves."""

    def __init__(self, url: str, metadata: sa.MetaData, *, pool_size: int = 10) -> None:
        self.url = url
        self.metadata = metadata
        self.engine: AsyncEngine = create_engine(url, pool_size=pool_size)
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            _take_over_sqlite_transactions(self.engine)

    async def create_all(self) -> list[str]:
        """Create missing tables, then add the missing nullable columns of existing ones; returns the columns
        added (``table.column``). Safe when several replicas start at once."""
        async with self.engine.begin() as conn:
            await conn.run_sync(self.metadata.create_all)
        try:
            async with self.engine.begin() as conn:
                return await conn.run_sync(_add_missing_columns, self.metadata)
        except sa.exc.DBAPIError as exc:
            if not _is_duplicate_column(exc):
                raise
        # Another replica added a column between our look and our ALTER: look again (it is there now).
        async with self.engine.begin() as conn:
            return await conn.run_sync(_add_missing_columns, self.metadata)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction: committed when the block ends, rolled back when it raises."""
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only snapshot (no write lock taken on SQLite)."""
        async with self.engine.connect() as conn:
            await conn.execution_options(**{_READ_ONLY: True})
            yield conn

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()

    async def retire_columns(
        self,
        table: sa.Table,
        columns: Sequence[str],
        carry: Callable[[AsyncConnection, Sequence[Any]], Awaitable[None]] | None = None,
    ) -> list[str]:
        """Drop ``columns``, which ``table`` no longer declares, where the database still has them; returns those
        dropped. ``carry`` first gets the rows (the declared columns, plus the retired ones read as text) in the
        same transaction, to move what they hold elsewhere: moved and dropped commit together. Safe when several
        replicas start at once. On SQLite the table is rebuilt (a UNIQUE column cannot be dropped in place), so it
        must be a table no foreign key points at."""
        async with self.transaction() as conn:
            if self.dialect == "postgresql":  # replicas starting together: one retires, the others find nothing
                await conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"),
                                   {"name": f"psgw-retire:{table.name}"})
            present = await conn.run_sync(
                lambda sync: {c["name"] for c in sa.inspect(sync).get_columns(table.name, schema=table.schema)})
            retired = [c for c in columns if c in present and c not in table.c]
            if not retired:
                return []
            if carry is not None:
                extra = [sa.literal_column(c, sa.Text).label(c) for c in retired]
                await carry(conn, (await conn.execute(sa.select(table, *extra))).all())
            if self.dialect == "sqlite":
                await conn.run_sync(_rebuild_sqlite_table, table)
            else:
                for column in retired:
                    name = conn.dialect.identifier_preparer.quote(column)
                    await conn.exec_driver_sql(f"ALTER TABLE {conn.dialect.identifier_preparer.format_table(table)} "
                                               f"DROP COLUMN IF EXISTS {name}")
        log.info("retired columns", extra={"table": table.name, "columns": retired})
        return retired

    def insert_ignoring_conflicts(self, table: sa.Table, conflict_columns: Sequence[str]) -> Any:
        """``INSERT ... ON CONFLICT (cols) DO NOTHING`` for either engine: the duplicate-safe insert of outboxes."""
        insert = postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)
        return insert.on_conflict_do_nothing(index_elements=list(conflict_columns))

    async def insert_new(self, conn: AsyncConnection, table: sa.Table, conflict_columns: Sequence[str],
                         **values: Any) -> bool:
        """``insert_ignoring_conflicts`` of one row: whether it was inserted (False: the row is there already).
        Told by RETURNING, never by rowcount: on PostgreSQL (psycopg, SQLAlchemy 2.1) an INSERT's rowcount is -1."""
        returned = await conn.execute(self.insert_ignoring_conflicts(table, conflict_columns).values(**values)
                                      .returning(sa.literal(1)))
        return returned.first() is not None

    def upsert(self, table: sa.Table, conflict_columns: Sequence[str], update_columns: Iterable[str]) -> Any:
        """``INSERT ... ON CONFLICT (cols) DO UPDATE`` for either engine (call ``.values(...)`` on the result)."""
        insert = postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)
        return _Upsert(insert, list(conflict_columns), list(update_columns))


def _add_missing_columns(conn: Connection, metadata: sa.MetaData) -> list[str]:
    """``ALTER TABLE ... ADD COLUMN`` for each nullable column the metadata declares and the database lacks."""
    inspector = sa.inspect(conn)
    table_name = conn.dialect.identifier_preparer.format_table
    # PostgreSQL checks again under the table lock; SQLite serializes writers already (BEGIN IMMEDIATE).
    if_not_exists = "IF NOT EXISTS " if conn.dialect.name == "postgresql" else ""
    added: list[str] = []
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name, schema=table.schema):
            continue
        present = {c["name"] for c in inspector.get_columns(table.name, schema=table.schema)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable or column.primary_key:
                # Existing rows would have no value for it: that needs a real migration, not this one.
                raise RuntimeError(f"{table.name}.{column.name} is missing and NOT NULL: it cannot be added "
                                   "to the existing table automatically")
            spec = CreateColumn(column).compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {table_name(table)} ADD COLUMN {if_not_exists}{spec}")
            added.append(f"{table.name}.{column.name}")
    if added:
        log.info("added columns to existing tables", extra={"columns": added})
    return added


def _rebuild_sqlite_table(conn: Connection, table: sa.Table) -> None:
    """SQLite's way to drop columns: a new table as declared, the rows copied, the old one replaced, its indexes
    made again (https://www.sqlite.org/lang_altertable.html#otheralter), inside the caller's transaction."""
    rebuilt = table.to_metadata(sa.MetaData(), name=f"{table.name}__rebuilt")
    conn.execute(CreateTable(rebuilt))  # the table alone: the indexes keep their names, made after the swap
    conn.execute(rebuilt.insert().from_select([c.name for c in table.columns], sa.select(*table.columns)))
    table.drop(conn)
    quote = conn.dialect.identifier_preparer
    conn.exec_driver_sql(f"ALTER TABLE {quote.format_table(rebuilt)} RENAME TO {quote.quote(table.name)}")
    for index in table.indexes:
        index.create(conn)


def _is_duplicate_column(exc: sa.exc.DBAPIError) -> bool:
    # SQLite: "duplicate column name: x"; PostgreSQL: SQLSTATE 42701 (duplicate_column).
    return "duplicate column" in str(exc.orig).lower() or getattr(exc.orig, "sqlstate", None) == "42701"


class _Upsert:
    def __init__(self, insert: Any, conflict_columns: list[str], update_columns: list[str]) -> None:
        self._insert = insert
        self._conflict = conflict_columns
        self._update = update_columns

    def values(self, *args: Any, **kwargs: Any) -> Any:
        statement = self._insert.values(*args, **kwargs)
        return statement.on_conflict_do_update(
            index_elements=self._conflict, set_={c: getattr(statement.excluded, c) for c in self._update}
        )


def _take_over_sqlite_transactions(engine: AsyncEngine) -> None:
    # The sqlite3 driver's own transaction control begins lazily and never for SELECTs; take it over so every
    # transaction is real (SERIALIZABLE) and write transactions hold the write lock from their first statement.
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")
