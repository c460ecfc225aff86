"""Each entity survives a round trip through each vendor dialect: canonical -> vendor -> canonical is equal."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from contracts.canonical import (
    Assignment,
    BillingProfile,
    Contract,
    CostRate,
    Customer,
    Expense,
    Invoice,
    InvoiceLine,
    Milestone,
    Opportunity,
    Posting,
    Project,
    ProjectDimension,
    RateCard,
    RateCardLine,
    Task,
    TimeEntry,
    Worker,
)
from system_apis.crm.connectors import sandbox as crm
from system_apis.erp.connectors import sandbox as erp
from system_apis.hr.connectors import sandbox as hr
from system_apis.psa.connectors import sandbox as psa
from system_apis.vendor_keys import KeyMap

UTC = dt.UTC


@pytest.fixture
def psa_keys() -> psa.PsaKeys:
    return psa.PsaKeys(
        resources=KeyMap({"E1001": 17, "E1002": 20}),
        projects=KeyMap({"PRJ-4001": 501, "PRJ-4002": 502}),
        tasks=KeyMap({"PRJ-4001-T2": 3002}),
        timecards=KeyMap({"TC-100001": 880001, "TC-100002": 880002, "TC-102716": 882716}),
    )


def test_project_round_trips_through_the_psa_dialect() -> None:
    project = Project(id="prj_4001", external_ids={"psa": "501"}, name="Contoso Retail: Pricing",
                      contract_id="ctr_2001", customer_id="cus_1001", legal_entity_id="le_us", status="on_hold",
                      billing_model="retainer", budget_hours=Decimal("812.5"), manager_id="wrk_e1002",
                      business_unit_id="bu_str", start_date=dt.date(2026, 8, 1), end_date=None)
    vendor = {"projectId": 501, "projectCode": "PRJ-4001", **psa.project_to_vendor(project)}

    assert vendor["stage"] == "Paused" and vendor["billingType"] == "RETAINER" and vendor["contractRef"] == "SOW-2001"
    assert psa.project_from_vendor(vendor) == project


def test_time_entry_round_trips_through_the_psa_dialect(psa_keys: psa.PsaKeys) -> None:
    entry = TimeEntry(
        id="te_100002", external_ids={"psa": "880002"}, worker_id="wrk_e1001", project_id="prj_4001",
        task_id="tsk_4001-t2", work_date=dt.date(2026, 10, 5), hours=Decimal("7.5"), billable=False,
        notes="Workshop", state="posted", version=2, supersedes_id="te_100001", superseded_by_id="te_102716",
        submitted_at=dt.datetime(2026, 10, 6, 9, tzinfo=UTC), approved_at=dt.datetime(2026, 10, 8, 10, 30, tzinfo=UTC),
        approved_by="wrk_e1002", rejection_reason=None, updated_at=dt.datetime(2026, 10, 8, 10, 30, 1, 5, tzinfo=UTC),
        client_ref="phone-1",
    )
    vendor = psa.timecard_to_vendor(entry, psa_keys)

    assert vendor["durationMinutes"] == 450 and vendor["status"] == "Posted" and vendor["resourceId"] == 17
    assert psa.timecard_from_vendor(vendor, psa_keys) == entry


@pytest.mark.parametrize(("state", "status"), [("draft", "Saved"), ("submitted", "Submitted"),
                                                ("approved", "Approved"), ("rejected", "Rejected"),
                                                ("posted", "Posted"), ("invoiced", "Billed")])
def test_every_time_entry_state_has_one_vendor_status(state: str, status: str, psa_keys: psa.PsaKeys) -> None:
    entry = TimeEntry(id="te_100001", external_ids={"psa": "880001"}, worker_id="wrk_e1001", project_id="prj_4001",
                      work_date=dt.date(2026, 10, 5), hours=Decimal(8), state=state)  # type: ignore[arg-type]
    vendor = psa.timecard_to_vendor(entry, psa_keys)
    assert vendor["status"] == status
    assert psa.timecard_from_vendor(vendor, psa_keys).state == state


def test_task_assignment_expense_and_milestone_round_trip_through_the_psa_dialect(psa_keys: psa.PsaKeys) -> None:
    task = Task(id="tsk_4001-t2", external_ids={"psa": "3002"}, project_id="prj_4001", name="Delivery",
                billable=False)
    assignment = Assignment(id="asg_6001", external_ids={"psa": "9001"}, worker_id="wrk_e1001",
                            project_id="prj_4002", role="senior_consultant",
                            planned_hours_per_week=Decimal("12.5"), start_date=dt.date(2026, 8, 1), end_date=None,
                            status="proposed")
    expense = Expense(id="exp_300001", external_ids={"psa": "420001"}, worker_id="wrk_e1002", project_id="prj_4001",
                      expense_date=dt.date(2026, 9, 2), amount=Decimal("328.80"), currency="USD",
                      category="lodging", billable=True, receipt_ref=None, state="submitted")
    milestone = Milestone(id="ms_5001", external_ids={"psa": "7701"}, project_id="prj_4002", name="Phase 1",
                          amount=Decimal("20000.00"), currency="EUR", due_date=dt.date(2026, 12, 1),
                          state="accepted")

    assert psa.task_from_vendor(psa.task_to_vendor(task, psa_keys), psa_keys) == task
    vendor_assignment = psa.assignment_to_vendor(assignment, psa_keys)
    assert vendor_assignment["roleName"] == "Senior Consultant" and vendor_assignment["status"] == "Tentative"
    assert psa.assignment_from_vendor(vendor_assignment, psa_keys) == assignment
    assert psa.expense_from_vendor(psa.expense_to_vendor(expense, psa_keys), psa_keys) == expense
    vendor_milestone = psa.milestone_to_vendor(milestone, psa_keys)
    assert vendor_milestone["status"] == "Accepted"
    assert psa.milestone_from_vendor(vendor_milestone, psa_keys) == milestone


def test_hours_that_are_not_whole_minutes_are_refused_not_rounded() -> None:
    assert psa.minutes_of(Decimal("0.25")) == 15
    with pytest.raises(Exception) as refused:
        psa.minutes_of(Decimal("0.3333"))
    assert refused.value.errors[0].pointer == "/hours"  # type: ignore[attr-defined]


@pytest.fixture
def erp_keys() -> erp.ErpKeys:
    return erp.ErpKeys(customers=KeyMap({"C-1001": 2001, "C-1004": 2004}))


def test_customer_and_contract_round_trip_through_the_erp_dialect(erp_keys: erp.ErpKeys) -> None:
    customer = Customer(id="cus_1004", external_ids={"erp": "2004", "crm": "0018d00005nHtN7AAK"},
                        name="Litware Bank", billing_currency="GBP", legal_entity_id="le_uk", tax_jurisdiction="GB")
    contract = Contract(
        id="ctr_2004", external_ids={"erp": "3504"}, customer_id="cus_1004", legal_entity_id="le_uk",
        name="Litware Bank SOW", currency="GBP", billing_model="fixed_fee", nte_amount=Decimal("22000.50"),
        start_date=dt.date(2026, 7, 1), end_date=dt.date(2027, 1, 31), status="amendment_pending", version=3,
        rate_card_id="rc_gbp", billing_profile=BillingProfile(invoice_frequency="schedule", payment_terms_days=45,
                                                              scheduled_amount=Decimal("17500.00")),
    )
    vendor_customer = erp.customer_to_vendor(customer)
    vendor_contract = erp.contract_to_vendor(contract, erp_keys)

    assert vendor_customer["customerNumber"] == "C-1004" and vendor_customer["externalCrmId"] == "0018d00005nHtN7AAK"
    assert erp.customer_from_vendor(vendor_customer) == customer
    assert vendor_contract["nteAmountMinor"] == 2200050 and vendor_contract["contractStatus"] == "PENDING_AMENDMENT"
    assert vendor_contract["paymentTerms"] == "NET45" and vendor_contract["customerId"] == 2004
    assert erp.contract_from_vendor(vendor_contract, erp_keys) == contract


def test_posting_dimension_and_invoice_round_trip_through_the_erp_dialect(erp_keys: erp.ErpKeys) -> None:
    posting = Posting(id="pst_600001", external_ids={"erp": "600001"}, source_type="time_entry",
                      source_id="te_100004", project_id="prj_4001", contract_id="ctr_2001", legal_entity_id="le_us",
                      work_date=dt.date(2026, 8, 12), quantity=Decimal("7.5"), amount=Decimal("1312.50"),
                      currency="USD", posted_at=dt.datetime(2026, 8, 16, 2, tzinfo=UTC))
    dimension = ProjectDimension(id="dim_4001", external_ids={"erp": "8001"}, project_id="prj_4001",
                                 legal_entity_id="le_us", code="P-4001")
    invoice = Invoice(
        id="inv_700001", external_ids={"erp": "700001"}, customer_id="cus_1001", contract_id="ctr_2001",
        legal_entity_id="le_us", currency="USD", period="2026-08",
        lines=[InvoiceLine(description="Consultant services", quantity=Decimal(32), unit_price=Decimal("175.00"),
                           amount=Decimal("5600.00"), source_type="time_entry", source_ids=["te_100004"]),
               InvoiceLine(description="Fixed fee", quantity=Decimal(1), unit_price=Decimal("15000.00"),
                           amount=Decimal("15000.00"), source_type="fixed_fee", source_ids=["ctr_2001/2026-08"])],
        subtotal=Decimal("20600.00"), tax=Decimal("0.00"), total=Decimal("20600.00"), state="posted",
        issue_date=dt.date(2026, 9, 1),
    )
    vendor_posting = erp.posting_to_vendor(posting)
    vendor_invoice = erp.invoice_to_vendor(invoice, erp_keys)

    assert vendor_posting["sourceDocumentId"] == "TC-100004" and vendor_posting["amountMinor"] == 131250
    assert erp.posting_from_vendor(vendor_posting) == posting
    assert erp.dimension_from_vendor(erp.dimension_to_vendor(dimension)) == dimension
    assert vendor_invoice["periodName"] == "Aug 2026" and vendor_invoice["lines"][0]["sourceRefs"] == ["TC-100004"]
    assert erp.invoice_from_vendor(vendor_invoice, erp_keys) == invoice


def test_worker_round_trips_through_the_hr_dialect() -> None:
    worker = Worker(
        id="wrk_e1003", external_ids={"hr": "0f" * 16}, name="Chloe Schmidt", email="chloe@northwind.example",
        role="senior_consultant", status="leave", business_unit_id="bu_dat", cost_center_id="cc_dat-de",
        legal_entity_id="le_de", capacity_hours_per_week=Decimal(32), manager_id="wrk_e1002",
        cost_rates=[CostRate(hourly_cost=Decimal("95.00"), currency="EUR", valid_from=dt.date(2024, 1, 1),
                             valid_to=dt.date(2026, 9, 30)),
                    CostRate(hourly_cost=Decimal("98.80"), currency="EUR", valid_from=dt.date(2026, 10, 1))],
    )
    vendor = hr.worker_to_vendor(worker)

    assert vendor["Employment_Data"]["Job_Profile"]["ID"] == "JP-SENIOR_CONSULTANT"
    assert vendor["Employment_Data"]["Worker_Status"] == "On Leave"
    assert hr.worker_from_vendor(vendor) == worker


@pytest.fixture
def crm_keys() -> crm.CrmKeys:
    keys = crm.CrmKeys(accounts=KeyMap({"C-1001": "0018d00002te9N6AAI"}),
                       rate_cards=KeyMap({"RC-USD": "a0R8d00002te9N6EAI"}),
                       contracts=KeyMap({"SOW-2001": "8008d00002te9N6AAI"}))
    keys.account_names["0018d00002te9N6AAI"] = "Contoso Retail"
    return keys


def test_account_opportunity_contract_and_rate_card_round_trip_through_the_crm_dialect(
        crm_keys: crm.CrmKeys) -> None:
    account = Customer(id="cus_1001", external_ids={"crm": "0018d00002te9N6AAI"}, name="Contoso Retail",
                       billing_currency="USD", legal_entity_id="le_us", tax_jurisdiction="US-NY")
    opportunity = Opportunity(
        id="opp_3001", external_ids={"crm": "0068d00002te9N6AAI"}, account_id="cus_1001",
        account_name="Contoso Retail", name="Contoso Retail engagement 1", stage="closed_won",
        amount=Decimal("80000.50"), currency="USD", close_date=dt.date(2026, 7, 18),
        billing_model="time_and_materials", legal_entity_id="le_us", rate_card_id="rc_usd",
        start_date=dt.date(2026, 8, 1), end_date=dt.date(2027, 3, 23), nte_amount=Decimal("60000.00"),
        signed_contract_ref="ctr_2001", provisioned_project_id="prj_4001", invoice_status="posted",
    )
    contract = Contract(
        id="ctr_2001", external_ids={"crm": "8008d00002te9N6AAI"}, customer_id="cus_1001", legal_entity_id="le_us",
        name="Contoso SOW", currency="USD", billing_model="milestone", nte_amount=None,
        start_date=dt.date(2026, 8, 1), end_date=None, status="active", version=2, rate_card_id="rc_usd",
        billing_profile=BillingProfile(invoice_frequency="milestone", payment_terms_days=30, scheduled_amount=None),
    )
    card = RateCard(id="rc_usd", external_ids={"crm": "a0R8d00002te9N6EAI"}, name="Standard USD 2026",
                    currency="USD", lines=[RateCardLine(role="data_scientist", hourly_rate=Decimal("210.00"),
                                                        valid_from=dt.date(2026, 1, 1), valid_to=None)])
    vendor_opportunity = crm.opportunity_to_vendor(opportunity, crm_keys)
    card_record, lines = crm.rate_card_to_vendor(card)

    assert crm.account_from_vendor(crm.account_to_vendor(account)) == account
    assert vendor_opportunity["StageName"] == "Closed Won" and vendor_opportunity["Amount"] == 80000.5
    assert vendor_opportunity["Billing_Model__c"] == "Time & Materials"
    assert crm.opportunity_from_vendor(vendor_opportunity, crm_keys) == opportunity
    assert crm.contract_from_vendor(crm.contract_to_vendor(contract, crm_keys), crm_keys) == contract
    assert lines[0]["Role__c"] == "Data Scientist"
    assert crm.rate_card_from_vendor(card_record, lines) == card
