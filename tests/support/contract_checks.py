"""Checks a live response against its contract: the test fails if the app drifts from what it promised.

It uses the same compiled validators the gateway runs (contracts.toolchain.validation), so tests and the
gateway's response validation can never disagree about what the contract allows.
"""

from __future__ import annotations

from functools import cache

import httpx

from contracts import CONTRACTS_DIR
from contracts.toolchain.validation import CompiledContract, CompiledOperation


@cache
def compiled(api: str, version: int = 1) -> CompiledContract:
    return CompiledContract.from_file(CONTRACTS_DIR / api / f"v{version}.yaml")


def operation(api: str, method: str, template: str, version: int = 1) -> CompiledOperation:
    found = [op for op in compiled(api, version).operations if op.method == method.upper() and op.path == template]
    assert found, f"{method} {template} is not an operation of {api} v{version}"
    return found[0]


def assert_matches_contract(api: str, method: str, template: str, response: httpx.Response,
                            version: int = 1) -> None:
    """``template`` is the contract's path, e.g. ``/projects/{project_id}``."""
    issues = operation(api, method, template, version).validate_response(
        response.status_code, response.headers.get("content-type"), response.content)
    assert not issues, f"{method} {template} -> {response.status_code} drifts from the contract:\n" + "\n".join(
        f"  {issue.location} {issue.pointer or '/'}: {issue.detail}" for issue in issues[:10])
