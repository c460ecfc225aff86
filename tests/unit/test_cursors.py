"""One cursor style in every tier: opaque base64url text, and one problem (400 invalid-cursor on /cursor)
whatever is wrong with it."""

from __future__ import annotations

import msgspec
import pytest

from runtime import cursors
from runtime.problems import BadRequest


class _Position(msgspec.Struct, array_like=True):
    work_date: str
    entry_id: str


def test_a_keyset_position_round_trips_through_an_opaque_cursor() -> None:
    cursor = cursors.encode_position(_Position("2026-08-03", "te_1"))

    assert cursor.isascii() and "=" not in cursor and "{" not in cursor
    assert cursors.decode_position(cursor, _Position) == _Position("2026-08-03", "te_1")


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 !",
        cursors.encode({"page": 2}),  # a system-tier cursor replayed on a keyset list
        cursors.encode_position(_Position("2026-08-03", "te_1"))[:-3],  # truncated
    ],
)
def test_any_bad_cursor_is_the_one_invalid_cursor_problem(cursor: str) -> None:
    with pytest.raises(BadRequest) as refused:
        cursors.decode_position(cursor, _Position)

    assert refused.value.slug == cursors.INVALID_CURSOR_SLUG == "invalid-cursor"
    assert [(e.pointer, e.location) for e in refused.value.errors or []] == [("/cursor", "query")]


def test_a_filter_bound_cursor_refuses_other_filters_with_the_same_problem() -> None:
    cursor = cursors.encode({"page": 2}, bound_to=cursors.binding({"project_id": "prj_1"}))

    assert cursors.decode(cursor, bound_to=cursors.binding({"project_id": "prj_1"})) == {"page": 2}
    with pytest.raises(BadRequest) as refused:
        cursors.decode(cursor, bound_to=cursors.binding({"project_id": "prj_2"}))
    assert refused.value.slug == "invalid-cursor"
