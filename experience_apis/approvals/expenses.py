"""Expenses in the approvals inbox, beside time: the caller is the project manager (the token's subject).

The inbox shows the expenses of the projects the manager runs that wait for a decision, and those the expense
policy holds (with their reason codes, so the manager sees why; a held expense is not decided). The manager's own
expenses are never in their inbox, and deciding one is refused by the process tier (403).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal, TypeAlias

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter, RequestBody

from contracts.canonical import Page
from experience_apis.approvals.models import SingleDecisionRequest
from experience_apis.approvals.service import ApprovalsInbox, _every_page
from experience_apis.people import worker_of
from experience_apis.process_calls import EXPENSES, ProcessExpense, ProcessExpensePage
from runtime.cursors import decode_position, encode_position
from runtime.downstream import found_or_none, segment
from runtime.problems import NotFound
from runtime.tokens import Principal

WAITING = ("submitted", "held")


class InboxExpense(ProcessExpense, kw_only=True):
    kind: Literal["expense"] = "expense"
    project_name: str


InboxExpenses: TypeAlias = Page[InboxExpense]


class _Position(msgspec.Struct, array_like=True):
    expense_date: str
    expense_id: str


def inbox_item(e: ProcessExpense, project_name: str) -> InboxExpense:
    return InboxExpense(**msgspec.structs.asdict(e), project_name=project_name)


class ApprovalExpensesV1(Controller):
    path = "/experience/approvals/v1"

    @get("/expenses", operation_id="listInboxExpenses")
    async def waiting(
        self,
        state: State,
        principal: NamedDependency[Principal],
        project_id: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> InboxExpenses:
        manager_id = worker_of(principal)
        gateway = state.downstreams["gateway"]
        projects = await ApprovalsInbox(gateway, manager_id).my_projects()
        if project_id is not None:
            if project_id not in projects:
                raise NotFound(f"no project {project_id!r} among the projects you manage", slug="unknown-id")
            projects = {project_id: projects[project_id]}
        found = await asyncio.gather(
            *(
                _every_page(gateway, EXPENSES, ProcessExpensePage, {"project_id": p, "state": s})
                for p in sorted(projects)
                for s in WAITING
            )
        )
        waiting = sorted(
            (e for page in found for e in page if e.worker_id != manager_id), key=lambda e: (e.expense_date, e.id)
        )
        if cursor is not None:
            after = decode_position(cursor, _Position)
            waiting = [
                e for e in waiting if (e.expense_date.isoformat(), e.id) > (after.expense_date, after.expense_id)
            ]
        page, more = waiting[:limit], len(waiting) > limit
        return InboxExpenses(
            items=[inbox_item(e, projects[e.project_id].name) for e in page],
            next_cursor=encode_position(_Position(page[-1].expense_date.isoformat(), page[-1].id)) if more else None,
        )

    @post("/expenses/{expense_id:str}/decisions", operation_id="decideInboxExpense", status_code=200)
    async def decide(
        self,
        state: State,
        principal: NamedDependency[Principal],
        expense_id: FromPath[str],
        data: RequestBody[SingleDecisionRequest],
    ) -> InboxExpense:
        manager_id = worker_of(principal)
        gateway = state.downstreams["gateway"]
        expense = await found_or_none(gateway.get_json(f"{EXPENSES}/{segment(expense_id)}", ProcessExpense))
        if expense is None:
            raise NotFound(f"no expense {expense_id!r}", slug="unknown-id")
        projects = await ApprovalsInbox(gateway, manager_id).my_projects()
        if expense.project_id not in projects:  # not in this manager's inbox: as if it did not exist
            raise NotFound(f"no expense {expense_id!r} among your projects", slug="unknown-id")
        reply = await gateway.request(
            "POST",
            f"{EXPENSES}/{segment(expense_id)}/decisions",
            json={"approver_id": manager_id, "decision": data.decision, "reason": data.reason},
        )
        decided = msgspec.json.decode(reply.content, type=ProcessExpense)
        return inbox_item(decided, projects[decided.project_id].name)
