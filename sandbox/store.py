"""A tiny document store on SQLite: each vendor object is a JSON document keyed by (kind, id).

Vendors differ in shape, not in storage needs; documents keep each dialect's own field names verbatim.
Access is serialized by a lock and runs in a worker thread so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any


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
        self._lock = threading.Lock()

    def _run(self, fn: Any, *args: Any) -> Any:
        with self._lock:
            return fn(*args)

    async def call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(self._run, fn, *args)

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

    def put(self, kind: str, doc_id: str, body: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO documents (kind, id, seq, body) VALUES (?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM"
            " documents WHERE kind = ?), ?) ON CONFLICT(kind, id) DO UPDATE SET body = excluded.body",
            (kind, doc_id, kind, json.dumps(body, default=str)),
        )

    def put_many(self, kind: str, docs: Iterable[tuple[str, dict[str, Any]]]) -> None:
        self._db.execute("BEGIN")
        try:
            for doc_id, body in docs:
                self.put(kind, doc_id, body)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT body FROM documents WHERE kind = ? AND id = ?", (kind, doc_id)).fetchone()
        return json.loads(row[0]) if row else None

    def list(self, kind: str, *, where: dict[str, Any] | None = None, after_seq: int = 0,
             limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
        """Documents of a kind in insertion order after ``after_seq``, filtered on top-level fields."""
        sql = "SELECT seq, body FROM documents WHERE kind = ? AND seq > ?"
        params: list[Any] = [kind, after_seq]
        for field, value in (where or {}).items():
            if not field.isidentifier():  # field names come from code, but never build SQL from anything else
                raise ValueError(f"bad field name {field!r}")
            sql += f" AND json_extract(body, '$.{field}') = ?"
            params.append(value)
        sql += " ORDER BY seq LIMIT ?"
        params.append(limit)
        return [(int(seq), json.loads(body)) for seq, body in self._db.execute(sql, params)]

    def close(self) -> None:
        self._db.close()
