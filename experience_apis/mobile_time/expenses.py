"""A consultant's expenses on mobile-time v2, captured and read through the expenses process API.

The consultant is the token's subject: an expense is always captured for them and they only ever see their own.
A phone capturing offline sends each expense with its own Idempotency-Key and resends it until answered: the
key is namespaced by the worker (:func:`worker_key`), so a resend is the first expense and two phones never
collide on one key. On v3 it can sync its offline expenses in one batch (``/me/expense-syncs``): one result per item, a
bad item fails alone, and each item's client_ref (namespaced the same way) makes a re-sent batch harmless.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from typing import Annotated

import msgspec
from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter, RequestBody

from experience_apis.people import worker_of
from experience_apis.process_calls import (
    EXPENSE_SYNCS,
    EXPENSES,
    ProcessExpense,
    ProcessExpensePage,
    ProcessExpenseSyncResponse,
)
from runtime.params import IdempotencyKey
from runtime.tokens import Principal


def worker_key(worker_id: str, key: str) -> str:
    """The phone's key, namespaced by its consultant and bounded in length whatever the phone sent."""
    return f"{worker_id}:{hashlib.sha256(key.encode()).hexdigest()[:40]}"


class NewMyExpense(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    project_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    category: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    amount: Decimal
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
    expense_date: dt.date
    country: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
    billable: bool = True
    receipt_ref: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    description: Annotated[str, msgspec.Meta(max_length=500)] = ""


class MyExpenseSyncItem(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One offline expense; loosely typed so that the process tier checks each item on its own."""

    client_ref: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    project_id: str | None = None
    category: str | None = None
    amount: str | None = None
    currency: str | None = None
    expense_date: str | None = None
    country: str | None = None
    billable: bool = True
    receipt_ref: str | None = None
    description: str = ""


class MyExpenseSyncRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    items: Annotated[list[MyExpenseSyncItem], msgspec.Meta(min_length=1, max_length=100)]


class MobileExpensesV2(Controller):
    path = "/experience/mobile-time/v2"

    @post("/me/expenses", operation_id="captureMyExpense")
    async def capture(
        self,
        state: State,
        principal: NamedDependency[Principal],
        data: RequestBody[NewMyExpense],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ProcessExpense]:
        worker_id = worker_of(principal)
        reply = await state.downstreams["gateway"].request(
            "POST",
            EXPENSES,
            json={**msgspec.to_builtins(data), "worker_id": worker_id},
            idempotency_key=worker_key(worker_id, idempotency_key) if idempotency_key else None,
        )
        return Response(msgspec.json.decode(reply.content, type=ProcessExpense), status_code=reply.status_code)

    @get("/me/expenses", operation_id="listMyExpenses")
    async def mine(
        self,
        state: State,
        principal: NamedDependency[Principal],
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
    ) -> ProcessExpensePage:
        return await state.downstreams["gateway"].get_json(
            EXPENSES, ProcessExpensePage, params={"worker_id": worker_of(principal), "cursor": cursor, "limit": limit}
        )


class MobileExpensesV3(MobileExpensesV2):
    """v3 captures and lists expenses exactly as v2 does (v3 changed only the time work types)."""

    path = "/experience/mobile-time/v3"

    @post("/me/expense-syncs", operation_id="syncMyExpenses", status_code=200)
    async def sync(
        self, state: State, principal: NamedDependency[Principal], data: RequestBody[MyExpenseSyncRequest]
    ) -> ProcessExpenseSyncResponse:
        worker_id = worker_of(principal)
        items = [
            {**msgspec.to_builtins(item), "client_ref": worker_key(worker_id, item.client_ref), "worker_id": worker_id}
            for item in data.items
        ]
        reply = await state.downstreams["gateway"].request("POST", EXPENSE_SYNCS, json={"items": items})
        results = msgspec.json.decode(reply.content, type=ProcessExpenseSyncResponse).items
        # The process tier answers in the batch's order, in the shape v3 answers too; the phone reads its own
        # client_refs back.
        return ProcessExpenseSyncResponse(
            items=[
                msgspec.structs.replace(r, client_ref=item.client_ref)
                for item, r in zip(data.items, results, strict=True)
            ]
        )
