"""The one Idempotency-Key rule (runtime/idempotency.py) on real SQL: one effect per key, reuse refused, a request
still running refused, failures let go; and the header rule every tier declares (runtime/params.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import post
from litestar.testing import TestClient

from runtime.app import create_tier_app
from runtime.idempotency import IdempotencyStore, fingerprint
from runtime.params import IdempotencyKey
from runtime.problems import Conflict, ProblemError, Unprocessable
from runtime.settings import TierSettings
from runtime.storage import database_url
from tests.support.databases import fresh_postgres_database


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A database of this module's own (not the server's ``postgres`` one, which other runs use too)."""
    with fresh_postgres_database("psgw_idempotency") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[IdempotencyStore]:
    # PostgreSQL is part of this machine's set-up: a run without it fails rather than skipping half the rule.
    postgres = request.getfixturevalue("postgres_url") if request.param == "postgres" else ""
    url = database_url(postgres, tmp_path, "idempotency")
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
    url = database_url("", tmp_path, "idempotency")
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


async def test_concurrent_requests_under_one_key_have_one_effect(store: IdempotencyStore) -> None:
    """Eight replicas of the same retried request at once: one runs; the others get its answer or 409."""
    key, action = str(uuid.uuid4()), Counter()
    request = fingerprint("op", {}, {"same": True})

    async def attempt() -> tuple[int, bytes] | str:
        try:
            return await store.run(scope="c:op", key=key, request_fingerprint=request, action=action)
        except Conflict as exc:
            return exc.slug

    answers = await asyncio.gather(*(attempt() for _ in range(8)))

    assert action.calls == 1
    assert {a for a in answers if not isinstance(a, str)} == {(201, b'{"id":"thing_1"}')}
    assert {a for a in answers if isinstance(a, str)} <= {"idempotency-key-in-use"}


@post("/things")
async def create_thing(idempotency_key: IdempotencyKey = None) -> dict[str, str | None]:
    return {"key": idempotency_key}


def things_client() -> TestClient[Any]:
    app = create_tier_app(
        service="t",
        settings=TierSettings(),
        route_handlers=[create_thing],
        verify_tokens=False,
        scopes_from_contracts=False,
    )
    return TestClient(app)


@pytest.mark.parametrize("bad", ["", "x" * 201, "has space", "caf\u00e9"])
def test_a_malformed_key_is_a_400_problem_pointing_at_the_header(bad: str) -> None:
    with things_client() as client:
        response = client.post("/things", headers=[(b"Idempotency-Key", bad.encode())])
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["pointer"] == "/idempotency_key"
    assert response.json()["errors"][0]["location"] == "header"


def test_a_well_formed_key_reaches_the_handler() -> None:
    with things_client() as client:
        response = client.post("/things", headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 201 and response.json() == {"key": "k-1"}
