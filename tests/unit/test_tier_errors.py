"""Every error a tier can produce is problem+json with a correlation id: never HTML, never a stack trace."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from litestar import get, post
from litestar.params import JSONBody
from litestar.testing import TestClient

from runtime.app import create_tier_app
from runtime.problems import NotFound
from runtime.settings import TierSettings


class Line(msgspec.Struct):
    hours: int


class Entry(msgspec.Struct):
    hours: int
    lines: list[Line] = []


@post("/entries")
async def create_entry(data: JSONBody[Entry]) -> Entry:
    return data


@get("/boom")
async def boom() -> None:
    raise RuntimeError("database password is hunter2")


@get("/missing")
async def missing() -> None:
    raise NotFound("no time entry te_1", slug="unknown-id")


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:  # type: ignore[type-arg]
    app = create_tier_app(scopes_from_contracts=False, service="test", settings=TierSettings(),
                          route_handlers=[create_entry, boom, missing],
                          verify_tokens=False, max_body_bytes=1000)
    with TestClient(app) as test_client:
        yield test_client


def problem(response) -> dict:  # type: ignore[no-untyped-def]
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-correlation-id"]
    body = response.json()
    assert body["status"] == response.status_code
    assert body["correlation_id"] == response.headers["x-correlation-id"]
    return body  # type: ignore[no-any-return]


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "type_suffix"),
    [
        ("POST", "/entries", {"content": b"{not json", "headers": JSON}, 400, "/malformed-json"),
        ("POST", "/entries", {"json": {"hours": "eight"}}, 400, "/validation-error"),
        ("POST", "/entries", {"content": b"hours=8", "headers": {"content-type": "text/plain"}}, 415,
         "/unsupported-media-type"),
        ("POST", "/entries", {"content": b"[" + b"1," * 600 + b"1]", "headers": JSON}, 413, "/payload-too-large"),
        ("GET", "/nowhere", {}, 404, "/not-found"),
        ("DELETE", "/entries", {}, 405, "/method-not-allowed"),
        ("GET", "/missing", {}, 404, "/unknown-id"),
        ("GET", "/boom", {}, 500, "/internal-error"),
    ],
)
def test_errors_are_problems(client: TestClient, method: str, path: str, kwargs: dict,  # type: ignore[type-arg]
                             status: int, type_suffix: str) -> None:
    response = client.request(method, path, **kwargs)

    assert response.status_code == status
    body = problem(response)
    assert body["type"].endswith(type_suffix)
    assert "hunter2" not in response.text and "Traceback" not in response.text


def test_validation_errors_point_at_the_field(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.post("/entries", json={"hours": 8, "lines": [{"hours": 1}, {"hours": "x"}]})

    body = problem(response)
    assert body["errors"] == [{"pointer": "/lines/1/hours", "detail": "Expected `int`, got `str`", "location": "body"}]


def test_missing_field_is_named(client: TestClient) -> None:  # type: ignore[type-arg]
    body = problem(client.post("/entries", json={}))
    assert body["errors"][0]["pointer"] == "/hours"


def test_caller_correlation_id_is_kept(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.get("/nowhere", headers={"X-Correlation-ID": "order-42"})
    assert response.headers["x-correlation-id"] == "order-42"
    assert response.json()["correlation_id"] == "order-42"


def test_health_endpoints(client: TestClient) -> None:  # type: ignore[type-arg]
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").status_code == 200
