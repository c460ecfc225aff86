"""The AsyncAPI event contract: it is valid, documents every type the process tier emits, and agrees with the
typed payloads (process_apis/events/models.py) field for field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from contracts.toolchain.asyncapi import (
    EventSchemas,
    check_asyncapi,
    emitted_event_types,
    load_asyncapi,
    message_names,
)
from contracts.toolchain.cli import contracts
from process_apis.events.models import EVENT_TYPES, PAYLOAD_TYPES, Event, typed_payload

PROCESS_APIS = Path(__file__).resolve().parents[2] / "process_apis"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return load_asyncapi()


def examples(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [example["payload"] for message in document["components"]["messages"].values()
            for example in message["examples"]]


def test_the_document_is_a_valid_asyncapi_3_contract(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert check_asyncapi(document) == []


def test_every_event_type_is_documented_once(document: dict[str, Any]) -> None:
    assert sorted(message_names(document)) == sorted(EVENT_TYPES)


def test_every_type_the_process_tier_records_is_documented(document: dict[str, Any]) -> None:
    emitted = emitted_event_types(PROCESS_APIS)
    assert {"time.posted", "assignment.confirmed", "milestone.completed"} <= emitted.keys()
    assert not emitted.keys() - message_names(document).keys(), emitted


def test_the_lint_command_fails_on_an_emitted_type_the_document_lacks(tmp_path: Path) -> None:
    package = tmp_path / "emitter"
    package.mkdir()
    (package / "flow.py").write_text('async def f(conn):\n    await record_event(conn, "invoice.voided", {})\n')
    result = CliRunner().invoke(contracts, ["asyncapi", "--emitters", str(package)])
    assert result.exit_code == 1
    assert "'invoice.voided' is emitted but not documented" in result.output
    assert CliRunner().invoke(contracts, ["asyncapi", "--emitters", str(PROCESS_APIS)]).exit_code == 0


def test_the_typed_payloads_read_every_example_and_write_it_back_unchanged(document: dict[str, Any]) -> None:
    """Struct fields and schema properties agree: an example read into the Structs and written out again is the
    same JSON, and what the Structs write validates."""
    schemas = EventSchemas(document)
    for payload in examples(document):
        event = msgspec.convert(payload, Event, strict=False)
        subject, data = typed_payload(event)
        written = {**payload, "subject": msgspec.to_builtins(subject), "data": msgspec.to_builtins(data)}
        assert written == payload, payload["type"]
        assert schemas.errors(written) == []
    assert set(PAYLOAD_TYPES) == set(EVENT_TYPES)


def test_a_payload_drift_is_reported_with_its_pointer(document: dict[str, Any]) -> None:
    schemas = EventSchemas(document)
    posted = next(p for p in examples(document) if p["type"] == "time.posted")
    renamed = copy.deepcopy(posted)
    renamed["data"]["total"] = renamed["data"].pop("amount")
    assert any(error.startswith("/data:") and "'amount' is a required property" in error
               for error in schemas.errors(renamed))
    as_float = copy.deepcopy(posted)
    as_float["data"]["amount"] = 1400.0
    assert any(error.startswith("/data/amount:") for error in schemas.errors(as_float))
    assert schemas.errors({**posted, "type": "time.voided"}) == ["/type: 'time.voided' is not a documented event type"]


def test_a_broken_document_is_refused(document: dict[str, Any]) -> None:
    broken = copy.deepcopy(document)
    broken["components"]["schemas"]["Decimal"]["type"] = "decimal"
    problems = check_asyncapi(broken)
    assert any(p.pointer == "/components/schemas/Decimal/type" and "not a valid JSON Schema" in p.message
               for p in problems)
    broken = copy.deepcopy(document)
    broken["components"]["messages"]["TimePosted"]["examples"][0]["payload"]["data"]["hours"] = 8
    assert [p.pointer for p in check_asyncapi(broken)] == [
        "/components/messages/TimePosted/examples/0/payload/data/hours"]
    unlisted = copy.deepcopy(document)
    unlisted["components"]["messages"]["Extra"] = {"name": "extra.type", "payload": {"type": "object"}}
    assert [p.message for p in check_asyncapi(unlisted)] == ["the message is on no channel"]
    dangling = copy.deepcopy(document)
    dangling["components"]["messages"]["TimePosted"]["payload"]["$ref"] = "#/components/schemas/Nope"
    assert [p.pointer for p in check_asyncapi(dangling)] == ["/components/messages/TimePosted/payload"]
    assert check_asyncapi({**document, "asyncapi": "2.6.0"})[0].pointer == "/asyncapi"
