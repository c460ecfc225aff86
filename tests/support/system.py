"""The system APIs as the process tier calls them, each answer checked against its contract."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.contract_checks import assert_matches_contract


class SystemApis:
    """The process tier's view of the system APIs: every answer is checked against its contract."""

    def __init__(self, client: httpx.Client) -> None:
        self.http = client

    def call(self, method: str, api: str, template: str, status: int, *, path: dict[str, str] | None = None,
             **kwargs: Any) -> httpx.Response:
        url = template
        for name, value in (path or {}).items():
            url = url.replace("{" + name + "}", value)
        response = self.http.request(method, f"/system/{api}/v1{url}", **kwargs)
        assert response.status_code == status, f"{method} {url}: {response.status_code} {response.text[:800]}"
        if status >= 400:
            assert response.headers["content-type"] == "application/problem+json"
        assert_matches_contract(f"system/{api}", method, template, response)
        return response

    def json(self, method: str, api: str, template: str, status: int, **kwargs: Any) -> Any:
        return self.call(method, api, template, status, **kwargs).json()
