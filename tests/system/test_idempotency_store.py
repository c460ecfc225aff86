"""The system tier's idempotency records on real SQL: one effect per key, reuse refused, failures let go."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from runtime.problems import Conflict, ProblemError, Unprocessable
from system_apis.idempotency import IdempotencyStore, database_url, fingerprint

POSTGRES_URL = os.environ.get("PSGW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _postgres_reachable() -> bool:
    try:
        import psycopg

        connection = await psycopg.AsyncConnection.connect(POSTGRES_URL, connect_timeout=2)
        await connection.close()
        return True
    except Exception:
        return False


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[IdempotencyStore]:
    if request.param == "postgres":
        if not await _postgres_reachable():
            pytest.skip("PostgreSQL is not reachable")
        url = database_url(POSTGRES_URL, str(tmp_path))
    else:
        url = database_url("", str(tmp_path))
    idempotency = IdempotencyStore(url, lease_seconds=60)
    await idempotency.start()
    yield idempotency
    await idempotency.aclose()


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> tuple[int, Any]:
        self.calls += 1
        return 201, {"id": f"thing_{self.calls}"}


async def test_same_key_same_request_runs_once_and_answers_the_same(store: IdempotencyStore) -> None:
    key, action = str(uuid.uuid4()), Counter()
    request = fingerprint("createThing", {}, {"name": "a"})

    first = await store.run(scope="client:createThing", key=key, request_fingerprint=request, action=action)
    second = await store.run(scope="client:createThing", key=key, request_fingerprint=request, action=action)

    assert first == second == (201, b'{"id":"thing_1"}')
    assert action.calls == 1


async def test_same_key_different_request_is_refused(store: IdempotencyStore) -> None:
    key, action = str(uuid.uuid4()), Counter()
    await store.run(scope="c:op", key=key, request_fingerprint=fingerprint("op", {}, {"a": 1}), action=action)

    with pytest.raises(Unprocessable) as refused:
        await store.run(scope="c:op", key=key, request_fingerprint=fingerprint("op", {}, {"a": 2}), action=action)

    assert refused.value.slug == "idempotency-key-reused"
    assert action.calls == 1


async def test_keys_are_scoped_per_client_and_operation(store: IdempotencyStore) -> None:
    key, action = str(uuid.uuid4()), Counter()
    request = fingerprint("op", {}, {})
    await store.run(scope="one:op", key=key, request_fingerprint=request, action=action)
    await store.run(scope="two:op", key=key, request_fingerprint=request, action=action)
    assert action.calls == 2


async def test_a_failed_write_leaves_no_record_so_a_retry_runs(store: IdempotencyStore) -> None:
    key = str(uuid.uuid4())
    request = fingerprint("op", {}, {"x": 1})

    async def failing() -> tuple[int, Any]:
        raise ProblemError("vendor down", status=503)

    with pytest.raises(ProblemError):
        await store.run(scope="c:op", key=key, request_fingerprint=request, action=failing)
    action = Counter()
    assert (await store.run(scope="c:op", key=key, request_fingerprint=request, action=action))[0] == 201
    assert action.calls == 1


async def test_a_request_still_running_under_the_key_gets_409(store: IdempotencyStore) -> None:
    key = str(uuid.uuid4())
    request = fingerprint("op", {}, {})
    started, release = asyncio.Event(), asyncio.Event()

    async def slow() -> tuple[int, Any]:
        started.set()
        await release.wait()
        return 200, {"ok": True}

    first = asyncio.create_task(store.run(scope="c:op", key=key, request_fingerprint=request, action=slow))
    await started.wait()
    with pytest.raises(Conflict) as in_use:
        await store.run(scope="c:op", key=key, request_fingerprint=request, action=Counter())
    release.set()

    assert in_use.value.slug == "idempotency-key-in-use" and in_use.value.headers == {"Retry-After": "1"}
    assert await first == (200, b'{"ok":true}')


async def test_records_survive_a_restart(tmp_path: Path) -> None:
    url = database_url("", str(tmp_path))
    request, key = fingerprint("op", {}, {}), "k-restart"
    first = IdempotencyStore(url)
    await first.start()
    await first.run(scope="c:op", key=key, request_fingerprint=request, action=Counter())
    await first.aclose()

    second, action = IdempotencyStore(url), Counter()
    await second.start()
    answer = await second.run(scope="c:op", key=key, request_fingerprint=request, action=action)
    await second.aclose()

    assert answer == (201, b'{"id":"thing_1"}') and action.calls == 0
