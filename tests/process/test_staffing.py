"""Staffing through real processes: assignments joined with their projects, projects kept briefly as declared.

The process tier keeps projects it has read for a short, declared time (contracts/process/staffing/v1.yaml).
What a caller relies on: a write through the process tier is seen at once, a read that raced a write never
brings the old project back, and no consultant ever sees another's assignments.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gateway.launcher import DEMO_TIER_SECRETS
from process_apis.systems import Psa
from runtime.downstream import ClientCredentials, Downstream
from tests.support.stack import RunningStack

PSA = "/system/psa/v1"
STAFFING = "/process/staffing/v1"


def process_tier_gateway(stack: RunningStack) -> Downstream:
    """The gateway as the process tier calls it: its own client identity."""
    credentials = ClientCredentials(stack.url + "/oauth2/token", "process-tier", DEMO_TIER_SECRETS["process"])
    return Downstream("gateway", stack.url, credentials=credentials)


def bearer(stack: RunningStack) -> dict[str, str]:
    return {"Authorization": "Bearer " + stack.token("process-tier")}


@pytest.fixture
def system(stack: RunningStack) -> Iterator[httpx.Client]:
    with stack.client("process-tier") as client:
        yield client


def new_project(system: httpx.Client) -> str:
    created = system.post(f"{PSA}/projects", headers={"Idempotency-Key": uuid.uuid4().hex}, json={
        "name": "Staffing cache probe", "contract_id": "ctr_2001", "customer_id": "cus_1001",
        "legal_entity_id": "le_us", "billing_model": "time_and_materials"})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_a_write_through_the_process_tier_is_seen_at_once_and_other_writes_within_the_declared_time(
        stack: RunningStack, system: httpx.Client) -> None:
    project_id = new_project(system)

    async def scenario() -> tuple[str, str, str, str]:
        psa = Psa(process_tier_gateway(stack), reference_ttl_seconds=600)
        try:
            first = (await psa.projects_by_id([project_id]))[project_id].name
            await psa.update_project(project_id, {"name": "Renamed through the process tier"})
            after_own_write = (await psa.projects_by_id([project_id]))[project_id].name
            async with httpx.AsyncClient(base_url=stack.url, headers=bearer(stack)) as other:
                outside = await other.patch(f"{PSA}/projects/{project_id}", json={"name": "Renamed elsewhere"})
            assert outside.status_code == 200, outside.text
            within_ttl = (await psa.projects_by_id([project_id]))[project_id].name
            fresh = (await Psa(psa.gateway, reference_ttl_seconds=0).projects_by_id([project_id]))[project_id].name
            return first, after_own_write, within_ttl, fresh
        finally:
            await psa.gateway.aclose()

    first, after_own_write, within_ttl, fresh = asyncio.run(scenario())

    assert first == "Staffing cache probe"
    assert after_own_write == "Renamed through the process tier"
    assert within_ttl == "Renamed through the process tier"  # a change made elsewhere: stale at most the TTL
    assert fresh == "Renamed elsewhere"


def test_a_read_that_raced_a_write_does_not_bring_the_old_project_back(stack: RunningStack,
                                                                       system: httpx.Client) -> None:
    project_id = new_project(system)
    psa_vendor = stack.stack.url("sandbox-psa")

    async def scenario() -> tuple[str, str]:
        psa = Psa(process_tier_gateway(stack), reference_ttl_seconds=600)
        await psa.projects_by_id(["prj_4001"])  # a token and warm connections before the race
        control = httpx.AsyncClient(base_url=psa_vendor)
        (await control.put("/_sandbox/faults", json={"latency_ms": 800, "only_methods": ["GET"]})).raise_for_status()
        try:
            # The read reaches the vendor first and answers the old name; the write lands after it.
            read = asyncio.create_task(psa.projects_by_id([project_id]))
            await asyncio.sleep(0.2)
            await psa.update_project(project_id, {"name": "Renamed while a read was in flight"})
            raced = (await read)[project_id].name
        finally:
            (await control.delete("/_sandbox/faults")).raise_for_status()
            await control.aclose()
        try:
            return raced, (await psa.projects_by_id([project_id]))[project_id].name
        finally:
            await psa.gateway.aclose()

    raced, afterwards = asyncio.run(scenario())

    assert raced == "Staffing cache probe"
    assert afterwards == "Renamed while a read was in flight"


def test_each_consultant_sees_only_their_own_assignments_with_their_projects(
        stack: RunningStack, system: httpx.Client) -> None:
    workers = ["wrk_e1001", "wrk_e1010", "wrk_e1003"]
    expected = {}
    for worker in workers:
        listed = system.get(f"{PSA}/assignments", params={"worker_id": worker, "limit": 200}).json()["items"]
        expected[worker] = sorted((a["id"], a["project_id"]) for a in listed)
    assert sum(1 for pairs in expected.values() if pairs) >= 2, expected

    def my_assignments(worker: str) -> tuple[str, list[tuple[str, str]]]:
        with stack.client("mobile-app", subject=worker) as phone:
            answer = phone.get("/experience/mobile-time/v2/me/assignments", params={"limit": 100})
            assert answer.status_code == 200, answer.text
            return worker, sorted((a["assignment_id"], a["project_id"]) for a in answer.json()["items"])

    with ThreadPoolExecutor(max_workers=6) as pool:
        seen = list(pool.map(my_assignments, workers * 4))

    for worker, pairs in seen:
        assert pairs == expected[worker], worker


def test_staffing_joins_every_assignment_with_its_project(stack: RunningStack, system: httpx.Client) -> None:
    with stack.client("experience-tier") as experience:
        page = experience.get(f"{STAFFING}/workers/wrk_e1001/assignments", params={"limit": 200})
    assert page.status_code == 200, page.text
    items = page.json()["items"]
    assert items
    for assignment in items:
        project = system.get(f"{PSA}/projects/{assignment['project']['id']}").json()
        assert assignment["project"] == {key: project[key] for key in assignment["project"]}
    unknown = experience_get(stack, f"{STAFFING}/workers/wrk_e9999/assignments")
    assert unknown.status_code == 200 and unknown.json()["items"] == []


def experience_get(stack: RunningStack, path: str) -> httpx.Response:
    with stack.client("experience-tier") as experience:
        return experience.get(path)
