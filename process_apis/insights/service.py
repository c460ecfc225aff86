"""Dashboard figures, computed once here from the systems of record and the process tier's own ledger.

Every money figure comes from the same facts and rules the time-to-bill workflow uses: amounts of approved
time are billing-eligibility verdicts (:func:`process_apis.billing.eligibility.evaluate_batch` over
:func:`process_apis.billing.facts.load_context`), what counts as billable is the eligibility rule
``not_billable``, and an NTE's consumption is the very "billed so far" the ``NTE_EXCEEDED`` rule compares
with (ERP postings plus what this tier has queued). The definitions of each figure are in the contract.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence, Set
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

import msgspec

from contracts.canonical import (
    COST_ONLY_REASONS,
    INVOICE_ISSUED,
    TIME_ENTRY_APPROVED,
    TIME_ENTRY_RECORDED,
    Assignment,
    BusinessUnit,
    Contract,
    Invoice,
    Milestone,
    Posting,
    Project,
    RateCard,
    TimeEntry,
    Worker,
)
from process_apis.billing.eligibility import CENT, BillingContext, Eligibility, evaluate_batch, not_billable
from process_apis.billing.facts import load_context, with_local_ledger
from process_apis.exceptions.queries import unresolved
from process_apis.expenses.billing import billed_amount
from process_apis.expenses.queries import billable_expense_ids
from process_apis.insights.models import (
    AgingBucket,
    BusinessUnitMargin,
    BusinessUnitUtilization,
    CountByKey,
    CurrencyAmount,
    ExceptionAgeBucket,
    ExceptionsSummary,
    InvoiceReadyBacklog,
    MarginFigures,
    ProjectBacklog,
    ProjectMargin,
    ProjectMargins,
    UnbilledTimeAging,
    Utilization,
    UtilizationFigures,
    WorkerUtilization,
)
from process_apis.insights.settings import InsightsSettings
from process_apis.revenue.queries import written_off_by_project
from process_apis.staffing.availability import availability
from process_apis.systems import HR, Systems, all_pages
from runtime.downstream import DownstreamProblem, found_or_none
from runtime.problems import BadRequest, FieldError
from runtime.storage import Database, utcnow

# Age buckets in days, shared by unbilled time and exceptions: 0-7, 8-30, 31-60, 60+ (61 and more).
AGE_BUCKETS: Final[tuple[tuple[str, int, int | None], ...]] = (
    ("0-7", 0, 7), ("8-30", 8, 30), ("31-60", 31, 60), ("60+", 61, None))
# Time recorded and handed in: the "actual" of utilization and the cost of a project.
TENTH: Final = Decimal("0.1")
MAX_RANGE_DAYS: Final = 366


def bucket_of(age_days: int) -> str:
    for name, low, high in AGE_BUCKETS:
        if age_days >= low and (high is None or age_days <= high):
            return name
    return AGE_BUCKETS[0][0]  # dated in the future: as young as it gets


def _employed_during(worker: Worker, first: dt.date) -> bool:
    """Whether the worker was employed on or after ``first`` (a termination without a date counts as gone)."""
    if worker.termination_date is not None:
        return worker.termination_date >= first
    return worker.status != "terminated"


def percent(part: Decimal, whole: Decimal) -> Decimal | None:
    if whole <= 0:
        return None
    return (part * 100 / whole).quantize(TENTH, rounding=ROUND_HALF_EVEN)


def working_days(start: dt.date, end: dt.date) -> int:
    """Monday to Friday days from ``start`` to ``end``, both included."""
    if end < start:
        return 0
    days = (end - start).days + 1
    full_weeks, rest = divmod(days, 7)
    count = full_weeks * 5
    for offset in range(rest):
        if (start + dt.timedelta(days=full_weeks * 7 + offset)).weekday() < 5:
            count += 1
    return count


def _live(entries: Iterable[TimeEntry], states: frozenset[str]) -> list[TimeEntry]:
    """Entries in ``states`` that no correction has superseded (a correction replaces, never adds)."""
    return [e for e in entries if e.state in states and e.superseded_by_id is None]


def _amounts(totals: dict[str, Decimal]) -> list[CurrencyAmount]:
    return [CurrencyAmount(currency=c, amount=a.quantize(CENT)) for c, a in sorted(totals.items())]


class InsightsService:
    def __init__(self, db: Database, systems: Systems, settings: InsightsSettings) -> None:
        self.db = db
        self.systems = systems
        self.settings = settings

    # -- utilization ------------------------------------------------------------------------------------------

    async def utilization(self, *, from_date: dt.date, to_date: dt.date, business_unit_id: str | None,
                          worker_id: str | None) -> Utilization:
        if to_date < from_date:
            raise BadRequest("to_date is before from_date", slug="validation-error",
                             errors=[FieldError(pointer="/to_date", detail="before from_date", location="query")])
        if (to_date - from_date).days >= MAX_RANGE_DAYS:
            raise BadRequest(f"ask for at most {MAX_RANGE_DAYS} days", slug="validation-error",
                             errors=[FieldError(pointer="/to_date", detail=f"at most {MAX_RANGE_DAYS} days after "
                                                "from_date", location="query")])
        gateway = self.systems.psa.gateway
        workers, units, assignments, entries = await asyncio.gather(
            all_pages(gateway, f"{HR}/workers", Worker, {"business_unit_id": business_unit_id}),
            all_pages(gateway, f"{HR}/business-units", BusinessUnit),
            self.systems.psa.assignments(status="confirmed", worker_id=worker_id),
            self.systems.psa.time_entries(worker_id=worker_id, from_date=from_date, to_date=to_date))
        workers = [w for w in workers if _employed_during(w, from_date) and (worker_id is None or w.id == worker_id)]
        recorded = _live(entries, TIME_ENTRY_RECORDED)
        non_billable_tasks = await self._non_billable_tasks({e.project_id for e in recorded})
        context = BillingContext(non_billable_tasks=non_billable_tasks)
        days = working_days(from_date, to_date)
        assignments_of: dict[str, list[Assignment]] = defaultdict(list)
        for a in assignments:
            assignments_of[a.worker_id].append(a)
        # Capacity and plan follow staffing's availability rule: no capacity and nothing planned on a day of leave
        # or after the last day, so a consultant on leave does not read as under-utilised.
        available = {w.id: availability(w, assignments_of[w.id], from_date, to_date) for w in workers}
        actual: dict[str, Decimal] = defaultdict(Decimal)
        billable: dict[str, Decimal] = defaultdict(Decimal)
        for entry in recorded:
            actual[entry.worker_id] += entry.hours
            if not not_billable(entry, None, context):  # type: ignore[arg-type]  # the rule reads no facts
                billable[entry.worker_id] += entry.hours
        rows = [self._worker_row(w, available[w.id].available_hours, available[w.id].planned_hours, actual[w.id],
                                 billable[w.id]) for w in sorted(workers, key=lambda w: w.id)]
        names = {u.id: u.name for u in units}
        by_unit: dict[str, list[WorkerUtilization]] = defaultdict(list)
        for row in rows:
            by_unit[row.business_unit_id].append(row)
        unit_rows = [BusinessUnitUtilization(business_unit_id=unit, name=names.get(unit, unit), workers=len(members),
                                             **_figures_of(members))
                     for unit, members in sorted(by_unit.items())]
        return Utilization(from_date=from_date, to_date=to_date, working_days=days, workers=rows,
                           business_units=unit_rows, totals=UtilizationFigures(**_figures_of(rows)),
                           computed_at=utcnow())

    @staticmethod
    def _worker_row(worker: Worker, capacity: Decimal, planned: Decimal, actual: Decimal,
                    billable: Decimal) -> WorkerUtilization:
        return WorkerUtilization(worker_id=worker.id, name=worker.name, role=worker.role,
                                 business_unit_id=worker.business_unit_id,
                                 **_figures(capacity, planned, actual, billable))

    async def _non_billable_tasks(self, project_ids: Iterable[str]) -> frozenset[str]:
        limit = asyncio.Semaphore(8)

        async def one(project_id: str) -> list[str]:
            async with limit:
                return [t.id for t in await self.systems.psa.tasks(project_id) if not t.billable]

        found = await asyncio.gather(*(one(p) for p in sorted(project_ids)))
        return frozenset(task for tasks in found for task in tasks)

    # -- invoice-ready backlog --------------------------------------------------------------------------------

    async def invoice_ready_backlog(self, *, project_id: str | None) -> InvoiceReadyBacklog:
        projects, posted, postings, milestones, contracts = await asyncio.gather(
            self._projects(project_id),
            self.systems.psa.time_entries(state="posted", project_id=project_id),
            self.systems.erp.postings(project_id=project_id),
            self.systems.psa.milestones(state="accepted", project_id=project_id),
            self.systems.erp.contracts())
        by_source = {p.source_id: p for p in postings}
        currency_of = {c.id: c.currency for c in contracts}
        entries_of: dict[str, list[TimeEntry]] = defaultdict(list)
        for entry in _live(posted, frozenset({"posted"})):
            entries_of[entry.project_id].append(entry)
        milestones_of: dict[str, list[Milestone]] = defaultdict(list)
        for milestone in milestones:
            milestones_of[milestone.project_id].append(milestone)
        rows: list[ProjectBacklog] = []
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for project in projects:
            entries, accepted = entries_of.get(project.id, []), milestones_of.get(project.id, [])
            if not entries and not accepted:
                continue
            booked = [by_source[e.id] for e in entries if e.id in by_source]
            posted_amount = sum((p.amount for p in booked), Decimal(0))
            milestone_amount = sum((m.amount for m in accepted), Decimal(0))
            currency = currency_of.get(project.contract_id) or (booked[0].currency if booked else
                                                                accepted[0].currency if accepted else "USD")
            rows.append(ProjectBacklog(
                project_id=project.id, project_name=project.name, contract_id=project.contract_id,
                billing_model=project.billing_model, currency=currency, posted_entries=len(entries),
                posted_hours=sum((e.hours for e in entries), Decimal(0)), posted_amount=posted_amount.quantize(CENT),
                accepted_milestones=len(accepted), milestone_amount=milestone_amount.quantize(CENT),
                total_amount=(posted_amount + milestone_amount).quantize(CENT),
                oldest_work_date=min((e.work_date for e in entries), default=None),
                entries_without_posting=len(entries) - len(booked)))
            totals[currency] += posted_amount + milestone_amount
        rows.sort(key=lambda r: (-r.total_amount, r.project_id))
        return InvoiceReadyBacklog(projects=rows, totals=_amounts(totals), computed_at=utcnow())

    # -- unbilled approved time aging -------------------------------------------------------------------------

    async def unbilled_time_aging(self, *, as_of: dt.date) -> UnbilledTimeAging:
        approved, posted, postings = await asyncio.gather(
            self.systems.psa.time_entries(state="approved"), self.systems.psa.time_entries(state="posted"),
            self.systems.erp.postings())
        approved = _live(approved, frozenset({"approved"}))
        posted = _live(posted, frozenset({"posted"}))
        by_source = {p.source_id: p for p in postings}
        # An approved entry's value is its eligibility verdict, exactly as the workflow would settle it now.
        context = await load_context(self.systems, approved)
        async with self.db.read() as conn:
            context = await with_local_ledger(self.db, conn, context, lock=False)
        verdicts = evaluate_batch(approved, context)
        hours: dict[str, Decimal] = defaultdict(Decimal)
        counts: Counter[str] = Counter()
        held_hours: dict[str, Decimal] = defaultdict(Decimal)
        held: Counter[str] = Counter()
        money: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))

        def add(entry: TimeEntry, amount: Decimal | None, currency: str | None, is_held: bool) -> None:
            bucket = bucket_of((as_of - entry.work_date).days)
            counts[bucket] += 1
            hours[bucket] += entry.hours
            if amount is not None and currency is not None:
                money[bucket][currency] += amount
            if is_held:
                held[bucket] += 1
                held_hours[bucket] += entry.hours

        for entry, verdict in zip(approved, verdicts, strict=True):
            if COST_ONLY_REASONS & set(verdict.reasons):
                continue  # never billed, whatever else holds it: cost, not unbilled revenue
            booked = by_source.get(entry.id)
            if verdict.disposition == "already_posted" and booked is not None:
                add(entry, booked.amount, booked.currency, False)
            else:
                add(entry, verdict.amount, verdict.currency, verdict.disposition == "hold")
        for entry in posted:
            booked = by_source.get(entry.id)
            add(entry, booked.amount if booked else None, booked.currency if booked else None, False)
        buckets = [AgingBucket(bucket=name, min_days=low, max_days=high, entries=counts[name], hours=hours[name],
                               amounts=_amounts(money[name]), held_entries=held[name], held_hours=held_hours[name])
                   for name, low, high in AGE_BUCKETS]
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for per_currency in money.values():
            for currency, amount in per_currency.items():
                totals[currency] += amount
        return UnbilledTimeAging(as_of=as_of, buckets=buckets, total_entries=sum(counts.values()),
                                 total_hours=sum(hours.values(), Decimal(0)), totals=_amounts(totals),
                                 computed_at=utcnow())

    # -- exceptions ------------------------------------------------------------------------------------------

    async def exceptions_summary(self) -> ExceptionsSummary:
        now = utcnow()
        async with self.db.read() as conn:
            rows = await unresolved(conn)
        by_unit: Counter[str] = Counter()
        by_reason: Counter[str] = Counter()
        by_kind: Counter[str] = Counter()
        by_age: Counter[str] = Counter()
        for row in rows:
            by_unit[row.business_unit_id or "unassigned"] += 1
            by_kind[row.kind] += 1
            by_reason.update(dict.fromkeys(row.reason_codes, 1))
            by_age[bucket_of(max(0, (now - row.created_at).days))] += 1
        return ExceptionsSummary(
            open_total=len(rows), by_business_unit=_counts(by_unit), by_reason=_counts(by_reason),
            by_kind=_counts(by_kind),
            by_age=[ExceptionAgeBucket(bucket=name, min_days=low, max_days=high, count=by_age[name])
                    for name, low, high in AGE_BUCKETS],
            computed_at=now)

    # -- project margin and NTE burn ---------------------------------------------------------------------------

    async def _recognized_fixed_fees(self, contracts: Sequence[Contract]) -> dict[str, Decimal]:
        """Revenue the ERP has recognised on each fixed-fee contract (revenue/v1 posts it from the schedule); none
        where the ERP keeps no revenue schedules (Tryton answers not-supported)."""
        ids = [c.id for c in contracts if c.billing_model == "fixed_fee"]

        async def recognized(contract_id: str) -> Decimal:
            try:
                lines = await self.systems.erp.revenue_schedules(contract_id)
            except DownstreamProblem as exc:
                if exc.slug == "not-supported":
                    return Decimal(0)
                raise
            return sum((line.recognized_amount for line in lines), Decimal(0))

        found = await asyncio.gather(*(recognized(i) for i in ids))
        return dict(zip(ids, found, strict=True))

    async def _written_off(self) -> dict[str, Decimal]:
        """Revenue written off per project (revenue v2 records write-offs in this tier's database)."""
        async with self.db.read() as conn:
            return await written_off_by_project(conn)

    async def project_margins(self, *, project_id: str | None) -> ProjectMargins:
        gateway = self.systems.psa.gateway
        as_of = utcnow().date()
        (projects, contracts, entries, workers, invoices), (postings, milestones, delivered, assignments, units) = (
            await asyncio.gather(
                asyncio.gather(
                    self._projects(project_id), self.systems.erp.contracts(),
                    self.systems.psa.time_entries(project_id=project_id), all_pages(gateway, f"{HR}/workers", Worker),
                    self.systems.erp.invoices()),
                asyncio.gather(self.systems.erp.postings(project_id=project_id),
                               self.systems.psa.milestones(state="accepted", project_id=project_id),
                               self.systems.psa.milestones(state="completed", project_id=project_id),
                               self.systems.psa.assignments(project_id=project_id),
                               all_pages(gateway, f"{HR}/business-units", BusinessUnit))))
        recognized, cards, written_off = await asyncio.gather(
            self._recognized_fixed_fees(contracts), self._rate_cards(contracts), self._written_off())
        costed = _live(entries, TIME_ENTRY_APPROVED)
        contract_of = {c.id: c for c in contracts}
        # Consumption of an NTE is what the NTE_EXCEEDED rule compares with: ERP postings plus queued postings.
        context = await load_context(self.systems, costed)
        async with self.db.read() as conn:
            context = await with_local_ledger(self.db, conn, context, lock=False)
        spent = _expense_figures(postings, invoices, await self._billable_expenses())
        billed_by = _revenue_by_project(invoices, projects, costed, spent.project_of)
        # Cost runs over every approved hour, so revenue must too: what is invoiced, plus what the same work is
        # worth and not yet invoiced (posted time at its ERP amount, approved time the rules would post now,
        # accepted milestones). Billed revenue alone against all cost made every project look loss-making.
        unbilled_by = _unbilled_revenue(costed, evaluate_batch(_live(costed, frozenset({"approved"})), context),
                                        {p.source_id: p.amount for p in postings}, milestones)
        cost_by: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        hours_by: dict[str, Decimal] = defaultdict(Decimal)
        worker_of = {w.id: w for w in workers}
        for entry in costed:
            hours_by[entry.project_id] += entry.hours
            rate = _cost_rate(worker_of.get(entry.worker_id), entry.work_date)
            if rate is not None:
                cost_by[entry.project_id][rate[1]] += entry.hours * rate[0]
        fx = self.settings.fx_rates_to_usd
        rows: list[ProjectMargin] = []
        for project in projects:
            contract = contract_of.get(project.contract_id)
            currency = contract.currency if contract else "USD"
            converted_from: set[str] = set()
            unconverted: dict[str, Decimal] = defaultdict(Decimal)
            time_cost = _in_currency(cost_by[project.id], currency, fx, converted_from, unconverted)
            time_costed = not unconverted
            expense_cost = _in_currency(spent.cost.get(project.id, {}), currency, fx, converted_from, unconverted)
            billed_expenses = spent.billed.get(project.id, Decimal(0)).quantize(CENT)
            markup = contract.expense_markup_percent if contract else None
            unbilled_expenses = sum((billed_amount(amount, markup)
                                     for amount in spent.unbilled.get(project.id, {}).get(currency, [])),
                                    Decimal(0)).quantize(CENT)
            billed = billed_by.get(project.id, Decimal(0)).quantize(CENT)
            unbilled = unbilled_by.get(project.id, Decimal(0)).quantize(CENT)
            written = written_off.get(project.id, Decimal(0))
            if project.contract_id in recognized:
                # A fixed fee earns what its revenue schedule has recognised (time is not its measure of value);
                # the schedule is net of write-offs already. Expenses billed beside the fee are not part of it.
                unbilled = max(Decimal(0), recognized[project.contract_id] - (billed - billed_expenses)).quantize(CENT)
            else:
                unbilled = max(Decimal(0), unbilled - written).quantize(CENT)
            # Billable expenses posted and not yet invoiced earn what the invoice will bill for them (at cost or
            # with the contract's markup); non-billable ones earn nothing: they are pure cost.
            unbilled += unbilled_expenses
            earned = billed + unbilled
            expense_cost = expense_cost.quantize(CENT)
            stated_time_cost = time_cost.quantize(CENT) if time_costed else None
            cost = stated_time_cost + expense_cost if stated_time_cost is not None and not unconverted else None
            margin = earned - cost if cost is not None else None
            nte = contract.nte_amount if contract else None
            consumed = context.billed.get(project.contract_id, Decimal(0)).quantize(CENT) if nte is not None else None
            plan = _plan(project, contract, cards, [a for a in assignments if a.project_id == project.id],
                         worker_of, as_of, fx)
            margin_pct = percent(margin, earned) if margin is not None else None
            variance = margin_pct - plan.margin_pct if margin_pct is not None and plan.margin_pct is not None else None
            burn = percent(consumed, nte) if consumed is not None and nte is not None else None
            awaiting = [m for m in delivered if m.project_id == project.id]
            rows.append(ProjectMargin(
                planned_hours=plan.hours, planned_revenue=plan.revenue, planned_cost=plan.cost,
                planned_margin=plan.margin, planned_margin_pct=plan.margin_pct, margin_variance_pct=variance,
                attention=_attention(project.billing_model, currency, margin, variance, cost, earned, burn, awaiting),
                project_id=project.id, project_name=project.name, contract_id=project.contract_id,
                business_unit_id=project.business_unit_id, billing_model=project.billing_model, currency=currency,
                billed_revenue=billed, unbilled_revenue=unbilled, earned_revenue=earned, cost=cost,
                cost_hours=hours_by[project.id], margin=margin,
                margin_pct=margin_pct,
                unconverted_costs=_amounts(unconverted), cost_converted_from=sorted(converted_from),
                nte_amount=nte, nte_consumed=consumed,
                nte_burn_pct=burn, written_off=written, time_cost=stated_time_cost, expense_cost=expense_cost,
                billed_expenses=billed_expenses, unbilled_expenses=unbilled_expenses,
                expense_revenue=billed_expenses + unbilled_expenses))
        names = {u.id: u.name for u in units}
        by_unit: dict[str, list[ProjectMargin]] = defaultdict(list)
        for row in rows:
            by_unit[row.business_unit_id or "unassigned"].append(row)
        unit_rows = [BusinessUnitMargin(business_unit_id=unit, name=names.get(unit, unit),
                                        **msgspec.structs.asdict(_in_usd(members, fx)))
                     for unit, members in sorted(by_unit.items())]
        return ProjectMargins(projects=rows, fx_rates_to_usd=dict(fx), fx_rates_as_of=self.settings.fx_rates_as_of,
                              computed_at=utcnow(), planned_as_of=as_of, reporting_currency="USD",
                              business_units=unit_rows, totals=_sum_figures(unit_rows))

    async def _rate_cards(self, contracts: Sequence[Contract]) -> dict[str, RateCard]:
        """The contracts' rate cards from the CRM (a card the CRM no longer has prices the plan at nothing)."""
        ids = sorted({c.rate_card_id for c in contracts if c.rate_card_id})
        found = await asyncio.gather(*(found_or_none(self.systems.crm.rate_card(i)) for i in ids))
        return {card.id: card for card in found if card is not None}

    async def _billable_expenses(self) -> frozenset[str]:
        """The expenses this tier captured as billable (the ERP posting of an expense does not say)."""
        async with self.db.read() as conn:
            return await billable_expense_ids(conn)

    async def _projects(self, project_id: str | None) -> list[Project]:
        if project_id is not None:
            return [await self.systems.psa.project(project_id)]
        return sorted(await self.systems.psa.projects(), key=lambda p: p.id)


def _figures(capacity: Decimal, planned: Decimal, actual: Decimal, billable: Decimal) -> dict[str, Any]:
    capacity, planned = capacity.quantize(TENTH), planned.quantize(TENTH)
    return msgspec.structs.asdict(UtilizationFigures(
        capacity_hours=capacity, planned_hours=planned, actual_hours=actual, billable_hours=billable,
        planned_utilization_pct=percent(planned, capacity), actual_utilization_pct=percent(actual, capacity),
        billable_utilization_pct=percent(billable, capacity)))


def _figures_of(rows: Sequence[UtilizationFigures]) -> dict[str, Any]:
    return _figures(sum((r.capacity_hours for r in rows), Decimal(0)), sum((r.planned_hours for r in rows), Decimal(0)),
                    sum((r.actual_hours for r in rows), Decimal(0)), sum((r.billable_hours for r in rows), Decimal(0)))


def _counts(counter: Counter[str]) -> list[CountByKey]:
    return [CountByKey(key=k, count=n) for k, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


def _cost_rate(worker: Worker | None, day: dt.date) -> tuple[Decimal, str] | None:
    if worker is None:
        return None
    for rate in worker.cost_rates:
        if rate.valid_from <= day and (rate.valid_to is None or day <= rate.valid_to):
            return rate.hourly_cost, rate.currency
    return None


class _Plan(msgspec.Struct, kw_only=True):
    hours: Decimal
    revenue: Decimal
    cost: Decimal | None
    margin: Decimal | None
    margin_pct: Decimal | None


def _bill_rate(card: RateCard | None, role: str, day: dt.date) -> Decimal | None:
    if card is None:
        return None
    for line in card.lines:
        if line.role == role and line.valid_from <= day and (line.valid_to is None or day <= line.valid_to):
            return line.hourly_rate
    return None


def planned_hours(assignment: Assignment, as_of: dt.date) -> tuple[Decimal, dt.date] | None:
    """Hours an assignment plans from its start to ``as_of`` (its end when sooner), to the tenth, and its last
    planned day; None when it starts later."""
    last = min(assignment.end_date or as_of, as_of)
    if last < assignment.start_date:
        return None
    hours = assignment.planned_hours_per_week * working_days(assignment.start_date, last) / 5
    return hours.quantize(TENTH, rounding=ROUND_HALF_EVEN), last


def _plan(project: Project, contract: Contract | None, cards: dict[str, RateCard], assignments: Sequence[Assignment],
          worker_of: dict[str, Worker], as_of: dt.date, fx: dict[str, Decimal]) -> _Plan:
    """The planned baseline to date: each confirmed (or ended) assignment's planned hours times the rate card's
    bill rate for its role (revenue) and the worker's HR cost rate (cost, in the contract currency at the
    planning rates), both the rates in force on the assignment's last planned day."""
    currency = contract.currency if contract else "USD"
    card = cards.get(contract.rate_card_id) if contract and contract.rate_card_id else None
    hours = revenue = cost = Decimal(0)
    costed = True
    for assignment in sorted(assignments, key=lambda a: a.id):
        if assignment.status not in ("confirmed", "ended"):
            continue
        planned = planned_hours(assignment, as_of)
        if planned is None:
            continue
        amount, last = planned
        hours += amount
        rate = _bill_rate(card, assignment.role, last)
        if rate is not None:
            revenue += (amount * rate).quantize(CENT, rounding=ROUND_HALF_EVEN)
        cost_rate = _cost_rate(worker_of.get(assignment.worker_id), last)
        if cost_rate is None or (cost_rate[1] != currency and (cost_rate[1] not in fx or currency not in fx)):
            costed = False
            continue
        converted = amount * cost_rate[0] * (fx[cost_rate[1]] / fx[currency] if cost_rate[1] != currency else 1)
        cost += converted.quantize(CENT, rounding=ROUND_HALF_EVEN)
    if not costed:
        return _Plan(hours=hours, revenue=revenue, cost=None, margin=None, margin_pct=None)
    return _Plan(hours=hours, revenue=revenue, cost=cost, margin=revenue - cost,
                 margin_pct=percent(revenue - cost, revenue))


# A project needs attention when it loses money, is near its not-to-exceed, or its margin is this many points
# below plan (a little below plan is normal: the plan prices every planned hour at its bill rate, while some
# recorded time is internal and earns nothing).
ATTENTION_POINTS: Final = Decimal(40)
NTE_WARNING_PCT: Final = Decimal(90)


def _attention(model: str, currency: str, margin: Decimal | None, variance: Decimal | None, cost: Decimal | None,
               earned: Decimal, burn: Decimal | None, awaiting: Sequence[Milestone]) -> str | None:
    """One line saying why a project needs attention (None when it does not), from the figures beside it."""
    near_cap = burn is not None and burn >= NTE_WARNING_PCT
    below = variance is not None and variance <= -ATTENTION_POINTS
    if margin is None or cost is None or not (margin < 0 or near_cap or below):
        return None
    spent = f"cost to date {_money(cost, currency)} against {_money(earned, currency)}"
    if model == "milestone" and awaiting:
        worth = sum((m.amount for m in awaiting), Decimal(0))
        return (f"{len(awaiting)} delivered milestone(s) worth {_money(worth, currency)} await customer acceptance: "
                f"{spent} of milestones accepted.")
    if model == "milestone":
        return f"Milestones behind the work: {spent} of milestones accepted, the next one not yet delivered."
    if model == "fixed_fee":
        return (f"Fixed fee {'over' if margin < 0 else 'close to'} budget: {spent} of the fee recognised "
                "(percent complete lags the hours spent).")
    if near_cap:
        return (f"At {burn}% of its not-to-exceed: approved time past the cap is held and earns nothing until "
                "the cap is raised.")
    if margin < 0:
        return f"Losing money: {spent} earned."
    return f"Margin {abs(variance or Decimal(0))} points below plan."


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount.quantize(CENT, rounding=ROUND_HALF_EVEN):,} {currency}"


def _usd(amount: Decimal, currency: str, fx: dict[str, Decimal]) -> Decimal:
    return (amount * fx[currency]).quantize(CENT, rounding=ROUND_HALF_EVEN)


def _in_usd(rows: Sequence[ProjectMargin], fx: dict[str, Decimal]) -> MarginFigures:
    """Plan and actual of ``rows`` in USD, each project's figure converted and rounded to the cent before summing;
    the cost of time is the cost less the expenses (both converted so), so that the two add up to the cost here too.
    A project whose cost or planned cost cannot be stated (a currency without a planning rate) is left out."""
    counted = [r for r in rows if r.cost is not None and r.planned_cost is not None and r.currency in fx]

    def total(figure: Callable[[ProjectMargin], Decimal | None]) -> Decimal:
        return sum((_usd(figure(r) or Decimal(0), r.currency, fx) for r in counted), Decimal(0))

    cost, expense_cost = total(lambda r: r.cost), total(lambda r: r.expense_cost)
    return _figures_in_usd(len(counted), total(lambda r: r.planned_revenue), total(lambda r: r.planned_cost),
                           total(lambda r: r.earned_revenue), cost - expense_cost, expense_cost,
                           total(lambda r: r.expense_revenue))


def _figures_in_usd(projects: int, planned_revenue: Decimal, planned_cost: Decimal, earned: Decimal,
                    time_cost: Decimal, expense_cost: Decimal, expense_revenue: Decimal) -> MarginFigures:
    cost = time_cost + expense_cost
    return MarginFigures(projects=projects, planned_revenue=planned_revenue, planned_cost=planned_cost,
                         planned_margin=planned_revenue - planned_cost,
                         planned_margin_pct=percent(planned_revenue - planned_cost, planned_revenue),
                         earned_revenue=earned, cost=cost, margin=earned - cost,
                         margin_pct=percent(earned - cost, earned), time_cost=time_cost, expense_cost=expense_cost,
                         expense_revenue=expense_revenue)


def _sum_figures(rows: Sequence[MarginFigures]) -> MarginFigures:
    """The firm's totals: the sums of the business units' rows."""

    def total(figure: Callable[[MarginFigures], Decimal]) -> Decimal:
        return sum((figure(r) for r in rows), Decimal(0))

    return _figures_in_usd(sum(r.projects for r in rows), total(lambda r: r.planned_revenue),
                           total(lambda r: r.planned_cost), total(lambda r: r.earned_revenue),
                           total(lambda r: r.time_cost), total(lambda r: r.expense_cost),
                           total(lambda r: r.expense_revenue))


def _in_currency(amounts: dict[str, Decimal], currency: str, fx: dict[str, Decimal], converted_from: set[str],
                 unconverted: dict[str, Decimal]) -> Decimal:
    """``amounts`` (per currency) stated in ``currency`` at the planning rates; a currency without a rate is added
    to ``unconverted`` (and left out of the sum), a converted one to ``converted_from``."""
    total = Decimal(0)
    for from_currency, amount in amounts.items():
        if from_currency == currency:
            total += amount
        elif from_currency in fx and currency in fx:
            total += amount * fx[from_currency] / fx[currency]
            converted_from.add(from_currency)
        else:
            unconverted[from_currency] += amount
    return total


def _unbilled_revenue(costed: Sequence[TimeEntry], approved_verdicts: Sequence[Eligibility],
                      posted_amounts: dict[str, Decimal], accepted: Sequence[Milestone]) -> dict[str, Decimal]:
    """Work done and not yet invoiced, per project, at the value the billing workflow gives it.

    Posted time at its ERP posting amount; approved time at its eligibility amount when the rules would post it
    now or its posting is already queued (time on hold, e.g. past the NTE, earns nothing until it is fixed);
    accepted milestones at their amount.
    """
    project_of = {e.id: e.project_id for e in costed}
    unbilled: dict[str, Decimal] = defaultdict(Decimal)
    for entry in costed:
        if entry.state == "posted" and entry.id in posted_amounts:
            unbilled[entry.project_id] += posted_amounts[entry.id]
    for verdict in approved_verdicts:
        if verdict.disposition in ("post", "already_posted") and verdict.amount is not None:
            unbilled[project_of[verdict.time_entry_id]] += verdict.amount
    for milestone in accepted:
        unbilled[milestone.project_id] += milestone.amount
    return unbilled


def _revenue_by_project(invoices: Sequence[Invoice], projects: Sequence[Project], entries: Sequence[TimeEntry],
                        expense_projects: dict[str, str]) -> dict[str, Decimal]:
    """Billed revenue: the subtotals of posted (or paid) ERP invoices, line by line, on the project they bill.

    A line's project is its sources' project (time entries; expenses, by the project of their ERP posting); a line
    naming none of them (a fixed fee, a retainer, a milestone) belongs to its contract's project when the contract
    has exactly one.
    """
    projects_of: dict[str, list[str]] = defaultdict(list)
    for project in projects:
        projects_of[project.contract_id].append(project.id)
    project_of_entry = {**expense_projects, **{e.id: e.project_id for e in entries}}
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    for invoice in invoices:
        if invoice.state not in INVOICE_ISSUED:
            continue
        sole = projects_of[invoice.contract_id][0] if len(projects_of[invoice.contract_id]) == 1 else None
        for line in invoice.lines:
            owners = {project_of_entry[s] for s in line.source_ids if s in project_of_entry}
            if len(owners) == 1:
                revenue[owners.pop()] += line.amount
            elif sole is not None:
                revenue[sole] += line.amount
    return revenue


class _Expenses(msgspec.Struct, kw_only=True):
    cost: dict[str, dict[str, Decimal]]
    billed: dict[str, Decimal]
    unbilled: dict[str, dict[str, list[Decimal]]]
    project_of: dict[str, str]


def _expense_figures(postings: Iterable[Posting], invoices: Iterable[Invoice], billable: Set[str]) -> _Expenses:
    """Per project: the net cost the ERP booked for expenses, per currency (a reversal nets its posting); what
    issued invoices billed for them (an expense line's source is the expense its posting names, so its project);
    and the net cost of each billable expense posted and on no issued invoice (billed later, at cost or with the
    contract's markup; expenses in another currency than the contract's are never billed: capture refuses them).
    An expense this tier did not capture as billable is a cost only."""
    net: dict[str, Decimal] = defaultdict(Decimal)
    currency_of: dict[str, str] = {}
    project_of: dict[str, str] = {}
    for posting in postings:
        if posting.source_type == "expense":
            net[posting.source_id] += posting.amount
            currency_of[posting.source_id] = posting.currency
            project_of[posting.source_id] = posting.project_id
    cost: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for source, amount in net.items():
        cost[project_of[source]][currency_of[source]] += amount
    billed: dict[str, Decimal] = defaultdict(Decimal)
    invoiced: set[str] = set()
    for invoice in invoices:
        if invoice.state not in INVOICE_ISSUED:
            continue
        for line in invoice.lines:
            if line.source_type != "expense":
                continue
            invoiced.update(line.source_ids)
            owners = {project_of[s] for s in line.source_ids if s in project_of}
            if len(owners) == 1:
                billed[owners.pop()] += line.amount
    unbilled: dict[str, dict[str, list[Decimal]]] = defaultdict(lambda: defaultdict(list))
    for source, amount in sorted(net.items()):
        if source in billable and source not in invoiced and amount > 0:
            unbilled[project_of[source]][currency_of[source]].append(amount)
    return _Expenses(cost=cost, billed=billed, unbilled=unbilled, project_of=project_of)
