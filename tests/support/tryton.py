"""Tryton as the tests see it: read directly (not through psgateway) to check what it holds, and the invoicing
calls the Tryton tests share (the stack itself is started by tests/tryton/conftest.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from system_apis.tryton_rpc import TrytonRpc
from tests.support.flows import ok, wait_for


class TrytonLook:
    """Tryton itself, read directly (not through psgateway), to check what it holds."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _run(self, method: str, *args: Any, **kwargs: Any) -> Any:
        async def call() -> Any:
            client = TrytonRpc(self.url, 10.0)
            try:
                return await getattr(client, method)(*args, **kwargs)
            finally:
                await client.aclose()
        return asyncio.run(call())

    def read(self, model: str, ids: list[int], fields: list[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._run("read", model, ids, fields)
        return rows

    def search_read(self, model: str, domain: list[Any], fields: list[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._run("search_read", model, domain, fields)
        return rows


def post_invoice(experience: httpx.Client, invoice_id: str) -> dict[str, Any]:
    """Post a drafted invoice through invoicing, asking again when Tryton (numbering and booking it on a busy
    machine) did not answer in time: posting is safe to repeat, as a client would."""

    def posted() -> dict[str, Any] | None:
        answer = experience.post(f"/process/invoicing/v1/invoices/{invoice_id}/postings")
        return None if answer.status_code == 504 else ok(answer)

    return wait_for("the invoice posted", posted, timeout=180)
