"""Expenses process API v1 routes (contracts/process/expenses/v1.yaml)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, QueryParameter, RequestBody

from process_apis.expenses.models import (
    ExpenseDecision,
    ExpensePage,
    ExpenseRecord,
    ExpenseState,
    ExpenseSyncRequest,
    ExpenseSyncResponse,
    NewExpense,
)
from runtime.params import IdempotencyKey, Limit


class ExpensesV1(Controller):
    path = "/process/expenses/v1"

    @post("/expenses", operation_id="captureExpense")
    async def capture(
        self,
        state: State,
        data: RequestBody[NewExpense],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ExpenseRecord]:
        created, expense = await state.services.expenses.capture(data, idempotency_key)
        return Response(
            expense, status_code=201 if created else 200, headers={"Location": f"{self.path}/expenses/{expense.id}"}
        )

    @get("/expenses", operation_id="listExpenses")
    async def list_expenses(
        self,
        state: State,
        project_id: FromQuery[str | None] = None,
        worker_id: FromQuery[str | None] = None,
        expense_state: Annotated[ExpenseState | None, QueryParameter(name="state")] = None,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 50,
    ) -> ExpensePage:
        return await state.services.expenses.list(
            project_id=project_id, worker_id=worker_id, state=expense_state, cursor=cursor, limit=limit
        )

    @get("/expenses/{expense_id:str}", operation_id="getExpense")
    async def get_expense(self, state: State, expense_id: FromPath[str]) -> ExpenseRecord:
        return await state.services.expenses.get(expense_id)

    @post("/expenses/{expense_id:str}/decisions", operation_id="decideExpense", status_code=200)
    async def decide(
        self,
        state: State,
        expense_id: FromPath[str],
        data: RequestBody[ExpenseDecision],
    ) -> ExpenseRecord:
        return await state.services.expenses.decide(expense_id, data)

    @post("/expense-syncs", operation_id="syncExpenses", status_code=200)
    async def sync(self, state: State, data: RequestBody[ExpenseSyncRequest]) -> ExpenseSyncResponse:
        return ExpenseSyncResponse(items=await state.services.expenses.sync(data))
