"""Expense capture, policy, decision and exactly-once ERP posting.

Capture checks the input (a bad field is a 422 naming it) and evaluates the policy (:mod:`.policy`): an expense
over policy is ``held`` with its reason codes, a compliant one waits for approval (``submitted``). Approving it
enqueues, in the same transaction, the job that posts it to the ERP (process_apis/jobs.py): the job retries while
the ERP is unavailable, and the ERP call carries an Idempotency-Key derived from the expense id while the ERP keeps
one posting per source, so the expense is booked once whatever happens between the two. A capture is recorded
once per Idempotency-Key (the tier's keyed writes, process_apis/idempotency.py).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

import msgspec
import sqlalchemy as sa

from contracts.canonical import decimal_text
from process_apis.backoff import is_transient
from process_apis.expenses.models import (
    ExpenseDecision,
    ExpensePage,
    ExpenseRecord,
    ExpenseState,
    ExpenseSyncItem,
    ExpenseSyncRequest,
    ExpenseSyncResult,
    NewExpense,
)
from process_apis.expenses.policy import CATEGORIES, RECEIPT_THRESHOLD, ExpenseFacts, evaluate, holds
from process_apis.expenses.store import expenses
from process_apis.idempotency import CAPTURES, capture_fingerprint, complete, recorded_id
from process_apis.invoicing.queries import invoice_of_source
from process_apis.jobs import JobRunner, enqueue_job
from process_apis.systems import Systems
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime.downstream import DownstreamProblem, found_or_none
from runtime.idempotency import Claim, IdempotencyStore
from runtime.problems import BadRequest, Conflict, FieldError, Forbidden, NotFound, ProblemError, Unprocessable
from runtime.storage import utcnow

POST_JOB: Final = "expense.post"
PSA_JOB: Final = "expense.psa"
MAX_AMOUNT: Final = Decimal("100000.00")
OLDEST_DAYS: Final = 365


def invalid(pointer: str, detail: str) -> Unprocessable:
    return Unprocessable(
        f"{pointer[1:]}: {detail}", slug="validation-failed", errors=[FieldError(pointer=pointer, detail=detail)]
    )


def posting_key(expense_id: str) -> str:
    return f"expense-posting:{expense_id}"


def psa_key(expense_id: str) -> str:
    return f"expense-psa:{expense_id}"


def check_input(data: NewExpense, today: dt.date) -> None:
    """What no policy can excuse: an unknown category, an amount that is not money, a date out of range, a
    missing receipt above the threshold."""
    if data.category not in CATEGORIES:
        raise invalid("/category", f"unknown category; one of {', '.join(sorted(CATEGORIES))}")
    amount = data.amount
    if not amount.is_finite() or amount <= 0 or amount > MAX_AMOUNT:
        raise invalid("/amount", f"must be more than 0 and at most {MAX_AMOUNT}")
    if amount != amount.quantize(Decimal("0.01")):
        raise invalid("/amount", "at most two decimal places")
    if not today - dt.timedelta(days=OLDEST_DAYS) <= data.expense_date <= today:
        raise invalid("/expense_date", f"must be within the last {OLDEST_DAYS} days and not in the future")
    if amount > RECEIPT_THRESHOLD and data.receipt_ref is None:
        raise invalid("/receipt_ref", f"a receipt is required above {RECEIPT_THRESHOLD}")


async def refuse_closed_period(systems: Systems, legal_entity_id: str, expense_date: dt.date, *,
                               pointer: str = "/expense_date", location: str = "body") -> None:
    """An expense is booked in the ERP period of its date: a period the ERP lists as closed would refuse the
    posting after the approval (the expense stuck approved, an exception for finance), so it is refused here with
    422 ``period-closed`` instead. Checked at capture and again at approval (a period may close in between); a
    period that closes after the approval still ends in the exception queue. When the ERP cannot answer now, the
    expense goes on and the posting job finds out."""
    period = f"{expense_date.year:04d}-{expense_date.month:02d}"
    try:
        periods = await systems.erp.accounting_periods(legal_entity_id)
    except DownstreamProblem as exc:
        if is_transient(exc):
            return
        raise
    if any(p.period == period and p.status == "closed" for p in periods):
        raise Unprocessable(
            f"the ERP's accounting period {period} of {legal_entity_id} is closed: an expense dated "
            f"{expense_date.isoformat()} cannot be booked; finance reopens the period or it is claimed otherwise",
            slug="period-closed",
            errors=[FieldError(pointer=pointer, location=location,
                               detail=f"dated {expense_date.isoformat()}, in the closed period {period}")],
        )


def sync_key(client_ref: str) -> str:
    """The Idempotency-Key a batch item is captured under: its client_ref, apart from single captures' keys."""
    return f"sync:{client_ref}"


_MISSING = re.compile(r"missing required field `(\w+)`")
_AT = re.compile(r"at `\$\.(\w+)`")


def item_fields(item: ExpenseSyncItem) -> NewExpense:
    """A batch item as a capture request; a field of the wrong shape is a 422 naming it."""
    fields = {k: v for k, v in msgspec.structs.asdict(item).items() if k != "client_ref" and v is not None}
    try:
        return msgspec.convert(fields, NewExpense, strict=False)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _MISSING.search(text) or _AT.search(text)
        if match is None:
            raise Unprocessable(text, slug="validation-failed", errors=[FieldError(pointer="", detail=text)]) from None
        raise invalid(f"/{match.group(1)}", text) from None


def item_problem(exc: ProblemError, index: int) -> dict[str, Any]:
    """The item's problem, its pointers into the batch (``/items/<index>/...``)."""
    problem = exc.to_problem().to_dict()
    if problem.get("errors"):
        problem["errors"] = [{**e, "pointer": f"/items/{index}{e['pointer']}"} for e in problem["errors"]]
    return problem


def record(row: Any, invoice_id: str | None = None) -> ExpenseRecord:
    return ExpenseRecord(
        id=row.id,
        worker_id=row.worker_id,
        project_id=row.project_id,
        contract_id=row.contract_id,
        category=row.category,
        amount=row.amount,
        currency=row.currency,
        expense_date=row.expense_date,
        country=row.country,
        billable=row.billable,
        receipt_ref=row.receipt_ref,
        description=row.description,
        state=row.state,
        reason_codes=list(row.reason_codes),
        approver_id=row.approver_id,
        decision_reason=row.decision_reason,
        erp_posting_id=row.erp_posting_id,
        psa_expense_id=row.psa_expense_id,
        invoice_id=invoice_id,
        created_at=row.created_at,
    )


class ExpenseService:
    def __init__(self, uow: UnitOfWorkFactory, systems: Systems, jobs: JobRunner, keys: IdempotencyStore) -> None:
        self.uow = uow
        self.keys = keys
        self.db = uow.db
        self.systems = systems
        jobs.handle(POST_JOB, self._post)
        jobs.handle(PSA_JOB, self._write_to_psa)

    async def capture(self, data: NewExpense, idempotency_key: str | None) -> tuple[bool, ExpenseRecord]:
        """Capture the expense, once per Idempotency-Key (process_apis/idempotency.py); returns (created, expense):
        a repeat answers the expense the key captured, as it is now."""

        async def again(_status: int, body: bytes) -> tuple[bool, ExpenseRecord]:
            return False, await self.get(recorded_id(body))

        return await self.keys.once(scope=CAPTURES, key=idempotency_key, request_fingerprint=capture_fingerprint(data),
                                    action=lambda claim: self._capture(data, claim), replay=again)

    async def _capture(self, data: NewExpense, claim: Claim | None) -> tuple[bool, ExpenseRecord]:
        check_input(data, utcnow().date())
        if await found_or_none(self.systems.hr.worker(data.worker_id)) is None:
            raise invalid("/worker_id", f"no worker {data.worker_id!r}")
        project = await found_or_none(self.systems.psa.project(data.project_id))
        if project is None:
            raise invalid("/project_id", f"no project {data.project_id!r}")
        contract = await self.systems.erp.contract(project.contract_id)
        if data.currency != contract.currency:
            # No FX rule: an expense is billed in its contract's currency or not at all.
            raise invalid("/currency", f"the project's contract bills in {contract.currency}")
        await refuse_closed_period(self.systems, contract.legal_entity_id, data.expense_date)
        reasons = evaluate(
            ExpenseFacts(
                category=data.category,
                amount=data.amount,
                country=data.country,
                billable=data.billable,
                expense_date=data.expense_date,
                project_status=project.status,
            )
        )
        state: ExpenseState = "held" if holds(reasons) else "submitted"
        now = utcnow()
        expense_id = f"exp_c{uuid.uuid4().hex[:16]}"
        async with self.uow() as uow:
            await uow.conn.execute(expenses.insert().values(
                id=expense_id,
                worker_id=data.worker_id,
                project_id=data.project_id,
                contract_id=contract.id,
                legal_entity_id=contract.legal_entity_id,
                category=data.category,
                amount=data.amount,
                currency=data.currency,
                expense_date=data.expense_date,
                country=data.country,
                # a category that is never billed makes the expense cost, whatever the consultant ticked
                billable=data.billable and CATEGORIES[data.category].billable,
                receipt_ref=data.receipt_ref,
                description=data.description,
                state=state,
                reason_codes=list(reasons),
                created_at=now,
                updated_at=now,
            ))
            await complete(claim, uow.conn, 201, expense_id)
        return True, await self.get(expense_id)

    async def sync(self, batch: ExpenseSyncRequest) -> list[ExpenseSyncResult]:
        """Capture an offline batch: one result per item, in order. A bad item (or one a dependency could not
        answer) is an ``error`` with its problem and the rest go on; a re-sent item is ``existing``, never a
        second expense (its client_ref is its Idempotency-Key)."""
        results = []
        for index, item in enumerate(batch.items):
            try:
                created, expense = await self.capture(item_fields(item), sync_key(item.client_ref))
            except ProblemError as exc:
                results.append(ExpenseSyncResult(client_ref=item.client_ref, status="error",
                                                 problem=item_problem(exc, index)))
                continue
            results.append(ExpenseSyncResult(client_ref=item.client_ref, status="created" if created else "existing",
                                             expense=expense))
        return results

    async def decide(self, expense_id: str, data: ExpenseDecision) -> ExpenseRecord:
        if await found_or_none(self.systems.hr.worker(data.approver_id)) is None:
            raise invalid("/approver_id", f"no worker {data.approver_id!r}")
        if data.decision == "approve":
            await self._refuse_closed_period(expense_id, data.approver_id)
        async with self.uow() as uow:
            row = (await uow.conn.execute(sa.select(expenses).where(expenses.c.id == expense_id))).first()
            if row is None:
                raise NotFound(f"no expense {expense_id!r}", slug="unknown-id")
            if row.worker_id == data.approver_id:
                raise Forbidden(
                    "nobody approves or rejects their own expense",
                    slug="own-time",
                    errors=[FieldError(pointer="/approver_id", detail="the expense's own consultant")],
                )
            to_state: ExpenseState = "approved" if data.decision == "approve" else "rejected"
            # Conditional on the state read: of two concurrent decisions exactly one changes the row.
            changed = await uow.conn.execute(
                expenses.update()
                .where(expenses.c.id == expense_id, expenses.c.state == "submitted")
                .values(state=to_state, approver_id=data.approver_id, decision_reason=data.reason, updated_at=utcnow())
            )
            if changed.rowcount != 1:
                raise Conflict(
                    f"expense {expense_id} is {row.state}: only a submitted expense is decided",
                    slug="invalid-transition",
                    state=row.state,
                    reason_codes=list(row.reason_codes),
                )
            if to_state == "approved":
                await enqueue_job(self.db, uow.conn, POST_JOB, posting_key(expense_id), {"expense_id": expense_id})
        return await self.get(expense_id)

    async def _refuse_closed_period(self, expense_id: str, approver_id: str) -> None:
        """Before approving: the expense's period still open (read outside the decision's transaction: no call to
        another system while it is held). Own expenses and settled states are answered by the decision itself."""
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(expenses).where(expenses.c.id == expense_id))).first()
        if row is None or row.state != "submitted" or row.worker_id == approver_id:
            return
        # The date is the expense's, not the decision's: the pointer names the expense the path addresses.
        await refuse_closed_period(self.systems, row.legal_entity_id, row.expense_date, pointer="/expense_id",
                                   location="path")

    async def _post(self, payload: Mapping[str, Any]) -> None:
        """The posting job: book the approved expense in the ERP (once), then mark it posted."""
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(expenses).where(expenses.c.id == payload["expense_id"]))).one()
        if row.state != "approved":
            return
        posting = await self.systems.erp.post(
            {
                "source_type": "expense",
                "source_id": row.id,
                "project_id": row.project_id,
                "contract_id": row.contract_id,
                "legal_entity_id": row.legal_entity_id,
                "work_date": row.expense_date.isoformat(),
                "quantity": "1",
                "amount": decimal_text(row.amount),
                "currency": row.currency,
            },
            posting_key(row.id),
        )
        async with self.uow() as uow:
            changed = await uow.conn.execute(
                expenses.update()
                .where(expenses.c.id == row.id, expenses.c.state == "approved")
                .values(state="posted", erp_posting_id=posting.id, updated_at=utcnow())
            )
            if changed.rowcount == 1:  # booked: the PSA is to hold it too, written by its own retried job
                await enqueue_job(self.db, uow.conn, PSA_JOB, psa_key(row.id), {"expense_id": row.id})

    async def _write_to_psa(self, payload: Mapping[str, Any]) -> None:
        """The PSA write job: the posted expense in the PSA, as posted, once (its id there is the source_ref the
        PSA keeps unique, and the call's Idempotency-Key derives from it), so the PSA and the ERP agree."""
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(expenses).where(expenses.c.id == payload["expense_id"]))).one()
        written = await self.systems.psa.create_expense(
            {
                "source_ref": row.id,
                "worker_id": row.worker_id,
                "project_id": row.project_id,
                "expense_date": row.expense_date.isoformat(),
                "amount": decimal_text(row.amount),
                "currency": row.currency,
                "category": row.category,
                "billable": row.billable,
                "receipt_ref": row.receipt_ref,
                "state": "posted",
            },
            psa_key(row.id),
        )
        async with self.uow() as uow:
            await uow.conn.execute(
                expenses.update().where(expenses.c.id == row.id).values(psa_expense_id=written.id, updated_at=utcnow())
            )

    async def _invoice_of(self, expense_id: str) -> str | None:
        async with self.db.read() as conn:
            return await invoice_of_source(conn, "expense", expense_id)

    async def get(self, expense_id: str) -> ExpenseRecord:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(expenses).where(expenses.c.id == expense_id))).first()
        if row is None:
            raise NotFound(f"no expense {expense_id!r}", slug="unknown-id")
        return record(row, await self._invoice_of(expense_id))

    async def list(
        self,
        *,
        project_id: str | None,
        worker_id: str | None,
        state: ExpenseState | None,
        cursor: str | None,
        limit: int,
    ) -> ExpensePage:
        query = sa.select(expenses).order_by(expenses.c.seq).limit(limit + 1)
        if cursor is not None:
            if not cursor.isdigit() or len(cursor) > 18:
                raise BadRequest(
                    "cursor: not a cursor this API gave",
                    slug="invalid-cursor",
                    errors=[FieldError(pointer="/cursor", detail="malformed", location="query")],
                )
            query = query.where(expenses.c.seq > int(cursor))
        for column, value in (("project_id", project_id), ("worker_id", worker_id), ("state", state)):
            if value is not None:
                query = query.where(expenses.c[column] == value)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        page = rows[:limit]
        return ExpensePage(
            items=[record(r) for r in page], next_cursor=str(page[-1].seq) if len(rows) > limit else None
        )
