"""Project provisioning: opportunity -> ERP customer, contract, PSA project, ... once.

Exactly one provisioning exists per opportunity (a unique key in SQL), whatever is re-sent. Its steps run in
order, each recorded durably as it finishes, so a failure leaves a visible state that resumes where it
stopped. Every create is idempotent twice over: an Idempotency-Key derived from the provisioning and step, and
a look-up of what already exists (the project of the contract, the dimension of the project) before creating.
A step the downstream refuses outright (4xx) compensates what was created (the PSA project and the ERP
contract are closed) and opens an exception; a transient failure (down, timeout) just stops, resumable.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.canonical import Contract, RateCard, Worker, decimal_text
from process_apis.backoff import describe, is_transient
from process_apis.events.outbox import record_event
from process_apis.exceptions.models import ExceptionItem
from process_apis.exceptions.service import RetryResult, open_items, raise_exception, resolve_open
from process_apis.idempotency import PROVISIONINGS, complete, provisioning_fingerprint
from process_apis.provisioning.models import (
    STEP_NAMES,
    Provisioning,
    Resources,
    Step,
    StepName,
    WonOpportunity,
)
from process_apis.store import provisionings
from process_apis.systems import CRM, CrmAccount, Systems
from process_apis.unit_of_work import UnitOfWorkFactory
from runtime import correlation
from runtime.downstream import DownstreamProblem, found_or_none, segment
from runtime.idempotency import Claim, IdempotencyStore
from runtime.problems import Conflict, NotFound
from runtime.storage import utcnow

log = logging.getLogger("process_apis.provisioning")

# The tasks every provisioned project starts with (name, billable).
STANDARD_TASKS = (("Discovery", True), ("Delivery", True), ("Project management", True), ("Internal review", False))
RESUMABLE = frozenset({"failed", "rejected", "compensated"})


class ValidationFailed(Exception):
    def __init__(self, reasons: list[str], detail: str) -> None:
        super().__init__(detail)
        self.reasons = reasons
        self.detail = detail


class StepRefused(Exception):
    """A downstream refused a step outright: retrying the same request cannot succeed."""

    def __init__(self, step: StepName, exc: DownstreamProblem) -> None:
        super().__init__(describe(exc))
        self.step = step
        self.problem = exc


@dataclass
class _Facts:
    opportunity: WonOpportunity
    account: CrmAccount | None
    rate_card: RateCard | None
    # The contract signed in the CRM for the deal: the billing terms sold (value, term, schedule, fee).
    signed: Contract | None = None


class ProvisioningService:
    def __init__(self, uow: UnitOfWorkFactory, systems: Systems, keys: IdempotencyStore, *,
                 lease_seconds: float = 120.0) -> None:
        self.uow = uow
        self.keys = keys
        self.db = uow.db
        self.systems = systems
        self.lease_seconds = lease_seconds
        self._running: dict[str, asyncio.Task[None]] = {}

    # -- requests ------------------------------------------------------------------------------------------

    async def start(self, opportunity_id: str, idempotency_key: str | None) -> tuple[int, Provisioning]:
        """202 with a new (or resumed) provisioning; 200 with the one that exists and needs nothing. A key names
        one opportunity: sent again, it answers as a re-send of that opportunity does."""

        async def again(_status: int, _recorded: bytes) -> tuple[int, Provisioning]:
            return await self._start(opportunity_id, None)

        return await self.keys.once(
            scope=PROVISIONINGS, key=idempotency_key, action=lambda claim: self._start(opportunity_id, claim),
            replay=again, request_fingerprint=provisioning_fingerprint(opportunity_id))

    async def _start(self, opportunity_id: str, claim: Claim | None) -> tuple[int, Provisioning]:
        now = utcnow()
        async with self.uow() as uow:
            row = (await uow.conn.execute(sa.select(provisionings).where(
                provisionings.c.opportunity_id == opportunity_id))).first()
            if row is None:
                provisioning_id = "prv_" + uuid.uuid4().hex[:24]
                inserted = await self.db.insert_new(
                    uow.conn, provisionings, ["opportunity_id"], id=provisioning_id, opportunity_id=opportunity_id,
                    state="pending", steps=[Step(name=n) for n in STEP_NAMES], resources=Resources(), error=None,
                    runs=0, correlation_id=correlation.current_correlation_id(),
                    trace_id=correlation.current_trace_id(), created_at=now, updated_at=now)
                if inserted:
                    await record_event(uow.conn, "opportunity.closed_won", {"opportunity_id": opportunity_id},
                                       {"provisioning_id": provisioning_id})
                    new = True
                else:  # a concurrent request for the same opportunity won the insert
                    new = False
                row = (await uow.conn.execute(sa.select(provisionings).where(
                    provisionings.c.opportunity_id == opportunity_id))).one()
            else:
                new = False
            await complete(claim, uow.conn, 202, row.id)
        if new or row.state in RESUMABLE or row.state == "pending":
            self.launch(row.id)
            return 202, await self.get(row.id)
        return 200, await self.get(row.id)

    async def resume(self, provisioning_id: str) -> Provisioning:
        current = await self.get(provisioning_id)
        if current.state == "completed":
            raise Conflict(f"provisioning {provisioning_id} is completed: nothing to resume",
                           slug="invalid-transition", from_state="completed", to_state="running")
        if current.state == "running" and provisioning_id in self._running:
            return current
        self.launch(provisioning_id)
        return await self.get(provisioning_id)

    async def get(self, provisioning_id: str) -> Provisioning:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(provisionings).where(provisionings.c.id == provisioning_id))).first()
            if row is None:
                raise NotFound(f"no provisioning {provisioning_id!r}", slug="unknown-id")
            exception_id = (await open_items(conn, kind="provisioning", source_ids=[row.opportunity_id])).get(
                row.opportunity_id)
        return _view(row, exception_id)

    async def by_opportunity(self, opportunity_id: str) -> Provisioning:
        async with self.db.read() as conn:
            provisioning_id = (await conn.execute(sa.select(provisionings.c.id).where(
                provisionings.c.opportunity_id == opportunity_id))).scalar()
        if provisioning_id is None:
            raise NotFound(f"opportunity {opportunity_id!r} has not been provisioned", slug="unknown-id")
        return await self.get(provisioning_id)

    async def wait(self, provisioning_id: str) -> None:
        task = self._running.get(provisioning_id)
        if task is not None:
            await asyncio.shield(task)

    # -- running -------------------------------------------------------------------------------------------

    def launch(self, provisioning_id: str) -> None:
        if provisioning_id in self._running:
            return
        task = asyncio.create_task(self._guarded_run(provisioning_id), name=f"provisioning-{provisioning_id}")
        self._running[provisioning_id] = task
        task.add_done_callback(lambda _t: self._running.pop(provisioning_id, None))

    async def _guarded_run(self, provisioning_id: str) -> None:
        try:
            await self.run(provisioning_id)
        except Exception:
            log.exception("provisioning run crashed; the lease expires and recovery resumes it",
                          extra={"provisioning_id": provisioning_id})

    async def recover(self) -> int:
        """Resume provisionings whose runner died (a lease that expired while running, or never started)."""
        now = utcnow()
        async with self.db.read() as conn:
            ids = (await conn.execute(sa.select(provisionings.c.id).where(
                provisionings.c.state.in_(("pending", "running")),
                sa.or_(provisionings.c.lease_until.is_(None), provisionings.c.lease_until < now)))).scalars().all()
        for provisioning_id in ids:
            self.launch(provisioning_id)
        return len(ids)

    async def _acquire(self, provisioning_id: str) -> Any | None:
        now = utcnow()
        async with self.uow() as uow:
            row = (await uow.conn.execute(sa.select(provisionings).where(provisionings.c.id == provisioning_id)
                                      .with_for_update())).first()
            if row is None or row.state == "completed":
                return None
            if row.state == "running" and row.lease_until is not None and row.lease_until > now:
                return None  # someone else is running it
            await uow.conn.execute(provisionings.update().where(provisionings.c.id == provisioning_id).values(
                state="running", runs=row.runs + 1, error=None, updated_at=now,
                lease_until=now + dt.timedelta(seconds=self.lease_seconds)))
            return row

    async def run(self, provisioning_id: str) -> None:
        row = await self._acquire(provisioning_id)
        if row is None:
            return
        steps = msgspec.convert(row.steps, list[Step])
        resources = msgspec.convert(row.resources, Resources)
        correlation_token = correlation.set_current(correlation.resume(row.correlation_id, row.trace_id))
        try:
            facts = await self._facts(row.opportunity_id)
            for step in steps:
                if step.state == "done":
                    continue
                await self._save(provisioning_id, steps, resources, step=step, state="running")
                try:
                    step.resource_ids = await self._execute(step.name, facts, resources, row.id)
                except ValidationFailed as failure:
                    await self._reject(row, steps, resources, step, failure)
                    return
                except DownstreamProblem as exc:
                    if is_transient(exc):
                        await self._fail(row, steps, resources, step, exc)
                        return
                    await self._compensate(row, steps, resources, StepRefused(step.name, exc))
                    return
                step.state = "done"
                step.finished_at = utcnow()
                step.error = None
                await self._save(provisioning_id, steps, resources)
            await self._complete(row, steps, resources)
        except ValidationFailed as failure:  # the opportunity itself is gone
            await self._reject(row, steps, resources, steps[0], failure)
        except DownstreamProblem as exc:
            await self._fail(row, steps, resources, steps[0], exc)
        finally:
            correlation.reset_current(correlation_token)

    async def _facts(self, opportunity_id: str) -> _Facts:
        opportunity = await found_or_none(self.systems.crm.gateway.get_json(
            f"{CRM}/opportunities/{segment(opportunity_id)}", WonOpportunity))
        if opportunity is None:
            raise ValidationFailed(["UNKNOWN_OPPORTUNITY"], f"the CRM has no opportunity {opportunity_id}")
        account = rate_card = signed = None
        if opportunity.account_id:
            account = await found_or_none(self.systems.crm.account(opportunity.account_id))
        if opportunity.rate_card_id:
            rate_card = await found_or_none(self.systems.crm.rate_card(opportunity.rate_card_id))
        if opportunity.signed_contract_ref:
            signed = await found_or_none(self.systems.crm.contract(opportunity.signed_contract_ref))
        return _Facts(opportunity, account, rate_card, signed)

    async def _execute(self, name: StepName, facts: _Facts, resources: Resources, provisioning_id: str
                       ) -> dict[str, Any]:
        steps: dict[StepName, Callable[[_Facts, Resources, str], Awaitable[dict[str, Any]]]] = {
            "validate": self._validate, "erp_customer": self._erp_customer, "erp_contract": self._erp_contract,
            "psa_project": self._psa_project, "erp_project_dimension": self._erp_project_dimension,
            "staffing_demand": self._staffing_demand, "crm_link": self._crm_link,
        }
        return await steps[name](facts, resources, provisioning_id)

    # -- the steps ----------------------------------------------------------------------------------------------

    async def _validate(self, facts: _Facts, resources: Resources, _key: str) -> dict[str, Any]:
        opportunity = facts.opportunity
        reasons: list[str] = []
        if opportunity.stage != "closed_won":
            reasons.append("OPPORTUNITY_NOT_WON")
        if not opportunity.account_id or facts.account is None:
            reasons.append("MISSING_CUSTOMER")
        if not opportunity.legal_entity_id:
            reasons.append("MISSING_LEGAL_ENTITY")
        if not opportunity.billing_model:
            reasons.append("MISSING_BILLING_MODEL")
        if not opportunity.currency:
            reasons.append("MISSING_CURRENCY")
        if not opportunity.rate_card_id:
            reasons.append("MISSING_RATE_CARD")
        elif facts.rate_card is None:
            reasons.append("UNKNOWN_RATE_CARD")
        elif facts.rate_card.currency != opportunity.currency:
            reasons.append("RATE_CARD_CURRENCY_MISMATCH")
        if not opportunity.start_date:
            reasons.append("MISSING_START_DATE")
        elif opportunity.end_date and opportunity.end_date < opportunity.start_date:
            reasons.append("INVALID_DATES")
        reasons.extend(terms_problems(facts))
        if reasons:
            raise ValidationFailed(reasons, f"opportunity {opportunity.id} cannot be provisioned: "
                                   + ", ".join(reasons))
        return {"opportunity_id": opportunity.id}

    async def _erp_customer(self, facts: _Facts, resources: Resources, key: str) -> dict[str, Any]:
        account = facts.account
        opportunity = facts.opportunity
        assert account is not None
        customer = await self.systems.erp.create_customer({
            "id": account.id, "name": account.name,
            "billing_currency": account.billing_currency or opportunity.currency,
            "legal_entity_id": account.legal_entity_id or opportunity.legal_entity_id,
            "tax_jurisdiction": account.tax_jurisdiction or "",
            "external_ids": {"crm": account.external_ids.get("crm", account.id)},
        }, f"{key}:erp_customer")
        resources.customer_id = customer.id
        return {"customer_id": customer.id}

    async def _erp_contract(self, facts: _Facts, resources: Resources, key: str) -> dict[str, Any]:
        opportunity = facts.opportunity
        if not resources.contract_id and opportunity.provisioned_project_id:
            # Provisioned before this tier existed (or by hand): adopt that contract instead of making another.
            adopted = await found_or_none(self.systems.psa.project(opportunity.provisioned_project_id))
            if adopted is not None:
                resources.contract_id = adopted.contract_id
                resources.project_id = adopted.id
        reopen_refused = False
        if resources.contract_id:  # created by an earlier run (and perhaps closed by a compensation)
            contract = await self.systems.erp.contract(resources.contract_id)
            if contract.status != "closed":
                return {"contract_id": contract.id}
            try:
                await self.systems.erp.update_contract(contract.id, {"status": "active"})
                return {"contract_id": contract.id}
            except DownstreamProblem as exc:
                if is_transient(exc):
                    raise
                reopen_refused = True  # this ERP never reopens a closed contract: a new one replaces it
        body = contract_body(facts, resources.customer_id, reopen_refused)
        replaced = f":replaces:{resources.contract_id}" if reopen_refused else ""
        contract = await self.systems.erp.create_contract(body, f"{key}:erp_contract{replaced}")
        if contract.status == "draft":  # the signed contract was there already (one system is CRM and ERP)
            contract = await self.systems.erp.update_contract(contract.id, {"status": "active"})
        resources.contract_id = contract.id
        return {"contract_id": contract.id}

    async def _psa_project(self, facts: _Facts, resources: Resources, key: str) -> dict[str, Any]:
        opportunity = facts.opportunity
        assert resources.contract_id is not None
        existing = [p for p in await self.systems.psa.projects(contract_id=resources.contract_id)]
        if resources.project_id or existing:
            project = await self.systems.psa.project(resources.project_id or existing[0].id)
            if project.status == "closed":
                project = await self.systems.psa.update_project(project.id, {"status": "active"})
        else:
            lead = await self._delivery_lead(opportunity.legal_entity_id)
            project = await self.systems.psa.create_project({
                "manager_id": lead.id if lead else None, "business_unit_id": lead.business_unit_id if lead else None,
                "name": opportunity.name, "contract_id": resources.contract_id,
                "customer_id": resources.customer_id, "legal_entity_id": opportunity.legal_entity_id,
                "billing_model": opportunity.billing_model, "status": "active",
                "start_date": str(opportunity.start_date),
                "end_date": str(opportunity.end_date) if opportunity.end_date else None,
            }, f"{key}:psa_project")
        resources.project_id = project.id
        have = {t.name for t in await self.systems.psa.tasks(project.id)}
        for index, (name, billable) in enumerate(STANDARD_TASKS):
            if name not in have:
                await self.systems.psa.create_task(project.id, {"name": name, "billable": billable},
                                                   f"{key}:psa_task:{index}")
        resources.task_ids = [t.id for t in await self.systems.psa.tasks(project.id)]
        return {"project_id": project.id, "task_ids": resources.task_ids}

    async def _erp_project_dimension(self, facts: _Facts, resources: Resources, key: str) -> dict[str, Any]:
        assert resources.project_id is not None
        existing = await self.systems.erp.project_dimensions(resources.project_id)
        if existing:
            dimension = existing[0]
        else:
            dimension = await self.systems.erp.create_project_dimension({
                "project_id": resources.project_id, "legal_entity_id": facts.opportunity.legal_entity_id,
                "code": "P-" + resources.project_id.removeprefix("prj_").upper(),
            }, f"{key}:erp_project_dimension")
        resources.project_dimension_id = dimension.id
        return {"project_dimension_id": dimension.id}

    async def _staffing_demand(self, facts: _Facts, resources: Resources, key: str) -> dict[str, Any]:
        assert resources.project_id is not None
        existing = await self.systems.psa.assignments(project_id=resources.project_id)
        if existing:
            resources.assignment_id = existing[0].id
            return {"assignment_id": existing[0].id}
        opportunity = facts.opportunity
        lead = await self._delivery_lead(opportunity.legal_entity_id)
        if lead is None:
            raise ValidationFailed(["NO_DELIVERY_LEAD"], f"no active principal in {opportunity.legal_entity_id} "
                                   "to propose as the project's delivery lead")
        assignment = await self.systems.psa.create_assignment({
            "worker_id": lead.id, "project_id": resources.project_id, "role": lead.role,
            "planned_hours_per_week": "8", "start_date": str(opportunity.start_date),
            "end_date": str(opportunity.end_date) if opportunity.end_date else None, "status": "proposed",
        }, f"{key}:staffing_demand")
        resources.assignment_id = assignment.id
        return {"assignment_id": assignment.id}

    async def _delivery_lead(self, legal_entity_id: str | None) -> Worker | None:
        """The staffing demand a new project starts with: a delivery lead proposed (not confirmed) from the
        contracting entity's principals; resource management confirms or replaces them in the PSA."""
        principals = await self.systems.hr.workers(role="principal", status="active")
        local = [w for w in principals if w.legal_entity_id == legal_entity_id] or principals
        return min(local, key=lambda w: w.id) if local else None

    async def _crm_link(self, facts: _Facts, resources: Resources, _key: str) -> dict[str, Any]:
        await self.systems.crm.update_opportunity(facts.opportunity.id,
                                                  {"provisioned_project_id": resources.project_id})
        return {"opportunity_id": facts.opportunity.id, "project_id": resources.project_id}

    # -- outcomes ---------------------------------------------------------------------------------------------

    async def _save(self, provisioning_id: str, steps: list[Step], resources: Resources, *, step: Step | None = None,
                    state: str | None = None) -> None:
        now = utcnow()
        if step is not None and state == "running":
            step.state = "running"
            step.attempts += 1
            step.started_at = now
        async with self.uow() as uow:
            await uow.conn.execute(provisionings.update().where(provisionings.c.id == provisioning_id).values(
                steps=steps, resources=resources, updated_at=now,
                lease_until=now + dt.timedelta(seconds=self.lease_seconds)))

    async def _finish(self, row: Any, steps: list[Step], resources: Resources, state: str,
                      error: dict[str, Any] | None, exception: tuple[list[str], str] | None = None) -> None:
        now = utcnow()
        async with self.uow() as uow:
            await uow.conn.execute(provisionings.update().where(provisionings.c.id == row.id).values(
                state=state, steps=steps, resources=resources, error=error, lease_until=None, updated_at=now))
            if exception is not None:
                reasons, detail = exception
                await raise_exception(uow.conn, kind="provisioning", source_type="opportunity",
                                      source_id=row.opportunity_id, reason_codes=reasons, detail=detail,
                                      project_id=resources.project_id,
                                      payload={"provisioning_id": row.id, "opportunity_id": row.opportunity_id,
                                               "error": error, "resources": msgspec.to_builtins(resources)})
            elif state == "completed":
                await resolve_open(uow.conn, kind="provisioning", source_type="opportunity",
                                   source_id=row.opportunity_id, resolution="provisioned")
                await record_event(uow.conn, "project.provisioned", {
                    "opportunity_id": row.opportunity_id, "customer_id": resources.customer_id or "",
                    "contract_id": resources.contract_id or "", "project_id": resources.project_id or ""},
                    {"provisioning_id": row.id, "task_ids": resources.task_ids,
                     "project_dimension_id": resources.project_dimension_id,
                     "assignment_id": resources.assignment_id})

    async def _complete(self, row: Any, steps: list[Step], resources: Resources) -> None:
        await self._finish(row, steps, resources, "completed", None)

    async def _reject(self, row: Any, steps: list[Step], resources: Resources, step: Step,
                      failure: ValidationFailed) -> None:
        step.state = "failed"
        step.finished_at = utcnow()
        step.error = {"reason_codes": failure.reasons, "detail": failure.detail}
        await self._finish(row, steps, resources, "rejected", {"step": step.name, **step.error},
                           (failure.reasons, failure.detail))

    async def _fail(self, row: Any, steps: list[Step], resources: Resources, step: Step,
                    exc: DownstreamProblem) -> None:
        step.state = "failed"
        step.finished_at = utcnow()
        step.error = _problem(exc)
        await self._finish(row, steps, resources, "failed", {"step": step.name, **step.error})

    async def _compensate(self, row: Any, steps: list[Step], resources: Resources, refused: StepRefused) -> None:
        failed = next(s for s in steps if s.name == refused.step)
        failed.state = "failed"
        failed.finished_at = utcnow()
        failed.error = _problem(refused.problem)
        undo: list[tuple[StepName, Callable[[], Awaitable[Any]]]] = []
        if resources.assignment_id:
            assignment_id = resources.assignment_id
            undo.append(("staffing_demand", lambda: self.systems.psa.gateway.request(
                "POST", f"/system/psa/v1/assignments/{segment(assignment_id)}/transitions",
                json={"to_status": "ended"})))
        if resources.project_id:
            project_id = resources.project_id
            undo.append(("psa_project", lambda: self.systems.psa.update_project(project_id, {"status": "closed"})))
        if resources.contract_id:
            contract_id = resources.contract_id
            undo.append(("erp_contract", lambda: self.systems.erp.update_contract(contract_id, {"status": "closed"})))
        notes: list[str] = []
        for name, action in undo:
            try:
                await action()
            except DownstreamProblem as exc:
                notes.append(f"{name}: {describe(exc)}")
                continue
            step = next(s for s in steps if s.name == name)
            if step.state == "done":
                step.state = "compensated"
        reason = refused.step.upper() + "_REJECTED"
        detail = f"{refused.step} was refused: {describe(refused.problem)}"
        if notes:
            detail += "; compensation incomplete: " + "; ".join(notes)
        await self._finish(row, steps, resources, "compensated",
                           {"step": refused.step, **(failed.error or {}), "compensation_errors": notes},
                           ([reason], detail))

    async def retry_exception(self, item: ExceptionItem, actor_id: str | None) -> RetryResult:
        provisioning = await self.by_opportunity(item.source_id)
        if provisioning.state == "completed":
            async with self.uow() as uow:
                await resolve_open(uow.conn, kind="provisioning", source_type="opportunity", source_id=item.source_id,
                                   resolution="provisioned", actor_id=actor_id)
            return "resolved", "the opportunity is provisioned"
        self.launch(provisioning.id)
        await self.wait(provisioning.id)
        after = await self.get(provisioning.id)
        if after.state == "completed":
            return "resolved", f"provisioned as {after.resources.project_id}"
        return "still_failing", f"provisioning is {after.state}: {(after.error or {}).get('detail', '')}"


def terms_problems(facts: _Facts) -> list[str]:
    """What the deal lacks to be billed by its terms: a fixed fee needs its instalments and a retainer its fee per
    period, from the signed contract (the deal amount is the contract's value, never an amount per period)."""
    opportunity, signed = facts.opportunity, facts.signed
    reasons = []
    if signed is not None and (signed.billing_model != opportunity.billing_model
                               or signed.currency != opportunity.currency):
        reasons.append("SIGNED_CONTRACT_MISMATCH")
    schedule = signed.billing_schedule if signed is not None else None
    if opportunity.billing_model == "fixed_fee" and not (schedule and schedule.lines):
        reasons.append("MISSING_BILLING_SCHEDULE")
    if opportunity.billing_model == "retainer" and (schedule is None or schedule.period_fee is None):
        reasons.append("MISSING_RETAINER_FEE")
    return reasons


def contract_body(facts: _Facts, customer_id: str | None, replacing: bool) -> dict[str, Any]:
    """The ERP contract for the won deal: its rate card from the opportunity, its term and billing terms from the
    signed contract (the opportunity's engagement dates and amount without one). The signed contract's number is
    the ERP contract's (unless it replaces a closed one)."""
    opportunity, signed = facts.opportunity, facts.signed
    model = opportunity.billing_model
    schedule = signed.billing_schedule if signed is not None else None
    value = signed.total_value if signed is not None and signed.total_value is not None else (
        opportunity.nte_amount if model == "time_and_materials" else opportunity.amount)
    start, end = (signed.start_date, signed.end_date) if signed is not None else (
        opportunity.start_date, opportunity.end_date)
    return {
        "id": opportunity.signed_contract_ref if signed is not None and not replacing else None,
        "customer_id": customer_id, "legal_entity_id": opportunity.legal_entity_id,
        "name": signed.name if signed is not None else f"{opportunity.name} SOW", "currency": opportunity.currency,
        "billing_model": model, "start_date": str(start), "end_date": str(end) if end else None,
        "status": "active", "rate_card_id": opportunity.rate_card_id,
        "nte_amount": str(opportunity.nte_amount) if opportunity.nte_amount is not None else None,
        "total_value": str(value) if value is not None else None,
        "billing_profile": {"invoice_frequency": "milestone" if model == "milestone" else "monthly",
                            "payment_terms_days": signed.billing_profile.payment_terms_days if signed else 30},
        "billing_schedule": msgspec.to_builtins(schedule) if schedule is not None else {},
        # the signed contract's markup on billable expenses (none signed: expenses at cost)
        "expense_markup_percent": decimal_text(signed.expense_markup_percent)
        if signed is not None and signed.expense_markup_percent is not None else None,
    }


def _problem(exc: DownstreamProblem) -> dict[str, Any]:
    return {"status": exc.status, "type": "/catalog/problems/" + (exc.slug or "error"), "detail": exc.detail or "",
            "downstream": exc.extensions.get("downstream")}


def _view(row: Any, exception_id: str | None) -> Provisioning:
    return Provisioning(
        id=row.id, opportunity_id=row.opportunity_id, state=row.state,
        steps=msgspec.convert(row.steps, list[Step]), resources=msgspec.convert(row.resources, Resources),
        error=row.error, exception_id=exception_id, runs=row.runs, created_at=row.created_at,
        updated_at=row.updated_at)


async def provisioned_opportunity(conn: AsyncConnection, contract_id: str) -> str | None:
    """The won opportunity this tier provisioned ``contract_id`` from, if it did."""
    rows = (await conn.execute(sa.select(provisionings.c.opportunity_id, provisionings.c.resources))).all()
    return next((str(row.opportunity_id) for row in rows if (row.resources or {}).get("contract_id") == contract_id),
                None)
