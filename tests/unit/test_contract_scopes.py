"""A tier demands the scopes its contract's ``security`` names, and nothing starts that the contracts do not know.

The guard (runtime/guards.py) is built from contracts/*: a handler declares no scope of its own.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar import get
from litestar.params import FromPath
from litestar.testing import TestClient
from litestar.types import ASGIApp, Receive, Scope, Send

from runtime.app import create_tier_app
from runtime.settings import TierSettings
from runtime.tokens import Principal


@get("/system/hr/v1/workers/{worker_id:str}", operation_id="getWorker")
async def get_worker(worker_id: FromPath[str]) -> dict[str, str]:
    return {"id": worker_id}


def caller_from_header(app: ASGIApp) -> ASGIApp:
    """Stands in for the token check: the caller's scopes come from ``x-test-scopes`` (absent: no caller)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        scopes = dict(scope.get("headers", [])).get(b"x-test-scopes")
        if scopes is not None:
            scope.setdefault("state", {})["principal"] = Principal(  # type: ignore[typeddict-item]
                subject="u",
                client_id="c",
                scopes=frozenset(scopes.decode().split()),
                issuer="t",
                expires_at=0,
                claims={},
            )
        await app(scope, receive, send)

    return middleware


def client(*handlers: Any) -> TestClient[Any]:
    app = create_tier_app(
        service="t",
        settings=TierSettings(),
        route_handlers=list(handlers),
        verify_tokens=False,
        middleware=[caller_from_header],
    )
    return TestClient(app)


def test_a_token_without_the_contract_scope_gets_403_insufficient_scope() -> None:
    with client(get_worker) as c:
        response = c.get("/system/hr/v1/workers/w1", headers={"x-test-scopes": "hr:write psa:read"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"].endswith("/insufficient-scope") and body["missing_scopes"] == ["hr:read"]


def test_a_token_with_the_contract_scope_is_served() -> None:
    with client(get_worker) as c:
        response = c.get("/system/hr/v1/workers/w1", headers={"x-test-scopes": "hr:read"})
    assert response.status_code == 200 and response.json() == {"id": "w1"}


def test_no_caller_is_401() -> None:
    with client(get_worker) as c:
        assert c.get("/system/hr/v1/workers/w1").status_code == 401


def test_health_needs_no_token() -> None:
    with client(get_worker) as c:
        assert c.get("/healthz").status_code == 200


@get("/system/hr/v1/payslips", operation_id="listPayslips")
async def not_in_any_contract() -> list[str]:
    return []


@get("/system/hr/v1/workers/{worker_id:str}", operation_id="fetchWorker")
async def another_operation_id(worker_id: FromPath[str]) -> dict[str, str]:
    return {"id": worker_id}


@pytest.mark.parametrize("handler", [not_in_any_contract, another_operation_id])
def test_a_route_the_contracts_lack_stops_the_app_at_start_up(handler: Any) -> None:
    with pytest.raises(RuntimeError, match="routes without a contract operation"):
        create_tier_app(service="t", settings=TierSettings(), route_handlers=[handler], verify_tokens=False)
