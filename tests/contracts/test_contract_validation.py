"""Runtime validation against the mobile-time contract: routing, parameters, bodies and responses.

Every test runs with both schema engines: the pure-Python one and jsonschema-rs (when installed) must agree
on what is wrong and where.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from contracts.toolchain.schemas import PythonSchemaEngine, SchemaEngine
from contracts.toolchain.validation import CompiledContract, ContractCompileError, ValidationIssue

CONTRACT = Path(__file__).parent / "fixtures" / "contracts" / "experience" / "mobile-time" / "v1.yaml"
BASE = "/experience/mobile-time/v1"
JSON = "application/json"
KEY = {"Idempotency-Key": "k-20250106-1"}
ENTRY = {"assignment_id": "asg_7f3a", "work_date": "2025-01-06", "hours": 7.5}


def _engines() -> list[Any]:
    engines: list[Any] = [pytest.param(PythonSchemaEngine(), id="jsonschema")]
    try:
        from contracts.toolchain.schemas.rust_engine import RustSchemaEngine
    except ImportError:
        return engines
    return [*engines, pytest.param(RustSchemaEngine(), id="jsonschema-rs")]


@pytest.fixture(params=_engines(), scope="module")
def contract(request: pytest.FixtureRequest) -> CompiledContract:
    engine: SchemaEngine = request.param
    return CompiledContract.from_file(CONTRACT, engine)


def where(issues: list[ValidationIssue]) -> list[tuple[str, str, str]]:
    return [(issue.location, issue.pointer, issue.code) for issue in issues]


def body(value: Any) -> bytes:
    return msgspec.json.encode(value)


def request(contract: CompiledContract, method: str, path: str, **parts: Any) -> list[ValidationIssue]:
    found = contract.match(method, BASE + path)
    assert found is not None, f"{method} {path} did not route"
    return found.operation.validate_request(found.path_params, **parts)


# Routing


@pytest.mark.parametrize(
    ("method", "path", "operation_id", "path_params"),
    [
        ("GET", "/assignments", "listAssignments", {}),
        ("post", "/time-entries", "createTimeEntry", {}),
        ("POST", "/time-entries/batch", "syncTimeEntries", {}),  # the literal beats {time_entry_id}
        ("GET", "/time-entries/batch", "getTimeEntry", {"time_entry_id": "batch"}),  # the method decides
        ("GET", "/time-entries/te_91b2", "getTimeEntry", {"time_entry_id": "te_91b2"}),
        ("GET", "/time-entries/te%2F91", "getTimeEntry", {"time_entry_id": "te/91"}),  # decoded after matching
        ("HEAD", "/time-entries/te_91b2", "getTimeEntry", {"time_entry_id": "te_91b2"}),
    ],
)
def test_routes_to_the_operation(
    contract: CompiledContract, method: str, path: str, operation_id: str, path_params: dict[str, str]
) -> None:
    found = contract.match(method, BASE + path)

    assert found is not None
    assert found.operation.operation_id == operation_id
    assert found.path_params == path_params


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", BASE + "/projects"),
        ("DELETE", BASE + "/time-entries/te_91b2"),
        ("GET", BASE + "/assignments/"),
        ("GET", "/assignments"),  # the server URL is part of the path
        ("GET", "/experience/mobile-time/v2/assignments"),
        ("GET", BASE + "/time-entries/te_1/extra"),
    ],
)
def test_unknown_path_or_method_does_not_match(contract: CompiledContract, method: str, path: str) -> None:
    assert contract.match(method, path) is None


def test_allowed_methods_support_405(contract: CompiledContract) -> None:
    assert contract.allowed_methods(BASE + "/time-entries/te_1") == {"GET"}
    assert contract.allowed_methods(BASE + "/time-entries/batch") == {"GET", "POST"}
    assert contract.allowed_methods(BASE + "/nowhere") == frozenset()


def test_operations_expose_their_scopes(contract: CompiledContract) -> None:
    operation = contract.operation_by_id("createTimeEntry")

    assert operation is not None
    assert operation.security == ({"oauth2": ("time.write",)},)
    assert operation.full_path == BASE + "/time-entries"


# Path and query parameters


def test_get_without_query_or_body_is_valid(contract: CompiledContract) -> None:
    assert request(contract, "GET", "/assignments") == []
    assert request(contract, "GET", "/time-entries/te_91b2") == []


def test_path_parameter_is_validated_after_decoding(contract: CompiledContract) -> None:
    issues = request(contract, "GET", "/time-entries/TE%201")

    assert where(issues) == [("path", "/time_entry_id", "schema")]


@pytest.mark.parametrize(
    "query",
    [
        "limit=20&status=confirmed&status=ended&billable=false&cursor=abc",
        [("limit", "20"), ("status", "confirmed"), ("status", "ended"), ("billable", "false"), ("cursor", "abc")],
        {"limit": "20", "status": ["confirmed", "ended"], "billable": "false", "cursor": "abc"},
    ],
    ids=["raw-string", "pairs", "mapping"],
)
def test_query_strings_are_coerced_to_their_schema_types(contract: CompiledContract, query: Any) -> None:
    assert request(contract, "GET", "/assignments", query=query) == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("limit=0", [("query", "/limit", "schema")]),
        ("limit=abc", [("query", "/limit", "schema")]),
        ("limit=2.5", [("query", "/limit", "schema")]),
        ("billable=yes", [("query", "/billable", "schema")]),
        ("status=confirmed&status=bogus", [("query", "/status/1", "schema")]),
        ("limit=10&limit=20", [("query", "/limit", "repeated_parameter")]),
        ("limt=5", [("query", "/limt", "unknown_parameter")]),
    ],
)
def test_bad_query_parameters_are_reported_by_name(
    contract: CompiledContract, query: str, expected: list[tuple[str, str, str]]
) -> None:
    assert where(request(contract, "GET", "/assignments", query=query)) == expected


def test_query_issue_explains_itself(contract: CompiledContract) -> None:
    [issue] = request(contract, "GET", "/assignments", query="limit=500")

    assert "500" in issue.detail
    assert "100" in issue.detail


# Headers and bodies


def test_required_header_is_checked_case_insensitively(contract: CompiledContract) -> None:
    valid = request(
        contract,
        "POST",
        "/time-entries",
        headers={"idempotency-key": "k-20250106-1"},
        body=body(ENTRY),
        content_type=JSON,
    )
    missing = request(contract, "POST", "/time-entries", headers={}, body=body(ENTRY), content_type=JSON)
    too_short = request(
        contract, "POST", "/time-entries", headers={"IDEMPOTENCY-KEY": "k"}, body=body(ENTRY), content_type=JSON
    )

    assert valid == []
    assert where(missing) == [("header", "/Idempotency-Key", "missing_parameter")]
    assert where(too_short) == [("header", "/Idempotency-Key", "schema")]


def test_valid_body_with_charset_parameter(contract: CompiledContract) -> None:
    issues = request(
        contract, "POST", "/time-entries", headers=KEY, body=body(ENTRY), content_type="application/json; charset=utf-8"
    )

    assert issues == []


def test_body_errors_carry_json_pointers(contract: CompiledContract) -> None:
    batch = {
        "lines": [
            ENTRY,
            {"assignment_id": "asg_7f3a", "hours": 25, "work_date": "2025-02-30", "rate": "1"},
            {"assignment_id": "asg_7f3a", "hours": 8},
        ]
    }

    issues = request(contract, "POST", "/time-entries/batch", body=body(batch), content_type=JSON)

    assert sorted(where(issues)) == [
        ("body", "/lines/1/hours", "schema"),
        ("body", "/lines/1/rate", "schema"),
        ("body", "/lines/1/work_date", "schema"),
        ("body", "/lines/2/work_date", "schema"),
    ]
    details = {issue.pointer: issue.detail for issue in issues}
    assert details["/lines/2/work_date"] == "required property is missing"
    assert details["/lines/1/rate"] == "property is not allowed"


@pytest.mark.parametrize(
    ("payload", "content_type", "expected"),
    [
        (b"{not json", JSON, [("body", "", "invalid_json")]),
        (b"[" * 100_000 + b"]" * 100_000, JSON, [("body", "", "invalid_json")]),
        (None, JSON, [("body", "", "missing_body")]),
        (body(ENTRY), "text/csv", [("header", "/content-type", "unsupported_media_type")]),
        (body(ENTRY), None, [("header", "/content-type", "unsupported_media_type")]),
        (body([ENTRY]), JSON, [("body", "", "schema")]),
    ],
    ids=["invalid-json", "nested-too-deeply", "missing-body", "wrong-media-type", "no-media-type", "wrong-shape"],
)
def test_body_level_problems(
    contract: CompiledContract, payload: bytes | None, content_type: str | None, expected: list[tuple[str, str, str]]
) -> None:
    issues = request(contract, "POST", "/time-entries", headers=KEY, body=payload, content_type=content_type)

    assert where(issues) == expected


def test_body_on_an_operation_without_one_is_reported(contract: CompiledContract) -> None:
    issues = request(contract, "GET", "/assignments", body=b"{}", content_type=JSON)

    assert where(issues) == [("body", "", "unexpected_body")]


def test_issues_from_every_part_are_collected(contract: CompiledContract) -> None:
    issues = request(
        contract, "POST", "/time-entries", query="dry_run=true", body=body({"hours": -1}), content_type=JSON
    )

    assert sorted(where(issues)) == [
        ("body", "/assignment_id", "schema"),
        ("body", "/hours", "schema"),
        ("body", "/work_date", "schema"),
        ("header", "/Idempotency-Key", "missing_parameter"),
        ("query", "/dry_run", "unknown_parameter"),
    ]


# Responses

CREATED = {**ENTRY, "time_entry_id": "te_91b2", "state": "draft", "created_at": "2025-01-06T17:02:11Z"}


def test_valid_responses(contract: CompiledContract) -> None:
    operation = contract.operation_by_id("createTimeEntry")
    assert operation is not None

    assert operation.validate_response(201, JSON, body(CREATED)) == []
    problem = {"type": "/catalog/problems/bad-request", "title": "Bad request", "status": 400}
    assert operation.validate_response(400, "application/problem+json", body(problem)) == []


def test_response_errors(contract: CompiledContract) -> None:
    operation = contract.operation_by_id("createTimeEntry")
    assert operation is not None
    broken = {**CREATED, "state": "lost", "created_at": "yesterday"}
    del broken["hours"]

    assert sorted(where(operation.validate_response(201, JSON, body(broken)))) == [
        ("body", "/created_at", "schema"),
        ("body", "/hours", "schema"),
        ("body", "/state", "schema"),
    ]
    assert where(operation.validate_response(500, JSON, b"{}")) == [("status", "", "undeclared_status")]
    assert where(operation.validate_response(201, JSON, None)) == [("body", "", "missing_body")]
    assert where(operation.validate_response(400, JSON, b"{}")) == [
        ("header", "/content-type", "unsupported_media_type")
    ]


# Parameter styles and compile-time refusals, on small inline contracts


def inline_contract(parameters: list[dict[str, Any]], engine: SchemaEngine | None = None) -> CompiledContract:
    return CompiledContract.from_document(
        {
            "openapi": "3.1.0",
            "info": {"title": "styles", "version": "1.0.0"},
            "servers": [{"url": "https://api.example.com/system/psa/v1"}],
            "paths": {"/projects": {"get": {"parameters": parameters, "responses": {"204": {"description": "ok"}}}}},
            "components": {"schemas": {"Id": {"type": "integer", "minimum": 1}}},
        },
        engine,
    )


@pytest.mark.parametrize(
    ("parameter", "query", "expected"),
    [
        ({"style": "form", "explode": False}, "ids=1,2,x", [("query", "/ids/2", "schema")]),
        ({"style": "pipeDelimited"}, "ids=1|0", [("query", "/ids/1", "schema")]),
        ({"style": "spaceDelimited"}, "ids=1%203", []),
        ({}, "ids=1&ids=-4", [("query", "/ids/1", "schema")]),
    ],
    ids=["form-csv", "pipes", "spaces", "exploded"],
)
def test_array_styles(parameter: dict[str, Any], query: str, expected: list[tuple[str, str, str]]) -> None:
    schema = {"type": "array", "items": {"$ref": "#/components/schemas/Id"}}
    contract = inline_contract([{"name": "ids", "in": "query", "schema": schema, **parameter}])
    found = contract.match("GET", "/system/psa/v1/projects")
    assert found is not None

    assert where(found.operation.validate_request(query=query)) == expected


def test_deep_object_query_parameter() -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"role": {"type": "string"}, "level": {"type": "integer", "maximum": 5}},
    }
    contract = inline_contract([{"name": "filter", "in": "query", "style": "deepObject", "schema": schema}])
    found = contract.match("GET", "/system/psa/v1/projects")
    assert found is not None

    assert found.operation.validate_request(query="filter[role]=consultant&filter[level]=3") == []
    assert where(found.operation.validate_request(query="filter[level]=9&filter[team]=x")) == [
        ("query", "/filter/level", "schema"),
        ("query", "/filter/team", "schema"),
    ]


def test_json_encoded_query_parameter() -> None:
    content = {"application/json": {"schema": {"type": "object", "required": ["from"]}}}
    contract = inline_contract([{"name": "window", "in": "query", "content": content}])
    found = contract.match("GET", "/system/psa/v1/projects")
    assert found is not None

    assert found.operation.validate_request(query={"window": '{"from": "2025-01-01"}'}) == []
    assert where(found.operation.validate_request(query={"window": "{}"})) == [("query", "/window/from", "schema")]


def test_unsupported_parameter_style_is_refused_at_compile_time() -> None:
    with pytest.raises(ContractCompileError, match="style 'matrix'"):
        inline_contract(
            [{"name": "id", "in": "path", "required": True, "style": "matrix", "schema": {"type": "string"}}]
        )


def test_remote_references_are_refused_at_compile_time() -> None:
    with pytest.raises(ContractCompileError, match="only local references"):
        inline_contract([{"name": "id", "in": "query", "schema": {"$ref": "https://example.com/id.json"}}])
