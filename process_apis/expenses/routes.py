"""Expenses process API v1 routes (contracts/process/expenses/v1.yaml)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, HeaderParameter, QueryParameter, RequestBody

from process_apis.expenses.models import ExpenseDecision, ExpensePage, ExpenseRecord, ExpenseState, NewExpense
from runtime.app import require_scopes
from runtime.tokens import Principal

IdempotencyKey = Annotated[str | None, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=200)]


class ExpensesV1(Controller):
    path = "/process/expenses/v1"

    @post("/expenses", operation_id="captureExpense")
    async def capture(
        self,
        state: State,
        principal: NamedDependency[Principal],
        data: RequestBody[NewExpense],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ExpenseRecord]:
        require_scopes(principal, "expenses:write")
        created, expense = await state.services.expenses.capture(data, idempotency_key)
        return Response(
            expense, status_code=201 if created else 200, headers={"Location": f"{self.path}/expenses/{expense.id}"}
        )

    @get("/expenses", operation_id="listExpenses")
    async def list_expenses(
        self,
        state: State,
        principal: NamedDependency[Principal],
        project_id: FromQuery[str | None] = None,
        worker_id: FromQuery[str | None] = None,
        expense_state: Annotated[ExpenseState | None, QueryParameter(name="state")] = None,
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> ExpensePage:
        require_scopes(principal, "expenses:read")
        return await state.services.expenses.list(
            project_id=project_id, worker_id=worker_id, state=expense_state, cursor=cursor, limit=limit
        )

    @get("/expenses/{expense_id:str}", operation_id="getExpense")
    async def get_expense(
        self, state: State, principal: NamedDependency[Principal], expense_id: FromPath[str]
    ) -> ExpenseRecord:
        require_scopes(principal, "expenses:read")
        return await state.services.expenses.get(expense_id)

    @post("/expenses/{expense_id:str}/decisions", operation_id="decideExpense", status_code=200)
    async def decide(
        self,
        state: State,
        principal: NamedDependency[Principal],
        expense_id: FromPath[str],
        data: RequestBody[ExpenseDecision],
    ) -> ExpenseRecord:
        require_scopes(principal, "expenses:write")
        return await state.services.expenses.decide(expense_id, data)
