"""The PSA system API's contract suite (tests/system/test_psa_api.py and the batch tests), run as is on the
``certinia`` backend: the same canonical answers from Certinia PSA on Salesforce as from the default sandbox PSA,
for the same demo firm."""

from tests.system.test_psa_api import (
    test_a_correction_is_a_new_version_and_history_is_kept,
    test_assignments_are_created_as_demand_and_confirmed_once,
    test_client_ref_makes_an_offline_resend_harmless,
    test_expenses_and_milestones,
    test_idempotency_key_same_request_one_record_different_request_refused,
    test_projects_list_read_create_and_change,
    test_rejected_time_goes_back_to_draft_and_drafts_can_be_deleted,
    test_time_entry_filters_and_pagination,
    test_time_entry_lifecycle_submit_approve_post_invoice,
    test_time_entry_refusals_name_canonical_fields,
)
from tests.system.test_psa_batch_reads import (
    test_a_batch_read_answers_each_known_project_once_in_the_order_asked,
    test_a_batch_read_refuses_too_many_or_empty_ids_with_a_pointer,
    test_a_batch_read_still_applies_the_other_filters,
    test_ids_that_name_nothing_are_left_out_never_a_500,
)
from tests.system.test_psa_batch_transitions import (
    test_a_malformed_batch_is_refused_whole,
    test_a_replayed_batch_changes_nothing_more,
    test_each_item_gets_its_own_outcome_and_a_refusal_stops_only_its_item,
    test_item_rules_are_the_single_transitions_with_pointers_into_the_batch,
)

__all__ = [
    "test_a_batch_read_answers_each_known_project_once_in_the_order_asked",
    "test_a_batch_read_refuses_too_many_or_empty_ids_with_a_pointer",
    "test_a_batch_read_still_applies_the_other_filters",
    "test_a_correction_is_a_new_version_and_history_is_kept",
    "test_a_malformed_batch_is_refused_whole",
    "test_a_replayed_batch_changes_nothing_more",
    "test_assignments_are_created_as_demand_and_confirmed_once",
    "test_client_ref_makes_an_offline_resend_harmless",
    "test_each_item_gets_its_own_outcome_and_a_refusal_stops_only_its_item",
    "test_expenses_and_milestones",
    "test_idempotency_key_same_request_one_record_different_request_refused",
    "test_ids_that_name_nothing_are_left_out_never_a_500",
    "test_item_rules_are_the_single_transitions_with_pointers_into_the_batch",
    "test_projects_list_read_create_and_change",
    "test_rejected_time_goes_back_to_draft_and_drafts_can_be_deleted",
    "test_time_entry_filters_and_pagination",
    "test_time_entry_lifecycle_submit_approve_post_invoice",
    "test_time_entry_refusals_name_canonical_fields",
]
