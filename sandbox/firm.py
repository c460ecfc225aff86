"""The demo firm every sandbox is seeded with: one deterministic story told to four systems.

Northwind Advisory: 3 legal entities, 4 business units, ~40 workers, 12 customers, 20 contracts across
all four billing models, rate cards, projects with tasks, assignments, milestones and a few months of time.
Each sandbox takes its part of the story and stores it in its own dialect. Natural keys (employee numbers,
customer numbers, project codes) are what the systems share, as they would in a real firm.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal
from typing import Final

SEED = 20261123

LEGAL_ENTITIES = [
    ("LE-US", "Northwind Advisory Inc.", "US", "USD"),
    ("LE-UK", "Northwind Advisory Ltd.", "GB", "GBP"),
    ("LE-DE", "Northwind Advisory GmbH", "DE", "EUR"),
]
BUSINESS_UNITS = [("BU-STR", "Strategy"), ("BU-TEC", "Technology"), ("BU-DAT", "Data & AI"), ("BU-OPS", "Operations")]
ROLES = [
    ("partner", "Partner", Decimal("180")),
    ("principal", "Principal", Decimal("140")),
    ("senior_consultant", "Senior Consultant", Decimal("95")),
    ("consultant", "Consultant", Decimal("70")),
    ("analyst", "Analyst", Decimal("48")),
    ("data_scientist", "Data Scientist", Decimal("88")),
]
BILL_RATES = {"partner": 420, "principal": 320, "senior_consultant": 230, "consultant": 175, "analyst": 120,
              "data_scientist": 210}
FIRST = ["Ada", "Ben", "Chloe", "Dev", "Elif", "Femi", "Greta", "Hiro", "Ines", "Jonas", "Kira", "Luca", "Maya",
         "Nils", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara"]
LAST = ["Moreau", "Okafor", "Schmidt", "Patel", "Yilmaz", "Adeyemi", "Lind", "Tanaka", "Garcia", "Berg"]
CUSTOMERS = [
    ("C-1001", "Contoso Retail", "LE-US", "USD", "US-NY"), ("C-1002", "Fabrikam Health", "LE-US", "USD", "US-CA"),
    ("C-1003", "Tailspin Airlines", "LE-US", "USD", "US-TX"), ("C-1004", "Litware Bank", "LE-UK", "GBP", "GB"),
    ("C-1005", "Adventure Works", "LE-UK", "GBP", "GB"), ("C-1006", "Wingtip Toys", "LE-UK", "GBP", "GB"),
    ("C-1007", "Proseware Energie", "LE-DE", "EUR", "DE"), ("C-1008", "Lucerne Versicherung", "LE-DE", "EUR", "DE"),
    ("C-1009", "Woodgrove Logistik", "LE-DE", "EUR", "DE"), ("C-1010", "Alpine Ski House", "LE-DE", "EUR", "DE"),
    ("C-1011", "Coho Vineyard", "LE-US", "USD", "US-WA"), ("C-1012", "Margie's Travel", "LE-UK", "GBP", "GB"),
]
BILLING_MODELS = ["time_and_materials"] * 10 + ["fixed_fee"] * 4 + ["milestone"] * 3 + ["retainer"] * 3
TASKS = [("Discovery", True), ("Delivery", True), ("Project management", True), ("Internal review", False)]


@dataclass
class Worker:
    number: str
    name: str
    email: str
    role: str
    legal_entity: str
    business_unit: str
    cost_center: str
    status: str
    capacity: int
    cost_rates: list[tuple[dt.date, dt.date | None, Decimal]]
    manager: str | None
    hired: dt.date


@dataclass
class RateCard:
    code: str
    name: str
    currency: str
    rates: dict[str, Decimal]
    valid_from: dt.date


@dataclass
class Contract:
    number: str
    customer: str
    legal_entity: str
    name: str
    currency: str
    billing_model: str
    start: dt.date
    end: dt.date
    status: str
    nte: Decimal | None
    rate_card: str
    scheduled_amount: Decimal | None  # a retainer's fee per month (fixed fees bill by ``schedule``)
    opportunity: str
    # Billing terms: the most the contract bills, fixed-fee instalments ((period "YYYY-MM", amount, percent
    # complete)), a retainer's hours allowance per month and its rule for unused hours.
    total_value: Decimal | None = None
    schedule: list[tuple[str, Decimal, Decimal | None]] = field(default_factory=list)
    retainer_hours: Decimal | None = None
    unused_hours: str = "expire"
    # The percent added to billable expenses when invoiced (None: at cost).
    expense_markup: Decimal | None = None


@dataclass
class Project:
    code: str
    contract: str
    customer: str
    name: str
    status: str
    billing_model: str
    budget_hours: int
    manager: str
    business_unit: str
    start: dt.date
    end: dt.date
    legal_entity: str
    tasks: list[tuple[str, str, bool]] = field(default_factory=list)


@dataclass
class Assignment:
    number: str
    worker: str
    project: str
    role: str
    hours_per_week: int
    start: dt.date
    end: dt.date
    status: str


@dataclass
class Milestone:
    number: str
    project: str
    name: str
    amount: Decimal
    currency: str
    due: dt.date
    state: str
    accepted: dt.date | None = None


@dataclass
class TimeEntry:
    number: str
    worker: str
    project: str
    task: str
    work_date: dt.date
    minutes: int
    billable: bool
    notes: str
    state: str


@dataclass
class Expense:
    number: str
    worker: str
    project: str
    expense_date: dt.date
    amount: Decimal
    currency: str
    category: str
    billable: bool
    receipt: str | None
    state: str


@dataclass
class Opportunity:
    number: str
    customer: str
    name: str
    stage: str
    amount: Decimal
    currency: str
    close_date: dt.date
    billing_model: str
    legal_entity: str
    rate_card: str
    start: dt.date
    end: dt.date
    nte: Decimal | None


@dataclass
class Firm:
    today: dt.date
    workers: list[Worker]
    rate_cards: list[RateCard]
    contracts: list[Contract]
    projects: list[Project]
    assignments: list[Assignment]
    milestones: list[Milestone]
    time_entries: list[TimeEntry]
    opportunities: list[Opportunity]
    closed_periods: dict[str, list[str]]
    expenses: list[Expense] = field(default_factory=list)
    # Contracts signed in the CRM for won deals that are not provisioned yet (no ERP contract, no project).
    signed_contracts: list[Contract] = field(default_factory=list)


def _month_start(day: dt.date, months_back: int) -> dt.date:
    year, month = day.year, day.month - months_back
    while month <= 0:
        month += 12
        year -= 1
    return dt.date(year, month, 1)


def months_of(start: dt.date, end: dt.date) -> list[str]:
    """The periods ("YYYY-MM") a term touches, first to last."""
    months, index = [], start.year * 12 + start.month - 1
    while index <= end.year * 12 + end.month - 1:
        months.append(f"{index // 12:04d}-{index % 12 + 1:02d}")
        index += 1
    return months


def even_instalments(amount: Decimal, months: list[str]) -> list[tuple[str, Decimal, Decimal | None]]:
    """A fixed fee in equal monthly instalments (whole units; the last one takes what rounding left), each with
    the share of the work it completes."""
    each = (amount / len(months)).to_integral_value(ROUND_DOWN)
    return [(month, each if n < len(months) else amount - each * (len(months) - 1),
             (Decimal(100) * n / len(months)).quantize(Decimal("0.1")))
            for n, month in enumerate(months, start=1)]


def build(today: dt.date | None = None, seed: int = SEED) -> Firm:
    """The whole firm, the same for the same ``today`` and ``seed``: every sandbox agrees."""
    today = today or dt.datetime.now(dt.UTC).date()
    rng = random.Random(seed)
    history_start = _month_start(today, 3)

    workers: list[Worker] = []
    role_plan = ["partner"] * 3 + ["principal"] * 5 + ["senior_consultant"] * 10 + ["consultant"] * 12 + [
        "analyst"] * 6 + ["data_scientist"] * 4
    # The demo consultant and manager come first so docs and tests can name them: E1001 and E1002.
    role_plan = ["consultant", "principal", *role_plan[:-2]]
    for index, role in enumerate(role_plan):
        number = f"E{1001 + index}"
        first, last = FIRST[index % len(FIRST)], LAST[(index * 7) % len(LAST)]
        legal_entity = LEGAL_ENTITIES[index % 3][0]
        unit = BUSINESS_UNITS[index % 4][0]
        base_cost = dict((r[0], r[2]) for r in ROLES)[role]
        raise_date = _month_start(today, 1)
        cost_rates = [
            (dt.date(2024, 1, 1), raise_date - dt.timedelta(days=1), base_cost),
            (raise_date, None, (base_cost * Decimal("1.04")).quantize(Decimal("0.01"))),
        ]
        status = "leave" if index == 37 else "terminated" if index == 39 else "active"
        workers.append(Worker(
            number=number, name=f"{first} {last}", email=f"{first.lower()}.{last.lower()}{index}@northwind.example",
            role=role, legal_entity=legal_entity, business_unit=unit, cost_center=f"CC-{unit[3:]}-{legal_entity[3:]}",
            status=status, capacity=40 if index % 9 else 32, cost_rates=cost_rates,
            manager=None if role in ("partner",) else "E1002" if index < 12 else f"E{1003 + index % 3}",
            hired=dt.date(2020 + index % 5, 1 + index % 12, 1),
        ))
    managers = [w.number for w in workers if w.role in ("principal", "partner")]

    rate_cards: list[RateCard] = []
    for currency, code in (("USD", "RC-USD"), ("GBP", "RC-GBP"), ("EUR", "RC-EUR")):
        factor = {"USD": Decimal("1"), "GBP": Decimal("0.8"), "EUR": Decimal("0.92")}[currency]
        rates = {role: (Decimal(rate) * factor).quantize(Decimal("1")) for role, rate in BILL_RATES.items()}
        rate_cards.append(RateCard(code, f"Standard {currency} 2026", currency, rates, dt.date(2026, 1, 1)))
    # The GBP card prices travel time (half a consultant's rate, whoever travels): travel on GBP contracts is billed,
    # elsewhere it is cost (TRAVEL_NOT_BILLABLE).
    gbp = rate_cards[1].rates
    gbp["travel"] = (gbp["consultant"] / 2).quantize(Decimal("1"))
    # A rate card without data scientists: entries by that role land in NO_RATE_FOR_ROLE.
    lean = {role: rate for role, rate in rate_cards[0].rates.items() if role != "data_scientist"}
    rate_cards.append(RateCard("RC-USD-LEAN", "Lean USD (no data science)", "USD", lean, dt.date(2026, 1, 1)))

    contracts: list[Contract] = []
    projects: list[Project] = []
    opportunities: list[Opportunity] = []
    milestones: list[Milestone] = []
    for index, model in enumerate(BILLING_MODELS):
        customer = CUSTOMERS[index % len(CUSTOMERS)]
        number = f"SOW-{2001 + index}"
        currency = customer[3]
        rate_card = {"USD": "RC-USD", "GBP": "RC-GBP", "EUR": "RC-EUR"}[currency]
        if index == 1:
            rate_card = "RC-USD-LEAN"
        start = history_start - dt.timedelta(days=30 * (index % 4))
        end = today + dt.timedelta(days=120 + 30 * (index % 5))
        status = "active"
        if index == 7:
            status = "amendment_pending"
        if index == 19:
            status = "closed"
            end = today - dt.timedelta(days=20)
        nte = Decimal(60000 + 10000 * (index % 6)) if model == "time_and_materials" and index % 3 == 0 else None
        if index == 3:
            nte = Decimal(22000)  # close to exhaustion: shows NTE_EXCEEDED and burn near 100%
        opportunity = f"OPP-{3001 + index}"
        amount = Decimal(80000 + 5000 * index)
        contract = Contract(number, customer[0], customer[2], f"{customer[1]} {model.replace('_', ' ')} SOW",
                            currency, model, start, end, status, nte, rate_card, None, opportunity,
                            # the deal is the contract's value; time and materials are capped by the NTE alone
                            total_value=nte if model == "time_and_materials" else amount)
        if index == 5:  # SOW-2006 bills its expenses with a markup (the others at cost)
            contract.expense_markup = Decimal("12.5")
        months = months_of(start, end)
        if model == "fixed_fee":
            contract.schedule = even_instalments(amount, months)
        elif model == "retainer":
            # The fee per month: the deal over the months of the term, in hundreds (what is left over is the
            # budget for overage).
            contract.scheduled_amount = (amount / len(months) / 100).to_integral_value(ROUND_DOWN) * 100
            if index != 17:  # SOW-2018 draws its fee down by amount; the others by an hours allowance
                contract.retainer_hours = Decimal(80 if index == 18 else 60)
                contract.unused_hours = "carry_forward" if index == 18 else "expire"
        contracts.append(contract)
        opportunities.append(Opportunity(
            opportunity, customer[0], f"{customer[1]} engagement {index + 1}", "closed_won", amount, currency,
            start - dt.timedelta(days=14), model, customer[2], rate_card, start, end, nte))
        code = f"PRJ-{4001 + index}"
        project_status = "on_hold" if index == 11 else "closed" if index == 19 else "active"
        topic = ["Pricing", "Cloud migration", "Data platform", "Ops excellence", "Customer analytics"][index % 5]
        manager = managers[index % len(managers)] if index else "E1002"
        project = Project(code, number, customer[0], f"{customer[1]}: {topic}", project_status, model,
                          800 + 100 * (index % 7), manager, BUSINESS_UNITS[index % 4][0], start, end, customer[2])
        project.tasks = [(f"{code}-T{t + 1}", name, billable) for t, (name, billable) in enumerate(TASKS)]
        projects.append(project)
        if model == "milestone":
            for m in range(3):
                due = start + dt.timedelta(days=45 * (m + 1))
                state = "accepted" if due < today - dt.timedelta(days=10) else "completed" if due < today else "pending"
                milestones.append(Milestone(f"MS-{5001 + len(milestones)}", code, f"Phase {m + 1} sign-off",
                                            Decimal(20000 + 5000 * m), currency, due, state,
                                            due + dt.timedelta(days=3) if state == "accepted" else None))
    # Open pipeline, not yet won: provisioning demos start from these.
    for index in range(4):
        customer = CUSTOMERS[(index * 5) % len(CUSTOMERS)]
        currency = customer[3]
        opportunities.append(Opportunity(
            f"OPP-{3101 + index}", customer[0], f"{customer[1]} phase 2", ["negotiation", "proposal",
                                                                          "closed_won", "qualification"][index],
            Decimal(120000), currency, today + dt.timedelta(days=10), "time_and_materials", customer[2],
            {"USD": "RC-USD", "GBP": "RC-GBP", "EUR": "RC-EUR"}[currency], today + dt.timedelta(days=14),
            today + dt.timedelta(days=200), None))
    signed_contracts = _signed_pipeline(today, opportunities)
    # One more deal in negotiation, for winning in the CRM: the change feed provisions it with no call.
    customer = CUSTOMERS[8]
    opportunities.append(Opportunity(
        "OPP-3107", customer[0], f"{customer[1]} network analytics", "negotiation", Decimal(95000), customer[3],
        today + dt.timedelta(days=7), "time_and_materials", customer[2], "RC-EUR", today + dt.timedelta(days=14),
        today + dt.timedelta(days=180), Decimal(95000)))

    assignments: list[Assignment] = []
    active_workers = [w for w in workers if w.status != "terminated" and w.role != "partner"]
    for index, project in enumerate(projects):
        team = [active_workers[(index * 3 + k) % len(active_workers)] for k in range(3)]
        if index in (0, 2, 5):
            team.append(workers[0])  # the demo consultant works on three projects
        if index == 1:
            team.append(next(w for w in workers if w.role == "data_scientist"))
        for worker in team:
            if any(a.worker == worker.number and a.project == project.code for a in assignments):
                continue
            assignments.append(Assignment(
                f"ASG-{6001 + len(assignments)}", worker.number, project.code, worker.role,
                8 * (1 + len(assignments) % 4), project.start, project.end,
                "confirmed" if project.status != "closed" else "ended"))
    assignments.append(Assignment(f"ASG-{6001 + len(assignments)}", workers[0].number, projects[8].code,
                                  workers[0].role, 8, today + dt.timedelta(days=7), projects[8].end, "proposed"))

    time_entries: list[TimeEntry] = []
    last_week = today - dt.timedelta(days=today.weekday() + 7)
    for assignment in assignments:
        if assignment.status == "proposed":
            continue
        project = next(p for p in projects if p.code == assignment.project)
        day = max(assignment.start, history_start)
        stop = min(assignment.end, today)
        while day < stop:
            if day.weekday() < 5 and rng.random() < 0.55:
                task = project.tasks[rng.choice((0, 1, 1, 1, 2, 3))]
                if day >= last_week + dt.timedelta(days=7):
                    state = "draft" if rng.random() < 0.5 else "submitted"
                elif day >= last_week:
                    state = "submitted"
                else:
                    state = "approved" if rng.random() < 0.35 else "invoiced" if day < history_start + dt.timedelta(
                        days=30) else "posted"
                time_entries.append(TimeEntry(
                    f"TC-{100001 + len(time_entries)}", assignment.worker, project.code, task[0], day,
                    rng.choice((240, 360, 420, 480, 480, 480)), task[2], f"{task[1]} work", state))
            day += dt.timedelta(days=1)

    time_entries.extend(_settled_history(assignments, projects, history_start, len(time_entries),
                                         random.Random(seed + 2)))
    contracts, opportunities = _fit_not_to_exceed(contracts, opportunities, projects, workers, rate_cards,
                                                  time_entries)
    contracts, opportunities, milestones = _price_by_effort(today, contracts, opportunities, projects, workers,
                                                            rate_cards, time_entries, milestones)
    closed_periods = {le[0]: [_month_start(today, m).strftime("%Y-%m") for m in (3, 4, 5, 6)] for le in LEGAL_ENTITIES}
    expenses = _expenses(time_entries, projects, random.Random(seed + 1))
    return Firm(today, workers, rate_cards, contracts, projects, assignments, milestones, time_entries,
                opportunities, closed_periods, expenses, signed_contracts)


# Priced from the effort the firm records (a healthy firm estimated well): the fixed fees, and SOW-2015's
# milestones. SOW-2016 and SOW-2017 keep their milestones (behind the work; one delivered and not yet accepted):
# the dashboard's deliberate problem projects, with SOW-2004 near its not-to-exceed.
PRICED_BY_EFFORT: Final = frozenset({"SOW-2011", "SOW-2012", "SOW-2013", "SOW-2014", "SOW-2015"})
FEE_MARKUP: Final = Decimal("1.1")


def _price_by_effort(today: dt.date, contracts: list[Contract], opportunities: list[Opportunity],
                     projects: list[Project], workers: list[Worker], rate_cards: list[RateCard],
                     time_entries: list[TimeEntry], milestones: list[Milestone]
                     ) -> tuple[list[Contract], list[Opportunity], list[Milestone]]:
    """Fixed fees and milestone amounts that fit the work: what the project's time to date is worth at its rate
    card, over the share of the term elapsed, plus ``FEE_MARKUP`` (rounded up to 5,000). Without this a team of
    four for ten months was sold for 80,000 and every fixed-fee and milestone project lost money."""
    project_of = {p.contract: p for p in projects}
    role_of = {w.number: w.role for w in workers}
    cards = {r.code: r for r in rate_cards}
    card_of = {project_of[c.number].code: cards[c.rate_card] for c in contracts if c.number in project_of}
    worth: dict[str, Decimal] = defaultdict(Decimal)
    for entry in time_entries:
        rate = card_of[entry.project].rates.get(role_of[entry.worker], Decimal(0))
        worth[entry.project] += Decimal(entry.minutes) / 60 * rate
    priced: dict[str, Decimal] = {}
    for contract in contracts:
        if contract.number not in PRICED_BY_EFFORT:
            continue
        code = project_of[contract.number].code
        if contract.billing_model == "milestone":
            # Its accepted milestones pay for the work to date; the rest of the value is still to deliver.
            amounts = [m.amount for m in milestones if m.project == code]
            accepted = [m.amount for m in milestones if m.project == code and m.state in ("accepted", "invoiced")]
            done = sum(accepted, Decimal(0)) / sum(amounts, Decimal(0)) if accepted else Decimal(1)
        else:
            done = Decimal((min(today, contract.end) - contract.start).days) / (contract.end - contract.start).days
        value = worth[code] * FEE_MARKUP / max(done, Decimal("0.1"))
        priced[contract.number] = max(contract.total_value or Decimal(0),
                                      (value / 5000).to_integral_value(rounding=ROUND_CEILING) * 5000)
    repriced: list[Contract] = []
    for contract in contracts:
        if contract.number not in priced:
            repriced.append(contract)
            continue
        fee = priced[contract.number]
        schedule = (even_instalments(fee, months_of(contract.start, contract.end))
                    if contract.billing_model == "fixed_fee" else contract.schedule)
        repriced.append(dataclasses.replace(contract, total_value=fee, schedule=schedule))
    # A milestone contract's milestones share its value in their old proportions (whole hundreds).
    by_project = {project_of[n].code: v for n, v in priced.items() if project_of[n].billing_model == "milestone"}
    base: dict[str, Decimal] = {code: sum((m.amount for m in milestones if m.project == code), Decimal(0))
                                for code in by_project}
    milestones = [dataclasses.replace(m, amount=(m.amount * by_project[m.project] / base[m.project] / 100)
                                      .to_integral_value(rounding=ROUND_DOWN) * 100)
                  if m.project in by_project else m for m in milestones]
    by_opportunity = {c.opportunity: priced[c.number] for c in contracts if c.number in priced}
    return repriced, [dataclasses.replace(o, amount=by_opportunity.get(o.number, o.amount))
                      for o in opportunities], milestones


def _settled_history(assignments: list[Assignment], projects: list[Project], history_start: dt.date, numbered: int,
                     rng: random.Random) -> list[TimeEntry]:
    """Time from each assignment's start up to ``history_start``: the months before the recent three, all invoiced
    (their periods are closed and billed, as in a firm that bills monthly). Without them, a project that started
    six months ago showed six months of plan against three of actuals, and every such project looked behind plan.

    Its own random stream, numbered after the recent entries: the recent story (and the ids docs and tests name)
    is the same with or without it."""
    older: list[TimeEntry] = []
    by_code = {p.code: p for p in projects}
    for assignment in assignments:
        if assignment.status == "proposed":
            continue
        project = by_code[assignment.project]
        day = assignment.start
        while day < min(assignment.end, history_start):
            if day.weekday() < 5 and rng.random() < 0.55:
                task = project.tasks[rng.choice((0, 1, 1, 1, 2, 3))]
                older.append(TimeEntry(
                    f"TC-{100001 + numbered + len(older)}", assignment.worker, project.code, task[0], day,
                    rng.choice((240, 360, 420, 480, 480, 480)), task[2], f"{task[1]} work", "invoiced"))
            day += dt.timedelta(days=1)
    return older


def _signed_pipeline(today: dt.date, opportunities: list[Opportunity]) -> list[Contract]:
    """Two deals won and signed in the CRM this month, waiting to be provisioned (appended to ``opportunities``):
    a 130,000 USD fixed fee billed in instalments, and a 170,000 EUR retainer of 14,000 a month."""
    start = dt.date(today.year, today.month, 1)
    fixed_end = dt.date(start.year + (start.month + 4) // 12, (start.month + 4) % 12 + 1, 1) - dt.timedelta(days=1)
    retainer_end = dt.date(start.year + 1, start.month, 1) - dt.timedelta(days=1)
    fixed_months = months_of(start, fixed_end)  # five months
    fixed = Contract("SOW-2101", "C-1011", "LE-US", "Coho Vineyard fixed fee SOW", "USD", "fixed_fee", start,
                     fixed_end, "active", None, "RC-USD", None, "OPP-3105", total_value=Decimal(130000))
    middle = [(month, Decimal(19500), Decimal(30 + 15 * n)) for n, month in enumerate(fixed_months[1:4], start=1)]
    fixed.schedule = [(fixed_months[0], Decimal(39000), Decimal(30)), *middle,
                      (fixed_months[4], Decimal(32500), Decimal(100))]
    retainer = Contract("SOW-2102", "C-1007", "LE-DE", "Proseware Energie retainer SOW", "EUR", "retainer", start,
                        retainer_end, "active", None, "RC-EUR", Decimal(14000), "OPP-3106",
                        total_value=Decimal(170000), retainer_hours=Decimal(70), unused_hours="carry_forward")
    for contract, name in ((fixed, "Coho Vineyard fixed-fee rollout"), (retainer, "Proseware Energie retainer")):
        opportunities.append(Opportunity(
            contract.opportunity, contract.customer, name, "closed_won", contract.total_value or Decimal(0),
            contract.currency, start - dt.timedelta(days=3), contract.billing_model, contract.legal_entity,
            contract.rate_card, contract.start, contract.end, None))
    return [fixed, retainer]


def _fit_not_to_exceed(contracts: list[Contract], opportunities: list[Opportunity], projects: list[Project],
                       workers: list[Worker], rate_cards: list[RateCard], time_entries: list[TimeEntry]
                       ) -> tuple[list[Contract], list[Opportunity]]:
    """Not-to-exceed amounts that fit the time the story has already posted (the ERP seeds a posting for it).

    A healthy firm has room under its caps: 60% or so used. One contract (SOW-2004) is the deliberate problem:
    its posted time uses about 98% of its cap, so its next approved entries are held with NTE_EXCEEDED.
    """
    contract_of = {p.code: p.contract for p in projects}
    role_of = {w.number: w.role for w in workers}
    cards = {r.code: r for r in rate_cards}
    by_number = {c.number: c for c in contracts}
    posted: dict[str, Decimal] = {}
    for entry in time_entries:
        contract = by_number[contract_of[entry.project]]
        rate = cards[contract.rate_card].rates.get(role_of[entry.worker])
        if contract.nte is not None and entry.state in ("posted", "invoiced") and entry.billable and rate:
            posted[contract.number] = posted.get(contract.number, Decimal(0)) + Decimal(entry.minutes) / 60 * rate
    fitted: dict[str, Decimal] = {}
    for contract in contracts:
        if contract.nte is None:
            continue
        used = posted.get(contract.number, Decimal(0))
        if contract.number == "SOW-2004":
            fitted[contract.number] = max(Decimal(1000), (used / Decimal("0.98") / 100).to_integral_value(
                rounding=ROUND_CEILING) * 100)
        else:
            fitted[contract.number] = max(contract.nte, (used / Decimal("0.6") / 10000).to_integral_value(
                rounding=ROUND_CEILING) * 10000)
    by_opportunity = {c.opportunity: fitted[c.number] for c in contracts if c.number in fitted}
    # A time-and-materials contract's value is its cap (the most it may bill): the two move together.
    return ([dataclasses.replace(c, nte=fitted.get(c.number, c.nte),
                                 total_value=fitted.get(c.number, c.total_value)
                                 if c.billing_model == "time_and_materials" else c.total_value) for c in contracts],
            [dataclasses.replace(o, nte=by_opportunity.get(o.number, o.nte)) for o in opportunities])


EXPENSE_CATEGORIES = [("travel", Decimal("180")), ("lodging", Decimal("240")), ("meals", Decimal("45")),
                      ("software", Decimal("60"))]


def _expenses(time_entries: list[TimeEntry], projects: list[Project], rng: random.Random) -> list[Expense]:
    """About one expense per twenty days worked, in the project's currency, in the state of that day's time."""
    currency = {p.code: {"LE-US": "USD", "LE-UK": "GBP", "LE-DE": "EUR"}[p.legal_entity] for p in projects}
    expenses: list[Expense] = []
    for entry in time_entries:
        if rng.random() >= 0.05:
            continue
        category, typical = rng.choice(EXPENSE_CATEGORIES)
        amount = (typical * Decimal(rng.randint(60, 140)) / Decimal(100)).quantize(Decimal("0.01"))
        number = f"EX-{300001 + len(expenses)}"
        expenses.append(Expense(number, entry.worker, entry.project, entry.work_date, amount,
                                currency[entry.project], category, category != "software",
                                f"RCPT-{number[3:]}" if category != "meals" else None, entry.state))
    return expenses


def month_end_period(today: dt.date) -> dt.date:
    """The first day of the month after ``today``: no demo time lands there, its period is open in the ERP and
    every active contract and confirmed assignment covers it, so time seeded there is eligible and alone."""
    return dt.date(today.year + today.month // 12, today.month % 12 + 1, 1)


def with_month_end(story: Firm, count: int) -> Firm:
    """The firm plus ``count`` approved, billable, eligible entries in :func:`month_end_period` (a load scenario).

    Only (worker, project) pairs that bill by the hour qualify: a confirmed assignment on an active project
    whose contract is active, time-and-materials or retainer, without a not-to-exceed amount (so no volume
    crosses it) and with a rate for the assignment's role. The entries go round those pairs and the month's
    working days, on billable tasks, numbered after the demo's own (scaled up: many entries per person a day).
    """
    if count <= 0:
        return story
    contracts = {c.number: c for c in story.contracts}
    projects = {p.code: p for p in story.projects}
    cards = {r.code: r for r in story.rate_cards}
    first = month_end_period(story.today)
    last = month_end_period(first) - dt.timedelta(days=1)
    pairs = []
    for a in story.assignments:
        project = projects[a.project]
        contract = contracts[project.contract]
        if (a.status == "confirmed" and project.status == "active" and contract.status == "active"
                and contract.billing_model in ("time_and_materials", "retainer") and contract.nte is None
                and a.role in cards[contract.rate_card].rates and a.start <= first and last <= a.end
                and contract.start <= first and last <= contract.end):
            pairs.append((a, [t for t in project.tasks if t[2]]))
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)
            if (first + dt.timedelta(days=n)).weekday() < 5]
    minutes = (60, 90, 120, 240)
    entries = []
    start = 100001 + len(story.time_entries)
    for n in range(count):
        assignment, tasks = pairs[n % len(pairs)]
        task = tasks[(n // len(pairs)) % len(tasks)]
        entries.append(TimeEntry(f"TC-{start + n}", assignment.worker, assignment.project, task[0],
                                 days[(n // len(pairs)) % len(days)], minutes[n % len(minutes)], True,
                                 f"{task[1]} work (month end)", "approved"))
    return dataclasses.replace(story, time_entries=[*story.time_entries, *entries])
