"""The gateway's durable state in SQL: what the admin API changed on top of gateway.yaml.

Live state = gateway.yaml + these overrides (clients, SLA tiers, rate-limit bindings). Overrides survive
restarts and reloads, and every gateway instance sharing the database picks them up (each polls the
``revision`` row). SQLite under the data dir by default, PostgreSQL by ``PSGW_DATABASE_URL``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import msgspec
from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from runtime import storage

OverrideKind = Literal["client", "sla_tier", "rate_limits", "revoked_token"]

metadata = MetaData()

overrides = Table(
    "gateway_overrides", metadata,
    Column("kind", String(32), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("document", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(256), nullable=False),
)

revision = Table(
    "gateway_revision", metadata,
    Column("id", Integer, primary_key=True),
    Column("value", Integer, nullable=False),
)


def database_url(configured: str | None, data_dir: Path) -> str:
    """The gateway's database: ``configured``, or the SQLite file ``gateway.db`` under the data dir."""
    return storage.database_url(configured, data_dir, "gateway", suffix=".db")


def create_engine(url: str) -> AsyncEngine:
    return storage.create_engine(url, pool_size=5)


class Overrides(msgspec.Struct, kw_only=True):
    clients: dict[str, dict[str, Any]] = {}
    sla_tiers: dict[str, dict[str, Any]] = {}
    rate_limits: list[dict[str, Any]] | None = None
    # Access tokens revoked one by one (RFC 7009): jti -> {"exp": ..., "client_id": ...}, kept until they expire.
    revoked_tokens: dict[str, dict[str, Any]] = {}
    revision: int = 0

    def live_revoked_token_ids(self, now: float) -> frozenset[str]:
        return frozenset(jti for jti, doc in self.revoked_tokens.items() if float(doc.get("exp", 0)) > now)


class OverrideStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create_schema(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            if (await conn.execute(select(revision.c.value).where(revision.c.id == 1))).first() is None:
                await conn.execute(revision.insert().values(id=1, value=0))

    async def revision(self) -> int:
        async with self.engine.connect() as conn:
            value = (await conn.execute(select(revision.c.value).where(revision.c.id == 1))).scalar()
        return int(value or 0)

    async def load(self) -> Overrides:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(overrides.c.kind, overrides.c.key, overrides.c.document))).all()
            value = (await conn.execute(select(revision.c.value).where(revision.c.id == 1))).scalar()
        found = Overrides(revision=int(value or 0))
        for kind, key, document in rows:
            if kind == "client":
                found.clients[key] = document
            elif kind == "sla_tier":
                found.sla_tiers[key] = document
            elif kind == "rate_limits":
                found.rate_limits = document
            elif kind == "revoked_token":
                found.revoked_tokens[key] = document
        return found

    async def put(self, kind: OverrideKind, key: str, document: Any, actor: str) -> int:
        async with self.engine.begin() as conn:
            await conn.execute(delete(overrides).where(overrides.c.kind == kind, overrides.c.key == key))
            await conn.execute(overrides.insert().values(kind=kind, key=key, document=document,
                                                         updated_at=dt.datetime.now(dt.UTC), updated_by=actor))
            return await self._bump(conn)

    async def remove(self, kind: OverrideKind, key: str | None = None) -> int:
        async with self.engine.begin() as conn:
            statement = delete(overrides).where(overrides.c.kind == kind)
            if key is not None:
                statement = statement.where(overrides.c.key == key)
            await conn.execute(statement)
            return await self._bump(conn)

    @staticmethod
    async def _bump(conn: AsyncConnection) -> int:
        await conn.execute(update(revision).where(revision.c.id == 1).values(value=revision.c.value + 1))
        value = (await conn.execute(select(revision.c.value).where(revision.c.id == 1))).scalar()
        return int(value or 0)
