"""The gateway's response cache, through real gateways in front of the stack's tiers: a GET the contract marks
cacheable (``x-psgw-cache``; here PSA ``GET /projects``) is answered from memory for the same principal only,
the caller can refuse a cached answer, a write through the gateway invalidates it for everyone, entries expire,
and hostile paths and queries neither break it nor make it grow past its bounds."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from contracts.toolchain.validation import CompiledContract, ContractCompileError
from policies.response_cache.store import CachedResponse, CacheKey, ResponseStore
from tests.support.gateway import GatewayProcess, base_config

PROJECTS = "/system/psa/v1/projects"
SMALL_STORE_BYTES = 40_000


def with_second_reader(config: dict[str, Any]) -> dict[str, Any]:
    """Another system-layer client with the same read rights as the process tier."""
    process_tier = next(c for c in config["clients"] if c["id"] == "process-tier")
    config["clients"].append({**process_tier, "id": "reference-reader", "name": "Second reader"})
    return config


@pytest.fixture(scope="module")
def gateway(module_gateways: Callable[..., GatewayProcess]) -> GatewayProcess:
    return module_gateways(with_second_reader(base_config()))


@pytest.fixture(scope="module")
def short_lived(module_gateways: Callable[..., GatewayProcess]) -> GatewayProcess:
    """Every TTL capped at one second and a small store."""
    config = base_config()
    config["policies"]["response_cache"].update(max_ttl_seconds=1, max_bytes=SMALL_STORE_BYTES)
    return module_gateways(config)


def read(gateway: GatewayProcess, token: str, params: dict[str, str] | str, **headers: str) -> httpx.Response:
    response = httpx.get(gateway.url + PROJECTS, params=params,
                         headers={"Authorization": f"Bearer {token}", **headers}, timeout=30)
    assert response.status_code == 200, response.text
    return response


def fresh_query() -> dict[str, str]:
    """A query no other test has cached: one known project, one unknown id of our own."""
    return {"ids": f"prj_4001,prj_cache{uuid.uuid4().hex[:8]}"}


def test_the_same_principal_reads_from_the_cache_after_a_miss(gateway: GatewayProcess) -> None:
    token = gateway.token("process-tier", subject="wrk_e1001")
    query = fresh_query()

    first = read(gateway, token, query)
    second = read(gateway, token, query)
    reordered = read(gateway, token, f"limit=50&ids={query['ids']}")
    reordered_again = read(gateway, token, f"ids={query['ids']}&limit=50")

    assert first.headers["x-cache"] == "miss"
    assert second.headers["x-cache"] == "hit" and int(second.headers["age"]) >= 0
    assert second.content == first.content and [p["id"] for p in second.json()["items"]] == ["prj_4001"]
    assert second.headers["x-correlation-id"] != first.headers["x-correlation-id"]  # this call's own id
    assert "ratelimit" in {k.lower() for k in second.headers} or "ratelimit-policy" in second.headers
    assert reordered.headers["x-cache"] == "miss" and reordered_again.headers["x-cache"] == "hit"


def test_another_principal_never_gets_the_first_ones_cached_answer(gateway: GatewayProcess) -> None:
    query = fresh_query()
    owner = gateway.token("process-tier", subject="wrk_e1001")
    read(gateway, owner, query)
    assert read(gateway, owner, query).headers["x-cache"] == "hit"

    same_client_other_person = read(gateway, gateway.token("process-tier", subject="wrk_e1002"), query)
    other_client_same_person = read(gateway, gateway.token("reference-reader", subject="wrk_e1001"), query)
    other_client_itself = read(gateway, gateway.token("reference-reader"), query)

    assert same_client_other_person.headers["x-cache"] == "miss"
    assert other_client_same_person.headers["x-cache"] == "miss"
    assert other_client_itself.headers["x-cache"] == "miss"


def test_the_caller_can_refuse_a_cached_answer(gateway: GatewayProcess) -> None:
    token = gateway.token("process-tier")
    query = fresh_query()
    read(gateway, token, query)

    no_cache = read(gateway, token, query, **{"Cache-Control": "no-cache"})
    pragma = read(gateway, token, query, Pragma="no-cache")
    no_store = read(gateway, token, query, **{"Cache-Control": "no-store"})
    afterwards = read(gateway, token, query)

    assert no_cache.headers["x-cache"] == "miss" and pragma.headers["x-cache"] == "miss"
    assert "x-cache" not in no_store.headers  # not looked up, not stored
    assert afterwards.headers["x-cache"] == "hit"  # the answer fetched for no-cache was stored


def test_a_write_through_the_gateway_invalidates_the_resource_for_every_principal(gateway: GatewayProcess) -> None:
    writer = gateway.token("process-tier")
    created = httpx.post(gateway.url + PROJECTS, headers={"Authorization": f"Bearer {writer}",
                                                          "Idempotency-Key": uuid.uuid4().hex}, json={
        "name": "Cache probe", "contract_id": "ctr_2001", "customer_id": "cus_1001", "legal_entity_id": "le_us",
        "billing_model": "time_and_materials"}, timeout=30)
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    readers = [writer, gateway.token("reference-reader")]
    query = {"ids": project_id}
    for token in readers:
        read(gateway, token, query)
        assert read(gateway, token, query).headers["x-cache"] == "hit"

    renamed = httpx.patch(f"{gateway.url}{PROJECTS}/{project_id}", json={"name": "Cache probe, renamed"},
                          headers={"Authorization": f"Bearer {writer}"}, timeout=30)
    assert renamed.status_code == 200, renamed.text

    for token in readers:
        after = read(gateway, token, query)
        assert after.headers["x-cache"] == "miss"
        assert after.json()["items"][0]["name"] == "Cache probe, renamed"


def test_after_its_ttl_an_entry_is_a_miss(short_lived: GatewayProcess) -> None:
    token = short_lived.token("process-tier")
    query = fresh_query()
    assert read(short_lived, token, query).headers["x-cache"] == "miss"
    assert read(short_lived, token, query).headers["x-cache"] == "hit"

    time.sleep(1.5)  # the capped TTL is 1 s

    assert read(short_lived, token, query).headers["x-cache"] == "miss"


def test_hostile_paths_get_problems_and_never_touch_the_cache(gateway: GatewayProcess) -> None:
    headers = {"Authorization": "Bearer " + gateway.token("process-tier")}
    with httpx.Client(base_url=gateway.url, headers=headers, timeout=30) as client:
        for path in (PROJECTS + "%0D%0AX-Injected:%201", PROJECTS + "%2Fprj_4001", PROJECTS + "/%0D%0A"):
            response = client.get(path)
            assert 400 <= response.status_code < 500, (path, response.status_code)
            assert response.headers["content-type"] == "application/problem+json"
            assert "x-cache" not in response.headers and "x-injected" not in response.headers
        crlf_query = client.get(PROJECTS + "?ids=prj_4001%0D%0AX-Injected:%201")
        assert crlf_query.status_code < 500 and "x-injected" not in crlf_query.headers


def metric(gateway: GatewayProcess, name: str) -> float:
    text = httpx.get(gateway.url + "/metrics", timeout=30).text
    found = re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.MULTILINE)
    return sum(float(value) for value in found)


def test_huge_and_many_queries_stay_within_the_stores_bounds(short_lived: GatewayProcess) -> None:
    token = short_lived.token("process-tier")
    # Near the key bound (2 KiB): each is a distinct entry; together far more than the store may hold.
    for n in range(40):
        ids = ",".join(f"prj_flood{n:03d}x{i:04d}" for i in range(90))
        read(short_lived, token, {"ids": ids})
    huge = ",".join(f"prj_huge{i:05d}" for i in range(200))  # past the key bound: answered, never stored
    answer = httpx.get(short_lived.url + PROJECTS, params={"ids": huge},
                       headers={"Authorization": f"Bearer {token}"}, timeout=30)

    assert answer.status_code < 500 and "x-cache" not in answer.headers
    assert 0 < metric(short_lived, "psgw_response_cache_bytes") <= SMALL_STORE_BYTES
    assert metric(short_lived, "psgw_response_cache_lookups_total") >= 40


# The store's bounds and its write/read race, directly (the gateway tests above cannot time a race).

def entry(body: bytes, prefix: str = "/system/psa/v1/projects", ttl: float = 60.0) -> CachedResponse:
    now = time.monotonic()
    return CachedResponse((), body, now, now + ttl, prefix, len(body))


def key(n: int) -> CacheKey:
    return ("issuer", "client", "subject", "GET", f"/system/psa/v1/projects/{n}".encode(), "", "")


def test_the_store_evicts_the_least_recently_used_past_its_entry_and_byte_bounds() -> None:
    store = ResponseStore(max_entries=3, max_bytes=100)
    for n in range(3):
        store.put(key(n), entry(b"x" * 10), store.generation("/system/psa/v1/projects"))
    assert store.get(key(0)) is not None  # 0 is now the most recently used
    store.put(key(3), entry(b"x" * 10), 0)
    assert store.get(key(1)) is None and store.get(key(0)) is not None and len(store) == 3

    store.put(key(4), entry(b"x" * 90), 0)
    assert store.bytes <= 100 and store.get(key(4)) is not None
    assert not store.put(key(5), entry(b"x" * 101), 0)  # larger than the whole store: never stored


def test_a_read_that_started_before_a_write_does_not_store_its_older_answer() -> None:
    store = ResponseStore(max_entries=10, max_bytes=1000)
    prefix = "/system/psa/v1/projects"
    seen = store.generation(prefix)  # a miss starts, its upstream call is in flight...
    store.invalidate(prefix)  # ...a write to the same resource completes...
    assert not store.put(key(1), entry(b"old"), seen)  # ...the read's answer may predate it
    assert store.get(key(1)) is None
    assert store.put(key(1), entry(b"new"), store.generation(prefix))


def test_expired_entries_are_misses() -> None:
    store = ResponseStore(max_entries=10, max_bytes=1000)
    store.put(key(1), entry(b"body", ttl=5.0), 0)
    assert store.get(key(1), now=time.monotonic() + 10) is None and len(store) == 0 and store.bytes == 0


def contract_with(operation: dict[str, Any], method: str = "get") -> CompiledContract:
    return CompiledContract.from_document({
        "openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "servers": [{"url": "/system/t/v1"}],
        "paths": {"/things": {method: {"operationId": "things", "responses": {"200": {"description": "ok"}},
                                       **operation}}}})


def test_contracts_declare_a_cache_ttl_on_gets_only_and_in_range() -> None:
    assert contract_with({"x-psgw-cache": {"ttl_seconds": 30}}).operations[0].cache_ttl_seconds == 30
    assert contract_with({}).operations[0].cache_ttl_seconds is None
    for bad in ({"ttl_seconds": 0}, {"ttl_seconds": "30"}, {"ttl_seconds": True}, {"ttl": 30}, 30,
                {"ttl_seconds": 30, "private": False}):
        with pytest.raises(ContractCompileError):
            contract_with({"x-psgw-cache": bad})
    with pytest.raises(ContractCompileError, match="only GET"):
        contract_with({"x-psgw-cache": {"ttl_seconds": 30}}, method="post")
