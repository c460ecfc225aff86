"""The contracts' examples run: every read operation of every contract, called on the live stack with the
parameter values its examples give, is answered as the contract says (a documented status, a body that
validates). Contracts are found, not listed, so a new one is covered as it lands.

Request bodies of writes are exercised against the mock (tests/contracts/test_contract_mock.py), not here:
replayed on the shared stack they would post, settle and invoice for every other test of the session.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from contracts import CONTRACTS_DIR
from contracts.toolchain.catalog import contract_files, locate_contract
from contracts.toolchain.example_requests import example_requests
from contracts.toolchain.loader import load_contract
from contracts.toolchain.validation import CompiledContract
from tests.support.stack import RunningStack

CONTRACTS = [path for path, _ in contract_files(CONTRACTS_DIR)]
# App clients act for a person: the demo consultant, manager and finance lead.
PEOPLE = {"mobile-app": "wrk_e1001", "dashboard-web": "wrk_e1002", "finance-web": "wrk_e1003"}
CALLER_LAYER = {"experience": "app", "process": "experience", "system": "process"}


def caller_for(stack: RunningStack, layer: str, alternatives: tuple[Mapping[str, tuple[str, ...]], ...]) -> str:
    """A registered client of the layer that calls this one (apps call experience APIs, the experience tier
    process APIs, the process tier system APIs) holding the scopes of one of the operation's alternatives."""
    needed = [{scope for scopes in alternative.values() for scope in scopes} for alternative in alternatives]
    for client in stack.config.clients:
        if client.layer == CALLER_LAYER[layer] and any(scopes <= set(client.scopes) for scopes in needed):
            return client.id
    raise AssertionError(f"no {CALLER_LAYER[layer]} client holds {needed}")


def call(client: httpx.Client, path: str, params: dict[str, str]) -> httpx.Response:
    """A GET that waits out the gateway's per-caller rate limit as a well-behaved client does (Retry-After)."""
    for _ in range(5):
        response = client.get(path, params=params)
        if response.status_code != 429:
            return response
        time.sleep(min(float(response.headers.get("retry-after", "1")), 5.0))
    return response


@pytest.mark.parametrize("path", CONTRACTS, ids=[str(p.relative_to(CONTRACTS_DIR)) for p in CONTRACTS])
def test_every_read_example_is_answered_as_the_contract_says(stack: RunningStack, path: Path) -> None:
    location = locate_contract(path.resolve())
    assert location is not None
    contract = CompiledContract.from_file(path)
    reads = [request for request in example_requests(load_contract(path)) if request.method == "GET"]
    drifted = []
    statuses: Counter[int] = Counter()
    for request in reads:
        found = contract.match("GET", location.base_path + request.path)
        assert found is not None, request
        client_id = caller_for(stack, location.layer, found.operation.security)
        with stack.client(client_id, subject=PEOPLE.get(client_id)) as http:
            response = call(http, location.base_path + request.path, request.query)
        statuses[response.status_code] += 1
        issues = found.operation.validate_response(
            response.status_code, response.headers.get("content-type"), response.content
        )
        # An entitled caller is never refused for who it is, and the stack never fails: those are not answers.
        if issues or response.status_code in (401, 403) or response.status_code >= 500:
            drifted.append(f"GET {request.path} as {client_id} -> {response.status_code}: {issues or response.text}")
    assert drifted == [], dict(statuses)
