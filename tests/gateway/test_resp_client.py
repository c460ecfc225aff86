"""The rate limit's pipelined Redis client, against the real Redis and against servers that misbehave."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from policies.rate_limit.resp import RespClient, RespError, RespUnavailable, encode_command
from policies.rate_limit.store import GCRA_SHA, QuotaCheck, RateCheck, RedisStore, script_args
from tests.support.gateway import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def client() -> AsyncIterator[RespClient]:
    resp = RespClient(REDIS_URL, timeout=2.0)
    try:
        await resp.execute(encode_command(("PING",)))
    except RespUnavailable as exc:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    yield resp
    await resp.aclose()


async def test_concurrent_commands_share_one_connection_and_each_gets_its_own_reply(client: RespClient) -> None:
    key = f"psgw:test:resp:{uuid.uuid4().hex}"
    try:
        echoes = await asyncio.gather(*(client.execute(encode_command(("ECHO", f"call-{n}"))) for n in range(300)))
        counts = await asyncio.gather(*(client.execute(encode_command(("INCR", key))) for _ in range(300)))
    finally:
        await client.execute(encode_command(("DEL", key)))
    assert echoes == [f"call-{n}".encode() for n in range(300)]
    assert sorted(counts) == list(range(1, 301))


async def test_an_error_reply_fails_only_its_own_call(client: RespClient) -> None:
    results = await asyncio.gather(client.execute(encode_command(("ECHO", "before"))),
                                   client.execute(encode_command(("NO-SUCH-COMMAND",))),
                                   client.execute(encode_command(("ECHO", "after"))), return_exceptions=True)
    assert results[0] == b"before"
    assert isinstance(results[1], RespError) and "unknown command" in str(results[1]).lower()
    assert results[2] == b"after"


async def test_the_rate_limit_script_is_reloaded_after_redis_forgets_it(client: RespClient) -> None:
    store = RedisStore(REDIS_URL, timeout_seconds=2.0)
    check = RateCheck(f"psgw:test:resp:{uuid.uuid4().hex}", interval_us=1_000_000, burst=2)
    try:
        first = await store.acquire((check,), ())
        await client.execute(encode_command(("SCRIPT", "FLUSH")))  # as after a Redis restart
        second = await store.acquire((check,), ())
        third = await store.acquire((check,), ())
    finally:
        await client.execute(encode_command(("DEL", check.key)))
        await store.aclose()
    assert (first.allowed, second.allowed, third.allowed) == (True, True, False)
    assert third.retry_after_us > 0


async def test_a_kept_command_counts_every_call_with_its_own_ttl(client: RespClient) -> None:
    # The EVALSHA bytes are kept per set of checks with only the quotas' TTLs filled in per call: each call must
    # still send exactly what a fresh encoding sends, and Redis must count each one.
    store = RedisStore(REDIS_URL, timeout_seconds=2.0)
    base = f"psgw:test:resp:{uuid.uuid4().hex}"
    rates = (RateCheck(f"{base}:tier", interval_us=1, burst=1_000_000),)
    keys = [f"{base}:tier", f"{base}:day", f"{base}:sub-day"]
    answers = []
    try:
        for ttl in (86_400_000, 999, 5, 86_399_990):
            quotas = (QuotaCheck(f"{base}:day", 3, ttl), QuotaCheck(f"{base}:sub-day", 10, ttl + 1))
            assert store.evalsha(rates, quotas) == encode_command(("EVALSHA", GCRA_SHA, *script_args(rates, quotas)))
            answers.append(await store.acquire(rates, quotas))
        pttl = await client.execute(encode_command(("PTTL", f"{base}:day")))
    finally:
        await client.execute(encode_command(("DEL", *keys)))
        await store.aclose()
    assert [a.allowed for a in answers] == [True, True, True, False]
    assert [a.quotas[0][0] for a in answers] == [2, 1, 0, 0] and [a.quotas[1][0] for a in answers[:3]] == [9, 8, 7]
    assert 0 < pttl <= 86_400_000  # the first call's TTL set the window


async def silent_server(reply_after_close: bool = False) -> tuple[asyncio.Server, int]:
    """Accepts connections and never answers (or closes them on the first bytes)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        if reply_after_close:
            writer.close()
            return
        await asyncio.sleep(3600)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_no_answer_in_time_fails_every_waiting_call_and_the_next_call_reconnects() -> None:
    server, port = await silent_server()
    resp = RespClient(f"redis://127.0.0.1:{port}/0", timeout=0.2)
    try:
        results = await asyncio.gather(*(resp.execute(encode_command(("PING",))) for _ in range(5)),
                                       return_exceptions=True)
        assert all(isinstance(r, RespUnavailable) for r in results)
        assert "no answer from redis within 0.2s" in str(results[0])
        with pytest.raises(RespUnavailable):  # a fresh connection, which times out again
            await resp.execute(encode_command(("PING",)))
    finally:
        await resp.aclose()
        server.close()


async def test_a_dropped_connection_fails_the_calls_on_it() -> None:
    server, port = await silent_server(reply_after_close=True)
    resp = RespClient(f"redis://127.0.0.1:{port}/0", timeout=5.0)
    try:
        with pytest.raises(RespUnavailable, match="closed the connection"):
            await resp.execute(encode_command(("PING",)))
    finally:
        await resp.aclose()
        server.close()


async def test_nothing_listening_is_unavailable_not_a_crash() -> None:
    resp = RespClient(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    with pytest.raises(RespUnavailable, match="cannot connect"):
        await resp.execute(encode_command(("PING",)))
    await resp.aclose()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--requirepass", "s3cret", "--dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield port
    finally:
        process.kill()
        process.wait()


async def test_password_and_database_from_the_url(private_redis: int) -> None:
    resp = RespClient(f"redis://:s3cret@127.0.0.1:{private_redis}/3", timeout=2.0)
    wrong = RespClient(f"redis://:wrong@127.0.0.1:{private_redis}/0", timeout=2.0)
    try:
        for _ in range(100):  # the server may still be starting
            try:
                await resp.execute(encode_command(("PING",)))
                break
            except RespUnavailable:
                await asyncio.sleep(0.05)
        await resp.execute(encode_command(("SET", "where", "db3")))
        assert await resp.execute(encode_command(("GET", "where"))) == b"db3"
        info = await resp.execute(encode_command(("CLIENT", "INFO")))
        assert b" db=3 " in info
        with pytest.raises(RespUnavailable, match="cannot connect"):
            await wrong.execute(encode_command(("PING",)))
    finally:
        await resp.aclose()
        await wrong.aclose()
