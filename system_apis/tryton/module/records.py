"""Fields and models of the ``psgateway`` Tryton module (see ``__init__``): additive only, no native behaviour
changed. Every added field is named ``psgw_*`` and every added model ``psgw.*`` so a Tryton user sees at once
what the gateway owns."""

from decimal import Decimal

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Unique, fields
from trytond.pool import PoolMeta
from trytond.rpc import RPC

BILLING_MODELS = [("time_and_materials", "Time and materials"), ("fixed_fee", "Fixed fee"),
                  ("milestone", "Milestone"), ("retainer", "Retainer")]
TIME_STATES = [("draft", "Draft"), ("submitted", "Submitted"), ("approved", "Approved"), ("rejected", "Rejected"),
               ("posted", "Posted"), ("invoiced", "Invoiced")]


class Party(metaclass=PoolMeta):
    __name__ = 'party.party'
    psgw_currency = fields.Many2One('currency.currency', "Billing Currency")
    psgw_company = fields.Many2One('company.company', "Contracting Company")
    psgw_tax_region = fields.Char("Tax Jurisdiction")
    psgw_crm_ref = fields.Char("CRM Reference")


class Employee(metaclass=PoolMeta):
    __name__ = 'company.employee'
    psgw_role = fields.Char("Role")
    psgw_business_unit = fields.Char("Business Unit")
    psgw_cost_center = fields.Char("Cost Center")
    psgw_capacity = fields.Numeric("Capacity (hours/week)", digits=(6, 2))
    psgw_on_leave = fields.Boolean("On Leave")


class ProjectWork(metaclass=PoolMeta):
    __name__ = 'project.work'
    psgw_contract = fields.Many2One('psgw.contract', "Contract")
    psgw_stage = fields.Selection([(None, ""), ("planned", "Planned"), ("active", "Active"),
                                   ("on_hold", "On Hold"), ("closed", "Closed")], "Stage")
    psgw_billing_model = fields.Selection([(None, ""), *BILLING_MODELS], "Billing Model")
    psgw_manager = fields.Many2One('company.employee', "Project Manager")
    psgw_business_unit = fields.Char("Business Unit")
    psgw_start_date = fields.Date("Start Date")
    psgw_end_date = fields.Date("End Date")
    psgw_billable = fields.Boolean("Billable")
    psgw_dimension = fields.Char("Financial Dimension")

    @staticmethod
    def default_psgw_billable() -> bool:
        return True


class TimesheetLine(metaclass=PoolMeta):
    __name__ = 'timesheet.line'
    psgw_state = fields.Selection(TIME_STATES, "Approval State", required=True)
    psgw_billable = fields.Boolean("Billable")
    psgw_submitted_at = fields.Timestamp("Submitted At")
    psgw_approved_at = fields.Timestamp("Approved At")
    psgw_approved_by = fields.Many2One('company.employee', "Approved By")
    psgw_rejection_reason = fields.Char("Rejection Reason")
    psgw_version = fields.Integer("Version", required=True)
    psgw_supersedes = fields.Many2One('timesheet.line', "Supersedes")
    psgw_superseded_by = fields.Many2One('timesheet.line', "Superseded By")
    # The offline client's id of the entry (Tryton's own ``uuid`` is read-only over RPC: its timesheet app sets it).
    psgw_client_ref = fields.Char("Client Reference", strip=False)

    @classmethod
    def __setup__(cls) -> None:
        super().__setup__()  # type: ignore[misc]  # the pool supplies the base class at registration
        t = cls.__table__()
        cls._sql_constraints += [('psgw_client_ref_unique', Unique(t, t.psgw_client_ref),
                                  'psgateway.msg_client_ref_unique')]

    @staticmethod
    def default_psgw_state() -> str:
        return 'draft'

    @staticmethod
    def default_psgw_billable() -> bool:
        return True

    @staticmethod
    def default_psgw_version() -> int:
        return 1


class RateCard(ModelSQL, ModelView):
    __name__ = 'psgw.rate_card'
    code = fields.Char("Code", required=True)
    name = fields.Char("Name", required=True)
    currency = fields.Many2One('currency.currency', "Currency", required=True)
    lines = fields.One2Many('psgw.rate_card.line', 'card', "Lines")

    @classmethod
    def __setup__(cls) -> None:
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints = [('code_unique', Unique(t, t.code), 'psgateway.msg_rate_card_code_unique')]


class RateCardLine(ModelSQL, ModelView):
    __name__ = 'psgw.rate_card.line'
    card = fields.Many2One('psgw.rate_card', "Rate Card", required=True, ondelete='CASCADE')
    role = fields.Char("Role", required=True)
    hourly_rate = fields.Numeric("Hourly Rate", digits=(14, 2), required=True)
    valid_from = fields.Date("Valid From", required=True)
    valid_to = fields.Date("Valid To")


class Contract(ModelSQL, ModelView):
    __name__ = 'psgw.contract'
    number = fields.Char("Number", required=True)
    party = fields.Many2One('party.party', "Customer", required=True)
    company = fields.Many2One('company.company', "Company", required=True)
    name = fields.Char("Name", required=True)
    currency = fields.Many2One('currency.currency', "Currency", required=True)
    billing_model = fields.Selection(BILLING_MODELS, "Billing Model", required=True)
    nte_amount = fields.Numeric("Not-to-exceed Amount", digits=(14, 2))
    start_date = fields.Date("Start Date", required=True)
    end_date = fields.Date("End Date")
    state = fields.Selection([("draft", "Draft"), ("active", "Active"), ("amendment_pending", "Amendment Pending"),
                              ("closed", "Closed")], "State", required=True)
    revision = fields.Integer("Revision", required=True)
    rate_card = fields.Many2One('psgw.rate_card', "Rate Card")
    invoice_frequency = fields.Selection([("monthly", "Monthly"), ("milestone", "Milestone"),
                                          ("schedule", "Schedule")], "Invoice Frequency", required=True)
    payment_term_days = fields.Integer("Payment Term (days)", required=True)
    # A retainer's fee per period (the canonical billing_schedule.period_fee).
    scheduled_amount = fields.Numeric("Scheduled Amount", digits=(14, 2))
    total_value = fields.Numeric("Total Value", digits=(14, 2))
    retainer_hours = fields.Numeric("Hours Allowance per Period", digits=(8, 2))
    unused_hours = fields.Selection([("expire", "Expire"), ("carry_forward", "Carry Forward")], "Unused Hours",
                                    required=True)
    schedule_lines = fields.One2Many('psgw.contract.schedule_line', 'contract', "Billing Schedule")

    @classmethod
    def __setup__(cls) -> None:
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints = [('number_unique', Unique(t, t.number), 'psgateway.msg_contract_number_unique')]

    @staticmethod
    def default_revision() -> int:
        return 1

    @staticmethod
    def default_unused_hours() -> str:
        return "expire"


class ContractScheduleLine(ModelSQL, ModelView):
    "A fixed-fee instalment: an amount billed in a period (or on a date)."
    __name__ = 'psgw.contract.schedule_line'
    contract = fields.Many2One('psgw.contract', "Contract", required=True, ondelete='CASCADE')
    line_no = fields.Integer("Line", required=True)
    period = fields.Char("Period")
    date = fields.Date("Date")
    amount = fields.Numeric("Amount", digits=(14, 2), required=True)
    percent_complete = fields.Numeric("Percent Complete", digits=(5, 2))
    description = fields.Char("Description")


class Assignment(ModelSQL, ModelView):
    __name__ = 'psgw.assignment'
    number = fields.Char("Number", required=True)
    employee = fields.Many2One('company.employee', "Employee", required=True)
    work = fields.Many2One('project.work', "Project", required=True)
    role = fields.Char("Role", required=True)
    hours_per_week = fields.Numeric("Hours per Week", digits=(6, 2), required=True)
    start_date = fields.Date("Start Date", required=True)
    end_date = fields.Date("End Date")
    state = fields.Selection([("proposed", "Proposed"), ("confirmed", "Confirmed"), ("ended", "Ended")], "State",
                             required=True)

    @classmethod
    def __setup__(cls) -> None:
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints = [('number_unique', Unique(t, t.number), 'psgateway.msg_assignment_number_unique')]


class Posting(ModelSQL, ModelView):
    """A billable item booked for invoicing; the unique constraint makes a source posted at most once and reversed
    at most once. A reversal (a correction took the source back) is the negative of the posting it names
    (``reverses``), dated in an open period; Tryton has no reversal of its own for this record, which books no
    journal entry."""
    __name__ = 'psgw.posting'
    source_type = fields.Char("Source Type", required=True)
    source_ref = fields.Char("Source", required=True)
    work = fields.Many2One('project.work', "Project", required=True)
    contract = fields.Many2One('psgw.contract', "Contract", required=True)
    company = fields.Many2One('company.company', "Company", required=True)
    date = fields.Date("Date", required=True)
    quantity = fields.Numeric("Quantity", digits=(12, 4), required=True)
    amount = fields.Numeric("Amount", digits=(14, 2), required=True)
    currency = fields.Many2One('currency.currency', "Currency", required=True)
    timesheet_line = fields.Many2One('timesheet.line', "Timesheet Line")
    kind = fields.Selection([("posting", "Posting"), ("reversal", "Reversal")], "Kind", required=True)
    reverses = fields.Many2One('psgw.posting', "Reverses")

    @classmethod
    def __setup__(cls) -> None:
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints = [('source_kind_unique', Unique(t, t.source_type, t.source_ref, t.kind),
                                 'psgateway.msg_posting_source_unique')]

    @classmethod
    def default_kind(cls) -> str:
        return "posting"


class Invoice(metaclass=PoolMeta):
    __name__ = 'account.invoice'
    psgw_contract = fields.Many2One('psgw.contract', "Contract")
    psgw_period = fields.Char("Billing Period")
    psgw_request = fields.Char("Request Key")
    psgw_credits = fields.Many2One('account.invoice', "Credits Invoice", readonly=True)

    @classmethod
    def __setup__(cls) -> None:
        super().__setup__()  # type: ignore[misc]  # account.invoice's, through the pool
        cls.__rpc__.update({'psgw_credit': RPC(readonly=False, instantiate=0, result=int, fresh_session=True)})

    @classmethod
    def psgw_credit(cls, invoices: list, lines: list, request_key: str | None) -> int:
        """Credit some lines of one posted customer invoice with Tryton's own credit note (the invoice's
        ``_credit``: a customer invoice of the negated lines, each line's ``origin`` the line it credits), posted
        by Tryton's ``post``, in one transaction. ``lines``: dicts of ``source_refs`` (a list), ``quantity``,
        ``unit_price`` and ``description``. A source is never credited beyond what the invoice billed for it; the
        same ``request_key`` answers the same credit note."""
        invoice, = invoices
        cls.lock([invoice])  # concurrent credits of one invoice: one at a time, so the bound below holds
        if request_key and (done := cls.search([('psgw_request', '=', request_key),
                                                 ('psgw_credits', '=', invoice.id)], limit=1)):
            return done[0].id
        if invoice.type != 'out' or invoice.state not in ('posted', 'paid'):
            raise UserError(gettext('psgateway.msg_credit_not_posted'))
        left: dict[str, Decimal] = {}
        for line in invoice.lines:
            for ref in (line.psgw_source_refs or '').split():
                left[ref] = left.get(ref, Decimal(0)) + line.amount
        for note in cls.search([('psgw_credits', '=', invoice.id)]):
            for line in note.lines:
                for ref in (line.psgw_source_refs or '').split():
                    left[ref] = left.get(ref, Decimal(0)) + line.amount  # credited lines are negative
        credit = invoice._credit(psgw_credits=invoice.id, psgw_request=request_key)
        credited = []
        for asked in lines:
            refs = list(asked['source_refs'])
            original = next((o for o in invoice.lines if set(refs) <= set((o.psgw_source_refs or '').split())),
                            None)
            if original is None:
                raise UserError(gettext('psgateway.msg_credit_source_not_billed', source=' '.join(refs)))
            line = original._credit()
            quantity = Decimal(str(asked['quantity']))
            line.quantity = -float(quantity)  # a Float field in Tryton
            line.unit_price = Decimal(str(asked['unit_price']))
            line.description = asked['description']
            line.psgw_source_type = original.psgw_source_type
            line.psgw_source_refs = ' '.join(refs)
            amount = invoice.currency.round(quantity * line.unit_price)
            for ref in refs:
                if left.get(ref, Decimal(0)) < amount:
                    raise UserError(gettext('psgateway.msg_credit_beyond_billed', source=ref))
                left[ref] -= amount
            credited.append(line)
        credit.lines = credited
        credit.save()
        cls.post([credit])
        return credit.id


class InvoiceLine(metaclass=PoolMeta):
    __name__ = 'account.invoice.line'
    psgw_source_type = fields.Char("Source Type")
    psgw_source_refs = fields.Text("Sources")


class Opportunity(metaclass=PoolMeta):
    __name__ = 'sale.opportunity'
    psgw_stage = fields.Selection([(None, ""), ("qualification", "Qualification"), ("proposal", "Proposal"),
                                   ("negotiation", "Negotiation")], "Sales Stage")
    psgw_billing_model = fields.Selection([(None, ""), *BILLING_MODELS], "Billing Model")
    psgw_rate_card = fields.Many2One('psgw.rate_card', "Rate Card")
    psgw_nte_amount = fields.Numeric("Not-to-exceed Amount", digits=(14, 2))
    psgw_engagement_start = fields.Date("Engagement Start")
    psgw_engagement_end = fields.Date("Engagement End")
    psgw_signed_contract_ref = fields.Char("Signed Contract")
    psgw_provisioned_project = fields.Char("Provisioned Project")
    psgw_invoice_status = fields.Char("Invoice Status")
