"""``psgw contracts mock``: the mock answers every documented operation of every contract with its example, and
the answer validates; an invalid request gets the very problem the gateway gives."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from contracts import CONTRACTS_DIR
from contracts.toolchain.catalog import contract_files
from contracts.toolchain.example_requests import example_requests
from contracts.toolchain.loader import load_contract
from contracts.toolchain.validation import CompiledContract
from gateway.cli import main
from gateway.mock import ContractMock
from tests.support.stack import DEMO_CONSULTANT, RunningStack

CONTRACTS = [path for path, _ in contract_files(CONTRACTS_DIR)]


def _send(app: ContractMock, method: str, url: str, **kwargs: Any) -> httpx.Response:
    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mock") as client:
            return await client.request(method, url, **kwargs)

    return asyncio.run(call())


@pytest.mark.parametrize("path", CONTRACTS, ids=[str(p.relative_to(CONTRACTS_DIR)) for p in CONTRACTS])
def test_the_mock_answers_every_documented_operation_with_a_valid_example(path: Path) -> None:
    mock = ContractMock(path)
    contract = CompiledContract.from_file(path)
    answered = 0
    for request in example_requests(load_contract(path)):
        headers = dict(request.headers)
        if request.content_type is not None:
            headers["content-type"] = request.content_type
        response = _send(
            mock,
            request.method,
            mock.location.base_path + request.path,
            params=request.query,
            headers=headers,
            content=request.body,
        )

        assert 200 <= response.status_code < 300, f"{request.method} {request.path}: {response.text}"
        found = contract.match(request.method, mock.location.base_path + request.path)
        assert found is not None
        issues = found.operation.validate_response(
            response.status_code, response.headers.get("content-type"), response.content
        )
        assert issues == [], f"{request.method} {request.template}: {issues}"
        answered += 1
    assert answered == len(contract.operations) > 0


def test_prefer_picks_another_documented_example_and_refuses_an_undocumented_one() -> None:
    mock = ContractMock(CONTRACTS_DIR / "experience" / "mobile-time" / "v2.yaml")

    missing = _send(mock, "DELETE", "/experience/mobile-time/v2/me/time-entries/te_1", headers={"Prefer": "code=404"})
    undocumented = _send(mock, "GET", "/experience/mobile-time/v2/me/assignments", headers={"Prefer": "code=418"})

    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert undocumented.status_code == 400 and "documents no 418 example" in undocumented.json()["detail"]


INVALID_ENTRY = {
    "project_id": "prj_4001",
    "work_date": "2026-13-40",
    "minutes": "ninety",
    "work_type": "billable_delivery",
}


def test_an_invalid_request_gets_the_same_problem_as_at_the_gateway(stack: RunningStack) -> None:
    mock = ContractMock(CONTRACTS_DIR / "experience" / "mobile-time" / "v2.yaml")
    path = "/experience/mobile-time/v2/me/time-entries"

    at_mock = _send(mock, "POST", path, json=INVALID_ENTRY)
    with stack.client("mobile-app", subject=DEMO_CONSULTANT) as phone:
        at_gateway = phone.post(path, json=INVALID_ENTRY)

    assert at_mock.status_code == at_gateway.status_code == 400
    assert at_mock.headers["content-type"] == at_gateway.headers["content-type"] == "application/problem+json"

    def comparable(body: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in body.items() if k != "correlation_id"}

    assert comparable(at_mock.json()) == comparable(at_gateway.json())
    assert {e["pointer"] for e in at_mock.json()["errors"]} == {"/work_date", "/minutes"}


def test_the_command_refuses_an_unknown_api() -> None:
    result = CliRunner().invoke(main, ["contracts", "mock", "experience/nothing/v9"])

    assert result.exit_code != 0
    assert "no contract 'experience/nothing/v9'" in result.output
