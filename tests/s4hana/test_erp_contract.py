"""The ERP system API's contract suite (tests/system/test_erp_api.py), run as is on the ``s4hana`` backend: the same
canonical answers from SAP S/4HANA Cloud OData as from the default sandbox ERP, NetSuite and Dynamics 365."""

from tests.system.test_erp_api import (
    test_a_draft_invoice_is_voided_and_a_posted_one_is_not,
    test_a_source_is_posted_exactly_once,
    test_batch_posting_reports_each_item,
    test_contracts_carry_their_billing_terms,
    test_contracts_upsert_amend_and_close,
    test_customers_upsert_by_business_key_and_crm_account,
    test_idempotency_key_on_a_batch_replays_the_same_answer,
    test_invoice_draft_then_post,
    test_legal_entities_and_periods,
    test_posting_refusals_are_in_canonical_terms,
    test_project_dimensions_upsert,
    test_revenue_schedules,
)

__all__ = [
    "test_a_draft_invoice_is_voided_and_a_posted_one_is_not",
    "test_a_source_is_posted_exactly_once",
    "test_batch_posting_reports_each_item",
    "test_contracts_carry_their_billing_terms",
    "test_contracts_upsert_amend_and_close",
    "test_customers_upsert_by_business_key_and_crm_account",
    "test_idempotency_key_on_a_batch_replays_the_same_answer",
    "test_invoice_draft_then_post",
    "test_legal_entities_and_periods",
    "test_posting_refusals_are_in_canonical_terms",
    "test_project_dimensions_upsert",
    "test_revenue_schedules",
]
