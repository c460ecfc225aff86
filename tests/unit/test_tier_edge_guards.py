"""The tier edge's guards, in process: a response header built from decoded input cannot split the answer, and a
JSON body nested past the limit (or past the body size while the edge buffers it) is refused before parsing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Response, get, post
from litestar.params import FromPath, JSONBody
from litestar.testing import TestClient

from runtime.app import create_tier_app
from runtime.settings import SettingsError, TierSettings, load_settings


@get("/echo/{value:str}")
async def echo(value: FromPath[str]) -> Response[dict[str, str]]:
    # A careless route: the decoded path parameter straight into a header.
    return Response({"ok": "yes"}, headers={"X-Echo": value})


@post("/things")
async def create(data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    return data


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:  # type: ignore[type-arg]
    app = create_tier_app(scopes_from_contracts=False, service="test", settings=TierSettings(max_json_depth=8),
                          route_handlers=[echo, create],
                          verify_tokens=False, max_body_bytes=1000)
    with TestClient(app) as test_client:
        yield test_client


def test_a_header_echoing_crlf_is_sent_percent_encoded(client: TestClient) -> None:  # type: ignore[type-arg]
    answer = client.get("/echo/a%0d%0aSet-Cookie:%20x=1")

    assert answer.status_code == 200
    assert answer.headers["x-echo"] == "a%0D%0ASet-Cookie: x=1"
    assert "set-cookie" not in answer.headers


def test_the_depth_limit_comes_from_the_settings(client: TestClient) -> None:  # type: ignore[type-arg]
    at_limit = client.post("/things", content=b'{"a": ' + b"[" * 7 + b"]" * 7 + b"}",
                           headers={"content-type": "application/json"})
    too_deep = client.post("/things", content=b'{"a": ' + b"[" * 8 + b"]" * 8 + b"}",
                           headers={"content-type": "application/json"})

    assert at_limit.status_code == 201
    assert too_deep.status_code == 400
    assert too_deep.json()["type"] == "/catalog/problems/json-too-deep"
    assert too_deep.json()["max_json_depth"] == 8


def test_a_body_past_the_size_limit_is_refused_while_buffered(client: TestClient) -> None:  # type: ignore[type-arg]
    answer = client.post("/things", content=b'{"a": "' + b"x" * 2000 + b'"}',
                         headers={"content-type": "application/json"})

    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"


def test_a_depth_limit_outside_the_safe_range_stops_the_process() -> None:
    with pytest.raises(SettingsError, match="max_json_depth"):
        load_settings(TierSettings, env={"PSGW_MAX_JSON_DEPTH": "500"})
