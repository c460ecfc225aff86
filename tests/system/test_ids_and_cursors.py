"""Canonical ids, opaque cursors and money in minor units: the small pieces every adapter leans on."""

from __future__ import annotations

from decimal import Decimal

import pytest

from runtime import cursors
from runtime.problems import BadRequest, NotFound, Unprocessable
from system_apis.ids import is_canonical, reference, to_business_key, to_canonical
from system_apis.money import from_minor, to_minor


@pytest.mark.parametrize(("kind", "key", "canonical"), [
    ("worker", "E1001", "wrk_e1001"), ("project", "PRJ-4001", "prj_4001"), ("task", "PRJ-4001-T2", "tsk_4001-t2"),
    ("contract", "SOW-2001", "ctr_2001"), ("customer", "C-1001", "cus_1001"), ("time_entry", "TC-100001", "te_100001"),
    ("rate_card", "RC-USD-LEAN", "rc_usd-lean"), ("cost_center", "CC-STR-US", "cc_str-us"),
    ("posting", "JE-600001", "pst_600001"),
    ("project_dimension", "P-4001", "dim_4001"), ("invoice", "INV-700001", "inv_700001"),
    ("legal_entity", "LE-US", "le_us"),
])
def test_business_keys_and_canonical_ids_map_both_ways(kind: str, key: str, canonical: str) -> None:
    assert to_canonical(kind, key) == canonical  # type: ignore[arg-type]
    assert to_business_key(kind, canonical) == key  # type: ignore[arg-type]
    assert is_canonical(kind, canonical)  # type: ignore[arg-type]


def test_a_malformed_id_in_a_path_is_not_found_and_in_a_body_is_a_field_error() -> None:
    with pytest.raises(NotFound):
        to_business_key("project", "ctr_2001")
    with pytest.raises(Unprocessable) as refused:
        reference("project", "4001", "/project_id")
    assert refused.value.errors is not None and refused.value.errors[0].pointer == "/project_id"


def test_cursor_round_trips_and_is_bound_to_its_filters() -> None:
    bound = cursors.binding({"status": "active", "worker": None})
    cursor = cursors.encode({"page": 3, "size": 50}, bound)

    assert cursors.decode(cursor, bound) == {"page": 3, "size": 50}
    assert cursors.binding({"status": "active"}) == bound  # None counts as absent
    with pytest.raises(BadRequest) as other_filters:
        cursors.decode(cursor, cursors.binding({"status": "closed"}))
    assert other_filters.value.slug == "invalid-cursor"


@pytest.mark.parametrize("garbage", ["not-base64!", "bnVsbA", "W10", "eyJwYWdlIjoi"])
def test_garbage_cursors_are_a_clear_400(garbage: str) -> None:
    with pytest.raises(BadRequest) as refused:
        cursors.decode(garbage)
    assert refused.value.errors is not None and refused.value.errors[0].pointer == "/cursor"


def test_cursor_numbers_are_checked() -> None:
    with pytest.raises(BadRequest):
        cursors.number({"page": "2"}, "page", 1)
    with pytest.raises(BadRequest):
        cursors.number({"page": 0}, "page", 1, minimum=1)
    assert cursors.number({}, "page", 1) == 1


def test_money_moves_to_minor_units_exactly_or_not_at_all() -> None:
    assert to_minor(Decimal("1312.50"), "USD", "/amount") == 131250
    assert to_minor(Decimal("1500"), "JPY", "/amount") == 1500
    assert from_minor(131250, "USD") == Decimal("1312.50") and str(from_minor(131250, "USD")) == "1312.50"
    assert str(from_minor(1, "KWD")) == "0.001"
    with pytest.raises(Unprocessable) as refused:
        to_minor(Decimal("10.005"), "USD", "/amount")
    assert refused.value.errors is not None and refused.value.errors[0].pointer == "/amount"
