"""PSG-704: a string named like a closed set (status, *_state, kind, ...) lists its values or says why it cannot.

What a contract author relies on: the rule fires on every way of writing a free string under such a name (typed,
nullable, untyped, behind a $ref, in an array, as a query parameter), stays quiet on every way of listing the
values or opting out with a reason, and the repository's own contracts are clean under it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from contracts import CONTRACTS_DIR
from contracts.toolchain.catalog import locate_contract
from contracts.toolchain.lint import LintFinding, lint_document, lint_paths
from contracts.toolchain.lint.rules.closed_sets import CLOSED_SET_WORDS
from contracts.toolchain.loader import ContractDocument, load_contract

CLEAN = Path(__file__).parent / "fixtures" / "lint" / "experience" / "clean-contract" / "v1.yaml"
README = CONTRACTS_DIR / "README.md"
RULE = "PSG-704"


def lint_with(properties: dict[str, Any], components: dict[str, Any] | None = None,
              parameters: list[dict[str, Any]] | None = None) -> list[LintFinding]:
    """The clean fixture with extra TimeEntry properties, component schemas and list-query parameters."""
    content = copy.deepcopy(load_contract(CLEAN).content)
    content["components"]["schemas"]["TimeEntry"]["properties"].update(properties)
    content["components"]["schemas"].update(components or {})
    content["paths"]["/time-entries"]["get"]["parameters"].extend(parameters or [])
    findings = lint_document(ContractDocument.from_mapping(content), locate_contract(CLEAN))
    return [finding for finding in findings if finding.rule_id == RULE]


Case = tuple[dict[str, Any], dict[str, Any]]
FREE_STRINGS: dict[str, Case] = {
    "plain string": ({"status": {"type": "string"}}, {}),
    "suffix": ({"invoice_status": {"type": "string"}}, {}),
    "nullable": ({"from_state": {"type": ["string", "null"]}}, {}),
    "untyped": ({"kind": {"description": "What it is."}}, {}),
    "plural array filter": ({"types": {"type": "array", "items": {"type": "string"}}}, {}),
    "anyOf without enum": ({"outcome": {"anyOf": [{"type": "string"}, {"type": "null"}]}}, {}),
    "behind a ref": ({"decision": {"$ref": "#/components/schemas/Word"}}, {"Word": {"type": "string"}}),
    "allOf of free strings": ({"stage": {"allOf": [{"type": "string"}, {"minLength": 1}]}}, {}),
}


@pytest.mark.parametrize("case", FREE_STRINGS, ids=list(FREE_STRINGS))
def test_a_free_string_named_like_a_closed_set_is_an_error(case: str) -> None:
    properties, components = FREE_STRINGS[case]
    [name] = properties

    [finding] = lint_with(properties, components)

    assert finding.severity == "error"
    assert finding.pointer == f"/components/schemas/TimeEntry/properties/{name}"
    assert "x-open-set" in finding.message


LISTED_OR_OPTED_OUT: dict[str, Case] = {
    "enum": ({"status": {"type": "string", "enum": ["open", "closed"]}}, {}),
    "const": ({"kind": {"const": "time_entry"}}, {}),
    "nullable enum": ({"state": {"anyOf": [{"enum": ["open", "resolved"]}, {"type": "null"}]}}, {}),
    "enum behind a ref": ({"state": {"$ref": "#/components/schemas/State"}},
                          {"State": {"type": "string", "enum": ["open"]}}),
    "allOf with an enum": ({"state": {"allOf": [{"$ref": "#/components/schemas/State"}], "description": "Now."}},
                           {"State": {"type": "string", "enum": ["open"]}}),
    "array of enum": ({"statuses": {"type": "array", "items": {"enum": ["open", "closed"]}}}, {}),
    "open set with a reason": ({"event_type": {"type": "string", "x-open-set": "Grows with the event catalog."}}, {}),
    "open set on the component": ({"action": {"$ref": "#/components/schemas/Sentence"}},
                                  {"Sentence": {"type": "string", "x-open-set": "A sentence for people."}}),
    "extensible enum": ({"source_type": {"type": "string", "x-extensible-enum": ["time_entry", "invoice"]}}, {}),
    "not a string": ({"status": {"type": "integer"}, "result": {"type": "object"}}, {}),
    "words not in the list": ({"reason": {"type": "string"}, "category": {"type": "string"},
                               "status_detail": {"type": "string"}, "typed_notes": {"type": "string"}}, {}),
}


@pytest.mark.parametrize("case", LISTED_OR_OPTED_OUT, ids=list(LISTED_OR_OPTED_OUT))
def test_listed_values_or_a_reasoned_opt_out_pass(case: str) -> None:
    properties, components = LISTED_OR_OPTED_OUT[case]

    assert lint_with(properties, components) == []


@pytest.mark.parametrize("opt_out", [{"x-open-set": True}, {"x-open-set": "  "}, {"x-extensible-enum": []}],
                         ids=["true", "blank", "empty-extensible"])
def test_an_opt_out_without_a_reason_or_values_is_an_error(opt_out: dict[str, Any]) -> None:
    [finding] = lint_with({"status": {"type": "string", **opt_out}})

    assert "reason" in finding.message or "values" in finding.message


def test_a_query_filter_named_like_a_closed_set_needs_its_values_too() -> None:
    free = {"name": "status", "in": "query", "schema": {"type": "string"}}
    listed = {"name": "state", "in": "query", "schema": {"type": "string", "enum": ["open", "closed"]}}

    [finding] = lint_with({}, parameters=[free, listed])

    assert finding.pointer == "/paths/~1time-entries/get/parameters/3/name"
    assert finding.message.startswith("query parameter 'status'")


def test_the_problem_type_uri_is_open_by_definition() -> None:
    # The clean fixture's Problem has `type: {type: string}`: RFC 9457 problem type URIs, a growing catalog.
    assert lint_with({}) == []


def test_repository_contracts_list_every_closed_set() -> None:
    assert [finding.format_text() for finding in lint_paths([CONTRACTS_DIR]) if finding.rule_id == RULE] == []


def test_the_rule_catalog_names_every_closed_set_word() -> None:
    row = next(line for line in README.read_text().splitlines() if line.startswith(f"| {RULE} |"))
    assert [word for word in CLOSED_SET_WORDS if f"`{word}`" not in row] == []
