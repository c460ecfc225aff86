"""The one Idempotency-Key rule: a retried write has no second effect.

The key (``KEY_PATTERN``, declared on the header by :data:`runtime.params.IdempotencyKey`), what makes two
requests the same (:func:`fingerprint`), and the answers: same key + same request -> the first answer again;
same key + another request -> 422 ``idempotency-key-reused`` (:func:`refuse_reuse`); a request still running
under the key -> 409 ``idempotency-key-in-use``, or, for a store made with ``wait_seconds``, the first request's
answer once it has one (for operations whose contract has no 409 for it).

:class:`IdempotencyStore` keeps the records, in a table of the process's own database (:func:`record_table`, named
with its tier's prefix). :meth:`IdempotencyStore.run` keeps replayable answers (the system tier's writes).
:meth:`IdempotencyStore.once` serves writes that record a business object (the process tier's approvals,
corrections and provisionings): the write completes its key (:meth:`Claim.complete`) in the transaction that
records the object, so the object never exists without its key, and the stored answer names the object; a replay
answers from the object as it is now (the first answer's meaning, today's state).

The store keeps only successful answers: a failed write leaves no record, so a retry after a fix runs for real.
Records live in the process's database (:mod:`runtime.storage`), so they survive restarts and are shared by
replicas.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa
from litestar import Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from runtime.problems import Conflict, Unprocessable
from runtime.storage import Database

# 1..200 visible ASCII characters; anything else is a 400 validation problem on the header.
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,200}$")



def record_table(name: str, metadata: sa.MetaData) -> sa.Table:
    """The table of a process's Idempotency-Key records, declared on that process's own ``MetaData``."""
    return sa.Table(
        name,
        metadata,
        sa.Column("scope", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),  # pending | done
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("body", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),  # epoch seconds
    )


metadata = sa.MetaData()
records = record_table("system_idempotency", metadata)

Action = Callable[[], Awaitable[tuple[int, Any]]]
T = TypeVar("T")


class Claim:
    """A key the running request holds: :meth:`complete` stores its answer in the caller's own transaction."""

    def __init__(self, table: sa.Table, scope: str, key: str) -> None:
        self.table = table
        self.scope = scope
        self.key = key
        self.completed = False

    async def complete(self, conn: AsyncConnection, status: int, body: Any) -> None:
        """The answer a replay gets; committed (or rolled back) with whatever else ``conn``'s transaction writes."""
        content = body if isinstance(body, bytes) else b"" if body is None else msgspec.json.encode(body)
        await conn.execute(
            sa.update(self.table)
            .where(self.table.c.scope == self.scope, self.table.c.key == self.key)
            .values(state="done", status=status, body=content)
        )
        self.completed = True


def fingerprint(operation: str, path_params: dict[str, str], body: Any) -> str:
    """What makes two requests "the same": the operation, its path parameters and its decoded body."""
    payload = msgspec.json.encode({"op": operation, "path": path_params, "body": body}, order="sorted")
    return hashlib.sha256(payload).hexdigest()


def refuse_reuse(
    detail: str = "this Idempotency-Key was used for a different request; use a new key for a new request",
) -> Unprocessable:
    """The answer to a key sent again with another request."""
    return Unprocessable(detail, slug="idempotency-key-reused")


class IdempotencyStore:
    """Records in their own database (a URL: the system tier) or in a table of a database the process has set up
    already (``Database`` and ``table``: the process tier, whose writes complete their key in their own
    transactions). ``retention_seconds`` None keeps records as long as what they name; ``wait_seconds`` makes a
    request arriving while another holds its key wait for that one's answer instead of a 409."""

    def __init__(self, database: str | Database, *, table: sa.Table = records, lease_seconds: float = 60.0,
                 retention_seconds: float | None = 7 * 86400, wait_seconds: float = 0.0) -> None:
        self._owned = isinstance(database, str)
        self._database = Database(database, table.metadata) if isinstance(database, str) else database
        self._engine: AsyncEngine = self._database.engine
        self._records = table
        # A pending record older than the lease belongs to a request that died; a retry may take it over.
        self._lease = lease_seconds
        self._retention = retention_seconds
        self._wait = wait_seconds

    async def start(self) -> None:
        if self._owned:
            await self._database.create_all()
        if self._retention is not None:
            async with self._engine.begin() as connection:
                await connection.execute(
                    sa.delete(self._records).where(self._records.c.created_at < time.time() - self._retention)
                )

    async def aclose(self) -> None:
        if self._owned:
            await self._database.dispose()

    async def run(self, *, scope: str, key: str | None, request_fingerprint: str, action: Action) -> tuple[int, bytes]:
        """Run ``action`` at most once per (scope, key); answer (status, JSON body) as the first run did."""

        async def act(claim: Claim | None) -> tuple[int, bytes]:
            status, body = self._encode(await action())
            if claim is not None:
                async with self._engine.begin() as connection:
                    await claim.complete(connection, status, body)
            return status, body

        async def replay(status: int, body: bytes) -> tuple[int, bytes]:
            return status, body

        return await self.once(scope=scope, key=key, request_fingerprint=request_fingerprint, action=act,
                               replay=replay)

    async def once(self, *, scope: str, key: str | None, request_fingerprint: str,
                   action: Callable[[Claim | None], Awaitable[T]],
                   replay: Callable[[int, bytes], Awaitable[T]]) -> T:
        """Run ``action`` at most once per (scope, key), handing it the key's :class:`Claim` (None without a key);
        a repeat gets ``replay(status, body)`` of the answer it completed. An action that returns without
        completing the claim, or fails, lets the key go: the next request with it runs for real."""
        if key is None:
            return await action(None)
        stored = await self._claim(scope, key, request_fingerprint)
        if stored is not None:
            return await replay(*stored)
        claim = Claim(self._records, scope, key)
        try:
            answer = await action(claim)
        except BaseException:
            await self._let_go(scope, key)
            raise
        if not claim.completed:
            await self._let_go(scope, key)
        return answer

    async def _let_go(self, scope: str, key: str) -> None:
        table = self._records
        async with self._engine.begin() as connection:
            await connection.execute(
                sa.delete(table).where(table.c.scope == scope, table.c.key == key, table.c.state == "pending")
            )

    async def _claim(self, scope: str, key: str, request_fingerprint: str) -> tuple[int, bytes] | None:
        """None when this request now owns the key; the stored answer when it was already given."""
        deadline = time.monotonic() + self._wait
        while True:
            try:
                return await self._claim_once(scope, key, request_fingerprint)
            except Conflict:
                if time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(0.05)

    async def _claim_once(self, scope: str, key: str, request_fingerprint: str) -> tuple[int, bytes] | None:
        table = self._records
        now = time.time()
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    sa.insert(table).values(
                        scope=scope, key=key, fingerprint=request_fingerprint, state="pending", created_at=now
                    )
                )
            return None
        except IntegrityError:
            pass
        async with self._engine.begin() as connection:
            row = (
                await connection.execute(sa.select(table).where(table.c.scope == scope, table.c.key == key))
            ).one_or_none()
            if row is None:
                pass  # the holder failed and let go just now: the caller's retry will own the key
            elif row.fingerprint != request_fingerprint:
                raise refuse_reuse()
            elif row.state == "done":
                return int(row.status), bytes(row.body or b"")
            elif row.created_at < now - self._lease:
                taken = await connection.execute(
                    sa.update(table)
                    .where(
                        table.c.scope == scope,
                        table.c.key == key,
                        table.c.created_at == row.created_at,
                    )
                    .values(created_at=now)
                )
                if taken.rowcount == 1:
                    return None
        raise Conflict(
            "a request with this Idempotency-Key is still running; retry shortly",
            slug="idempotency-key-in-use",
            headers={"Retry-After": "1"},
        )

    @staticmethod
    def _encode(result: tuple[int, Any]) -> tuple[int, bytes]:
        status, body = result
        return status, b"" if body is None else msgspec.json.encode(body)


async def respond(
    store: IdempotencyStore,
    *,
    client_id: str,
    operation: str,
    key: str | None,
    path_params: dict[str, str],
    body: Any,
    action: Action,
) -> Response[bytes]:
    """A route's idempotent write: scoped per calling client and operation, answered as the first time."""
    status, content = await store.run(
        scope=f"{client_id}:{operation}",
        key=key,
        request_fingerprint=fingerprint(operation, path_params, msgspec.to_builtins(body)),
        action=action,
    )
    if status == 204:
        return Response(content=b"", status_code=204)
    return Response(content=content, status_code=status, media_type="application/json")
