"""Seed a Tryton database with the demo firm's US legal entity (``sandbox/firm.py``), inside Tryton itself.

Run by ``python -m system_apis.tryton init`` as ``python -m system_apis.tryton.demo <trytond.conf> <db>
<credentials.json>`` with the module path set up (see :mod:`system_apis.tryton.server`). It creates the
company (LE-US) with the chart of accounts from ``account.account_template_root_en``, fiscal years with
monthly periods (the firm's closed months closed), the service user and its REST application key, and the
subset of the firm that lives in that company: its customers, the workers staffed on its time-and-materials
contracts (E1001, the demo consultant, and E1002, a manager, among them) with dated cost prices, the rate
cards in USD, the contracts, projects with tasks and timesheet works, assignments, opportunities, and the last
three weeks of timesheet lines (older time of the firm is left out).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from sandbox import firm as demo_firm

LEGAL_ENTITY = "LE-US"
CURRENCY = "USD"
STAGE_STATE = {"prospecting": ("lead", None), "qualification": ("opportunity", "qualification"),
               "proposal": ("opportunity", "proposal"), "negotiation": ("opportunity", "negotiation"),
               "closed_won": ("won", None), "closed_lost": ("lost", None)}
HISTORY_DAYS = 21


def main(config_file: str, database: str, credentials_file: str) -> None:
    from trytond import config

    config.update_etc(config_file)
    from trytond.pool import Pool
    from trytond.transaction import Transaction, TransactionError

    Pool.start()
    pool = Pool(database)
    pool.init()
    extras: dict[str, Any] = {}
    while True:  # Tryton asks for a restart with the tables it must lock first, as its own RPC layer does
        try:
            with Transaction().start(database, 0, readonly=False, **extras) as transaction:
                credentials = seed(pool, database)
                transaction.commit()
            break
        except TransactionError as exc:
            exc.fix(extras)
    Path(credentials_file).write_text(json.dumps(credentials, indent=2))
    Path(credentials_file).chmod(0o600)


def seed(pool: Any, database: str) -> dict[str, str]:
    from trytond.transaction import Transaction

    firm = demo_firm.build()
    currency = _currency(pool)
    company = _company(pool, currency)
    credentials = _users(pool, company, database)
    with Transaction().set_context(company=company.id, companies=[company.id]):
        _chart(pool, company)
        _fiscal_years(pool, company, firm)
        _seed_firm(pool, firm, company, currency)
    return credentials


def _currency(pool: Any) -> Any:
    Currency = pool.get('currency.currency')
    usd, = Currency.create([{'name': "U.S. Dollar", 'code': CURRENCY, 'symbol': "$", 'numeric_code': "840",
                             'rounding': Decimal("0.01"), 'digits': 2}])
    return usd


def _company(pool: Any, currency: Any) -> Any:
    Party = pool.get('party.party')
    Company = pool.get('company.company')
    name = next(le[1] for le in demo_firm.LEGAL_ENTITIES if le[0] == LEGAL_ENTITY)
    party, = Party.create([{'name': name, 'code': LEGAL_ENTITY, 'addresses': [('create', [{}])]}])
    company, = Company.create([{'party': party.id, 'currency': currency.id, 'timezone': "UTC"}])
    return company


def _users(pool: Any, company: Any, database: str) -> dict[str, str]:
    User = pool.get('res.user')
    Group = pool.get('res.group')
    Application = pool.get('res.user.application')
    groups = [g.id for g in Group.search([])]
    admin, = User.search([('login', '=', "admin")])
    User.write([admin], {'companies': [('add', [company.id])], 'company': company.id})
    password = secrets.token_urlsafe(24)
    service, = User.create([{'name': "psgateway system tier", 'login': "psgateway", 'password': password,
                             'companies': [('add', [company.id])], 'company': company.id,
                             'groups': [('add', groups)]}])
    application, = Application.create([{'user': service.id, 'application': "rest"}])
    Application.validate_([application])
    return {"database": database, "login": service.login, "password": password, "application_key": application.key}


def _chart(pool: Any, company: Any) -> None:
    """The chart of accounts from Tryton's English template, through the chart wizard as a user would run it."""
    AccountTemplate = pool.get('account.account.template')
    ModelData = pool.get('ir.model.data')
    Account = pool.get('account.account')
    CreateChart = pool.get('account.create_chart', type='wizard')
    template = AccountTemplate(ModelData.get_id('account', 'account_template_root_en'))
    session_id, _, _ = CreateChart.create()
    wizard = CreateChart(session_id)
    wizard.account.account_template = template
    wizard.account.company = company
    wizard.transition_create_account()
    state = wizard.states['properties']
    for name, value in state.get_defaults(wizard, 'properties', list(wizard.properties._fields.keys())).items():
        if name in wizard.properties._fields:
            setattr(wizard.properties, name, value)
    wizard.properties.account_receivable, = Account.search([
        ('type.receivable', '=', True), ('party_required', '=', True), ('company', '=', company.id)], limit=1)
    wizard.properties.account_payable, = Account.search([
        ('type.payable', '=', True), ('party_required', '=', True), ('company', '=', company.id)], limit=1)
    wizard.transition_create_properties()


def _fiscal_years(pool: Any, company: Any, firm: demo_firm.Firm) -> None:
    """Calendar fiscal years with monthly periods around today; the firm's closed months closed."""
    FiscalYear = pool.get('account.fiscalyear')
    Period = pool.get('account.period')
    Sequence = pool.get('ir.sequence.strict')
    SequenceType = pool.get('ir.sequence.type')
    InvoiceSequence = pool.get('account.fiscalyear.invoice_sequence')
    move_type, = SequenceType.search([('name', '=', "Account Move")], limit=1)
    invoice_type, = SequenceType.search([('name', '=', "Invoice")], limit=1)
    today = firm.today
    for year in range((today - dt.timedelta(days=220)).year, (today + dt.timedelta(days=370)).year + 1):
        move_sequence, = Sequence.create([{'name': f"{year}", 'sequence_type': move_type.id,
                                           'company': company.id}])
        invoice_sequence, = Sequence.create([{'name': f"Invoices {year}", 'sequence_type': invoice_type.id,
                                              'company': company.id, 'prefix': f"INV/{year}/"}])
        fiscal_year = FiscalYear(name=f"{year}", company=company, start_date=dt.date(year, 1, 1),
                                 end_date=dt.date(year, 12, 31), move_sequence=move_sequence)
        fiscal_year.invoice_sequences = [InvoiceSequence(
            in_invoice_sequence=invoice_sequence, in_credit_note_sequence=invoice_sequence,
            out_invoice_sequence=invoice_sequence, out_credit_note_sequence=invoice_sequence)]
        fiscal_year.save()
        FiscalYear.create_period([fiscal_year], 1)
    closed = set(firm.closed_periods.get(LEGAL_ENTITY, []))
    to_close = [p for p in Period.search([('type', '=', "standard")])
                if p.start_date.strftime("%Y-%m") in closed]
    if to_close:
        Period.close(to_close)


def _seed_firm(pool: Any, firm: demo_firm.Firm, company: Any, currency: Any) -> None:
    from trytond.transaction import Transaction

    Party = pool.get('party.party')
    Employee = pool.get('company.employee')
    RateCard = pool.get('psgw.rate_card')
    Contract = pool.get('psgw.contract')
    Work = pool.get('project.work')
    Assignment = pool.get('psgw.assignment')
    Line = pool.get('timesheet.line')
    Posting = pool.get('psgw.posting')
    Opportunity = pool.get('sale.opportunity')

    contracts = [c for c in firm.contracts if c.legal_entity == LEGAL_ENTITY and c.currency == CURRENCY
                 and c.billing_model == "time_and_materials"]
    contract_numbers = {c.number for c in contracts}
    # Signed for won deals, waiting for provisioning: one Tryton is CRM and ERP, so the contract is here already.
    signed = [c for c in firm.signed_contracts if c.legal_entity == LEGAL_ENTITY and c.currency == CURRENCY]
    projects = [p for p in firm.projects if p.contract in contract_numbers]
    project_codes = {p.code for p in projects}
    assignments = [a for a in firm.assignments if a.project in project_codes]
    staffed = {a.worker for a in assignments} | {p.manager for p in projects} | {"E1001", "E1002"}
    workers = [w for w in firm.workers if w.number in staffed]
    customers = [c for c in demo_firm.CUSTOMERS if c[2] == LEGAL_ENTITY]

    # Project works created through the API are numbered like the firm's: PRJ-5001, PRJ-5002, ...
    Sequence = pool.get('ir.sequence')
    ModelData = pool.get('ir.model.data')
    Sequence.write([Sequence(ModelData.get_id('project', 'sequence_work'))], {'prefix': "PRJ-", 'number_next': 5001})

    parties = {}
    for number, name, _, _, region in customers:
        party, = Party.create([{'name': name, 'code': number, 'psgw_currency': currency.id,
                                'psgw_company': company.id, 'psgw_tax_region': region,
                                'addresses': [('create', [{}])]}])
        parties[number] = party

    employees = {}
    for worker in workers:
        party, = Party.create([{'name': worker.name, 'code': worker.number, 'addresses': [('create', [{}])],
                                'contact_mechanisms': [('create', [{'type': "email", 'value': worker.email}])]}])
        employee, = Employee.create([{
            'party': party.id, 'company': company.id, 'start_date': worker.hired,
            'end_date': firm.today - dt.timedelta(days=1) if worker.status == "terminated" else None,
            'psgw_role': worker.role, 'psgw_business_unit': worker.business_unit,
            'psgw_cost_center': worker.cost_center, 'psgw_capacity': Decimal(worker.capacity),
            'psgw_on_leave': worker.status == "leave",
            'cost_prices': [('create', [{'date': start, 'cost_price': cost}
                                        for start, _, cost in worker.cost_rates])],
        }])
        employees[worker.number] = employee
    for worker in workers:
        if worker.manager in employees:
            Employee.write([employees[worker.number]], {'supervisor': employees[worker.manager].id})

    cards = {}
    for card in firm.rate_cards:
        if card.currency != CURRENCY:
            continue
        created, = RateCard.create([{'code': card.code, 'name': card.name, 'currency': currency.id, 'lines': [
            ('create', [{'role': role, 'hourly_rate': rate, 'valid_from': card.valid_from}
                        for role, rate in card.rates.items()])]}])
        cards[card.code] = created

    contract_records = {}
    for contract in [*contracts, *signed]:
        created, = Contract.create([{
            'number': contract.number, 'party': parties[contract.customer].id, 'company': company.id,
            'name': contract.name, 'currency': currency.id, 'billing_model': contract.billing_model,
            'nte_amount': contract.nte, 'start_date': contract.start, 'end_date': contract.end,
            'state': contract.status, 'rate_card': cards[contract.rate_card].id, 'invoice_frequency': "monthly",
            'payment_term_days': 30, 'scheduled_amount': contract.scheduled_amount,
            'total_value': contract.total_value, 'retainer_hours': contract.retainer_hours,
            'unused_hours': contract.unused_hours, 'schedule_lines': [('create', [
                {'line_no': n + 1, 'period': period, 'amount': amount, 'percent_complete': percent,
                 'description': f"Instalment {n + 1} of {len(contract.schedule)}"}
                for n, (period, amount, percent) in enumerate(contract.schedule)])],
        }])
        contract_records[contract.number] = created

    task_works: dict[str, int] = {}
    project_records = {}
    for project in projects:
        created, = Work.create([{
            'name': project.name, 'number': project.code, 'type': "project", 'company': company.id,
            'party': parties[project.customer].id, 'psgw_contract': contract_records[project.contract].id,
            'psgw_stage': project.status, 'psgw_billing_model': project.billing_model,
            'psgw_manager': employees[project.manager].id if project.manager in employees else None,
            'psgw_business_unit': project.business_unit, 'psgw_start_date': project.start,
            'psgw_end_date': project.end, 'effort_duration': dt.timedelta(hours=project.budget_hours),
            'timesheet_available': True, 'project_invoice_method': "manual",
        }])
        project_records[project.code] = created
        for code, name, billable in project.tasks:
            task, = Work.create([{'name': name, 'number': code, 'type': "task", 'company': company.id,
                                  'parent': created.id, 'psgw_billable': billable, 'timesheet_available': True}])
            task_works[code] = task.timesheet_works[0].id

    for assignment in assignments:
        Assignment.create([{
            'number': assignment.number, 'employee': employees[assignment.worker].id,
            'work': project_records[assignment.project].id, 'role': assignment.role,
            'hours_per_week': Decimal(assignment.hours_per_week), 'start_date': assignment.start,
            'end_date': assignment.end, 'state': assignment.status,
        }])

    rates = {c.number: next(rc for rc in firm.rate_cards if rc.code == c.rate_card).rates for c in contracts}
    roles = {(a.worker, a.project): a.role for a in assignments}
    since = firm.today - dt.timedelta(days=HISTORY_DAYS)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    managers: dict[str, Any] = {p.code: employees.get(p.manager) for p in projects}
    contract_of = {p.code: p.contract for p in projects}
    for entry in firm.time_entries:
        if entry.project not in project_codes or entry.work_date < since:
            continue
        state = "posted" if entry.state == "invoiced" else entry.state
        rate = rates[contract_of[entry.project]].get(roles[(entry.worker, entry.project)])
        if state == "posted" and entry.billable and rate is None:
            state = "approved"  # without a rate it was never billable: it waits as an exception would
        approved = state in ("approved", "posted")
        line, = Line.create([{
            'company': company.id, 'employee': employees[entry.worker].id, 'date': entry.work_date,
            'duration': dt.timedelta(minutes=entry.minutes), 'work': task_works[entry.task],
            'description': entry.notes, 'psgw_state': state, 'psgw_billable': entry.billable,
            'psgw_submitted_at': now if state != "draft" else None, 'psgw_approved_at': now if approved else None,
            'psgw_approved_by': managers[entry.project].id if approved and managers[entry.project] else None,
        }])
        project = project_records[entry.project]
        contract = next(c for c in contracts if c.number == contract_of[entry.project])
        if state == "posted" and entry.billable and rate is not None:
            hours = Decimal(entry.minutes) / 60
            Posting.create([{'source_type': "time_entry", 'source_ref': f"TC-{line.id}", 'work': project.id,
                             'contract': contract_records[contract.number].id, 'company': company.id,
                             'date': entry.work_date, 'quantity': hours,
                             'amount': (hours * rate).quantize(Decimal("0.01")), 'currency': currency.id,
                             'timesheet_line': line.id}])

    for opportunity in firm.opportunities:
        if opportunity.customer not in parties or (opportunity.number.startswith("OPP-30") and not any(
                c.opportunity == opportunity.number for c in contracts)):
            continue
        state, stage = STAGE_STATE[opportunity.stage]
        with Transaction().set_user(0):
            Opportunity.create([{
                'number': opportunity.number, 'party': parties[opportunity.customer].id, 'company': company.id,
                'description': opportunity.name, 'amount': opportunity.amount, 'currency': currency.id,
                'start_date': opportunity.close_date - dt.timedelta(days=60), 'end_date': opportunity.close_date,
                'state': state, 'psgw_stage': stage, 'employee': employees["E1002"].id,
                'psgw_billing_model': opportunity.billing_model,
                'psgw_rate_card': cards[opportunity.rate_card].id if opportunity.rate_card in cards else None,
                'psgw_nte_amount': opportunity.nte, 'psgw_engagement_start': opportunity.start,
                'psgw_engagement_end': opportunity.end,
                'psgw_signed_contract_ref': next(
                    (c.number for c in [*contracts, *signed] if c.opportunity == opportunity.number), None),
            }])


if __name__ == "__main__":
    main(*sys.argv[1:4])
