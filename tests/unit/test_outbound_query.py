"""An outbound call's query string (runtime.downstream) is what ``urlencode`` writes, whatever a value holds: a
value from a request can add no parameter, end no query and change no path on its way downstream."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from runtime.downstream import Downstream

HOSTILE = [
    "plain-id_1.2~x",
    "a&b=c",
    "x y",
    "100%",
    "a+b",
    "#frag",
    "?q",
    "/..",
    "line\r\nX-Injected: 1",
    "caf\u00e9",
    "\u2028",
    "",
    "2026-12-06T10:00:00+01:00",
    "prj_1,prj_2",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_query_value_is_encoded_as_urlencode_encodes_it(value: str) -> None:
    downstream = Downstream("x", "http://127.0.0.1:9/base")
    target = downstream._target("/items", {"ids": value, "limit": 5, "flag": True, "absent": None, "many": [value, 1]})
    assert target == "/base/items?" + urlencode(
        [("ids", value), ("limit", "5"), ("flag", "true"), ("many", value), ("many", "1")]
    )
    parts = urlsplit(target)
    assert parts.path == "/base/items" and not parts.fragment
    assert parse_qsl(parts.query, keep_blank_values=True) == [
        ("ids", value),
        ("limit", "5"),
        ("flag", "true"),
        ("many", value),
        ("many", "1"),
    ]
