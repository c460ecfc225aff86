"""Breaking-change detection: one edit of the mobile-time contract per rule, and the changelog built from it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contracts.toolchain.diff import (
    DIFF_RULES,
    ChangeSeverity,
    build_changelog,
    diff_documents,
    diff_files,
    is_breaking,
    render_markdown,
)
from contracts.toolchain.loader import ContractDocument, load_contract
from contracts.toolchain.operations import iter_operations

FIXTURES = Path(__file__).parent / "fixtures" / "contracts" / "experience" / "mobile-time"
V1, V2 = FIXTURES / "v1.yaml", FIXTURES / "v2.yaml"
BASE = load_contract(V1)

Edit = Callable[[dict[str, Any]], object]
ITEM = "/time-entries/{time_entry_id}"


def schemas(document: dict[str, Any]) -> dict[str, Any]:
    return document["components"]["schemas"]


def operation(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    return document["paths"][path][method]


def parameters(document: dict[str, Any], path: str, method: str) -> list[Any]:
    return operation(document, path, method)["parameters"]


def no_edit(document: dict[str, Any]) -> None:
    """The base contract as it is."""


def make_billable_nullable(document: dict[str, Any]) -> None:
    schemas(document)["TimeEntry"]["properties"]["billable"] = {"oneOf": [{"type": "boolean"}, {"type": "null"}]}


def add_string_variant(document: dict[str, Any]) -> None:
    make_billable_nullable(document)
    schemas(document)["TimeEntry"]["properties"]["billable"]["oneOf"].append({"type": "string"})


def add_location_header(document: dict[str, Any]) -> None:
    operation(document, "/time-entries", "post")["responses"]["201"]["headers"] = {
        "Location": {"schema": {"type": "string"}}
    }


def require_admin_scope(document: dict[str, Any]) -> None:
    operation(document, ITEM, "get")["security"] = [{"oauth2": ["time.read", "time.admin"]}]


def make_body_optional(document: dict[str, Any]) -> None:
    operation(document, "/time-entries", "post")["requestBody"]["required"] = False


def add_device_id(document: dict[str, Any]) -> None:
    schemas(document)["TimeEntryBatch"]["properties"]["device_id"] = {"type": "string"}


def rename_hours_to_minutes(document: dict[str, Any]) -> None:
    properties = schemas(document)["TimeEntry"]["properties"]
    # Same place: rebuilt in order, "minutes" where "hours" was.
    schemas(document)["TimeEntry"]["properties"] = {
        ("minutes" if name == "hours" else name): ({"type": "integer"} if name == "hours" else value)
        for name, value in properties.items()
    }


def send_sunset_headers(document: dict[str, Any]) -> None:
    operation(document, "/time-entries", "post")["responses"]["201"]["headers"] = {
        name: {"schema": {"type": "string"}} for name in ("Deprecation", "Sunset", "Link")
    }


def rename_item_parameter(document: dict[str, Any]) -> None:
    item = document["paths"].pop(ITEM)
    item["get"]["parameters"][0]["name"] = "entry_id"
    document["paths"]["/time-entries/{entry_id}"] = item


def add_delete(document: dict[str, Any]) -> None:
    operation(document, ITEM, "get")  # the path exists
    document["paths"][ITEM]["delete"] = copy.deepcopy(operation(document, ITEM, "get")) | {
        "operationId": "deleteTimeEntry",
        "summary": "Delete one entry",
        "responses": {"204": {"description": "Deleted."}},
    }


@dataclass(frozen=True)
class DiffCase:
    rule_id: str
    severity: ChangeSeverity
    pointer: str
    edit_new: Edit
    edit_old: Edit = no_edit


B, N, INFO = ChangeSeverity.BREAKING, ChangeSeverity.NON_BREAKING, ChangeSeverity.INFO
TIME_ENTRY = "/components/schemas/TimeEntry"
TIME_ENTRY_INPUT = "/components/schemas/TimeEntryInput"
CREATE = "/paths/~1time-entries/post"
GET_ITEM = "/paths/~1time-entries~1{time_entry_id}/get"
LIST = "/paths/~1assignments/get"

DIFF_CASES = [
    DiffCase("BRK-001", B, "/paths/~1assignments", lambda d: d["paths"].pop("/assignments")),
    DiffCase("BRK-002", B, CREATE, lambda d: d["paths"]["/time-entries"].pop("post")),
    DiffCase(
        "BRK-003", B, GET_ITEM + "/operationId", lambda d: operation(d, ITEM, "get").update(operationId="readEntry")
    ),
    DiffCase("BRK-004", B, "/servers", lambda d: d["servers"][0].update(url="/experience/mobile-time/v2")),
    DiffCase("BRK-005", B, GET_ITEM + "/security", require_admin_scope),
    DiffCase(
        "BRK-010",
        B,
        TIME_ENTRY_INPUT + "/properties/notes",
        lambda d: schemas(d)["TimeEntryInput"]["required"].append("notes"),
    ),
    DiffCase(
        "BRK-011",
        B,
        LIST + "/parameters/4",
        lambda d: parameters(d, "/assignments", "get").append(
            {"name": "project_id", "in": "query", "required": True, "schema": {"type": "string"}}
        ),
    ),
    DiffCase(
        "BRK-012",
        B,
        "/components/parameters/Limit",
        lambda d: d["components"]["parameters"]["Limit"].update(required=True),
    ),
    DiffCase(
        "BRK-013",
        B,
        TIME_ENTRY_INPUT + "/properties/notes",
        lambda d: schemas(d)["TimeEntryInput"]["properties"].pop("notes"),
    ),
    DiffCase("BRK-014", B, LIST + "/parameters/3", lambda d: parameters(d, "/assignments", "get").pop(3)),
    DiffCase("BRK-015", B, CREATE + "/requestBody", no_edit, edit_old=make_body_optional),
    DiffCase(
        "BRK-016",
        B,
        "/paths/~1time-entries~1batch/post/requestBody",
        lambda d: operation(d, "/time-entries/batch", "post").pop("requestBody"),
    ),
    DiffCase(
        "BRK-020",
        B,
        TIME_ENTRY_INPUT + "/properties/hours",
        lambda d: schemas(d)["TimeEntryInput"]["properties"]["hours"].update(type="string"),
    ),
    DiffCase(
        "BRK-021",
        B,
        LIST + "/parameters/2/schema/items",
        lambda d: parameters(d, "/assignments", "get")[2]["schema"]["items"]["enum"].remove("ended"),
    ),
    DiffCase(
        "BRK-022",
        B,
        TIME_ENTRY + "/properties/state",
        lambda d: schemas(d)["TimeEntry"]["properties"]["state"]["enum"].append("posted"),
    ),
    DiffCase(
        "BRK-023", B, TIME_ENTRY + "/properties/notes", lambda d: schemas(d)["TimeEntry"]["properties"].pop("notes")
    ),
    DiffCase(
        "BRK-024", B, TIME_ENTRY + "/properties/state", lambda d: schemas(d)["TimeEntry"]["required"].remove("state")
    ),
    DiffCase(
        "BRK-025", B, CREATE + "/responses/201", lambda d: operation(d, "/time-entries", "post")["responses"].pop("201")
    ),
    DiffCase(
        "BRK-026",
        B,
        CREATE + "/requestBody/content/application~1json",
        lambda d: operation(d, "/time-entries", "post")["requestBody"].update(
            content={
                "application/vnd.psgw+json": operation(d, "/time-entries", "post")["requestBody"]["content"][
                    "application/json"
                ]
            }
        ),
    ),
    DiffCase(
        "BRK-027",
        B,
        TIME_ENTRY_INPUT + "/properties/notes",
        lambda d: schemas(d)["TimeEntryInput"]["properties"]["notes"].update(maxLength=100),
    ),
    DiffCase(
        "BRK-028",
        B,
        "/components/schemas/Assignment/properties/currency",
        lambda d: schemas(d)["Assignment"]["properties"]["currency"].pop("pattern"),
    ),
    DiffCase(
        "BRK-029",
        B,
        TIME_ENTRY + "/properties/created_at",
        lambda d: schemas(d)["TimeEntry"]["properties"]["created_at"].update(format="date"),
    ),
    DiffCase(
        "BRK-030", B, TIME_ENTRY + "/properties/billable/oneOf/2", add_string_variant, edit_old=make_billable_nullable
    ),
    DiffCase("BRK-031", B, CREATE + "/responses/201/headers/Location", no_edit, edit_old=add_location_header),
    DiffCase("BRK-032", B, TIME_ENTRY + "/properties/minutes", rename_hours_to_minutes),
    DiffCase("ADD-001", N, "/paths/~1projects", lambda d: d["paths"].update({"/projects": {}})),
    DiffCase("ADD-002", N, "/paths/~1time-entries~1{time_entry_id}/delete", add_delete),
    DiffCase(
        "ADD-003",
        N,
        LIST + "/parameters/4",
        lambda d: parameters(d, "/assignments", "get").append(
            {"name": "project_id", "in": "query", "schema": {"type": "string"}}
        ),
    ),
    DiffCase(
        "ADD-004",
        N,
        TIME_ENTRY_INPUT + "/properties/task_id",
        lambda d: schemas(d)["TimeEntryInput"]["properties"].update(task_id={"type": "string"}),
    ),
    DiffCase(
        "ADD-005",
        N,
        TIME_ENTRY + "/properties/posted_at",
        lambda d: schemas(d)["TimeEntry"]["properties"].update(posted_at={"type": "string", "format": "date-time"}),
    ),
    DiffCase(
        "ADD-006",
        N,
        CREATE + "/responses/409",
        lambda d: operation(d, "/time-entries", "post")["responses"].update(
            {"409": {"$ref": "#/components/responses/BadRequest"}}
        ),
    ),
    DiffCase(
        "ADD-007",
        N,
        CREATE + "/requestBody/content/application~1merge-patch+json",
        lambda d: operation(d, "/time-entries", "post")["requestBody"]["content"].update(
            {"application/merge-patch+json": {"schema": {"$ref": "#/components/schemas/TimeEntryInput"}}}
        ),
    ),
    DiffCase(
        "ADD-008",
        N,
        TIME_ENTRY_INPUT + "/properties/notes",
        lambda d: schemas(d)["TimeEntryInput"]["properties"]["notes"].update(maxLength=1000),
    ),
    DiffCase(
        "ADD-009",
        N,
        "/components/schemas/Assignment/properties/status",
        lambda d: schemas(d)["Assignment"]["properties"]["status"]["enum"].remove("ended"),
    ),
    DiffCase("ADD-010", N, GET_ITEM + "/security", no_edit, edit_old=require_admin_scope),
    DiffCase("ADD-011", N, CREATE + "/responses/201/headers/Location", add_location_header),
    DiffCase("INF-001", INFO, "/info/version", lambda d: d["info"].update(version="1.3.0")),
    DiffCase(
        "INF-002",
        INFO,
        "/info/x-lifecycle",
        lambda d: d["info"].update({"x-lifecycle": "deprecated", "x-sunset": "2026-06-30"}),
    ),
    DiffCase("INF-003", INFO, GET_ITEM, lambda d: operation(d, ITEM, "get").update(deprecated=True)),
    DiffCase(
        "INF-004", INFO, "/components/schemas/TimeEntryBatch/properties/device_id", no_edit, edit_old=add_device_id
    ),
    DiffCase("INF-005", INFO, GET_ITEM + "/responses/404", lambda d: operation(d, ITEM, "get")["responses"].pop("404")),
    DiffCase(
        "INF-006", INFO, CREATE + "/parameters/0", lambda d: operation(d, "/time-entries", "post").pop("parameters")
    ),
    DiffCase("INF-007", INFO, "/paths/~1time-entries~1{entry_id}/get/parameters/0", rename_item_parameter),
    DiffCase("INF-008", INFO, "/info/x-lifecycle", no_edit, edit_old=send_sunset_headers),
]


def edited(edit: Edit, source: str) -> ContractDocument:
    content = copy.deepcopy(BASE.content)
    edit(content)
    return ContractDocument.from_mapping(content, source)


@pytest.mark.parametrize("case", DIFF_CASES, ids=[case.rule_id for case in DIFF_CASES])
def test_rule_detects_its_change(case: DiffCase) -> None:
    old, new = edited(case.edit_old, "old"), edited(case.edit_new, "new")

    changes = diff_documents(old, new)

    found = [change for change in changes if change.rule_id == case.rule_id]
    assert found, [change.format_text() for change in changes]
    assert {change.severity for change in found} == {case.severity}
    assert case.pointer in {change.pointer for change in found}
    assert is_breaking(changes) == (case.severity is B or any(c.severity is B for c in changes))


def test_every_diff_rule_has_a_case_and_its_declared_severity() -> None:
    declared = {rule.id: rule.severity for rule in DIFF_RULES}

    assert {case.rule_id: case.severity for case in DIFF_CASES} == declared
    assert len(declared) == len(DIFF_RULES)


def test_identical_versions_have_no_changes() -> None:
    assert diff_documents(BASE, edited(no_edit, "same")) == []


def test_additive_changes_are_never_breaking() -> None:
    def evolve(document: dict[str, Any]) -> None:
        document["info"]["version"] = "1.3.0"
        document["paths"]["/projects"] = {}
        schemas(document)["TimeEntryInput"]["properties"]["task_id"] = {"type": "string"}
        schemas(document)["TimeEntry"]["properties"]["posted_at"] = {"type": "string", "format": "date-time"}
        parameters(document, "/assignments", "get").append(
            {"name": "project_id", "in": "query", "schema": {"type": "string"}}
        )

    changes = diff_documents(BASE, edited(evolve, "1.3.0"))

    assert not is_breaking(changes)
    assert {change.severity for change in changes} <= {N, INFO}
    assert {change.rule_id for change in changes} == {"INF-001", "ADD-001", "ADD-003", "ADD-004", "ADD-005"}


def test_request_and_response_judge_the_same_edit_oppositely() -> None:
    # TimeEntryInput is both a request body and, inside TimeEntryBatch, a response.
    changes = diff_documents(
        BASE, edited(lambda d: schemas(d)["TimeEntryInput"]["properties"]["hours"].update(maximum=12), "new")
    )

    assert {(change.rule_id, change.operations) for change in changes} == {
        ("BRK-027", ("POST /time-entries", "POST /time-entries/batch")),
        ("ADD-009", ("POST /time-entries/batch",)),
    }


def test_shared_component_change_is_reported_once_with_every_operation() -> None:
    changes = diff_documents(
        BASE, edited(lambda d: schemas(d)["TimeEntry"]["properties"]["state"]["enum"].append("posted"), "new")
    )

    [change] = changes
    assert change.message == "schema TimeEntry property 'state': may now return 'posted'"
    assert change.operations == ("POST /time-entries", "GET /time-entries/{time_entry_id}")


def test_recursive_schemas_are_compared_without_looping() -> None:
    def make_tree(document: dict[str, Any]) -> None:
        schemas(document)["TimeEntry"]["properties"]["corrections"] = {
            "type": "array",
            "items": {"$ref": "#/components/schemas/TimeEntry"},
        }

    def change_tree(document: dict[str, Any]) -> None:
        make_tree(document)
        schemas(document)["TimeEntry"]["properties"]["notes"]["maxLength"] = 10

    changes = diff_documents(edited(make_tree, "old"), edited(change_tree, "new"))

    assert [(change.rule_id, change.pointer) for change in changes] == [("ADD-009", TIME_ENTRY + "/properties/notes")]


def test_major_versions_differ_in_a_breaking_way() -> None:
    changes = diff_files(V1, V2)

    assert is_breaking(changes)
    # hours -> minutes in the same place of each schema: one rename each, not a removal plus an addition.
    assert {change.rule_id for change in changes if change.severity is B} == {"BRK-004", "BRK-032"}


def test_changelog_groups_by_severity_then_operation() -> None:
    changelog = build_changelog(load_contract(V1), load_contract(V2))

    assert changelog.is_breaking
    assert (changelog.old_version, changelog.new_version) == ("1.2.0", "2.0.0")
    assert [section.title for section in changelog.sections] == ["Breaking changes", "Notes"]
    breaking = changelog.sections[0]
    assert [entry.scope for entry in breaking.entries] == [
        "API",
        "POST /time-entries, GET /time-entries/{time_entry_id}",
        "POST /time-entries, POST /time-entries/batch",
    ]


def test_markdown_changelog_names_versions_and_rules() -> None:
    markdown = render_markdown(build_changelog(load_contract(V1), load_contract(V2)))

    assert markdown.startswith("## Mobile time entry: 1.2.0 -> 2.0.0\n")
    assert "### Breaking changes" in markdown
    assert markdown.index("### Breaking changes") < markdown.index("### Notes")
    assert (
        "- **API**: server url /experience/mobile-time/v1 -> /experience/mobile-time/v2 (`BRK-004 server-url-changed`)"
        in markdown
    )


def test_a_header_dropped_from_many_responses_is_one_change() -> None:
    def send_header_everywhere(document: dict[str, Any], name: str) -> None:
        for site in iter_operations(ContractDocument.from_mapping(document)):
            for response in site.operation["responses"].values():
                if "$ref" not in response:
                    response.setdefault("headers", {})[name] = {"schema": {"type": "string"}}

    old = edited(lambda d: send_header_everywhere(d, "X-Request-Cost"), "old")

    [change] = diff_documents(old, BASE)

    assert change.rule_id == "BRK-031" and change.message == "response header X-Request-Cost removed"
    assert len(change.operations) > 1


def test_a_rename_is_one_change_and_carries_the_migration_note_of_the_new_contract() -> None:
    def rename_with_note(document: dict[str, Any]) -> None:
        rename_hours_to_minutes(document)
        schemas(document)["TimeEntry"]["properties"]["minutes"]["x-migration"] = "minutes = hours * 60"
        operation(document, "/time-entries", "post")["x-migration"] = "send minutes"
        document["info"]["x-migration"] = "whole minutes everywhere"

    changelog = build_changelog(BASE, edited(rename_with_note, "new"))

    [entry] = changelog.sections[0].entries
    [change] = entry.changes
    assert change.message == "schema TimeEntry: property 'hours' renamed to 'minutes' (number -> integer)"
    assert change.migration == "minutes = hours * 60"
    assert entry.migration == ("POST /time-entries: send minutes",)
    assert changelog.migration == "whole minutes everywhere"
    markdown = render_markdown(changelog)
    assert "**Migrating:** whole minutes everywhere" in markdown and "  - Migrating: minutes = hours * 60" in markdown


def test_changelog_without_changes_says_so() -> None:
    assert "No changes to the interface." in render_markdown(build_changelog(BASE, BASE))
