"""The one Idempotency-Key rule: a retried write has no second effect.

The key (``KEY_PATTERN``, declared on the header by :data:`runtime.params.IdempotencyKey`), what makes two
requests the same (:func:`fingerprint`), and the answers: same key + same request -> the first answer again;
same key + another request -> 422 ``idempotency-key-reused`` (:func:`refuse_reuse`); a request still running
under the key -> 409 ``idempotency-key-in-use``.

:class:`IdempotencyStore` keeps replayable answers (the system tier's writes). Tiers whose write records a
business object under the key (the process tier's approvals, corrections and provisionings) keep the key on that
record and refuse a reused key with :func:`refuse_reuse`, so the answers are the same everywhere.

The store keeps only successful answers: a failed write leaves no record, so a retry after a fix runs for real.
Records live in the process's database (:mod:`runtime.storage`), so they survive restarts and are shared by
replicas.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import sqlalchemy as sa
from litestar import Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.problems import Conflict, Unprocessable
from runtime.storage import Database

# 1..200 visible ASCII characters; anything else is a 400 validation problem on the header.
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,200}$")

metadata = sa.MetaData()
records = sa.Table(
    "system_idempotency",
    metadata,
    sa.Column("scope", sa.String(200), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),  # pending | done
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("body", sa.LargeBinary, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),  # epoch seconds
)

Action = Callable[[], Awaitable[tuple[int, Any]]]


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
    def __init__(self, url: str, *, lease_seconds: float = 60.0, retention_seconds: float = 7 * 86400) -> None:
        self._database = Database(url, metadata)
        self._engine: AsyncEngine = self._database.engine
        # A pending record older than the lease belongs to a request that died; a retry may take it over.
        self._lease = lease_seconds
        self._retention = retention_seconds

    async def start(self) -> None:
        await self._database.create_all()
        async with self._engine.begin() as connection:
            await connection.execute(sa.delete(records).where(records.c.created_at < time.time() - self._retention))

    async def aclose(self) -> None:
        await self._database.dispose()

    async def run(self, *, scope: str, key: str | None, request_fingerprint: str, action: Action) -> tuple[int, bytes]:
        """Run ``action`` at most once per (scope, key); answer (status, JSON body) as the first run did."""
        if key is None:
            return self._encode(await action())
        claimed = await self._claim(scope, key, request_fingerprint)
        if claimed is not None:
            return claimed
        try:
            status, body = self._encode(await action())
        except BaseException:
            async with self._engine.begin() as connection:
                await connection.execute(
                    sa.delete(records).where(
                        records.c.scope == scope, records.c.key == key, records.c.state == "pending"
                    )
                )
            raise
        async with self._engine.begin() as connection:
            await connection.execute(
                sa.update(records)
                .where(records.c.scope == scope, records.c.key == key)
                .values(state="done", status=status, body=body)
            )
        return status, body

    async def _claim(self, scope: str, key: str, request_fingerprint: str) -> tuple[int, bytes] | None:
        """None when this request now owns the key; the stored answer when it was already given."""
        now = time.time()
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    sa.insert(records).values(
                        scope=scope, key=key, fingerprint=request_fingerprint, state="pending", created_at=now
                    )
                )
            return None
        except IntegrityError:
            pass
        async with self._engine.begin() as connection:
            row = (
                await connection.execute(sa.select(records).where(records.c.scope == scope, records.c.key == key))
            ).one_or_none()
            if row is None:
                pass  # the holder failed and let go just now: the caller's retry will own the key
            elif row.fingerprint != request_fingerprint:
                raise refuse_reuse()
            elif row.state == "done":
                return int(row.status), bytes(row.body or b"")
            elif row.created_at < now - self._lease:
                taken = await connection.execute(
                    sa.update(records)
                    .where(
                        records.c.scope == scope,
                        records.c.key == key,
                        records.c.created_at == row.created_at,
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
