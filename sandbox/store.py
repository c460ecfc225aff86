"""A tiny document store on SQLite: each vendor object is a JSON document keyed by (kind, id).

Vendors differ in shape, not in storage needs; documents keep each dialect's own field names verbatim.

Calls commit in groups, as a database server does: the calls made while the event loop takes in the requests that
are ready run together, in order, in one SQLite transaction, each in a savepoint of its own when it is a
``transaction`` (so a refused write undoes only itself), and none of them returns before that transaction is
committed. A caller that got an answer has its writes stored, and a read that saw a write of its group waits for
that write's commit too: one COMMIT (one WAL append) per group instead of one per request. The calls run on the
event loop's thread: each is a few SQLite statements, and a worker thread bought no concurrency (SQLite access was
serialised, and Python work holds the GIL either way) while its hand-offs cost each request latency.
"""

from __future__ import annotations

import asyncio
import builtins
import itertools
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# At most this many calls share one commit (more waiting are committed in several groups).
MAX_GROUP = 512
# A call waiting for its group: the function, its arguments, and the future its caller awaits.
_Call = tuple[Any, tuple[Any, ...], "asyncio.Future[Any]"]


class DocumentStore:
    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS documents (kind TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,"
            " body TEXT NOT NULL, PRIMARY KEY (kind, id))"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS documents_seq ON documents (kind, seq)")
        self._db.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        self._pending: builtins.list[_Call] = []
        self._savepoints = itertools.count()
        self.commits = 0  # groups committed through ``call`` (tests watch the grouping)

    async def call(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` with the other calls of its group (module docstring), committed before it returns.

        Pass ``store.transaction, fn, ...`` for a write that must be all or nothing."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((fn, args, future))
        if len(self._pending) == 1:  # the first of a group: run it once the loop has taken in what else is ready
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        group, self._pending = self._pending, []
        for start in range(0, len(group), MAX_GROUP):
            self._run_group(group[start : start + MAX_GROUP])

    def _run_group(self, group: builtins.list[_Call]) -> None:
        """Run the group in one transaction and commit it once; then answer every call of it."""
        outcomes: builtins.list[tuple[Any, BaseException | None]] = []
        self._db.execute("BEGIN")
        try:
            for fn, args, _ in group:
                try:
                    outcomes.append((fn(*args), None))
                except Exception as exc:  # the caller's to raise; the others of the group go on
                    outcomes.append((None, exc))
        except BaseException:  # the process is stopping: store nothing half-answered
            self._db.execute("ROLLBACK")
            raise
        try:
            self._db.execute("COMMIT")
            self.commits += 1
        except sqlite3.Error as exc:  # nothing of the group is stored: none of it may be answered as done
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            outcomes = [(None, exc)] * len(group)
        for (_, _, future), (result, error) in zip(group, outcomes, strict=True):
            if future.cancelled():  # its caller went away meanwhile
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

    def index(self, *fields: str) -> None:
        """Index documents on these fields (a vendor's frequent filters), so filtering and counting a large kind
        reads the index instead of parsing every document; ``seq`` closes it, so a page is ordered from it too."""
        name = "documents_" + "_".join(f.replace(".", "_") for f in fields)
        columns = ", ".join(self._path(f) for f in fields)
        self._db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON documents (kind, {columns}, seq)")
        # Statistics let the planner prefer a selective index over walking every document in ``seq`` order.
        self._db.execute("ANALYZE")

    # Synchronous primitives (run under the lock via ``call``, or directly while seeding).
    def is_empty(self) -> bool:
        return self._db.execute("SELECT 1 FROM documents LIMIT 1").fetchone() is None

    def next_number(self, name: str, start: int = 1) -> int:
        row = self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + 1"
            " RETURNING value",
            (name, start),
        ).fetchone()
        return int(row[0])

    def reserve(self, name: str, next_value: int) -> None:
        """Make ``next_number(name)`` hand out ``next_value`` next (numbers below it are taken)."""
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, next_value - 1),
        )

    def delete(self, kind: str, doc_id: str) -> None:
        self._db.execute("DELETE FROM documents WHERE kind = ? AND id = ?", (kind, doc_id))

    def put(self, kind: str, doc_id: str, body: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO documents (kind, id, seq, body) VALUES (?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM"
            " documents WHERE kind = ?), ?) ON CONFLICT(kind, id) DO UPDATE SET body = excluded.body",
            (kind, doc_id, kind, json.dumps(body, default=str)),
        )

    def put_many(self, kind: str, docs: Iterable[tuple[str, dict[str, Any]]]) -> None:
        def put_all() -> None:
            for doc_id, body in docs:
                self.put(kind, doc_id, body)

        self.transaction(put_all)

    def get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT body FROM documents WHERE kind = ? AND id = ?", (kind, doc_id)).fetchone()
        return json.loads(row[0]) if row else None

    def list(self, kind: str, *, where: dict[str, Any] | None = None, after_seq: int = 0,
             limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
        """Documents of a kind in insertion order after ``after_seq``, filtered on top-level fields."""
        sql, params = self._filtered(kind, where, None, None)
        sql = "SELECT seq, body" + sql + " AND seq > ? ORDER BY seq LIMIT ?"
        params.extend([after_seq, limit])
        return [(int(seq), json.loads(body)) for seq, body in self._db.execute(sql, params)]

    def query(
        self,
        kind: str,
        *,
        where: dict[str, Any] | None = None,
        ranges: dict[str, tuple[Any, Any]] | None = None,
        contains: dict[str, str] | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[builtins.list[dict[str, Any]], int]:
        """One page of documents in insertion order, and how many match in all.

        ``where`` is equality (a list: any of its values), ``ranges`` is ``field -> (low, high)`` inclusive
        (None: open), ``contains`` is a case-insensitive substring. Fields may be dotted paths into nested
        objects (``Employment_Data.Status``).
        """
        sql, params = self._filtered(kind, where, ranges, contains)
        total = int(self._db.execute("SELECT COUNT(*)" + sql, params).fetchone()[0])
        # Pick the page's rows first and read only their bodies: sorting whole documents to skip most of them
        # costs a deep page dearly. (``sql`` holds checked field paths and placeholders only, see ``_path``.)
        page = "SELECT rowid" + sql + " ORDER BY seq LIMIT ? OFFSET ?"
        rows = self._db.execute(f"SELECT body FROM documents WHERE rowid IN ({page}) ORDER BY seq",  # noqa: S608
                                [*params, limit, offset])
        return [json.loads(body) for (body,) in rows], total

    @staticmethod
    def _path(field: str) -> str:
        # Field names come from code, but never build SQL from anything that is not a plain identifier path.
        if not all(part.isidentifier() for part in field.split(".")):
            raise ValueError(f"bad field name {field!r}")
        return f"json_extract(body, '$.{field}')"

    def _filtered(self, kind: str, where: dict[str, Any] | None, ranges: dict[str, tuple[Any, Any]] | None,
                  contains: dict[str, str] | None) -> tuple[str, builtins.list[Any]]:
        sql = " FROM documents WHERE kind = ?"
        params: builtins.list[Any] = [kind]
        for field, value in (where or {}).items():
            if value is None:
                sql += f" AND {self._path(field)} IS NULL"
                continue
            if isinstance(value, list | tuple):
                sql += f" AND {self._path(field)} IN ({', '.join('?' * len(value))})" if value else " AND 0"
                params.extend(value)
                continue
            sql += f" AND {self._path(field)} = ?"
            params.append(value)
        for field, (low, high) in (ranges or {}).items():
            if low is not None:
                sql += f" AND {self._path(field)} >= ?"
                params.append(low)
            if high is not None:
                sql += f" AND {self._path(field)} <= ?"
                params.append(high)
        for field, text in (contains or {}).items():
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            sql += f" AND {self._path(field)} LIKE ? ESCAPE '\\'"
            params.append(f"%{escaped}%")
        return sql, params

    def transaction(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` atomically (through ``call``, or directly while seeding): all of it or none.

        Inside a transaction already (a group of calls, or an outer ``transaction``) it is a savepoint: a failure
        undoes this call's writes only.
        """
        if self._db.in_transaction:
            name = f"sp{next(self._savepoints)}"
            self._db.execute(f"SAVEPOINT {name}")
            try:
                result = fn(*args)
            except BaseException:
                self._db.execute(f"ROLLBACK TO {name}")
                self._db.execute(f"RELEASE {name}")
                raise
            self._db.execute(f"RELEASE {name}")
            return result
        self._db.execute("BEGIN")
        try:
            result = fn(*args)
            self._db.execute("COMMIT")
            return result
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # Vendor-side Idempotency-Key support: a POST repeated with the same key gets the first answer again.
    def recall(self, scope: str, key: str | None) -> tuple[int, Any] | None:
        if not key:
            return None
        record = self.get("idempotency", f"{scope}:{key}")
        return (int(record["status"]), record["body"]) if record else None

    def remember(self, scope: str, key: str | None, status: int, body: Any) -> None:
        if key:
            self.put("idempotency", f"{scope}:{key}", {"status": status, "body": body})

    def close(self) -> None:
        self._db.close()
