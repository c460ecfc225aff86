"""Fixtures of the process tier tests: SQL engines on both databases, Redis, and clients of the shared stack."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as redis

from process_apis.store import metadata
from runtime.storage import Database, database_url
from tests.support.databases import fresh_postgres_database
from tests.support.stack import RunningStack
from tests.system.vendor_access import SandboxCredentials

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    with fresh_postgres_database("psgw_process") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """The process tier's store on each engine: the same code, both databases."""
    if request.param == "sqlite":
        url = database_url("", tmp_path, "process")
    else:
        url = database_url(request.getfixturevalue("postgres_url"), tmp_path, "process")
    database = Database(url, metadata)
    await database.create_all()
    if request.param == "postgresql":  # one session database: start each test from empty tables
        async with database.transaction() as conn:
            for table in reversed(metadata.sorted_tables):
                await conn.execute(table.delete())
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def redis_client() -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except redis.ConnectionError as exc:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def stream_name() -> str:
    return f"psgw:test:events:{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def experience(stack: RunningStack) -> Iterator[httpx.Client]:
    """The experience tier's identity: how process APIs are called in production."""
    with stack.client("experience-tier") as client:
        yield client


@pytest.fixture(scope="session")
def system(stack: RunningStack) -> Iterator[httpx.Client]:
    """The process tier's identity, for looking at the system APIs (what the ERP holds) in assertions."""
    with stack.client("process-tier") as client:
        yield client


@pytest.fixture(scope="session")
def sandboxes(stack: RunningStack) -> Iterator[httpx.Client]:
    """Direct access to the sandbox vendors (fault injection, the vendor's own side), as an integration test harness
    would have: with the vendors' credentials."""
    with httpx.Client(timeout=10.0, auth=SandboxCredentials(stack)) as client:
        yield client
