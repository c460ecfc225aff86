"""Compare two versions of an AsyncAPI event contract: the messages (event types) and their payloads.

A published message is output: the process tier writes it, consumers read it. Its payload is compared as a
response is (:class:`~contracts.toolchain.diff.schemas.SchemaComparison`, ``Direction.RESPONSE``): a field may be
added or made always present, not removed, retyped or made optional; a closed ``enum`` may not gain a value
(BRK-022), because a consumer that switches on it meets a value it cannot handle. A set the contract declares
open, ``x-extensible-enum`` (consumers must tolerate values they do not know), may grow. A new message on a
channel is additive (ADD-012): consumers of an event stream skip types they do not know (contracts/README.md,
"Event contracts"); a message that is gone is breaking (BRK-033).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts.toolchain.diff import rules
from contracts.toolchain.diff.model import Change, Direction
from contracts.toolchain.diff.recorder import ChangeRecorder, DiffContext
from contracts.toolchain.diff.schema_view import SchemaAt
from contracts.toolchain.diff.schemas import SchemaComparison
from contracts.toolchain.loader import ContractDocument
from contracts.toolchain.pointer import join_pointer


def _messages(document: Mapping[str, Any]) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """Event type (the message ``name``) -> (its pointer, the message)."""
    messages = (document.get("components") or {}).get("messages") or {}
    return {
        message["name"]: (join_pointer("/components/messages", key), message)
        for key, message in messages.items()
        if isinstance(message, Mapping) and isinstance(message.get("name"), str)
    }


def diff_asyncapi(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every change from ``old`` (the published version) to ``new``, breaking ones included."""
    context = DiffContext(ContractDocument.from_mapping(old), ContractDocument.from_mapping(new), ChangeRecorder())
    record = context.recorder.record
    old_version, new_version = (old.get("info") or {}).get("version"), (new.get("info") or {}).get("version")
    if old_version != new_version:
        record(rules.CONTRACT_VERSION_CHANGED, "/info/version", f"contract version {old_version} -> {new_version}")
    before, after = _messages(old), _messages(new)
    for name, (pointer, _message) in before.items():
        if name not in after:
            record(rules.MESSAGE_REMOVED, pointer, f"event type {name} is no longer published", f"event {name}")
    for name, (pointer, message) in after.items():
        if name not in before:
            record(rules.MESSAGE_ADDED, pointer, f"new event type {name}", f"event {name}")
            continue
        old_pointer, old_message = before[name]
        SchemaComparison(context, f"event {name}", Direction.RESPONSE).compare(
            SchemaAt(old_message.get("payload"), join_pointer(old_pointer, "payload")),
            SchemaAt(message.get("payload"), join_pointer(pointer, "payload")),
            f"event {name} payload",
        )
    return context.recorder.changes()
